package daemon

import (
	"fmt"

	"ustack/link"
	"ustack/link/afpacket"
	"ustack/link/tap"
	"ustack/link/tun"
	"ustack/wire"
)

// OpenLink opens the device a link spec names (see ParseLinkSpec) and
// brings it up:
//
//   - "tap:NAME": a TAP device, created if missing (and then gone again
//     when the link closes); the stack uses mac on it, not the kernel
//     side's address.
//   - "tun:NAME": a TUN device, created if missing; mac is ignored.
//   - "afpacket:NAME": an existing interface (a veth end, a NIC) through an
//     AF_PACKET socket; the stack uses mac on it.
//
// mtu, if non-zero, is set on TAP and TUN devices; an AF_PACKET link keeps
// its interface's MTU.
func OpenLink(spec string, mtu int, mac wire.MAC) (link.Endpoint, error) {
	kind, dev, err := ParseLinkSpec(spec)
	if err != nil {
		return nil, err
	}
	var ep link.Endpoint
	switch kind {
	case LinkTAP:
		ep, err = tap.Open(dev, &tap.Config{MTU: mtu, MAC: mac, Up: true})
	case LinkTUN:
		ep, err = tun.Open(dev, &tun.Config{MTU: mtu, Up: true})
	case LinkAFPacket:
		ep, err = openAFPacket(dev, mac, false)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return ep, nil
}

// OpenPromiscuous opens a host interface with AF_PACKET in promiscuous
// mode, to bridge it (ustack impair).
func OpenPromiscuous(ifname string) (link.Endpoint, error) {
	return openAFPacket(ifname, wire.MAC{}, true)
}

// openAFPacket opens dev with AF_PACKET. The device's MTU is left alone
// (the stack's interface MTU may be set lower). With a MAC of the stack's
// own the interface goes promiscuous, as a NIC's filter would drop frames
// to that address otherwise.
func openAFPacket(dev string, mac wire.MAC, promisc bool) (link.Endpoint, error) {
	return afpacket.Open(dev, &afpacket.Config{MAC: mac, Promisc: promisc || !mac.IsZero()})
}

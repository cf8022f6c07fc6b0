package daemon

import (
	"fmt"

	"ustack/link"
	"ustack/link/afpacket"
	"ustack/link/offload"
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
//
// Offloads are on, as on a Linux NIC: TAP and TUN carry virtio-net headers
// (the stack sends 64 KB TCP segments with partial checksums and the
// kernel segments them; the kernel's GSO frames arrive whole), AF_PACKET
// takes the kernel's GSO frames and partial checksums, and every link
// merges the TCP segments of a received batch (GRO).
func OpenLink(spec string, mtu int, mac wire.MAC) (link.Endpoint, error) {
	kind, dev, err := ParseLinkSpec(spec)
	if err != nil {
		return nil, err
	}
	var ep link.Endpoint
	switch kind {
	case LinkTAP:
		ep, err = tap.Open(dev, &tap.Config{MTU: mtu, MAC: mac, Up: true, Offload: true, Accept: gro})
	case LinkTUN:
		ep, err = tun.Open(dev, &tun.Config{MTU: mtu, Up: true, Offload: true, Accept: gro})
	case LinkAFPacket:
		ep, err = afpacket.Open(dev, &afpacket.Config{MAC: mac, Promisc: !mac.IsZero(), Accept: gro})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return ep, nil
}

// gro is what the stack's own links accept from the kernel: partial
// checksums and large frames, and a received batch's TCP segments merged.
var gro = offload.Accept{GRO: true}

// OpenPromiscuous opens a host interface with AF_PACKET in promiscuous
// mode, to bridge it (ustack impair). Frames pass as they are: no GRO, no
// large frames (a bridge forwards what it gets).
func OpenPromiscuous(ifname string) (link.Endpoint, error) {
	return afpacket.Open(ifname, &afpacket.Config{Promisc: true})
}

package wire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
)

// MAC is an IEEE 802 MAC-48 address. It is comparable and allocation-free.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsBroadcast reports whether m is the broadcast address.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// IsLocal reports whether the locally administered bit is set.
func (m MAC) IsLocal() bool { return m[0]&2 == 2 }

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// HardwareAddr converts m for the net package.
func (m MAC) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(m[:]) }

// ParseMAC parses "aa:bb:cc:dd:ee:ff" (or with '-').
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return m, fmt.Errorf("invalid MAC address %q", s)
	}
	for i := 0; i < 6; i++ {
		if i > 0 && s[3*i-1] != ':' && s[3*i-1] != '-' {
			return m, fmt.Errorf("invalid MAC address %q", s)
		}
		if _, err := hex.Decode(m[i:i+1], []byte(s[3*i:3*i+2])); err != nil {
			return m, fmt.Errorf("invalid MAC address %q", s)
		}
	}
	return m, nil
}

// MulticastMACv4 is the Ethernet group address of an IPv4 multicast group
// (RFC 1112 §6.4).
func MulticastMACv4(ip [4]byte) MAC {
	return MAC{0x01, 0x00, 0x5e, ip[1] & 0x7f, ip[2], ip[3]}
}

// MulticastMACv6 is the Ethernet group address of an IPv6 multicast group
// (RFC 2464 §7).
func MulticastMACv6(ip [16]byte) MAC {
	return MAC{0x33, 0x33, ip[12], ip[13], ip[14], ip[15]}
}

// EtherType is the type field of an Ethernet II frame.
type EtherType uint16

const (
	EtherTypeIPv4 EtherType = 0x0800
	EtherTypeARP  EtherType = 0x0806
	EtherTypeVLAN EtherType = 0x8100
	EtherTypeQinQ EtherType = 0x88a8
	EtherTypeIPv6 EtherType = 0x86dd
)

func (t EtherType) String() string {
	switch t {
	case EtherTypeIPv4:
		return "IPv4"
	case EtherTypeARP:
		return "ARP"
	case EtherTypeVLAN:
		return "802.1Q"
	case EtherTypeQinQ:
		return "802.1ad"
	case EtherTypeIPv6:
		return "IPv6"
	}
	return fmt.Sprintf("0x%04x", uint16(t))
}

// IPProtocol is an IP protocol number (IPv4 protocol, IPv6 next header).
type IPProtocol uint8

const (
	IPProtoHopByHop IPProtocol = 0
	IPProtoICMP     IPProtocol = 1
	IPProtoIGMP     IPProtocol = 2
	IPProtoTCP      IPProtocol = 6
	IPProtoUDP      IPProtocol = 17
	IPProtoIPv6     IPProtocol = 41
	IPProtoRouting  IPProtocol = 43
	IPProtoFragment IPProtocol = 44
	IPProtoICMPv6   IPProtocol = 58
	IPProtoNoNext   IPProtocol = 59
	IPProtoDstOpts  IPProtocol = 60
)

func (p IPProtocol) String() string {
	switch p {
	case IPProtoHopByHop:
		return "hopopt"
	case IPProtoICMP:
		return "icmp"
	case IPProtoIGMP:
		return "igmp"
	case IPProtoTCP:
		return "tcp"
	case IPProtoUDP:
		return "udp"
	case IPProtoIPv6:
		return "ipv6"
	case IPProtoRouting:
		return "ipv6-route"
	case IPProtoFragment:
		return "ipv6-frag"
	case IPProtoICMPv6:
		return "ipv6-icmp"
	case IPProtoNoNext:
		return "ipv6-nonxt"
	case IPProtoDstOpts:
		return "ipv6-opts"
	case 50:
		return "esp"
	case 51:
		return "ah"
	case 135:
		return "mobility-header"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

var errShort = errors.New("wire: buffer too short")

package wire

import (
	"encoding/binary"
	"net/netip"
)

// ARP for IPv4 over Ethernet (RFC 826).
const ARPLen = 28

// ARPOp is an ARP opcode.
type ARPOp uint16

const (
	ARPRequest ARPOp = 1
	ARPReply   ARPOp = 2
)

func (o ARPOp) String() string {
	switch o {
	case ARPRequest:
		return "request"
	case ARPReply:
		return "reply"
	}
	return "arp-op(" + itoa(int(o)) + ")"
}

// ARP is a view of an Ethernet/IPv4 ARP packet.
type ARP []byte

// ParseARP checks that b holds an ARP packet for Ethernet (hardware type 1,
// length 6) and IPv4 (protocol 0x0800, length 4). Other hardware or protocol
// types give ErrUnsupported; opcodes are not checked (see ARP.Op).
func ParseARP(b []byte) (ARP, error) {
	if len(b) < 8 {
		return nil, ErrTruncated
	}
	if binary.BigEndian.Uint16(b[0:]) != 1 || EtherType(binary.BigEndian.Uint16(b[2:])) != EtherTypeIPv4 {
		return nil, ErrUnsupported
	}
	if b[4] != 6 || b[5] != 4 {
		return nil, ErrBadLength
	}
	if len(b) < ARPLen {
		return nil, ErrTruncated
	}
	return ARP(b[:ARPLen]), nil
}

func (a ARP) Op() ARPOp            { return ARPOp(binary.BigEndian.Uint16(a[6:])) }
func (a ARP) SenderMAC() (m MAC)   { copy(m[:], a[8:14]); return }
func (a ARP) SenderIP() netip.Addr { return netip.AddrFrom4([4]byte(a[14:18])) }
func (a ARP) TargetMAC() (m MAC)   { copy(m[:], a[18:24]); return }
func (a ARP) TargetIP() netip.Addr { return netip.AddrFrom4([4]byte(a[24:28])) }

// ARPFields are the fields of an Ethernet/IPv4 ARP packet.
type ARPFields struct {
	Op                   ARPOp
	SenderMAC, TargetMAC MAC
	SenderIP, TargetIP   netip.Addr
}

// Len is the encoded length.
func (f *ARPFields) Len() int { return ARPLen }

// Encode writes the packet into b[:ARPLen]. A zero netip.Addr is written as
// 0.0.0.0 (the sender address of an ARP probe, RFC 5227 §2.1.1).
func (f *ARPFields) Encode(b []byte) {
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], uint16(EtherTypeIPv4))
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], uint16(f.Op))
	copy(b[8:14], f.SenderMAC[:])
	put4(b[14:18], f.SenderIP)
	copy(b[18:24], f.TargetMAC[:])
	put4(b[24:28], f.TargetIP)
}

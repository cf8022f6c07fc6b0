// Package proto holds the small contracts between ustack's layers: how the
// stack hands frames to network protocols, how network protocols hand
// packets to transports and send for them, how ICMP errors reach the
// endpoint that caused them, drop reasons, and tunables. It has no protocol
// logic; the stack package implements the Interface side, network protocols
// the Network side.
//
// Layers beside each other (ARP and IPv4, UDP and TCP) talk only through
// these interfaces, never by importing each other.
package proto

import (
	"errors"
	"net/netip"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// Interface is a network interface as protocols see it. The stack
// implements it.
type Interface interface {
	Index() int
	Name() string
	// MTU is the network-layer MTU.
	MTU() int
	LinkType() link.Type
	HardwareAddr() wire.MAC
	Capabilities() link.Capabilities
	// Up reports whether the interface is administratively up.
	Up() bool
	// Addrs returns the interface's addresses. The slice is shared and must
	// not be modified.
	Addrs() []netip.Prefix
	// Output sends pkt, whose front is a network header of the given
	// EtherType, to the on-link neighbour next: it resolves next's link
	// address (queueing pkt while resolution is under way), frames the
	// packet and writes it. Multicast and broadcast next hops map to their
	// link addresses. It takes ownership of pkt.
	Output(next netip.Addr, et wire.EtherType, pkt *buf.Packet) error
	// OutputLink frames pkt for the link address dst and writes it. It
	// takes ownership of pkt.
	OutputLink(dst wire.MAC, et wire.EtherType, pkt *buf.Packet) error
}

// Interfaces is the stack's table of interfaces and local addresses.
type Interfaces interface {
	// Interface returns the interface with the index, or nil.
	Interface(index int) Interface
	// LocalAddr reports whether a is an address of this stack, and of which
	// interface.
	LocalAddr(a netip.Addr) (ifIndex int, ok bool)
	// Broadcast reports whether a is the directed broadcast address of one
	// of the interface's IPv4 prefixes (or the limited broadcast).
	Broadcast(ifIndex int, a netip.Addr) bool
	// Loopback returns the stack's loopback interface, or nil.
	Loopback() Interface
	// Each calls f for every interface.
	Each(f func(Interface))
}

// NetworkProtocol is a protocol above the link layer, found by EtherType.
type NetworkProtocol interface {
	EtherType() wire.EtherType
	// HandlePacket takes ownership of pkt, which starts with the network
	// header; pkt.LinkHeader and pkt.Flags are set. It runs on the link's
	// reader goroutine.
	HandlePacket(ifc Interface, pkt *buf.Packet)
}

// ErrNoRoute: there is no route to the destination.
var ErrNoRoute = errors.New("no route to host")

// Route is how to reach a destination, resolved for sending.
type Route struct {
	Src, Dst netip.Addr
	// NextHop is the on-link neighbour: Dst or a gateway.
	NextHop netip.Addr
	IfIndex int
	// MTU is the network-layer MTU along the route.
	MTU int
	// Local: Dst is an address of this stack.
	Local bool
	// Broadcast, Multicast describe Dst.
	Broadcast, Multicast bool
	// Caps are the capabilities of the outgoing link.
	Caps link.Capabilities
}

// WriteParams are per-packet IP header choices.
type WriteParams struct {
	TTL uint8 // 0: the protocol's default
	TOS uint8
	// DF sets Don't Fragment (IPv4): the packet is refused with EMSGSIZE
	// instead of being fragmented.
	DF bool
}

// Network is what transports use to send, for one address family or both.
type Network interface {
	// Route resolves how to send to dst. src may be the zero Addr (choose
	// one); ifIndex may be 0 (any interface).
	Route(dst, src netip.Addr, ifIndex int) (Route, error)
	// WritePacket prepends the network header and sends pkt, whose front
	// is the transport header, along r. It fragments if needed. It takes
	// ownership of pkt.
	WritePacket(r Route, p wire.IPProtocol, wp WriteParams, pkt *buf.Packet) error
	// LocalAddr reports whether a is an address of this stack (or a
	// broadcast address of one of its interfaces).
	LocalAddr(a netip.Addr) bool
	// JoinGroup makes the stack accept datagrams sent to the multicast
	// group on the interface (0: every interface); LeaveGroup undoes one
	// JoinGroup.
	JoinGroup(ifIndex int, group netip.Addr) error
	LeaveGroup(ifIndex int, group netip.Addr) error
	// MaxHeaderLen is the most header bytes the network and link layers
	// prepend: transports leave that much headroom.
	MaxHeaderLen() int
}

// PacketInfo describes a received packet as the network layer saw it. A
// link-local IPv6 Src carries the receiving interface as its zone (as Go's
// net reports senders); transports strip zones from their lookup keys.
type PacketInfo struct {
	Src, Dst netip.Addr
	Proto    wire.IPProtocol
	IfIndex  int
	TTL      uint8
	TOS      uint8
	// Broadcast, Multicast: Dst is a broadcast or multicast address.
	Broadcast, Multicast bool
	// Batch is the received batch the packet arrived in, or nil: work a
	// transport can leave to the batch's end it defers to it.
	Batch *Batch
}

// Verdict is what a transport did with a received packet.
type Verdict uint8

const (
	// Consumed: the transport took ownership of the packet.
	Consumed Verdict = iota
	// NoEndpoint: no endpoint wanted it (port unreachable). The caller
	// keeps ownership and answers with an ICMP error where the rules allow.
	NoEndpoint
)

// TransportProtocol is a protocol above IP, found by protocol number.
type TransportProtocol interface {
	Protocol() wire.IPProtocol
	// HandlePacket receives pkt, whose front is the transport header. It
	// takes ownership unless it returns NoEndpoint.
	HandlePacket(info PacketInfo, pkt *buf.Packet) Verdict
	// HandleError receives an ICMP error about a packet this protocol
	// sent. The error and its Quote are valid only during the call.
	HandleError(e *ICMPError)
}

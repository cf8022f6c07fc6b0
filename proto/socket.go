package proto

import "net/netip"

// SocketInfo describes one transport endpoint for listings (netstat,
// sockstat).
type SocketInfo struct {
	// Proto is the transport's name: "udp", "icmp", "tcp".
	Proto string
	// Local and Remote are the endpoint's addresses; Remote is the zero
	// AddrPort when the endpoint is not connected, and Local's address is
	// the unspecified address when bound to all.
	Local, Remote netip.AddrPort
	// State is the protocol state in ss(8) style ("UNCONN", "ESTAB", ...).
	State string
	// RecvQ and SendQ are the bytes waiting in the receive and send queues.
	RecvQ, SendQ int
}

// SocketLister is implemented by transports that can list their endpoints.
type SocketLister interface {
	// Sockets calls f for every endpoint. f must not call back into the
	// transport.
	Sockets(f func(SocketInfo))
}

package main

import (
	"fmt"
	"net"
	"net/netip"
)

// pair is two stacks of one system in this process, joined by an
// in-memory Ethernet link: the client side at 10.0.0.2 (plus any extra
// addresses from clientAddrs), the server side at 10.0.0.1, both in
// 10.0.0.0/8. The in-process workloads are written once against it, so
// that ustack and gVisor run exactly the same code above the socket API.
type pair interface {
	// listen opens a listener on the server stack at port.
	listen(port uint16) (net.Listener, error)
	// dial connects from the client stack; a zero laddr lets the stack
	// choose the source address and an ephemeral port.
	dial(laddr, raddr netip.AddrPort) (net.Conn, error)
	// clientAddrs makes sure the client stack holds n addresses and
	// returns them, the primary one first.
	clientAddrs(n int) ([]netip.Addr, error)
	// retransmits is the TCP segments both stacks have retransmitted.
	retransmits() uint64
	// close tears both stacks down.
	close()
}

// Addresses of every pair.
var (
	serverAddr = netip.MustParseAddr("10.0.0.1")
	clientAddr = netip.MustParseAddr("10.0.0.2")
)

// extraClientAddr is the i-th extra client address (i ≥ 1): 10.1.x.y.
func extraClientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
}

// counted is a pair that can list its counters (ustack's), printed with -v
// when a workload fails.
type counted interface {
	counters() map[string]uint64
}

// lastPair is the pair most recently built, for that diagnosis. Workloads
// run one at a time.
var lastPair pair

// newPair builds a pair of system ("ustack", "ustack/nokeepalive" or
// "gvisor") at the given MTU.
func newPair(system string, mtu int) (p pair, err error) {
	switch system {
	case "ustack":
		p, err = newUstackPair(mtu, false)
	case "ustack/nokeepalive":
		p, err = newUstackPair(mtu, true)
	case "gvisor":
		p, err = newGvisorPair(mtu)
	default:
		return nil, fmt.Errorf("no in-process pair for system %q", system)
	}
	if err == nil {
		lastPair = p
	}
	return p, err
}

// Client ports used with explicit binding: [portLo, portHi) on each client
// address, so that no 4-tuple is reused within a run (no TIME-WAIT
// collisions) and both systems skip the same ephemeral-port search.
const (
	portLo      = 10000
	portHi      = 60000
	portsPerIP  = portHi - portLo
	serverPort  = 5001
	ioChunkSize = 64 << 10 // bytes per Write and Read in bulk transfers
)

// tuple returns the i-th client address and port of a pair whose
// addresses are addrs.
func tuple(addrs []netip.Addr, i int) netip.AddrPort {
	return netip.AddrPortFrom(addrs[i/portsPerIP], uint16(portLo+i%portsPerIP))
}

// addrsFor is how many client addresses n explicit tuples need.
func addrsFor(n int) int { return (n + portsPerIP - 1) / portsPerIP }

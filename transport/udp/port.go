package udp

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"syscall"
)

// ephemeral is the state of RFC 6056 §3.3.4 "Algorithm 4: Double-Hash Port
// Selection": a keyed hash of the endpoint's addresses gives a fixed offset
// into the range, a second keyed hash picks a counter from a small table,
// and the counter advances on every try. Ports are hard to guess from
// outside, and successive binds from one address walk the range without
// reusing a port soon.
type ephemeral struct {
	secret [32]byte // from crypto/rand
	table  [256]uint16
}

// hash is a keyed hash of the local and remote addresses.
func (e *ephemeral) hash(domain byte, local, remote netip.AddrPort) uint32 {
	var b [1 + 32 + 2*18]byte
	b[0] = domain
	copy(b[1:], e.secret[:])
	l, _ := local.MarshalBinary()
	r, _ := remote.MarshalBinary()
	n := 33 + copy(b[33:], l)
	n += copy(b[n:], r)
	s := sha256.Sum256(b[:n])
	return binary.BigEndian.Uint32(s[:])
}

// pickPort chooses a free ephemeral port for local (and remote, when known)
// or returns EADDRINUSE when every port of the range is taken. A port is
// free when no endpoint at all uses it. p.mu is held for writing.
func (p *Protocol) pickPort(local netip.Addr, remote netip.AddrPort) (uint16, error) {
	first, last := int(p.portFirst.Load()), int(p.portLast.Load())
	if first > last {
		first, last = last, first
	}
	num := uint32(last - first + 1)
	la := netip.AddrPortFrom(local, 0)
	offset := p.eph.hash(1, la, remote)
	idx := p.eph.hash(2, la, remote) % uint32(len(p.eph.table))
	for range num {
		port := uint16(uint32(first) + (offset+uint32(p.eph.table[idx]))%num)
		p.eph.table[idx]++
		if len(p.ports[port]) == 0 {
			return port, nil
		}
	}
	return 0, syscall.EADDRINUSE
}

// conflict reports whether binding (addr, port) with reuse collides with
// an existing endpoint: one whose local address overlaps, unless both set
// ReuseAddr (SO_REUSEADDR for UDP, as Linux and the BSDs allow). p.mu is
// held.
func (p *Protocol) conflict(addr netip.Addr, port uint16, reuse bool) bool {
	for _, o := range p.ports[port] {
		if overlap(o.addrs.Load().local.Addr(), addr) && !(reuse && o.reuse) {
			return true
		}
	}
	return false
}

// Bind creates an endpoint bound to laddr. Port 0 picks an ephemeral port
// (RFC 6056); an invalid or unspecified address binds to every local
// address of the family (the wildcard). Binding a port whose address
// overlaps an existing endpoint's fails with syscall.EADDRINUSE unless both
// set o.ReuseAddr. Bind does not check that a specific address is local.
func (p *Protocol) Bind(laddr netip.AddrPort, o Options) (*Endpoint, error) {
	addr := laddr.Addr()
	if isWildcard(addr) {
		addr = wildcard(addr)
	}
	// Zones are not part of the binding: a link-local address is unique
	// to this host whatever interface the zone names.
	addr = addr.Unmap().WithZone("")
	if !isWildcard(addr) && !addr.IsMulticast() && !p.net.LocalAddr(addr) {
		// Linux refuses a unicast address the host does not have
		// (EADDRNOTAVAIL, unless IP_FREEBIND).
		return nil, syscall.EADDRNOTAVAIL
	}
	rcv := o.RecvBuffer
	if rcv <= 0 {
		rcv = int(p.recvSpace.Load())
	}
	e := newEndpoint(p, o, rcv)

	p.mu.Lock()
	defer p.mu.Unlock()
	port := laddr.Port()
	if port == 0 {
		var err error
		if port, err = p.pickPort(addr, netip.AddrPort{}); err != nil {
			return nil, err
		}
	} else if p.conflict(addr, port, o.ReuseAddr) {
		return nil, syscall.EADDRINUSE
	}
	local := netip.AddrPortFrom(addr, port)
	e.addrs.Store(&addrs{local: local})
	p.ports[port] = append(p.ports[port], e)
	p.bound[local] = append(p.bound[local], e)
	return e, nil
}

// unlink removes e from every table. p.mu is held for writing.
func (p *Protocol) unlink(e *Endpoint) {
	a := e.addrs.Load()
	port := a.local.Port()
	if s := remove(p.ports[port], e); len(s) > 0 {
		p.ports[port] = s
	} else {
		delete(p.ports, port)
	}
	if a.remote.IsValid() {
		t := tupleOf(a.local, a.remote)
		if s := remove(p.conn[t], e); len(s) > 0 {
			p.conn[t] = s
		} else {
			delete(p.conn, t)
		}
		return
	}
	if s := remove(p.bound[a.local], e); len(s) > 0 {
		p.bound[a.local] = s
	} else {
		delete(p.bound, a.local)
	}
}

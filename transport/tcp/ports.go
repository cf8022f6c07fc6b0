package tcp

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// Local ports. Every user of a local port is recorded here: listeners,
// and connections by their 4-tuple from the moment the tuple is reserved
// until the connection is removed (TIME_WAIT included). Binding follows
// Linux:
//
//   - A new user conflicts with an existing one whose local address
//     overlaps (equal, or either the wildcard), unless both set ReuseAddr
//     and the existing one is not listening; two listeners on overlapping
//     addresses never share a port.
//   - ReuseAddr also binds over a connection in TIME_WAIT, whatever that
//     connection's own setting (the BSD rule, and what a server restarting
//     over its old connections needs).
//   - Connections share a local port freely as long as their 4-tuples
//     differ. Dial without a port picks one per RFC 6056 §3.3.4
//     (Algorithm 4, double-hash) among ports no listener or explicit bind
//     holds, whose 4-tuple is free; as Linux does, it never shares a port
//     someone bound explicitly.
//
// The table is sharded by port; a shard's lock is never held while
// calling into a connection. Lock order: port shard, then demux shard.

const portShards = 64

// Default ephemeral range, used when net.inet.ip.portrange.first and
// .last are not registered (RFC 6335 §6 dynamic ports).
const (
	defaultPortFirst = 49152
	defaultPortLast  = 65535
)

type portTable struct {
	shards [portShards]portShard
	// eph is Algorithm 4's table of perturbations.
	eph [256]atomic.Uint32
}

type portShard struct {
	mu sync.Mutex
	m  map[uint16]*portUsers
}

// portUsers are the users of one local port.
type portUsers struct {
	listeners []*Listener
	// conns are connections (and reserved tuples) on the port.
	conns connSet
	// explicit counts conns with bindExplicit.
	explicit int
	// gen changes whenever a user is added, so a check made without the
	// lock can tell whether it still holds.
	gen uint64
}

type bindFlags uint8

// connSet is the tuples bound to one port, with their flags. Most ports
// have one (a Dial's ephemeral port), kept in the set itself: a map for
// one entry would cost about 400 bytes per connection.
type connSet struct {
	one    tupleKey
	oneF   bindFlags
	hasOne bool
	more   map[tupleKey]bindFlags // the others; nil until needed
}

func (s *connSet) len() int {
	n := len(s.more)
	if s.hasOne {
		n++
	}
	return n
}

// add records k with flags f (replacing its flags if k is there).
func (s *connSet) add(k tupleKey, f bindFlags) {
	if s.hasOne && s.one == k {
		s.oneF = f
		return
	}
	if _, ok := s.more[k]; ok {
		s.more[k] = f
		return
	}
	if !s.hasOne {
		s.one, s.oneF, s.hasOne = k, f, true
		return
	}
	if s.more == nil {
		s.more = make(map[tupleKey]bindFlags)
	}
	s.more[k] = f
}

// remove forgets k and returns its flags, if it was there.
func (s *connSet) remove(k tupleKey) (bindFlags, bool) {
	if s.hasOne && s.one == k {
		s.hasOne = false
		return s.oneF, true
	}
	f, ok := s.more[k]
	if ok {
		delete(s.more, k)
	}
	return f, ok
}

// all yields every tuple and its flags.
func (s *connSet) all(yield func(tupleKey, bindFlags) bool) {
	if s.hasOne && !yield(s.one, s.oneF) {
		return
	}
	for k, f := range s.more {
		if !yield(k, f) {
			return
		}
	}
}

const (
	// bindReuse: the connection set ReuseAddr (or was accepted by a
	// listener that did).
	bindReuse bindFlags = 1 << iota
	// bindExplicit: the port was chosen by the user (a Dial with a port,
	// or an accepted connection on a listener's port), not by Dial's
	// ephemeral selection.
	bindExplicit
)

func (t *portTable) shard(port uint16) *portShard { return &t.shards[port%portShards] }

// users returns the port's users, creating the entry. s.mu is held.
func (s *portShard) users(port uint16) *portUsers {
	if s.m == nil {
		s.m = make(map[uint16]*portUsers)
	}
	pu := s.m[port]
	if pu == nil {
		pu = &portUsers{}
		s.m[port] = pu
	}
	return pu
}

// tidy drops the port's entry when nobody uses it. s.mu is held.
func (s *portShard) tidy(port uint16, pu *portUsers) {
	if len(pu.listeners) == 0 && pu.conns.len() == 0 {
		delete(s.m, port)
	}
}

// isWildcard reports whether a binds to every local address.
func isWildcard(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }

// wildcard is the unspecified address of a's family (IPv4 for an invalid a).
func wildcard(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// overlap reports whether two local addresses can receive the same
// segment: equal, or either is the wildcard of the same family.
func overlap(a, b netip.Addr) bool {
	if a == b {
		return true
	}
	if a.Is4() != b.Is4() {
		return false
	}
	return a.IsUnspecified() || b.IsUnspecified()
}

// scan checks a new user at addr (with ReuseAddr reuse) against the
// port's users. busy: a conflict. tw: connections that conflict unless
// they are in TIME_WAIT, for the caller to check without the lock.
func (pu *portUsers) scan(addr netip.Addr, reuse bool) (busy bool, tw []tupleKey) {
	for _, l := range pu.listeners {
		if overlap(l.addr.Addr(), addr) {
			return true, nil
		}
	}
	for k, f := range pu.conns.all {
		if !overlap(netip.AddrFrom16(k.laddr).Unmap(), addr) {
			continue
		}
		switch {
		case reuse && f&bindReuse != 0:
		case reuse:
			tw = append(tw, k)
		default:
			return true, nil
		}
	}
	return false, tw
}

// bind adds a user of port at addr when the binding rules allow, by
// calling add with the port's users under the shard lock; add's error is
// returned. It fails with EADDRINUSE on a conflict.
func (p *Protocol) bind(port uint16, addr netip.Addr, reuse bool, add func(*portUsers) error) error {
	s := p.ports.shard(port)
	for {
		s.mu.Lock()
		pu := s.users(port)
		busy, tw := pu.scan(addr, reuse)
		if busy {
			s.tidy(port, pu)
			s.mu.Unlock()
			return syscall.EADDRINUSE
		}
		if len(tw) == 0 {
			err := add(pu)
			pu.gen++
			s.tidy(port, pu)
			s.mu.Unlock()
			return err
		}
		gen := pu.gen
		s.mu.Unlock()
		for _, k := range tw {
			if !p.inTimeWait(k) {
				return syscall.EADDRINUSE
			}
		}
		s.mu.Lock()
		if s.m[port] == pu && pu.gen == gen {
			err := add(pu)
			pu.gen++
			s.tidy(port, pu)
			s.mu.Unlock()
			return err
		}
		s.mu.Unlock() // a user came meanwhile: check again
	}
}

// inTimeWait reports whether the tuple's connection is in TIME_WAIT.
func (p *Protocol) inTimeWait(k tupleKey) bool {
	c, _ := p.conns.lookup(k)
	return c != nil && c.state() == StateTimeWait
}

// addConn records a reserved tuple as a user of its port. s.mu is held.
func (pu *portUsers) addConn(k tupleKey, f bindFlags) {
	pu.conns.add(k, f)
	if f&bindExplicit != 0 {
		pu.explicit++
	}
}

// reserveExplicit reserves id for a connection whose local port the user
// chose: EADDRINUSE if binding the port conflicts, EADDRNOTAVAIL if the
// 4-tuple is taken (as connect(2) reports).
func (p *Protocol) reserveExplicit(id connID, reuse bool) (tupleKey, error) {
	k := keyOf(id)
	f := bindExplicit
	if reuse {
		f |= bindReuse
	}
	for try := 0; ; try++ {
		err := p.bind(id.local.Port(), id.local.Addr(), reuse, func(pu *portUsers) error {
			if !p.conns.reserve(k) {
				return syscall.EADDRNOTAVAIL
			}
			pu.addConn(k, f)
			return nil
		})
		if err == syscall.EADDRNOTAVAIL && try == 0 && p.recycleTimeWait(k) {
			continue
		}
		return k, err
	}
}

// reserveAccepted reserves the tuple of a connection a listener accepts,
// on the listener's port: no conflict check (the listener holds the port),
// only the tuple must be free.
func (p *Protocol) reserveAccepted(id connID, reuse bool) (tupleKey, bool) {
	k := keyOf(id)
	f := bindExplicit
	if reuse {
		f |= bindReuse
	}
	s := p.ports.shard(id.local.Port())
	s.mu.Lock()
	defer s.mu.Unlock()
	pu := s.users(id.local.Port())
	ok := p.conns.reserve(k)
	if ok {
		pu.addConn(k, f)
		pu.gen++
	}
	s.tidy(id.local.Port(), pu)
	return k, ok
}

// reserveEphemeral picks a local port for a connection from local to
// remote (RFC 6056 §3.3.4, Algorithm 4) and reserves the tuple. It fails
// with EADDRNOTAVAIL when every port of the range is taken.
func (p *Protocol) reserveEphemeral(local netip.Addr, remote netip.AddrPort, reuse bool) (connID, tupleKey, error) {
	first, last := p.portRange()
	num := uint32(last - first + 1)
	var b [36]byte
	m := tupleBytes(b[:0], connID{local: netip.AddrPortFrom(local, 0), remote: remote})
	// F and G of the RFC: two keyed hashes of the addresses (local port
	// zeroed), told apart by the length of the input.
	offset := uint32(p.sec.port.sum(m))
	idx := p.sec.port.sum(append(m, 1)) % uint64(len(p.ports.eph))
	f := bindFlags(0)
	if reuse {
		f = bindReuse
	}
	for range num {
		port := uint16(uint32(first) + (offset+p.ports.eph[idx].Add(1)-1)%num)
		id := connID{local: netip.AddrPortFrom(local, port), remote: remote}
		k := keyOf(id)
		switch p.tryEphemeral(port, k, f) {
		case portTaken:
			continue
		case tupleTaken:
			if !p.recycleTimeWait(k) || p.tryEphemeral(port, k, f) != portOK {
				continue
			}
		}
		return id, k, nil
	}
	return connID{}, tupleKey{}, syscall.EADDRNOTAVAIL
}

type ephResult uint8

const (
	portOK ephResult = iota
	portTaken
	tupleTaken
)

// tryEphemeral reserves k on port if Dial's ephemeral selection may use
// the port: no listener and no explicit binding.
func (p *Protocol) tryEphemeral(port uint16, k tupleKey, f bindFlags) ephResult {
	s := p.ports.shard(port)
	s.mu.Lock()
	defer s.mu.Unlock()
	if pu := s.m[port]; pu != nil && (len(pu.listeners) > 0 || pu.explicit > 0) {
		return portTaken
	}
	if !p.conns.reserve(k) {
		return tupleTaken
	}
	pu := s.users(port)
	pu.addConn(k, f)
	pu.gen++
	return portOK
}

// recycleTimeWait ends the TIME_WAIT connection holding k early when
// net.inet.tcp.tw_reuse allows and the connection agrees (timestamps make
// it safe: RFC 6191, Linux tcp_tw_reuse), and reports whether the tuple is
// free now.
func (p *Protocol) recycleTimeWait(k tupleKey) bool {
	switch p.tun.TWReuse.Load() {
	case 0:
		return false
	case 2:
		if !netip.AddrFrom16(k.raddr).Unmap().IsLoopback() {
			return false
		}
	}
	c, _ := p.conns.lookup(k)
	if c == nil || !c.reuseTimeWait(p.clk.Now()) {
		return false
	}
	p.remove(c) // done by the connection already; remove is idempotent
	return true
}

// releaseTuple forgets a tuple's port binding (after its demux entry is
// gone).
func (p *Protocol) releaseTuple(k tupleKey) {
	s := p.ports.shard(k.lport)
	s.mu.Lock()
	defer s.mu.Unlock()
	pu := s.m[k.lport]
	if pu == nil {
		return
	}
	if f, ok := pu.conns.remove(k); ok {
		if f&bindExplicit != 0 {
			pu.explicit--
		}
	}
	s.tidy(k.lport, pu)
}

// unreserve drops a reservation that did not become a connection.
func (p *Protocol) unreserve(k tupleKey) {
	if p.conns.remove(k, nil) {
		p.releaseTuple(k)
	}
}

// bindListener binds l's address, picking a free port when it is 0.
func (p *Protocol) bindListener(l *Listener, reuse bool) error {
	add := func(pu *portUsers) error {
		pu.listeners = append(pu.listeners, l)
		p.lmu.Lock()
		defer p.lmu.Unlock()
		old := *p.listeners.Load()
		m := make(map[netip.AddrPort]*Listener, len(old)+1)
		for a, o := range old {
			m[a] = o
		}
		m[l.addr] = l
		p.listeners.Store(&m)
		return nil
	}
	if l.addr.Port() != 0 {
		return p.bind(l.addr.Port(), l.addr.Addr(), reuse, add)
	}
	// Listening on port 0: a port nobody uses at all.
	first, last := p.portRange()
	num := uint32(last - first + 1)
	var b [36]byte
	offset := uint32(p.sec.port.sum(tupleBytes(b[:0], connID{local: l.addr})))
	for i := range num {
		port := uint16(uint32(first) + (offset+i)%num)
		s := p.ports.shard(port)
		s.mu.Lock()
		if s.m[port] == nil {
			l.addr = netip.AddrPortFrom(l.addr.Addr(), port)
			pu := s.users(port)
			add(pu)
			pu.gen++
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
	}
	return syscall.EADDRINUSE
}

// unbindListener removes l from the port and the listener table.
func (p *Protocol) unbindListener(l *Listener) {
	port := l.addr.Port()
	s := p.ports.shard(port)
	s.mu.Lock()
	defer s.mu.Unlock()
	if pu := s.m[port]; pu != nil {
		for i, o := range pu.listeners {
			if o == l {
				pu.listeners = append(pu.listeners[:i], pu.listeners[i+1:]...)
				break
			}
		}
		s.tidy(port, pu)
	}
	p.lmu.Lock()
	defer p.lmu.Unlock()
	old := *p.listeners.Load()
	if old[l.addr] != l {
		return
	}
	m := make(map[netip.AddrPort]*Listener, len(old))
	for a, o := range old {
		if o != l {
			m[a] = o
		}
	}
	p.listeners.Store(&m)
}

// listener finds the listener for a segment to local: bound to the
// address, else to the wildcard, else, for IPv4, to the IPv6 wildcard
// unless that one is V6Only (a dual-stack listener, RFC 3493 §3.7).
func (p *Protocol) listener(local netip.AddrPort) *Listener {
	m := *p.listeners.Load()
	if len(m) == 0 {
		return nil
	}
	if l := m[local]; l != nil {
		return l
	}
	if l := m[netip.AddrPortFrom(wildcard(local.Addr()), local.Port())]; l != nil {
		return l
	}
	if local.Addr().Is4() {
		if l := m[netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())]; l != nil && !l.opts.V6Only {
			return l
		}
	}
	return nil
}

// portRange is the ephemeral range: net.inet.ip.portrange.first and .last
// (shared with UDP, which registers them), or RFC 6335's dynamic range.
func (p *Protocol) portRange() (first, last int) {
	first, last = defaultPortFirst, defaultPortLast
	if p.sys != nil {
		if v, err := p.sys.Get("net.inet.ip.portrange.first"); err == nil {
			if n, err := strconv.Atoi(v); err == nil {
				first = n
			}
		}
		if v, err := p.sys.Get("net.inet.ip.portrange.last"); err == nil {
			if n, err := strconv.Atoi(v); err == nil {
				last = n
			}
		}
	}
	first, last = max(first, 1), min(last, 65535)
	if first > last {
		first, last = last, first
	}
	return first, last
}

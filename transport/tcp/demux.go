package tcp

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
)

// The connection table: every connection by its 4-tuple, from SYN-SENT or
// the end of a handshake until it is removed (TIME_WAIT included). It is
// split into demuxShards shards by a keyed hash of the tuple, each a map
// under its own RWMutex, so receive paths on different cores look up
// different shards and a lookup never waits behind an insert elsewhere.
// An entry costs one map slot: a 36-byte key and a pointer.
//
// A tuple can be reserved (nil value) while its connection is being made:
// Dial reserves before the SYN leaves, the listen side before it builds
// the connection of a finished handshake. A segment that arrives for a
// reserved tuple is parked in the shard and delivered when the connection
// is published, so nothing races past a connection being born.

const (
	demuxShards = 256
	// maxParked bounds the segments parked per reserved tuple.
	maxParked = 8
)

// tupleKey is a connID packed for hashing: addresses as 16 bytes (IPv4
// mapped), ports. Zones are not part of it.
type tupleKey struct {
	laddr, raddr [16]byte
	lport, rport uint16
}

func keyOf(id connID) tupleKey {
	return tupleKey{
		laddr: id.local.Addr().As16(), raddr: id.remote.Addr().As16(),
		lport: id.local.Port(), rport: id.remote.Port(),
	}
}

// id is the connID of the key (IPv4 addresses unmapped).
func (k tupleKey) id() connID {
	a := func(b [16]byte, port uint16) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(b).Unmap(), port)
	}
	return connID{local: a(k.laddr, k.lport), remote: a(k.raddr, k.rport)}
}

type demux struct {
	seed   uint64
	n      atomic.Int64
	shards [demuxShards]demuxShard
}

type demuxShard struct {
	mu sync.RWMutex
	m  map[tupleKey]*Conn
	// parked holds segments for reserved tuples (allocated on first use).
	parked map[tupleKey][]*segment
	_      [24]byte // pad to 64 bytes: less false sharing between shards
}

func (d *demux) init(seed uint64) {
	d.seed = seed
	for i := range d.shards {
		d.shards[i].m = make(map[tupleKey]*Conn)
	}
}

// shard picks the key's shard by a keyed mix of its words.
func (d *demux) shard(k *tupleKey) *demuxShard {
	x := d.seed
	x ^= binary.LittleEndian.Uint64(k.laddr[8:])
	x ^= bits.RotateLeft64(binary.LittleEndian.Uint64(k.raddr[8:]), 29)
	x ^= binary.LittleEndian.Uint64(k.laddr[:8]) * 0x9e3779b97f4a7c15
	x ^= bits.RotateLeft64(binary.LittleEndian.Uint64(k.raddr[:8]), 17)
	x ^= uint64(k.lport)<<48 | uint64(k.rport)<<32
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return &d.shards[x>>(64-8)]
}

// lookup returns the connection of the tuple. reserved is true when the
// tuple is held for a connection not yet published (c is nil then).
func (d *demux) lookup(k tupleKey) (c *Conn, reserved bool) {
	s := d.shard(&k)
	s.mu.RLock()
	c, ok := s.m[k]
	s.mu.RUnlock()
	return c, ok && c == nil
}

// reserve holds the tuple for a connection being made. It fails when the
// tuple is in use (or reserved).
func (d *demux) reserve(k tupleKey) bool {
	s := d.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok {
		return false
	}
	s.m[k] = nil
	d.n.Add(1)
	return true
}

// publish makes c the connection of a reserved tuple and returns the
// segments parked for it meanwhile, in arrival order, for the caller to
// deliver.
func (d *demux) publish(k tupleKey, c *Conn) []*segment {
	s := d.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = c
	segs := s.parked[k]
	if segs != nil {
		delete(s.parked, k)
	}
	return segs
}

// park keeps seg for a reserved tuple until publish. It reports false when
// the tuple is no longer reserved (the caller looks up again) or the
// tuple's parking is full (seg is released and counted by the caller);
// full is true then.
func (d *demux) park(k tupleKey, seg *segment) (parked, full bool) {
	s := d.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.m[k]; !ok || c != nil {
		return false, false
	}
	if len(s.parked[k]) >= maxParked {
		return false, true
	}
	if s.parked == nil {
		s.parked = make(map[tupleKey][]*segment)
	}
	// It is delivered later, from another goroutine and outside the
	// batch it came in: the batch must not be consulted then.
	seg.batch = nil
	s.parked[k] = append(s.parked[k], seg)
	return true, false
}

// remove deletes the tuple if it maps to c (nil: a reservation), releasing
// any parked segments, and reports whether it did.
func (d *demux) remove(k tupleKey, c *Conn) bool {
	s := d.shard(&k)
	s.mu.Lock()
	cur, ok := s.m[k]
	if !ok || cur != c {
		s.mu.Unlock()
		return false
	}
	delete(s.m, k)
	segs := s.parked[k]
	if segs != nil {
		delete(s.parked, k)
	}
	s.mu.Unlock()
	d.n.Add(-1)
	for _, seg := range segs {
		seg.release()
	}
	return true
}

// len is the number of tuples in use or reserved.
func (d *demux) len() int { return int(d.n.Load()) }

// each calls f for every published connection. It holds one shard's read
// lock at a time, never while calling f.
func (d *demux) each(f func(*Conn)) {
	var buf []*Conn
	for i := range d.shards {
		s := &d.shards[i]
		buf = buf[:0]
		s.mu.RLock()
		for _, c := range s.m {
			if c != nil {
				buf = append(buf, c)
			}
		}
		s.mu.RUnlock()
		for _, c := range buf {
			f(c)
		}
	}
}

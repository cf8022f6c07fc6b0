package neigh

import (
	"errors"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/internal/stats"
	"ustack/wire"
)

// Resolver sends solicitations for a Cache (ARP requests, NDP neighbour
// solicitations).
type Resolver interface {
	// Solicit sends a resolution request for target: broadcast/multicast
	// when dst is the zero MAC, unicast to dst for probes (NUD). Called
	// without the cache's lock held.
	Solicit(target netip.Addr, dst wire.MAC)
}

// Sender writes packets whose next hop a Cache has resolved.
type Sender interface {
	// SendResolved frames and writes pkt (front = network header of type
	// et) to mac. It takes ownership of pkt.
	SendResolved(mac wire.MAC, et wire.EtherType, pkt *buf.Packet)
	// ResolutionFailed is called for each packet that waited on a
	// resolution that failed; it takes ownership of pkt (the caller sends
	// ICMP host unreachable and releases).
	ResolutionFailed(target netip.Addr, et wire.EtherType, pkt *buf.Packet)
}

// Errors returned by AddStatic.
var (
	ErrInvalidAddr = errors.New("neigh: invalid address")
	ErrInvalidMAC  = errors.New("neigh: invalid link address")
	ErrClosed      = errors.New("neigh: cache closed")
)

// Entry is a snapshot of one cache entry, for listing.
type Entry struct {
	Addr    netip.Addr
	MAC     wire.MAC // zero while Incomplete or Failed
	State   State
	Updated time.Time // last state change, refresh or confirmation
	Queued  int       // packets waiting for resolution
	// IsRouter is the router flag learned from NDP (always false for ARP).
	IsRouter bool
}

// UpdateFlags qualify what Update learned.
type UpdateFlags struct {
	// Solicited: the information answers our solicitation (NA S flag, ARP
	// reply to us): it confirms reachability.
	Solicited bool
	// Override: the information may replace a different cached address
	// (NA O flag; ARP always overrides).
	Override bool
	// IsRouter: the neighbour is a router (NA R flag).
	IsRouter bool
	// Create: make a Stale entry if there is none (an ARP packet addressed
	// to us, RFC 826 "merge"; an NDP solicitation with a source link-layer
	// address option, RFC 4861 §7.2.3).
	Create bool
}

type queued struct {
	et  wire.EtherType
	pkt *buf.Packet
}

// entry is one neighbour. All fields but addr, confirmed and word are
// guarded by the cache's mu (written under the write lock, read under
// either); addr never changes.
type entry struct {
	addr  netip.Addr
	mac   wire.MAC
	state State
	// word is state and mac packed (pack) for Output's lock-free path;
	// written with them, under the write lock (publish). A removed entry
	// reads None.
	word     atomic.Uint64
	isRouter bool
	updated  time.Time
	// confirmed is the last reachability confirmation, in nanoseconds since
	// the cache's epoch; atomic so that Confirm on a Reachable entry needs
	// only the read lock.
	confirmed atomic.Int64
	// probes counts the solicitations sent in the current Incomplete or
	// Probe run; lastSolicit enforces the flood limit across runs.
	probes      int
	lastSolicit time.Time
	queue       []queued
	// timer is the entry's one timer; deadline is when its pending firing
	// is due, zero when none is meant to be pending.
	timer    clock.Timer
	deadline time.Time
}

// Cache is the neighbour cache of one interface. It is safe for concurrent
// use. Output to an entry that needs no state change (the hot path of
// every packet sent) takes no lock: it finds the entry in a small array of
// recently used entries (hot) and reads its state and address in one
// atomic load, so senders on different cores do not meet on a lock.
// Other lookups take the read lock.
type Cache struct {
	clk   clock.Clock
	r     Resolver
	s     Sender
	epoch time.Time

	// hot holds recently used entries by hash of their address; a slot
	// may name a removed entry (its word reads None) or be overwritten
	// by another address at any time.
	hot [hotSlots]atomic.Pointer[entry]

	mu        sync.RWMutex
	cfg       Config
	entries   map[netip.Addr]*entry
	dynamic   int // entries that are not Permanent
	reachable time.Duration
	drawnAt   time.Time // when reachable was drawn
	closed    bool

	st counters
}

type counters struct {
	solicitsSent, probesSent  stats.Counter
	resolved, failed          stats.Counter
	failedPackets, queueDrops stats.Counter
	evicted, tableFull, gc    stats.Counter
	closedDrops, badUpdates   stats.Counter
	tableFullUpdates          stats.Counter
}

// New returns an empty cache that solicits through r and sends through s.
// Zero fields of cfg take their defaults.
func New(clk clock.Clock, cfg Config, r Resolver, s Sender) *Cache {
	cfg = cfg.withDefaults()
	now := clk.Now()
	return &Cache{
		clk:       clk,
		r:         r,
		s:         s,
		epoch:     now,
		cfg:       cfg,
		entries:   make(map[netip.Addr]*entry),
		reachable: randomReachable(cfg.BaseReachableTime, cfg.Rand),
		drawnAt:   now,
	}
}

// key normalizes an address: the cache is per interface, so zones add
// nothing, and IPv4-mapped IPv6 addresses are IPv4.
func key(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// Clock returns the clock the cache runs on (for protocols that time
// things per interface, such as ARP announcements).
func (c *Cache) Clock() clock.Clock { return c.clk }

// Output sends pkt to target: if the entry is usable (Reachable, Stale,
// Delay, Probe, Permanent) it calls SendResolved at once, and a Stale entry
// moves to Delay (RFC 4861 §7.3.3); otherwise it creates or uses an
// Incomplete entry, queues pkt (dropping the oldest queued packet, counted,
// when the queue is full) and solicits. It takes ownership of pkt. It never
// calls the Sender or the Resolver with the lock held.
func (c *Cache) Output(target netip.Addr, et wire.EtherType, pkt *buf.Packet) {
	k := key(target)
	slot := &c.hot[hotIndex(k)]
	if e := slot.Load(); e != nil && e.addr == k {
		if st, mac := unpack(e.word.Load()); sendsAsIs(st) {
			c.s.SendResolved(mac, et, pkt)
			return
		}
	}
	c.mu.RLock()
	if e := c.entries[k]; e != nil && !c.closed && sendsAsIs(e.state) {
		mac := e.mac
		c.mu.RUnlock()
		slot.Store(e)
		c.s.SendResolved(mac, et, pkt)
		return
	}
	c.mu.RUnlock()
	c.outputSlow(k, et, pkt)
}

// sendsAsIs reports whether Output sends to an entry in state st without
// changing it: every usable state but Stale, whose first use starts Delay.
func sendsAsIs(st State) bool {
	switch st {
	case Reachable, Delay, Probe, Permanent:
		return true
	}
	return false
}

// hotSlots is the size of Cache.hot: a power of two, enough for the
// next hops a host sends to at once (a router, a few on-link peers).
const hotSlots = 16

// hotIndex is the slot of address k in Cache.hot.
func hotIndex(k netip.Addr) int {
	var x uint64
	if k.Is4() {
		a := k.As4()
		x = uint64(a[0])<<24 | uint64(a[1])<<16 | uint64(a[2])<<8 | uint64(a[3])
	} else {
		a := k.As16()
		for _, b := range a[8:] {
			x = x<<8 | uint64(b)
		}
	}
	return int(x * 0x9e3779b97f4a7c15 >> 60) // Fibonacci hashing: top 4 bits
}

// pack and unpack put an entry's state and link address in one word.
func pack(st State, mac wire.MAC) uint64 {
	w := uint64(st)
	for _, b := range mac {
		w = w<<8 | uint64(b)
	}
	return w
}

func unpack(w uint64) (State, wire.MAC) {
	var mac wire.MAC
	for i := len(mac) - 1; i >= 0; i-- {
		mac[i] = byte(w)
		w >>= 8
	}
	return State(w), mac
}

// publish makes e's state and mac visible to Output's lock-free path.
// Called with the write lock held, after every change of either.
func (e *entry) publish() { e.word.Store(pack(e.state, e.mac)) }

func (c *Cache) outputSlow(k netip.Addr, et wire.EtherType, pkt *buf.Packet) {
	c.mu.Lock()
	if c.closed || !k.IsValid() {
		c.mu.Unlock()
		c.st.closedDrops.Inc()
		pkt.Release()
		return
	}
	now := c.clk.Now()
	e := c.entries[k]
	var a action
	switch {
	case e == nil:
		if e = c.create(k, now); e == nil {
			c.mu.Unlock()
			c.st.tableFull.Inc()
			pkt.Release()
			return
		}
		c.enqueue(e, et, pkt)
		c.startResolve(e, now, &a)
	case e.state == Stale:
		// RFC 4861 §7.3.3: the first packet to a Stale entry starts
		// the delay before probing.
		e.state = Delay
		e.publish()
		e.updated = now
		c.arm(e, now, c.cfg.DelayFirstProbe)
		mac := e.mac
		c.mu.Unlock()
		c.s.SendResolved(mac, et, pkt)
		return
	case e.state.Usable():
		mac := e.mac
		c.mu.Unlock()
		c.s.SendResolved(mac, et, pkt)
		return
	case e.state == Incomplete:
		c.enqueue(e, et, pkt)
	default: // Failed: try again.
		c.enqueue(e, et, pkt)
		c.startResolve(e, now, &a)
	}
	c.mu.Unlock()
	c.run(&a)
}

// enqueue adds pkt to e's queue, dropping the oldest packet when the queue
// is full (RFC 1122 §2.3.2.2: keep at least the latest packet).
func (c *Cache) enqueue(e *entry, et wire.EtherType, pkt *buf.Packet) {
	if len(e.queue) >= c.cfg.MaxQueue {
		e.queue[0].pkt.Release()
		n := copy(e.queue, e.queue[1:])
		e.queue[n] = queued{}
		e.queue = e.queue[:n]
		c.st.queueDrops.Inc()
	}
	e.queue = append(e.queue, queued{et, pkt})
}

// startResolve puts e in Incomplete and sends the first solicitation, or
// waits for the flood limit (RFC 1122 §2.3.2.1: at most one request per
// RetransTimer per target) if one went out recently.
func (c *Cache) startResolve(e *entry, now time.Time, a *action) {
	e.state = Incomplete
	e.mac = wire.MAC{}
	e.publish()
	e.updated = now
	e.probes = 0
	if !e.lastSolicit.IsZero() {
		if wait := e.lastSolicit.Add(c.cfg.RetransTimer).Sub(now); wait > 0 {
			c.arm(e, now, wait)
			return
		}
	}
	c.solicit(e, now, wire.MAC{}, a)
}

// solicit records one solicitation of e (multicast when dst is zero) to be
// sent by a once the lock is released, and arms the retransmit timer.
func (c *Cache) solicit(e *entry, now time.Time, dst wire.MAC, a *action) {
	e.probes++
	e.lastSolicit = now
	c.arm(e, now, c.cfg.RetransTimer)
	a.solicit, a.target, a.dst = true, e.addr, dst
	if dst.IsZero() {
		c.st.solicitsSent.Inc()
	} else {
		c.st.probesSent.Inc()
	}
}

// create adds an empty dynamic entry, evicting one if the table is full;
// it returns nil when nothing can be evicted.
func (c *Cache) create(k netip.Addr, now time.Time) *entry {
	if c.dynamic >= c.cfg.MaxEntries && !c.evictOne() {
		return nil
	}
	e := &entry{addr: k, updated: now}
	c.entries[k] = e
	c.dynamic++
	return e
}

// evictOne removes the least recently updated Stale or Failed entry.
func (c *Cache) evictOne() bool {
	var victim *entry
	for _, e := range c.entries {
		if e.state != Stale && e.state != Failed {
			continue
		}
		if victim == nil || e.updated.Before(victim.updated) {
			victim = e
		}
	}
	if victim == nil {
		return false
	}
	c.remove(victim)
	c.st.evicted.Inc()
	return true
}

// remove deletes e, stopping its timer and releasing its queue.
func (c *Cache) remove(e *entry) {
	delete(c.entries, e.addr)
	e.state, e.mac = None, wire.MAC{}
	e.publish()
	c.hot[hotIndex(e.addr)].CompareAndSwap(e, nil)
	if e.state != Permanent {
		c.dynamic--
	}
	c.disarm(e)
	releaseQueue(e.queue)
	e.queue = nil
}

func releaseQueue(q []queued) {
	for i := range q {
		q[i].pkt.Release()
		q[i] = queued{}
	}
}

// Lookup returns the link address of target if its entry is usable, with
// no side effects (no state change, no solicitation). The State is the
// entry's (None when there is none) whether or not it is usable.
func (c *Cache) Lookup(target netip.Addr) (wire.MAC, State, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.entries[key(target)]
	if e == nil {
		return wire.MAC{}, None, false
	}
	if !e.state.Usable() {
		return wire.MAC{}, e.state, false
	}
	return e.mac, e.state, true
}

// Update records that target is at mac, learned from a reply,
// advertisement or request, following the table of RFC 4861 §7.2.5 (ARP
// replies to us are Solicited+Override, RFC 826 merges are Override). An
// entry that was waiting for resolution sends its queued packets via
// SendResolved. Zero and multicast link addresses are ignored.
func (c *Cache) Update(target netip.Addr, mac wire.MAC, f UpdateFlags) {
	if mac.IsZero() || mac.IsMulticast() {
		c.st.badUpdates.Inc()
		return
	}
	k := key(target)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := c.clk.Now()
	e := c.entries[k]
	var a action
	switch {
	case e == nil:
		// RFC 4861 §7.2.5: no entry, discard; §7.2.3 and RFC 826:
		// create a Stale one when asked to.
		if !f.Create {
			break
		}
		if e = c.create(k, now); e == nil {
			c.st.tableFullUpdates.Inc()
			break
		}
		e.mac, e.isRouter = mac, f.IsRouter
		c.toStale(e, now)
	case e.state == Permanent:
		// Static entries are the administrator's.
	case e.state == Incomplete || e.state == Failed:
		e.mac, e.isRouter = mac, f.IsRouter
		if f.Solicited {
			c.toReachable(e, now)
		} else {
			c.toStale(e, now)
		}
		c.st.resolved.Inc()
		a.mac, a.send, e.queue = mac, e.queue, nil
	default: // Reachable, Stale, Delay, Probe
		changed := mac != e.mac
		if changed && !f.Override {
			// Rule I: keep the address; a Reachable entry
			// becomes Stale, others ignore the news.
			if e.state == Reachable {
				c.toStale(e, now)
			}
			break
		}
		// Rule II.
		e.mac, e.isRouter = mac, f.IsRouter
		switch {
		case f.Solicited:
			c.toReachable(e, now)
		case changed:
			c.toStale(e, now)
		default:
			// Same address, no confirmation: state unchanged,
			// but the information is fresh.
			e.updated = now
			if e.state == Stale {
				c.arm(e, now, c.cfg.GCStaleTime)
			}
		}
	}
	c.mu.Unlock()
	c.run(&a)
}

// Confirm records upper-layer confirmation that target is reachable (RFC
// 4861 §7.3.1: forward progress, such as new acknowledgements): a usable
// dynamic entry becomes Reachable.
func (c *Cache) Confirm(target netip.Addr) {
	k := key(target)
	c.mu.RLock()
	e := c.entries[k]
	if e == nil || c.closed {
		c.mu.RUnlock()
		return
	}
	if e.state == Reachable {
		// The timer re-arms itself from this reading when it fires.
		e.confirmed.Store(int64(c.clk.Now().Sub(c.epoch)))
		c.mu.RUnlock()
		return
	}
	c.mu.RUnlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	if e = c.entries[k]; e == nil || c.closed {
		return
	}
	switch e.state {
	case Reachable, Stale, Delay, Probe:
		c.toReachable(e, c.clk.Now())
	}
}

func (c *Cache) toReachable(e *entry, now time.Time) {
	e.state = Reachable
	e.publish()
	e.updated = now
	e.probes = 0
	e.confirmed.Store(int64(now.Sub(c.epoch)))
	c.arm(e, now, c.reachableTime(now))
}

func (c *Cache) toStale(e *entry, now time.Time) {
	e.state = Stale
	e.publish()
	e.updated = now
	e.probes = 0
	c.arm(e, now, c.cfg.GCStaleTime)
}

// reachableTime returns ReachableTime, drawing it again every few hours
// (RFC 4861 §6.3.4). Called with the write lock held.
func (c *Cache) reachableTime(now time.Time) time.Duration {
	if now.Sub(c.drawnAt) >= reachableRecompute {
		c.reachable = randomReachable(c.cfg.BaseReachableTime, c.cfg.Rand)
		c.drawnAt = now
	}
	return c.reachable
}

// ReachableTime is the current randomized ReachableTime.
func (c *Cache) ReachableTime() time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.reachable
}

// SetBaseReachableTime changes BaseReachableTime and draws ReachableTime
// again (RFC 4861 §6.3.4, for Router Advertisements). d <= 0 is ignored.
func (c *Cache) SetBaseReachableTime(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.BaseReachableTime = d
	c.reachable = randomReachable(d, c.cfg.Rand)
	c.drawnAt = c.clk.Now()
}

// SetRetransTimer changes RetransTimer (RFC 4861 §6.3.4). d <= 0 is
// ignored.
func (c *Cache) SetRetransTimer(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.RetransTimer = d
}

// AddStatic adds or replaces a Permanent entry. Packets waiting for target
// are sent to mac. Static entries don't count against MaxEntries.
func (c *Cache) AddStatic(target netip.Addr, mac wire.MAC) error {
	if !target.IsValid() || target.IsUnspecified() {
		return ErrInvalidAddr
	}
	if mac.IsZero() {
		return ErrInvalidMAC
	}
	k := key(target)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	now := c.clk.Now()
	e := c.entries[k]
	var a action
	if e == nil {
		e = &entry{addr: k}
		c.entries[k] = e
	} else if e.state != Permanent {
		c.dynamic--
		c.disarm(e)
		a.send, e.queue = e.queue, nil
	}
	e.mac, e.state, e.updated, e.probes, e.isRouter = mac, Permanent, now, 0, false
	e.publish()
	a.mac = mac
	c.mu.Unlock()
	c.run(&a)
	return nil
}

// Remove deletes target's entry, static or not, releasing its queued
// packets (ResolutionFailed is not called). It reports whether there was
// one.
func (c *Cache) Remove(target netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key(target)]
	if e == nil {
		return false
	}
	c.remove(e)
	return true
}

// Flush drops every non-permanent entry, releasing queued packets
// (ResolutionFailed is not called).
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.state != Permanent {
			c.remove(e)
		}
	}
}

// Close stops every timer and releases every entry and queued packet.
// Afterwards Output releases its packets (counted) and Update does
// nothing.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for _, e := range c.entries {
		c.remove(e)
	}
}

// Entries returns a snapshot of the entries, sorted by address.
func (c *Cache) Entries() []Entry {
	c.mu.RLock()
	out := make([]Entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, Entry{Addr: e.addr, MAC: e.mac, State: e.state,
			Updated: e.updated, Queued: len(e.queue), IsRouter: e.isRouter})
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// Len is the number of entries.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// VisitStats reports the cache's counters: solicits_sent (broadcast or
// multicast), probes_sent (unicast), resolved, failed (resolutions or
// probes that gave up), failed_packets (handed to ResolutionFailed),
// queue_drops, evicted, table_full (packets dropped because no entry could
// be made), table_full_updates (entries not created by Update for the same
// reason), gc, closed_drops, bad_updates, and the gauges entries and queued.
func (c *Cache) VisitStats(v stats.Visitor) {
	v("solicits_sent", c.st.solicitsSent.Load())
	v("probes_sent", c.st.probesSent.Load())
	v("resolved", c.st.resolved.Load())
	v("failed", c.st.failed.Load())
	v("failed_packets", c.st.failedPackets.Load())
	v("queue_drops", c.st.queueDrops.Load())
	v("evicted", c.st.evicted.Load())
	v("table_full", c.st.tableFull.Load())
	v("table_full_updates", c.st.tableFullUpdates.Load())
	v("gc", c.st.gc.Load())
	v("closed_drops", c.st.closedDrops.Load())
	v("bad_updates", c.st.badUpdates.Load())
	c.mu.RLock()
	n, q := len(c.entries), 0
	for _, e := range c.entries {
		q += len(e.queue)
	}
	c.mu.RUnlock()
	v("entries", uint64(n))
	v("queued", uint64(q))
}

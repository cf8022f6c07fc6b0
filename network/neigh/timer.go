package neigh

import (
	"net/netip"
	"time"

	"ustack/wire"
)

// Timers. Each entry has at most one clock timer, created on first use and
// re-armed with Reset. e.deadline says when the pending firing is due; a
// firing that finds the deadline zero (disarmed) or still in the future
// (re-armed while the firing waited for the lock: the re-armed firing is
// still to come) does nothing. What a firing does depends on the state:
//
//	Incomplete: solicit again, or after MaxMulticastSolicit give up: Failed,
//	            queued packets to ResolutionFailed
//	Reachable:  Stale once ReachableTime has passed since the last
//	            confirmation (Confirm only stamps the time)
//	Stale:      removed after GCStaleTime without use or refresh
//	Delay:      Probe, first unicast probe
//	Probe:      probe again, or after MaxUnicastSolicit: Failed
//	Failed:     removed
//
// Permanent entries have no timer.

// arm (re)schedules e's timer to fire after d. Called with the write lock.
func (c *Cache) arm(e *entry, now time.Time, d time.Duration) {
	e.deadline = now.Add(d)
	if e.timer == nil {
		e.timer = c.clk.AfterFunc(d, func() { c.fire(e) })
		return
	}
	e.timer.Reset(d)
}

// disarm cancels e's timer. Called with the write lock.
func (c *Cache) disarm(e *entry) {
	e.deadline = time.Time{}
	if e.timer != nil {
		e.timer.Stop()
	}
}

// action is what a locked section decided to do with the lock released.
type action struct {
	solicit bool
	target  netip.Addr
	dst     wire.MAC
	mac     wire.MAC
	send    []queued // to mac via SendResolved
	failed  []queued // to ResolutionFailed(target)
}

func (c *Cache) run(a *action) {
	if a.solicit {
		c.r.Solicit(a.target, a.dst)
	}
	for i := range a.send {
		c.s.SendResolved(a.mac, a.send[i].et, a.send[i].pkt)
	}
	for i := range a.failed {
		c.s.ResolutionFailed(a.target, a.failed[i].et, a.failed[i].pkt)
	}
}

func (c *Cache) fire(e *entry) {
	c.mu.Lock()
	if c.closed || c.entries[e.addr] != e || e.deadline.IsZero() {
		c.mu.Unlock()
		return
	}
	now := c.clk.Now()
	if now.Before(e.deadline) {
		c.mu.Unlock()
		return
	}
	e.deadline = time.Time{}
	var a action
	switch e.state {
	case Incomplete:
		if e.probes < c.cfg.MaxMulticastSolicit {
			c.solicit(e, now, wire.MAC{}, &a)
			break
		}
		c.fail(e, now, &a)
	case Reachable:
		confirmed := c.epoch.Add(time.Duration(e.confirmed.Load()))
		if left := confirmed.Add(c.reachableTime(now)).Sub(now); left > 0 {
			c.arm(e, now, left)
			break
		}
		// RFC 4861 §7.3.3: ReachableTime since the last confirmation.
		c.toStale(e, now)
	case Stale:
		if left := e.updated.Add(c.cfg.GCStaleTime).Sub(now); left > 0 {
			c.arm(e, now, left)
			break
		}
		c.remove(e)
		c.st.gc.Inc()
	case Delay:
		// RFC 4861 §7.3.3: no confirmation within DELAY_FIRST_PROBE_TIME:
		// probe by unicast.
		e.state = Probe
		e.publish()
		e.updated = now
		e.probes = 0
		c.solicit(e, now, e.mac, &a)
	case Probe:
		if e.probes < c.cfg.MaxUnicastSolicit {
			c.solicit(e, now, e.mac, &a)
			break
		}
		c.fail(e, now, &a)
	case Failed:
		c.remove(e)
		c.st.gc.Inc()
	}
	c.mu.Unlock()
	c.run(&a)
}

// fail gives up on e: it becomes Failed (kept GCStaleTime for listing and
// for the flood limit) and its queued packets go to ResolutionFailed.
func (c *Cache) fail(e *entry, now time.Time, a *action) {
	e.state = Failed
	e.mac = wire.MAC{}
	e.publish()
	e.updated = now
	e.probes = 0
	c.st.failed.Inc()
	c.st.failedPackets.Add(uint64(len(e.queue)))
	a.target, a.failed, e.queue = e.addr, e.queue, nil
	c.arm(e, now, c.cfg.GCStaleTime)
}

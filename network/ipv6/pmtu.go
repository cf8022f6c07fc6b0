package ipv6

import (
	"net/netip"
	"sync"
	"time"

	"ustack/wire"
)

// pmtuCache holds path MTUs learned from packet too big messages, per
// destination (RFC 8201 §4, §5.2). An entry only ever lowers the MTU
// below the route's, never below the IPv6 minimum of 1280, and expires
// after net.inet6.ip6.pmtu_expire so that a larger path MTU is found
// again (RFC 8201 §4).
type pmtuCache struct {
	mu sync.RWMutex
	m  map[netip.Addr]pmtuEntry
}

type pmtuEntry struct {
	mtu     int
	expires time.Time
}

// maxPMTUEntries bounds the cache: forged packet too big messages for
// many destinations must not grow it without limit.
const maxPMTUEntries = 4096

// lookup returns the path MTU learned for dst, if one holds at now.
func (c *pmtuCache) lookup(dst netip.Addr, now time.Time) (int, bool) {
	c.mu.RLock()
	e, ok := c.m[dst]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return 0, false
	}
	return e.mtu, true
}

// update records a packet too big reporting mtu for dst and returns the
// path MTU that now holds. It never raises a held estimate (RFC 8201 §4:
// a node MUST NOT increase its estimate in response to packet too big) and
// never goes below 1280 (RFC 8201 §4).
func (c *pmtuCache) update(dst netip.Addr, mtu int, now time.Time, ttl time.Duration) int {
	mtu = max(mtu, wire.IPv6MinMTU)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[dst]; ok && now.Before(e.expires) && e.mtu <= mtu {
		return e.mtu
	}
	if c.m == nil {
		c.m = make(map[netip.Addr]pmtuEntry)
	}
	if _, ok := c.m[dst]; !ok && len(c.m) >= maxPMTUEntries {
		c.evictLocked(now)
	}
	c.m[dst] = pmtuEntry{mtu: mtu, expires: now.Add(ttl)}
	return mtu
}

// evictLocked makes room for one entry at bounded cost: it removes the
// expired entries among a few it looks at (map order is random), or
// failing that the first it looked at.
func (c *pmtuCache) evictLocked(now time.Time) {
	var victim netip.Addr
	seen, freed := 0, false
	for a, e := range c.m {
		if !victim.IsValid() {
			victim = a
		}
		if !now.Before(e.expires) {
			delete(c.m, a)
			freed = true
		}
		if seen++; seen == 64 {
			break
		}
	}
	if !freed {
		delete(c.m, victim)
	}
}

func (c *pmtuCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// PathMTU returns the path MTU learned for dst from packet too big
// messages, if one holds (for listings and tests; Route applies it).
func (p *Protocol) PathMTU(dst netip.Addr) (int, bool) {
	return p.pmtu.lookup(dst.WithZone(""), p.clk.Now())
}

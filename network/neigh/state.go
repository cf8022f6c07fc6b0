// Package neigh is the neighbour cache of the network layer: for one
// interface it maps on-link IP addresses (IPv4 and IPv6) to link addresses,
// runs Neighbor Unreachability Detection (RFC 4861 §7.3, used for ARP too,
// as Linux does), limits solicitations (RFC 1122 §2.3.2.1), bounds the table
// (RFC 1122 §2.3.2.2 asks for a bounded, aged cache) and holds a short queue
// of packets per address while resolution is under way (RFC 1122
// §2.3.2.2).
//
// It owns the entries, their timers and the queued packets. It does not know
// any wire format: a Resolver (ARP, later NDP) sends solicitations and
// feeds replies back through Update, and a Sender frames and writes packets
// once an address is known. It does not map multicast or broadcast next
// hops (the interface does that without asking the cache), and it keeps no
// goroutine: timers run on the injected clock.
package neigh

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// State is the reachability state of an entry (RFC 4861 §7.3.2), plus
// Failed (resolution gave up, kept for a while to be listed) and Permanent
// (a static entry that never expires).
type State uint8

const (
	// None: there is no entry (the zero State).
	None State = iota
	// Incomplete: resolution is under way; packets wait in the queue.
	Incomplete
	// Reachable: the neighbour was known to be reachable within the last
	// ReachableTime.
	Reachable
	// Stale: the link address is unconfirmed; it is used, and the first use
	// starts verification (Delay).
	Stale
	// Delay: a packet was sent to a Stale entry; upper layers have
	// DelayFirstProbe to confirm reachability before probes go out.
	Delay
	// Probe: unicast solicitations are being sent to verify reachability.
	Probe
	// Failed: resolution or probing got no answer.
	Failed
	// Permanent: a static entry.
	Permanent
)

var stateNames = [...]string{"NONE", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "PERMANENT"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE(%d)", uint8(s))
}

// Usable reports whether packets can be sent to an entry in state s without
// waiting for resolution.
func (s State) Usable() bool {
	switch s {
	case Reachable, Stale, Delay, Probe, Permanent:
		return true
	}
	return false
}

// Config tunes a Cache. A zero field takes its default.
type Config struct {
	// BaseReachableTime is the base of ReachableTime, the time an entry
	// stays Reachable after a confirmation (default 30s, RFC 4861 §10
	// REACHABLE_TIME). ReachableTime is drawn uniformly from
	// [0.5, 1.5) × BaseReachableTime (RFC 4861 §6.3.2).
	BaseReachableTime time.Duration
	// RetransTimer is the time between solicitations for one target
	// (default 1s, RFC 4861 RETRANS_TIMER; RFC 1122 §2.3.2.1 asks for at
	// most one request per second per destination).
	RetransTimer time.Duration
	// DelayFirstProbe is how long an entry stays in Delay before probing
	// (default 5s, RFC 4861 DELAY_FIRST_PROBE_TIME).
	DelayFirstProbe time.Duration
	// GCStaleTime is how long an unused Stale entry, or a Failed one, is
	// kept (default 60s).
	GCStaleTime time.Duration
	// MaxMulticastSolicit is the number of broadcast/multicast
	// solicitations sent to resolve an address before it fails (default 3,
	// RFC 4861 MAX_MULTICAST_SOLICIT).
	MaxMulticastSolicit int
	// MaxUnicastSolicit is the number of unicast probes sent from Probe
	// before the entry fails (default 3, RFC 4861 MAX_UNICAST_SOLICIT).
	MaxUnicastSolicit int
	// MaxEntries bounds the dynamic (non-permanent) entries (default 512).
	MaxEntries int
	// MaxQueue bounds the packets queued per entry during resolution
	// (default 16).
	MaxQueue int
	// Rand draws ReachableTime. nil: a generator seeded at random. The
	// cache uses it only under its lock; don't share it with anything else.
	Rand *rand.Rand
}

// Defaults.
const (
	DefaultBaseReachableTime   = 30 * time.Second
	DefaultRetransTimer        = time.Second
	DefaultDelayFirstProbe     = 5 * time.Second
	DefaultGCStaleTime         = 60 * time.Second
	DefaultMaxMulticastSolicit = 3
	DefaultMaxUnicastSolicit   = 3
	DefaultMaxEntries          = 512
	DefaultMaxQueue            = 16

	// reachableRecompute is how often ReachableTime is drawn again
	// (RFC 4861 §6.3.4: "at least every few hours").
	reachableRecompute = 2 * time.Hour
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		BaseReachableTime:   DefaultBaseReachableTime,
		RetransTimer:        DefaultRetransTimer,
		DelayFirstProbe:     DefaultDelayFirstProbe,
		GCStaleTime:         DefaultGCStaleTime,
		MaxMulticastSolicit: DefaultMaxMulticastSolicit,
		MaxUnicastSolicit:   DefaultMaxUnicastSolicit,
		MaxEntries:          DefaultMaxEntries,
		MaxQueue:            DefaultMaxQueue,
	}
}

// withDefaults fills zero (or negative) fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BaseReachableTime <= 0 {
		c.BaseReachableTime = d.BaseReachableTime
	}
	if c.RetransTimer <= 0 {
		c.RetransTimer = d.RetransTimer
	}
	if c.DelayFirstProbe <= 0 {
		c.DelayFirstProbe = d.DelayFirstProbe
	}
	if c.GCStaleTime <= 0 {
		c.GCStaleTime = d.GCStaleTime
	}
	if c.MaxMulticastSolicit <= 0 {
		c.MaxMulticastSolicit = d.MaxMulticastSolicit
	}
	if c.MaxUnicastSolicit <= 0 {
		c.MaxUnicastSolicit = d.MaxUnicastSolicit
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = d.MaxEntries
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = d.MaxQueue
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return c
}

// randomReachable draws ReachableTime from [0.5, 1.5) × base
// (RFC 4861 §6.3.2, MIN_RANDOM_FACTOR and MAX_RANDOM_FACTOR).
func randomReachable(base time.Duration, r *rand.Rand) time.Duration {
	return time.Duration(float64(base) * (0.5 + r.Float64()))
}

// Package fault is a link decorator that impairs traffic: it wraps any
// link.Endpoint and loses, duplicates, corrupts, reorders, delays and
// rate-limits the frames going each way, like Linux's netem qdisc but in the
// link layer of ustack.
//
// It owns, for each direction, the impairment decisions (from a seeded
// random source), a time-ordered queue of frames waiting to leave and one
// timer on an injected clock. It does not parse frames, so a corrupted bit
// may land in any header; it does not complete checksums or segment large
// packets (a large segment is impaired as one frame).
//
// Pipeline, for each direction (Tx: WriteBatch → inner; Rx: inner's reader
// → the attached Dispatcher):
//
//	in ─▶ loss ─▶ duplicate ─┬▶ corrupt ─▶ rate limit ─▶ delay+jitter ─▶ queue
//	                         └▶ (the copy, through the same stages)
//	queue ──(when due, on the caller's goroutine or the clock's timer)──▶
//	reorder (hold one back, release it after the next) ─▶ out
//
// Frames leave in the order they entered, apart from duplication and
// Reorder: jitter varies the delay but does not reorder (a frame never
// leaves before the one ahead of it). Given the same Config (Seed
// included), the same frames and a clock.Fake driven the same way, the
// outcome is the same.
package fault

import (
	"sync"
	"sync/atomic"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/internal/stats"
	"ustack/link"
	"ustack/wire"
)

// Impairment says what happens to the frames going one way. The zero value
// passes them unchanged.
type Impairment struct {
	// Loss is the probability that a frame is dropped.
	Loss float64
	// Duplicate is the probability that a frame is sent twice; the copy
	// follows the original through the later stages on its own.
	Duplicate float64
	// Corrupt is the probability that one bit, chosen at random anywhere
	// in the frame, is flipped. The frame is copied first (shared storage
	// is never written) and loses Offload.CsumValid, so the receiver checks
	// the checksum; a frame with a partial checksum (Offload.NeedsCsum) is
	// checksummed after the flip and the damage goes unnoticed there.
	Corrupt float64
	// Reorder is the probability that a frame is held back when it falls
	// due and released right after the next frame, or after ReorderHold if
	// none comes. One frame is held at a time.
	Reorder float64
	// ReorderHold bounds how long a held frame waits; default 10ms.
	ReorderHold time.Duration
	// Delay is added to every frame, plus a uniform random Jitter in
	// [-Jitter, +Jitter] (the sum is at least 0).
	Delay, Jitter time.Duration
	// Rate limits the traffic to Rate bits per second (0: no limit) with a
	// token bucket of Burst bytes (0: frames are paced, one every
	// len*8/Rate). Frames wait in a queue of at most Limit frames (default
	// 1000) for tokens; frames beyond it are dropped.
	Rate  uint64
	Burst int
	Limit int
}

// Config configures a fault decorator.
type Config struct {
	// Tx impairs frames written (WriteBatch → inner); Rx impairs frames
	// received (inner → Dispatcher). For Bridge(a, b, cfg), Tx impairs
	// a→b and Rx impairs b→a.
	Tx, Rx Impairment
	// Seed seeds the random decisions; each direction has its own source
	// derived from it, so the directions do not disturb each other.
	Seed uint64
	// Clock times delays; default clock.Real.
	Clock clock.Clock
}

// Direction selects one way through the decorator.
type Direction int

const (
	Tx Direction = iota // frames written
	Rx                  // frames received
)

func (d Direction) String() string {
	if d == Rx {
		return "rx"
	}
	return "tx"
}

// Counters count what happened to the frames going one way. Once nothing is
// queued or held: In + Duplicated = Out + DroppedLoss + DroppedRate +
// DroppedDetached.
type Counters struct {
	In              stats.Counter // frames that entered
	Out             stats.Counter // frames handed on (to inner, or to the Dispatcher)
	DroppedLoss     stats.Counter // lost on purpose
	DroppedRate     stats.Counter // over the rate limiter's queue limit
	DroppedDetached stats.Counter // no Dispatcher, or the decorator closed
	Duplicated      stats.Counter // extra copies made
	Corrupted       stats.Counter // frames with a bit flipped
	Reordered       stats.Counter // frames released after a later one
	Delayed         stats.Counter // frames that waited (delay, jitter, rate)
}

// Visit reports the counters with the given name prefix.
func (c *Counters) Visit(prefix string, v stats.Visitor) {
	v(prefix+"in", c.In.Load())
	v(prefix+"out", c.Out.Load())
	v(prefix+"dropped_loss", c.DroppedLoss.Load())
	v(prefix+"dropped_rate", c.DroppedRate.Load())
	v(prefix+"dropped_detached", c.DroppedDetached.Load())
	v(prefix+"duplicated", c.Duplicated.Load())
	v(prefix+"corrupted", c.Corrupted.Load())
	v(prefix+"reordered", c.Reordered.Load())
	v(prefix+"delayed", c.Delayed.Load())
}

// Endpoint is a link.Endpoint that impairs the traffic of the one it wraps.
type Endpoint struct {
	inner     link.Endpoint
	caps      link.Capabilities
	ownsInner bool
	tx, rx    *dir
	upper     atomic.Pointer[dispatcher]
	closed    atomic.Bool
	stats     link.Stats // reported when inner keeps none

	mu       sync.Mutex // serializes Attach and Close
	attached bool
}

type dispatcher struct{ d link.Dispatcher }

// New wraps inner. The Endpoint owns inner from then on: Close closes it.
func New(inner link.Endpoint, cfg Config) *Endpoint {
	e := newEndpoint(inner, cfg)
	e.ownsInner = true
	return e
}

func newEndpoint(inner link.Endpoint, cfg Config) *Endpoint {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	e := &Endpoint{inner: inner}
	e.caps = inner.Capabilities()
	if cfg.Tx.Corrupt > 0 {
		// A checksum the device completes after the flip would hide it:
		// make the stack checksum (and segment) in software.
		e.caps &^= link.CapTxChecksum | link.CapTSO4 | link.CapTSO6 | link.CapUSO
	}
	e.tx = newDir(cfg.Tx, cfg.Clock, cfg.Seed, 0x7478, func(b []*buf.Packet) int {
		// What inner drops, it counts in its own Stats.
		inner.WriteBatch(b)
		return len(b)
	})
	e.rx = newDir(cfg.Rx, cfg.Clock, cfg.Seed, 0x7278, e.deliver)
	return e
}

// Name is inner's name.
func (e *Endpoint) Name() string { return e.inner.Name() }

// Type is inner's framing.
func (e *Endpoint) Type() link.Type { return e.inner.Type() }

// MTU is inner's MTU.
func (e *Endpoint) MTU() int { return e.inner.MTU() }

// HardwareAddr is inner's address.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.inner.HardwareAddr() }

// HeaderRoom is inner's.
func (e *Endpoint) HeaderRoom() int { return e.inner.HeaderRoom() }

// Capabilities are inner's, without transmit checksum and segmentation
// offload when Tx corrupts frames.
func (e *Endpoint) Capabilities() link.Capabilities { return e.caps }

// Inner returns the wrapped endpoint.
func (e *Endpoint) Inner() link.Endpoint { return e.inner }

// LinkStats returns inner's counters when it keeps them, and otherwise a
// set of zero counters.
func (e *Endpoint) LinkStats() *link.Stats {
	if c, ok := e.inner.(link.Counted); ok {
		return c.LinkStats()
	}
	return &e.stats
}

// Counters returns the impairment counters of one direction.
func (e *Endpoint) Counters(d Direction) *Counters {
	if d == Rx {
		return &e.rx.c
	}
	return &e.tx.c
}

// VisitStats reports the impairment counters as "fault.tx.dropped_loss",
// "fault.rx.delayed" and so on.
func (e *Endpoint) VisitStats(v stats.Visitor) {
	e.tx.c.Visit("fault.tx.", v)
	e.rx.c.Visit("fault.rx.", v)
}

// Attach makes d receive the frames inner receives, impaired; nil detaches
// (frames that fall due meanwhile are dropped).
func (e *Endpoint) Attach(d link.Dispatcher) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return
	}
	if d == nil {
		e.upper.Store(nil)
		e.inner.Attach(nil)
		e.attached = false
		return
	}
	e.upper.Store(&dispatcher{d})
	if !e.attached {
		e.inner.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) {
			e.rx.ingress(pkts)
		}))
		e.attached = true
	}
}

// WriteBatch impairs the frames and hands what survives to inner, now or
// when they fall due. It takes ownership of every packet in pkts and
// returns len(pkts): frames the impairments drop count as sent, as on a
// lossy wire. It fails with link.ErrClosed after Close.
func (e *Endpoint) WriteBatch(pkts []*buf.Packet) (int, error) {
	if e.closed.Load() {
		link.ReleaseAll(pkts, 0)
		return 0, link.ErrClosed
	}
	e.tx.ingress(pkts)
	return len(pkts), nil
}

// deliver is the Rx sink: it hands a batch that fell due to the Dispatcher.
func (e *Endpoint) deliver(b []*buf.Packet) int {
	d := e.upper.Load()
	if d == nil {
		e.rx.c.DroppedDetached.Add(uint64(len(b)))
		link.ReleaseAll(b, 0)
		return 0
	}
	d.d.DeliverBatch(e, b)
	return len(b)
}

// Close detaches, drops the frames waiting in either direction and closes
// inner. Closing twice returns link.ErrClosed. Like inner's Close, it may
// wait for inner's reader, so it must not be called from the Dispatcher.
func (e *Endpoint) Close() error {
	if !e.shutdown() {
		return link.ErrClosed
	}
	if e.ownsInner {
		return e.inner.Close()
	}
	return nil
}

// shutdown detaches from inner and stops both directions; it reports false
// if it had been done before.
func (e *Endpoint) shutdown() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Swap(true) {
		return false
	}
	e.upper.Store(nil)
	e.inner.Attach(nil)
	e.attached = false
	e.tx.close()
	e.rx.close()
	return true
}

// Bridge joins two links through impairments, as a wire with a faulty
// middle: the impairment tool for lossy-network tests.
type Bridge struct {
	a    link.Endpoint
	f    *Endpoint // wraps b: Tx impairs a→b, Rx b→a
	once sync.Once
}

// NewBridge forwards the frames a receives to b and those b receives to a,
// through the impairments: cfg.Tx on the way a→b and cfg.Rx on the way
// b→a. It attaches to both; Stop detaches from both and drops the frames
// still waiting, but closes neither. Both links must have the same Type.
// Frames cross unchanged (offload state included): a frame larger than
// the other side's MTU is dropped there.
func NewBridge(a, b link.Endpoint, cfg Config) *Bridge {
	if a.Type() != b.Type() {
		panic("fault: Bridge between a " + a.Type().String() + " link and a " + b.Type().String() + " link")
	}
	br := &Bridge{a: a, f: newEndpoint(b, cfg)}
	br.f.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) {
		forget(pkts)
		a.WriteBatch(pkts)
	}))
	a.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) {
		forget(pkts)
		br.f.WriteBatch(pkts)
	}))
	return br
}

// Counters are the impairment counters of one way: Tx is a→b, Rx is b→a.
func (br *Bridge) Counters(d Direction) *Counters { return br.f.Counters(d) }

// VisitStats reports both ways' counters (fault.tx.*, fault.rx.*).
func (br *Bridge) VisitStats(v stats.Visitor) { br.f.VisitStats(v) }

// Stop detaches from both links and drops what is still waiting.
func (br *Bridge) Stop() {
	br.once.Do(func() {
		br.a.Attach(nil)
		br.f.shutdown()
	})
}

// forget clears what the receiving side learned about frames before they
// are sent on.
func forget(pkts []*buf.Packet) {
	for _, p := range pkts {
		p.IfIndex = 0
		p.Flags = 0
		p.LinkHeader, p.NetworkHeader, p.TransportHeader = nil, nil, nil
	}
}

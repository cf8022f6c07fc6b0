package fault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"sync"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/link"
	"ustack/wire"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// arrival is a frame that came out of the decorator.
type arrival struct {
	at    time.Duration // since t0
	seq   int
	data  []byte
	valid bool // Offload.CsumValid
}

// fakeLink is the inner endpoint: it records what is written, with the
// fake clock's time, and lets the test inject received frames.
type fakeLink struct {
	clk    *clock.Fake
	caps   link.Capabilities
	mu     sync.Mutex
	sent   []arrival
	disp   link.Dispatcher
	closed bool
}

func (l *fakeLink) Name() string                    { return "fake0" }
func (l *fakeLink) Type() link.Type                 { return link.TypeEthernet }
func (l *fakeLink) MTU() int                        { return 1500 }
func (l *fakeLink) HardwareAddr() wire.MAC          { return wire.MAC{2, 0, 0, 0, 0, 1} }
func (l *fakeLink) Capabilities() link.Capabilities { return l.caps }
func (l *fakeLink) HeaderRoom() int                 { return 10 }
func (l *fakeLink) Close() error                    { l.mu.Lock(); l.closed = true; l.mu.Unlock(); return nil }

func (l *fakeLink) Attach(d link.Dispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.disp = d
}

func (l *fakeLink) WriteBatch(pkts []*buf.Packet) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range pkts {
		l.sent = append(l.sent, record(l.clk, p))
		p.Release()
	}
	return len(pkts), nil
}

// receive injects frames as the link's reader would.
func (l *fakeLink) receive(pkts ...*buf.Packet) {
	l.mu.Lock()
	d := l.disp
	l.mu.Unlock()
	if d == nil {
		link.ReleaseAll(pkts, 0)
		return
	}
	d.DeliverBatch(l, pkts)
}

func (l *fakeLink) got() []arrival {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]arrival(nil), l.sent...)
}

func record(clk *clock.Fake, p *buf.Packet) arrival {
	b := p.ToBytes()
	return arrival{at: clk.Now().Sub(t0), seq: int(binary.BigEndian.Uint32(b[14:])), data: b, valid: p.Offload.CsumValid}
}

// collector is the Dispatcher above the decorator.
type collector struct {
	clk     *clock.Fake
	mu      sync.Mutex
	got     []arrival
	batches []int
}

func (c *collector) DeliverBatch(_ link.Endpoint, pkts []*buf.Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, len(pkts))
	for _, p := range pkts {
		c.got = append(c.got, record(c.clk, p))
		p.Release()
	}
}

// frame is a 100-byte Ethernet frame carrying seq after the header.
func frame(seq int) *buf.Packet {
	b := make([]byte, 100)
	binary.BigEndian.PutUint16(b[12:], uint16(wire.EtherTypeIPv4))
	binary.BigEndian.PutUint32(b[14:], uint32(seq))
	for i := 18; i < len(b); i++ {
		b[i] = byte(i)
	}
	return buf.FromBytes(b)
}

func frames(from, n int) []*buf.Packet {
	var ps []*buf.Packet
	for i := from; i < from+n; i++ {
		ps = append(ps, frame(i))
	}
	return ps
}

// setup wraps a fakeLink with cfg on a fake clock and attaches a collector.
func setup(t *testing.T, cfg Config) (*Endpoint, *fakeLink, *collector, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	cfg.Clock = clk
	inner := &fakeLink{clk: clk, caps: link.CapTxChecksum | link.CapRxChecksum | link.CapTSO4}
	e := New(inner, cfg)
	c := &collector{clk: clk}
	e.Attach(c)
	t.Cleanup(func() { e.Close() })
	return e, inner, c, clk
}

func seqs(as []arrival) []int {
	var s []int
	for _, a := range as {
		s = append(s, a.seq)
	}
	return s
}

func checkBalance(t *testing.T, e *Endpoint, d Direction, delivered int) {
	t.Helper()
	c := e.Counters(d)
	in, dup := c.In.Load(), c.Duplicated.Load()
	out := c.Out.Load()
	drops := c.DroppedLoss.Load() + c.DroppedRate.Load() + c.DroppedDetached.Load()
	if in+dup != out+drops {
		t.Errorf("%v: in %d + duplicated %d != out %d + dropped %d", d, in, dup, out, drops)
	}
	if out != uint64(delivered) {
		t.Errorf("%v: out = %d, but %d frames arrived", d, out, delivered)
	}
}

func TestPassThrough(t *testing.T) {
	e, inner, c, _ := setup(t, Config{})
	if e.Name() != "fake0" || e.Type() != link.TypeEthernet || e.MTU() != 1500 || e.HeaderRoom() != 10 ||
		e.HardwareAddr() != inner.HardwareAddr() || e.Capabilities() != inner.caps || e.Inner() != inner {
		t.Errorf("properties not passed through: %q %v %d %d %v %v", e.Name(), e.Type(), e.MTU(), e.HeaderRoom(), e.HardwareAddr(), e.Capabilities())
	}
	if n, err := e.WriteBatch(frames(0, 100)); n != 100 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	inner.receive(frames(0, 100)...)
	for name, got := range map[string][]arrival{"tx": inner.got(), "rx": c.got} {
		if len(got) != 100 {
			t.Fatalf("%s: %d frames passed, want 100 at once", name, len(got))
		}
		for i, a := range got {
			if a.seq != i || a.at != 0 {
				t.Fatalf("%s: frame %d is seq %d at %v", name, i, a.seq, a.at)
			}
		}
	}
	for _, b := range c.batches {
		if b > link.MaxBatch {
			t.Errorf("batch of %d", b)
		}
	}
	checkBalance(t, e, Tx, 100)
	checkBalance(t, e, Rx, 100)
	if e.Counters(Tx).Delayed.Load() != 0 {
		t.Error("frames counted as delayed without impairment")
	}
}

func TestLoss(t *testing.T) {
	const n, p = 10000, 0.1
	e, inner, _, _ := setup(t, Config{Tx: Impairment{Loss: p}, Seed: 42})
	for i := 0; i < n; i += 100 {
		e.WriteBatch(frames(i, 100))
	}
	got := inner.got()
	lost := n - len(got)
	// Binomial(10000, 0.1): σ = 30; allow 5σ.
	if lost < 850 || lost > 1150 {
		t.Errorf("lost %d of %d at p=%v", lost, n, p)
	}
	if c := e.Counters(Tx).DroppedLoss.Load(); c != uint64(lost) {
		t.Errorf("dropped_loss = %d, lost %d", c, lost)
	}
	for i := 1; i < len(got); i++ {
		if got[i].seq <= got[i-1].seq {
			t.Fatalf("loss reordered frames: %d after %d", got[i].seq, got[i-1].seq)
		}
	}
	checkBalance(t, e, Tx, len(got))
}

func TestDelay(t *testing.T) {
	e, inner, c, clk := setup(t, Config{Tx: Impairment{Delay: 10 * time.Millisecond}, Rx: Impairment{Delay: 3 * time.Millisecond}})
	e.WriteBatch(frames(0, 3))
	inner.receive(frames(0, 1)...)
	clk.Advance(time.Millisecond)
	e.WriteBatch(frames(3, 1))
	clk.Advance(2 * time.Millisecond)
	if len(c.got) != 1 || c.got[0].at != 3*time.Millisecond {
		t.Errorf("rx: %v, want one frame at 3ms", c.got)
	}
	clk.Advance(10*time.Millisecond - 3*time.Millisecond - time.Nanosecond)
	if n := len(inner.got()); n != 0 {
		t.Fatalf("%d frames left before their delay", n)
	}
	clk.Advance(time.Nanosecond)
	if got := inner.got(); len(got) != 3 || got[0].at != 10*time.Millisecond {
		t.Fatalf("at 10ms: %v", got)
	}
	clk.Advance(time.Millisecond)
	if got := inner.got(); len(got) != 4 || got[3].at != 11*time.Millisecond {
		t.Fatalf("at 11ms: %v", got)
	}
	if got := e.Counters(Tx).Delayed.Load(); got != 4 {
		t.Errorf("delayed = %d, want 4", got)
	}
	if clk.Pending() != 0 {
		t.Errorf("%d timers pending with nothing queued", clk.Pending())
	}
}

func TestJitterKeepsOrder(t *testing.T) {
	const d, j = 20 * time.Millisecond, 15 * time.Millisecond
	e, inner, _, clk := setup(t, Config{Tx: Impairment{Delay: d, Jitter: j}, Seed: 7})
	sentAt := map[int]time.Duration{}
	for i := range 500 {
		sentAt[i] = clk.Now().Sub(t0)
		e.WriteBatch(frames(i, 1))
		clk.Advance(time.Millisecond)
	}
	clk.Advance(time.Second)
	got := inner.got()
	if len(got) != 500 {
		t.Fatalf("%d frames arrived", len(got))
	}
	minD, maxD := time.Hour, time.Duration(0)
	for i, a := range got {
		if a.seq != i {
			t.Fatalf("jitter reordered: frame %d is seq %d", i, a.seq)
		}
		delay := a.at - sentAt[a.seq]
		if delay > d+j {
			t.Fatalf("frame %d delayed %v, more than %v", i, delay, d+j)
		}
		minD, maxD = min(minD, delay), max(maxD, delay)
	}
	// Order is kept by holding a frame behind a later-due one, so the
	// smallest delays are cut, but the spread must show.
	if maxD-minD < j {
		t.Errorf("delays spread over [%v, %v] only", minD, maxD)
	}
}

func TestReorderSwapsPairs(t *testing.T) {
	e, inner, _, clk := setup(t, Config{Tx: Impairment{Reorder: 1}})
	e.WriteBatch(frames(0, 6))
	e.WriteBatch(frames(6, 1))
	if got, want := seqs(inner.got()), []int{1, 0, 3, 2, 5, 4}; !equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if got := e.Counters(Tx).Reordered.Load(); got != 3 {
		t.Errorf("reordered = %d, want 3", got)
	}
	// Frame 6 is held; with nothing after it, it leaves after ReorderHold.
	clk.Advance(defaultReorderHold - time.Nanosecond)
	if len(inner.got()) != 6 {
		t.Fatal("held frame left early")
	}
	clk.Advance(time.Nanosecond)
	if got := inner.got(); len(got) != 7 || got[6].seq != 6 || got[6].at != defaultReorderHold {
		t.Errorf("held frame: %v", got[len(got)-1])
	}
	if got := e.Counters(Tx).Reordered.Load(); got != 3 {
		t.Errorf("reordered = %d after a timed-out hold, want 3", got)
	}
}

func TestReorderRandom(t *testing.T) {
	e, inner, _, clk := setup(t, Config{Tx: Impairment{Reorder: 0.25, Delay: time.Millisecond}, Seed: 3})
	for i := range 1000 {
		e.WriteBatch(frames(i, 1))
		clk.Advance(100 * time.Microsecond)
	}
	clk.Advance(time.Second)
	got := inner.got()
	if len(got) != 1000 {
		t.Fatalf("%d frames arrived", len(got))
	}
	inversions := 0
	seen := map[int]bool{}
	for i, a := range got {
		seen[a.seq] = true
		if i > 0 && a.seq < got[i-1].seq {
			inversions++
		}
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct frames", len(seen))
	}
	r := e.Counters(Tx).Reordered.Load()
	if inversions == 0 || uint64(inversions) != r {
		t.Errorf("%d frames out of order, reordered = %d", inversions, r)
	}
	checkBalance(t, e, Tx, len(got))
}

func TestDuplicate(t *testing.T) {
	e, inner, _, _ := setup(t, Config{Tx: Impairment{Duplicate: 1}})
	e.WriteBatch(frames(0, 10))
	got := inner.got()
	if len(got) != 20 {
		t.Fatalf("%d frames, want 20", len(got))
	}
	for i, a := range got {
		if a.seq != i/2 {
			t.Errorf("frame %d is seq %d", i, a.seq)
		}
	}
	if d := e.Counters(Tx).Duplicated.Load(); d != 10 {
		t.Errorf("duplicated = %d", d)
	}
	checkBalance(t, e, Tx, 20)
}

func TestCorruptFlipsOneBit(t *testing.T) {
	e, inner, c, _ := setup(t, Config{Tx: Impairment{Corrupt: 1}, Rx: Impairment{Corrupt: 1}, Seed: 5})
	if e.Capabilities().Has(link.CapTxChecksum) || e.Capabilities().Has(link.CapTSO4) || !e.Capabilities().Has(link.CapRxChecksum) {
		t.Errorf("Capabilities() = %v: tx checksum/TSO must go, rx checksum stay", e.Capabilities())
	}
	const n = 200
	var keep []*buf.Packet // clones share the sent frames' storage
	var sent []*buf.Packet
	for i := range n {
		p := frame(i)
		keep = append(keep, p.Clone())
		sent = append(sent, p)
	}
	e.WriteBatch(sent)
	rx := frames(0, n)
	for _, p := range rx {
		p.Offload.CsumValid = true
	}
	inner.receive(rx...)
	for name, got := range map[string][]arrival{"tx": inner.got(), "rx": c.got} {
		if len(got) != n {
			t.Fatalf("%s: %d frames", name, len(got))
		}
		positions := map[int]bool{}
		for i, a := range got {
			want := frame(i)
			diff := 0
			for k, b := range want.Bytes() {
				if x := b ^ a.data[k]; x != 0 {
					diff += bits.OnesCount8(x)
					positions[k] = true
				}
			}
			want.Release()
			if diff != 1 {
				t.Fatalf("%s frame %d: %d bits differ, want 1", name, i, diff)
			}
			if a.valid {
				t.Fatalf("%s frame %d: corrupted frame still marked CsumValid", name, i)
			}
		}
		if len(positions) < 50 {
			t.Errorf("%s: flips hit only %d byte positions", name, len(positions))
		}
	}
	for i, p := range keep {
		want := frame(i)
		if !bytes.Equal(p.ToBytes(), want.ToBytes()) {
			t.Fatalf("frame %d: corruption wrote into shared storage", i)
		}
		want.Release()
		p.Release()
	}
	if e.Counters(Tx).Corrupted.Load() != n || e.Counters(Rx).Corrupted.Load() != n {
		t.Errorf("corrupted = %d, %d", e.Counters(Tx).Corrupted.Load(), e.Counters(Rx).Corrupted.Load())
	}
}

func TestRateLimit(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		im    Impairment
		want  []time.Duration // departure of each of 5 frames sent at once
		drops uint64
	}{
		// 100-byte frames at 8000 bit/s: one every 100ms.
		{"paced", Impairment{Rate: 8000}, []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms}, 0},
		// A 300-byte bucket lets three go at once, then refills one per 100ms.
		{"burst", Impairment{Rate: 8000, Burst: 300}, []time.Duration{0, 0, 0, 100 * ms, 200 * ms}, 0},
		// Two may wait: the fourth and fifth find the queue full.
		{"limit", Impairment{Rate: 8000, Limit: 2}, []time.Duration{0, 100 * ms, 200 * ms}, 2},
		{"with-delay", Impairment{Rate: 80000, Delay: 5 * ms}, []time.Duration{5 * ms, 15 * ms, 25 * ms, 35 * ms, 45 * ms}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, inner, _, clk := setup(t, Config{Tx: tc.im})
			e.WriteBatch(frames(0, 5))
			clk.Advance(time.Second)
			var at []time.Duration
			for _, a := range inner.got() {
				at = append(at, a.at)
			}
			if !equal(at, tc.want) {
				t.Errorf("departures %v, want %v", at, tc.want)
			}
			if got := e.Counters(Tx).DroppedRate.Load(); got != tc.drops {
				t.Errorf("dropped_rate = %d, want %d", got, tc.drops)
			}
			// After the bucket refills, a frame leaves at once again.
			inner.mu.Lock()
			inner.sent = nil
			inner.mu.Unlock()
			sent := clk.Now().Sub(t0)
			e.WriteBatch(frames(5, 1))
			clk.Advance(tc.im.Delay)
			if got := inner.got(); len(got) != 1 || got[0].at != sent+tc.im.Delay {
				t.Errorf("frame sent at %v after idle: %v", sent, got)
			}
		})
	}
}

// TestRateThroughput checks the long-run rate over many frames sent faster
// than the limit.
func TestRateThroughput(t *testing.T) {
	const rate = 1_000_000 // 1 Mbit/s: a 100-byte frame every 800µs
	e, inner, _, clk := setup(t, Config{Tx: Impairment{Rate: rate, Limit: 10000}})
	for i := 0; i < 2000; i += 10 {
		e.WriteBatch(frames(i, 10))
		clk.Advance(400 * time.Microsecond) // offered: 2 Mbit/s
	}
	clk.Advance(10 * time.Second)
	got := inner.got()
	if len(got) != 2000 {
		t.Fatalf("%d frames", len(got))
	}
	span := got[len(got)-1].at - got[0].at
	if want := 1999 * 800 * time.Microsecond; span != want {
		t.Errorf("2000 frames took %v, want %v", span, want)
	}
	for i := 1; i < len(got); i++ {
		if gap := got[i].at - got[i-1].at; gap != 800*time.Microsecond {
			t.Fatalf("gap %v between frames %d and %d", gap, i-1, i)
		}
	}
}

// scenario sends frames both ways through every impairment at once and
// returns what came out.
func scenario(t *testing.T, seed uint64) (tx, rx []arrival, e *Endpoint) {
	im := Impairment{
		Loss: 0.05, Duplicate: 0.05, Corrupt: 0.05, Reorder: 0.1,
		Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond,
		Rate: 20_000_000, Limit: 20,
	}
	e, inner, c, clk := setup(t, Config{Tx: im, Rx: im, Seed: seed})
	for i := 0; i < 10000; i += 50 {
		e.WriteBatch(frames(i, 50))
		inner.receive(frames(i, 50)...)
		clk.Advance(time.Millisecond)
	}
	clk.Advance(time.Second)
	return inner.got(), c.got, e
}

func TestAccountingAllImpairments(t *testing.T) {
	tx, rx, e := scenario(t, 1)
	checkBalance(t, e, Tx, len(tx))
	checkBalance(t, e, Rx, len(rx))
	for _, d := range []Direction{Tx, Rx} {
		c := e.Counters(d)
		for name, v := range map[string]uint64{
			"dropped_loss": c.DroppedLoss.Load(), "dropped_rate": c.DroppedRate.Load(),
			"duplicated": c.Duplicated.Load(), "corrupted": c.Corrupted.Load(),
			"reordered": c.Reordered.Load(), "delayed": c.Delayed.Load(),
		} {
			if v == 0 {
				t.Errorf("%v: %s = 0", d, name)
			}
		}
		if c.In.Load() != 10000 {
			t.Errorf("%v: in = %d", d, c.In.Load())
		}
	}
	seen := map[string]uint64{}
	e.VisitStats(func(name string, v uint64) { seen[name] = v })
	if len(seen) != 18 || seen["fault.tx.in"] != 10000 || seen["fault.rx.dropped_loss"] != e.Counters(Rx).DroppedLoss.Load() {
		t.Errorf("VisitStats: %v", seen)
	}
}

func TestDeterministic(t *testing.T) {
	tx1, rx1, _ := scenario(t, 9)
	tx2, rx2, _ := scenario(t, 9)
	tx3, _, _ := scenario(t, 10)
	same := func(a, b []arrival) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i].seq != b[i].seq || a[i].at != b[i].at || !bytes.Equal(a[i].data, b[i].data) {
				return false
			}
		}
		return true
	}
	if !same(tx1, tx2) || !same(rx1, rx2) {
		t.Error("same seed, different outcome")
	}
	if same(tx1, tx3) {
		t.Error("different seeds, same outcome")
	}
}

func TestDetachDropsDue(t *testing.T) {
	e, inner, c, clk := setup(t, Config{Rx: Impairment{Delay: time.Millisecond}})
	inner.receive(frames(0, 5)...)
	e.Attach(nil)
	if inner.disp != nil {
		t.Error("Attach(nil) left inner attached")
	}
	clk.Advance(time.Millisecond)
	if len(c.got) != 0 {
		t.Errorf("%d frames delivered while detached", len(c.got))
	}
	if d := e.Counters(Rx).DroppedDetached.Load(); d != 5 {
		t.Errorf("dropped_detached = %d, want 5", d)
	}
	e.Attach(c)
	inner.receive(frames(5, 1)...)
	clk.Advance(time.Millisecond)
	if len(c.got) != 1 || c.got[0].seq != 5 {
		t.Errorf("after re-attach: %v", seqs(c.got))
	}
	checkBalance(t, e, Rx, 1)
}

func TestClose(t *testing.T) {
	e, inner, _, clk := setup(t, Config{Tx: Impairment{Delay: time.Millisecond}, Rx: Impairment{Delay: time.Millisecond}})
	e.WriteBatch(frames(0, 3))
	inner.receive(frames(0, 2)...)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if !inner.closed || inner.disp != nil {
		t.Error("Close did not detach and close inner")
	}
	clk.Advance(time.Second)
	if len(inner.got()) != 0 {
		t.Error("frames left after Close")
	}
	if e.Counters(Tx).DroppedDetached.Load() != 3 || e.Counters(Rx).DroppedDetached.Load() != 2 {
		t.Errorf("dropped_detached = %d, %d", e.Counters(Tx).DroppedDetached.Load(), e.Counters(Rx).DroppedDetached.Load())
	}
	if n, err := e.WriteBatch(frames(0, 1)); n != 0 || !errors.Is(err, link.ErrClosed) {
		t.Errorf("WriteBatch after Close = %d, %v", n, err)
	}
	if err := e.Close(); !errors.Is(err, link.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if clk.Pending() != 0 {
		t.Errorf("%d timers left armed", clk.Pending())
	}
}

// TestReentrantDispatcher: the stack above answers from DeliverBatch, on
// the goroutine delivering (the timer's, here), through the same decorator.
func TestReentrantDispatcher(t *testing.T) {
	e, inner, _, clk := setup(t, Config{Tx: Impairment{Delay: time.Millisecond}, Rx: Impairment{Delay: time.Millisecond}})
	e.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
		ep.WriteBatch(pkts)
	}))
	inner.receive(frames(0, 4)...)
	clk.Advance(time.Millisecond)
	clk.Advance(time.Millisecond)
	if got := inner.got(); len(got) != 4 || got[0].at != 2*time.Millisecond {
		t.Errorf("echo: %v", got)
	}
}

// TestConcurrentWriters runs writers, a receiver and the clock at once
// (for -race) and checks that every frame is accounted for.
func TestConcurrentWriters(t *testing.T) {
	e, inner, c, clk := setup(t, Config{
		Tx:   Impairment{Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, Delay: time.Millisecond, Jitter: time.Millisecond},
		Rx:   Impairment{Loss: 0.1, Corrupt: 0.1, Delay: time.Millisecond},
		Seed: 11,
	})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 1000; i += 10 {
				e.WriteBatch(frames(w*1000+i, 10))
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 1000; i += 10 {
			inner.receive(frames(i, 10)...)
		}
	})
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			clk.Advance(100 * time.Microsecond)
		}
	}
	clk.Advance(time.Second)
	checkBalance(t, e, Tx, len(inner.got()))
	c.mu.Lock()
	defer c.mu.Unlock()
	checkBalance(t, e, Rx, len(c.got))
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

package neigh

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/wire"
)

var (
	t0    = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ipA   = netip.MustParseAddr("192.0.2.1")
	ipB   = netip.MustParseAddr("192.0.2.2")
	ip6A  = netip.MustParseAddr("2001:db8::1")
	macA  = wire.MAC{0x02, 0, 0, 0, 0, 0xa}
	macA2 = wire.MAC{0x02, 0, 0, 0, 0, 0xaa}
)

type solicit struct {
	Target netip.Addr
	Dst    wire.MAC
	At     time.Duration // since t0
}

type sent struct {
	MAC wire.MAC
	ET  wire.EtherType
	ID  byte
}

type failed struct {
	Target netip.Addr
	ID     byte
}

// recorder is a Resolver and a Sender that records what it is asked to do
// and releases the packets it is given.
type recorder struct {
	clk *clock.Fake

	mu       sync.Mutex
	solicits []solicit
	sent     []sent
	failed   []failed
}

func (r *recorder) Solicit(target netip.Addr, dst wire.MAC) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.solicits = append(r.solicits, solicit{target, dst, r.clk.Now().Sub(t0)})
}

func (r *recorder) SendResolved(mac wire.MAC, et wire.EtherType, pkt *buf.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, sent{mac, et, pkt.ToBytes()[0]})
	pkt.Release()
}

func (r *recorder) ResolutionFailed(target netip.Addr, et wire.EtherType, pkt *buf.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, failed{target, pkt.ToBytes()[0]})
	pkt.Release()
}

func (r *recorder) take() (s []solicit, p []sent, f []failed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, p, f = r.solicits, r.sent, r.failed
	r.solicits, r.sent, r.failed = nil, nil, nil
	return
}

func newCache(t *testing.T, cfg Config) (*Cache, *clock.Fake, *recorder) {
	t.Helper()
	clk := clock.NewFake(t0)
	r := &recorder{clk: clk}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	c := New(clk, cfg, r, r)
	t.Cleanup(func() {
		c.Close()
		if n := clk.Pending(); n != 0 {
			t.Errorf("%d timers still armed after Close", n)
		}
	})
	return c, clk, r
}

func pkt(id byte) *buf.Packet { return buf.FromBytes([]byte{id, 0, 0, 0}) }

func stateOf(c *Cache, a netip.Addr) State {
	for _, e := range c.Entries() {
		if e.Addr == a {
			return e.State
		}
	}
	return None
}

func stat(c *Cache, name string) uint64 {
	var got uint64
	found := false
	c.VisitStats(func(n string, v uint64) {
		if n == name {
			got, found = v, true
		}
	})
	if !found {
		panic("no counter " + name)
	}
	return got
}

func wantState(t *testing.T, c *Cache, a netip.Addr, want State) {
	t.Helper()
	if got := stateOf(c, a); got != want {
		t.Fatalf("state of %v = %v, want %v", a, got, want)
	}
}

func TestStateString(t *testing.T) {
	want := []string{"NONE", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "PERMANENT"}
	for i, w := range want {
		if got := State(i).String(); got != w {
			t.Errorf("State(%d) = %q, want %q", i, got, w)
		}
	}
	if got := State(42).String(); got != "STATE(42)" {
		t.Errorf("State(42) = %q", got)
	}
}

func TestDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	got.Rand = nil
	if got != DefaultConfig() {
		t.Errorf("zero config = %+v, want %+v", got, DefaultConfig())
	}
	d := DefaultConfig()
	if d.BaseReachableTime != 30*time.Second || d.RetransTimer != time.Second ||
		d.DelayFirstProbe != 5*time.Second || d.GCStaleTime != 60*time.Second ||
		d.MaxMulticastSolicit != 3 || d.MaxUnicastSolicit != 3 || d.MaxEntries != 512 || d.MaxQueue != 16 {
		t.Errorf("DefaultConfig = %+v", d)
	}
}

func TestReachableTimeRandomized(t *testing.T) {
	seen := map[time.Duration]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		clk := clock.NewFake(t0)
		c := New(clk, Config{Rand: rand.New(rand.NewPCG(seed, seed))}, nil, nil)
		rt := c.ReachableTime()
		if rt < 15*time.Second || rt >= 45*time.Second {
			t.Fatalf("seed %d: ReachableTime %v outside [15s, 45s)", seed, rt)
		}
		seen[rt] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct ReachableTimes in 200 seeds", len(seen))
	}
	// Same seed, same value.
	a := New(clock.NewFake(t0), Config{Rand: rand.New(rand.NewPCG(7, 7))}, nil, nil)
	b := New(clock.NewFake(t0), Config{Rand: rand.New(rand.NewPCG(7, 7))}, nil, nil)
	if a.ReachableTime() != b.ReachableTime() {
		t.Error("same seed gave different ReachableTimes")
	}
	a.SetBaseReachableTime(time.Second)
	if rt := a.ReachableTime(); rt < 500*time.Millisecond || rt >= 1500*time.Millisecond {
		t.Errorf("after SetBaseReachableTime(1s): %v", rt)
	}
}

func TestIncompleteRetriesThenFails(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	c.Output(ipA, wire.EtherTypeIPv4, pkt(2))
	wantState(t, c, ipA, Incomplete)
	if mac, st, ok := c.Lookup(ipA); ok || st != Incomplete || !mac.IsZero() {
		t.Errorf("Lookup = %v %v %v, want unusable Incomplete", mac, st, ok)
	}
	if e := c.Entries(); len(e) != 1 || e[0].Queued != 2 {
		t.Fatalf("entries = %+v, want one with 2 queued", e)
	}
	for i := 0; i < 3; i++ {
		clk.Advance(999 * time.Millisecond)
		wantState(t, c, ipA, Incomplete)
		clk.Advance(time.Millisecond)
	}
	wantState(t, c, ipA, Failed)
	s, p, f := r.take()
	wantSol := []solicit{{ipA, wire.MAC{}, 0}, {ipA, wire.MAC{}, time.Second}, {ipA, wire.MAC{}, 2 * time.Second}}
	if !slices.Equal(s, wantSol) {
		t.Errorf("solicits = %v, want %v", s, wantSol)
	}
	if len(p) != 0 {
		t.Errorf("sent %v, want nothing", p)
	}
	if want := []failed{{ipA, 1}, {ipA, 2}}; !slices.Equal(f, want) {
		t.Errorf("failed = %v, want %v", f, want)
	}
	if stat(c, "failed") != 1 || stat(c, "failed_packets") != 2 || stat(c, "solicits_sent") != 3 {
		t.Errorf("counters failed=%d failed_packets=%d solicits_sent=%d", stat(c, "failed"),
			stat(c, "failed_packets"), stat(c, "solicits_sent"))
	}
	// The Failed entry is listed for GCStaleTime, then collected.
	clk.Advance(DefaultGCStaleTime - time.Nanosecond)
	wantState(t, c, ipA, Failed)
	clk.Advance(time.Nanosecond)
	wantState(t, c, ipA, None)
	if stat(c, "gc") != 1 {
		t.Errorf("gc = %d, want 1", stat(c, "gc"))
	}
}

func TestFailedEntryRetriesOnOutput(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	clk.Advance(3 * time.Second)
	wantState(t, c, ipA, Failed)
	r.take()
	// A new packet starts resolution again; the last solicitation was a
	// RetransTimer ago, so one goes out at once.
	c.Output(ipA, wire.EtherTypeIPv4, pkt(2))
	wantState(t, c, ipA, Incomplete)
	s, _, _ := r.take()
	if want := []solicit{{ipA, wire.MAC{}, 3 * time.Second}}; !slices.Equal(s, want) {
		t.Fatalf("solicits = %v, want %v", s, want)
	}
	c.Update(ipA, macA, UpdateFlags{Solicited: true, Override: true})
	_, p, f := r.take()
	if want := []sent{{macA, wire.EtherTypeIPv4, 2}}; !slices.Equal(p, want) || len(f) != 0 {
		t.Errorf("sent %v failed %v, want %v", p, f, want)
	}
	wantState(t, c, ipA, Reachable)
}

func TestFloodLimit(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	// Many packets to one target within a RetransTimer: one solicitation.
	for i := 0; i < 10; i++ {
		c.Output(ipA, wire.EtherTypeIPv4, pkt(byte(i)))
		clk.Advance(90 * time.Millisecond)
	}
	if s, _, _ := r.take(); len(s) != 1 {
		t.Fatalf("%d solicitations in 900ms, want 1", len(s))
	}
	clk.Advance(2100 * time.Millisecond) // fails at 3s
	wantState(t, c, ipA, Failed)
	r.take()
	// With a longer RetransTimer now, a retry right after failing waits
	// until RetransTimer has passed since the last solicitation (at 2s).
	c.SetRetransTimer(5 * time.Second)
	c.Output(ipA, wire.EtherTypeIPv4, pkt(99))
	if s, _, _ := r.take(); len(s) != 0 {
		t.Fatalf("solicited %v within RetransTimer of the last", s)
	}
	clk.Advance(4*time.Second - time.Nanosecond)
	if s, _, _ := r.take(); len(s) != 0 {
		t.Fatalf("solicited %v before 7s", s)
	}
	clk.Advance(time.Nanosecond)
	s, _, _ := r.take()
	if want := []solicit{{ipA, wire.MAC{}, 7 * time.Second}}; !slices.Equal(s, want) {
		t.Fatalf("solicits = %v, want %v", s, want)
	}
}

func TestResolveFlushesQueue(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	for i := byte(1); i <= 3; i++ {
		c.Output(ipA, wire.EtherTypeIPv4, pkt(i))
	}
	clk.Advance(500 * time.Millisecond)
	c.Update(ipA, macA, UpdateFlags{Solicited: true, Override: true})
	s, p, f := r.take()
	if len(s) != 1 || len(f) != 0 {
		t.Errorf("solicits %v failed %v", s, f)
	}
	want := []sent{{macA, wire.EtherTypeIPv4, 1}, {macA, wire.EtherTypeIPv4, 2}, {macA, wire.EtherTypeIPv4, 3}}
	if !slices.Equal(p, want) {
		t.Errorf("sent %v, want %v", p, want)
	}
	wantState(t, c, ipA, Reachable)
	if mac, st, ok := c.Lookup(ipA); !ok || st != Reachable || mac != macA {
		t.Errorf("Lookup = %v %v %v", mac, st, ok)
	}
	// No retransmission after resolution.
	clk.Advance(5 * time.Second)
	if s, _, _ := r.take(); len(s) != 0 {
		t.Errorf("solicited %v after resolution", s)
	}
	// Later packets go straight out.
	c.Output(ipA, wire.EtherTypeIPv6, pkt(4))
	if _, p, _ := r.take(); !slices.Equal(p, []sent{{macA, wire.EtherTypeIPv6, 4}}) {
		t.Errorf("sent %v", p)
	}
	if stat(c, "resolved") != 1 {
		t.Errorf("resolved = %d", stat(c, "resolved"))
	}
}

func TestUnsolicitedResolvesToStale(t *testing.T) {
	c, _, r := newCache(t, Config{})
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	c.Update(ipA, macA, UpdateFlags{Override: true})
	wantState(t, c, ipA, Stale)
	if _, p, _ := r.take(); len(p) != 1 || p[0].MAC != macA {
		t.Errorf("sent %v", p)
	}
}

func TestReachableToStale(t *testing.T) {
	c, clk, _ := newCache(t, Config{})
	rt := c.ReachableTime()
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	c.Update(ipA, macA, UpdateFlags{Solicited: true, Override: true})
	clk.Advance(rt - time.Nanosecond)
	wantState(t, c, ipA, Reachable)
	clk.Advance(time.Nanosecond)
	wantState(t, c, ipA, Stale)
	if mac, st, ok := c.Lookup(ipA); !ok || st != Stale || mac != macA {
		t.Errorf("Lookup = %v %v %v, want usable Stale", mac, st, ok)
	}
}

func TestConfirmExtendsReachable(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	rt := c.ReachableTime()
	c.Update(ipA, macA, UpdateFlags{Create: true})
	c.Confirm(ipA) // Stale -> Reachable
	wantState(t, c, ipA, Reachable)
	clk.Advance(rt / 2)
	c.Confirm(ipA)
	clk.Advance(rt/2 + time.Second)
	wantState(t, c, ipA, Reachable)
	clk.Advance(rt/2 - time.Second)
	wantState(t, c, ipA, Stale)
	// Confirm does nothing for unknown or unresolved entries.
	c.Confirm(ipB)
	c.Output(ipB, wire.EtherTypeIPv4, pkt(1))
	c.Confirm(ipB)
	wantState(t, c, ipB, Incomplete)
	if s, _, _ := r.take(); len(s) != 1 {
		t.Errorf("solicits %v", s)
	}
}

// stale makes a Stale entry for ipA at macA.
func stale(t *testing.T, c *Cache) {
	t.Helper()
	c.Update(ipA, macA, UpdateFlags{Create: true, Override: true})
	wantState(t, c, ipA, Stale)
}

func TestStaleDelayProbeFailed(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	stale(t, c)
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	wantState(t, c, ipA, Delay)
	if _, p, _ := r.take(); !slices.Equal(p, []sent{{macA, wire.EtherTypeIPv4, 1}}) {
		t.Fatalf("sent %v, want packet 1 at once", p)
	}
	clk.Advance(DefaultDelayFirstProbe - time.Nanosecond)
	wantState(t, c, ipA, Delay)
	clk.Advance(time.Nanosecond)
	wantState(t, c, ipA, Probe)
	// Packets keep flowing while probing.
	c.Output(ipA, wire.EtherTypeIPv4, pkt(2))
	clk.Advance(2 * time.Second)
	wantState(t, c, ipA, Probe)
	clk.Advance(time.Second)
	wantState(t, c, ipA, Failed)
	s, p, f := r.take()
	wantSol := []solicit{{ipA, macA, 5 * time.Second}, {ipA, macA, 6 * time.Second}, {ipA, macA, 7 * time.Second}}
	if !slices.Equal(s, wantSol) {
		t.Errorf("probes = %v, want %v", s, wantSol)
	}
	if !slices.Equal(p, []sent{{macA, wire.EtherTypeIPv4, 2}}) || len(f) != 0 {
		t.Errorf("sent %v failed %v", p, f)
	}
	if stat(c, "probes_sent") != 3 || stat(c, "failed") != 1 {
		t.Errorf("probes_sent=%d failed=%d", stat(c, "probes_sent"), stat(c, "failed"))
	}
	if _, _, ok := c.Lookup(ipA); ok {
		t.Error("Failed entry is usable")
	}
}

func TestDelayConfirmedToReachable(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	stale(t, c)
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	clk.Advance(2 * time.Second)
	c.Confirm(ipA)
	wantState(t, c, ipA, Reachable)
	clk.Advance(10 * time.Second)
	if s, _, _ := r.take(); len(s) != 0 {
		t.Errorf("probed %v after confirmation", s)
	}
}

func TestProbeAnsweredToReachable(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	stale(t, c)
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	clk.Advance(DefaultDelayFirstProbe + 500*time.Millisecond)
	wantState(t, c, ipA, Probe)
	c.Update(ipA, macA, UpdateFlags{Solicited: true})
	wantState(t, c, ipA, Reachable)
	clk.Advance(5 * time.Second)
	if s, _, _ := r.take(); len(s) != 1 {
		t.Errorf("probes %v, want exactly the first", s)
	}
}

func TestStaleGC(t *testing.T) {
	c, clk, _ := newCache(t, Config{})
	stale(t, c)
	clk.Advance(50 * time.Second)
	// A refresh with the same address (an ARP merge) postpones GC.
	c.Update(ipA, macA, UpdateFlags{Override: true})
	wantState(t, c, ipA, Stale)
	clk.Advance(59 * time.Second)
	wantState(t, c, ipA, Stale)
	clk.Advance(time.Second)
	wantState(t, c, ipA, None)
	if stat(c, "gc") != 1 {
		t.Errorf("gc = %d", stat(c, "gc"))
	}
}

// TestUpdateTable follows RFC 4861 §7.2.5 for an existing resolved entry.
func TestUpdateTable(t *testing.T) {
	type tc struct {
		name    string
		from    State
		mac     wire.MAC
		flags   UpdateFlags
		want    State
		wantMAC wire.MAC
	}
	var cases []tc
	for _, from := range []State{Reachable, Stale, Delay, Probe} {
		// I: O=0, different address: Reachable -> Stale, else ignored.
		ignored := from
		if from == Reachable {
			ignored = Stale
		}
		cases = append(cases,
			tc{"O=0 S=0 new mac", from, macA2, UpdateFlags{}, ignored, macA},
			tc{"O=0 S=1 new mac", from, macA2, UpdateFlags{Solicited: true}, ignored, macA},
			// II: O=1 or same address.
			tc{"O=1 S=1 new mac", from, macA2, UpdateFlags{Solicited: true, Override: true}, Reachable, macA2},
			tc{"O=1 S=0 new mac", from, macA2, UpdateFlags{Override: true}, Stale, macA2},
			tc{"O=0 S=1 same mac", from, macA, UpdateFlags{Solicited: true}, Reachable, macA},
			tc{"O=0 S=0 same mac", from, macA, UpdateFlags{}, from, macA},
			tc{"O=1 S=0 same mac", from, macA, UpdateFlags{Override: true}, from, macA},
		)
	}
	for _, k := range cases {
		t.Run(k.from.String()+"/"+k.name, func(t *testing.T) {
			c, clk, _ := newCache(t, Config{})
			stale(t, c)
			switch k.from {
			case Reachable:
				c.Confirm(ipA)
			case Delay:
				c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
			case Probe:
				c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
				clk.Advance(DefaultDelayFirstProbe)
			}
			wantState(t, c, ipA, k.from)
			c.Update(ipA, k.mac, k.flags)
			e := c.Entries()[0]
			if e.State != k.want || e.MAC != k.wantMAC {
				t.Errorf("got %v %v, want %v %v", e.State, e.MAC, k.want, k.wantMAC)
			}
		})
	}
}

func TestUpdateWithoutEntry(t *testing.T) {
	c, _, _ := newCache(t, Config{})
	c.Update(ipA, macA, UpdateFlags{Solicited: true, Override: true})
	if c.Len() != 0 {
		t.Fatal("Update without Create made an entry (RFC 4861 §7.2.5: discard)")
	}
	// A created entry is Stale even if "solicited": we never asked.
	c.Update(ipA, macA, UpdateFlags{Solicited: true, Override: true, Create: true})
	wantState(t, c, ipA, Stale)
	// Bad link addresses are ignored.
	c.Update(ipB, wire.MAC{}, UpdateFlags{Create: true})
	c.Update(ipB, wire.BroadcastMAC, UpdateFlags{Create: true})
	c.Update(ipB, wire.MAC{0x01, 0, 0x5e, 0, 0, 1}, UpdateFlags{Create: true})
	if c.Len() != 1 || stat(c, "bad_updates") != 3 {
		t.Errorf("len %d bad_updates %d", c.Len(), stat(c, "bad_updates"))
	}
}

func TestSizeLimitEvictsOldestStale(t *testing.T) {
	c, clk, r := newCache(t, Config{MaxEntries: 4})
	if err := c.AddStatic(netip.MustParseAddr("192.0.2.200"), macA); err != nil {
		t.Fatal(err)
	}
	addrs := []netip.Addr{}
	for i := 0; i < 4; i++ {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		addrs = append(addrs, a)
		c.Update(a, macA, UpdateFlags{Create: true})
		clk.Advance(time.Second)
	}
	// Make the oldest Reachable: it is not evictable; the next oldest is.
	c.Confirm(addrs[0])
	c.Update(ipA, macA, UpdateFlags{Create: true})
	if stateOf(c, addrs[1]) != None || stateOf(c, addrs[0]) != Reachable || stateOf(c, ipA) != Stale {
		t.Fatalf("entries after eviction: %+v", c.Entries())
	}
	if stat(c, "evicted") != 1 || c.Len() != 5 {
		t.Fatalf("evicted=%d len=%d", stat(c, "evicted"), c.Len())
	}
	// Output to a new address evicts another Stale entry (addrs[2]).
	c.Output(ipB, wire.EtherTypeIPv4, pkt(1))
	if stateOf(c, addrs[2]) != None || stateOf(c, ipB) != Incomplete {
		t.Fatalf("entries: %+v", c.Entries())
	}
	// Fill with entries that can't be evicted (Incomplete, Reachable).
	c.Output(addrs[3], wire.EtherTypeIPv4, pkt(2)) // Stale -> Delay
	c.Confirm(ipA)
	for _, e := range c.Entries() {
		if e.State == Stale || e.State == Failed {
			t.Fatalf("left an evictable entry: %+v", e)
		}
	}
	r.take()
	c.Output(netip.MustParseAddr("192.0.2.99"), wire.EtherTypeIPv4, pkt(3))
	c.Update(netip.MustParseAddr("192.0.2.98"), macA, UpdateFlags{Create: true})
	if stat(c, "table_full") != 1 || stat(c, "table_full_updates") != 1 || c.Len() != 5 {
		t.Errorf("table_full=%d table_full_updates=%d len=%d, want 1, 1 and 5",
			stat(c, "table_full"), stat(c, "table_full_updates"), c.Len())
	}
	if s, p, f := r.take(); len(s)+len(p)+len(f) != 0 {
		t.Errorf("refused packet went somewhere: %v %v %v", s, p, f)
	}
}

func TestQueueLimit(t *testing.T) {
	c, _, r := newCache(t, Config{MaxQueue: 2})
	for i := byte(1); i <= 5; i++ {
		c.Output(ipA, wire.EtherTypeIPv4, pkt(i))
	}
	if got := stat(c, "queue_drops"); got != 3 {
		t.Errorf("queue_drops = %d, want 3", got)
	}
	if q := c.Entries()[0].Queued; q != 2 {
		t.Errorf("queued = %d", q)
	}
	c.Update(ipA, macA, UpdateFlags{Solicited: true, Override: true})
	_, p, _ := r.take()
	if want := []sent{{macA, wire.EtherTypeIPv4, 4}, {macA, wire.EtherTypeIPv4, 5}}; !slices.Equal(p, want) {
		t.Errorf("sent %v, want the newest packets %v", p, want)
	}
}

func TestStatic(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	if err := c.AddStatic(netip.Addr{}, macA); err != ErrInvalidAddr {
		t.Errorf("invalid addr: %v", err)
	}
	if err := c.AddStatic(ipA, wire.MAC{}); err != ErrInvalidMAC {
		t.Errorf("zero mac: %v", err)
	}
	// A static entry replaces an Incomplete one and takes its queue.
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	if err := c.AddStatic(ipA, macA); err != nil {
		t.Fatal(err)
	}
	if _, p, _ := r.take(); !slices.Equal(p, []sent{{macA, wire.EtherTypeIPv4, 1}}) {
		t.Errorf("sent %v", p)
	}
	c.Update(ipA, macA2, UpdateFlags{Solicited: true, Override: true})
	c.Confirm(ipA)
	clk.Advance(time.Hour)
	if mac, st, ok := c.Lookup(ipA); !ok || st != Permanent || mac != macA {
		t.Errorf("Lookup = %v %v %v", mac, st, ok)
	}
	if s, _, _ := r.take(); len(s) != 0 {
		t.Errorf("solicited %v for a static entry", s)
	}
	c.Flush()
	wantState(t, c, ipA, Permanent)
	if !c.Remove(ipA) || c.Remove(ipA) {
		t.Error("Remove")
	}
	if clk.Pending() != 0 {
		t.Errorf("%d timers pending", clk.Pending())
	}
}

func TestFlushAndClose(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	stale := ipB
	c.Update(stale, macA, UpdateFlags{Create: true})
	c.AddStatic(ip6A, macA2)
	c.Flush()
	if e := c.Entries(); len(e) != 1 || e[0].Addr != ip6A {
		t.Fatalf("after Flush: %+v", e)
	}
	clk.Advance(time.Minute)
	r.take()
	c.Output(ipA, wire.EtherTypeIPv4, pkt(2))
	c.Close()
	c.Close()
	if clk.Pending() != 0 {
		t.Errorf("%d timers after Close", clk.Pending())
	}
	c.Output(ipA, wire.EtherTypeIPv4, pkt(3))
	c.Update(ipA, macA, UpdateFlags{Create: true})
	if err := c.AddStatic(ipA, macA); err != ErrClosed {
		t.Errorf("AddStatic after Close: %v", err)
	}
	clk.Advance(time.Hour)
	s, p, f := r.take()
	if len(s) != 1 || len(p) != 0 || len(f) != 0 {
		t.Errorf("after Close: solicits %v sent %v failed %v", s, p, f)
	}
	if c.Len() != 0 || stat(c, "closed_drops") != 1 {
		t.Errorf("len %d closed_drops %d", c.Len(), stat(c, "closed_drops"))
	}
}

func TestLookupHasNoSideEffects(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	if _, st, ok := c.Lookup(ipA); ok || st != None {
		t.Errorf("Lookup of nothing: %v %v", st, ok)
	}
	stale(t, c)
	for i := 0; i < 3; i++ {
		c.Lookup(ipA)
	}
	wantState(t, c, ipA, Stale)
	clk.Advance(DefaultGCStaleTime)
	wantState(t, c, ipA, None)
	if s, _, _ := r.take(); len(s) != 0 {
		t.Errorf("Lookup solicited: %v", s)
	}
}

func TestAddressKeys(t *testing.T) {
	c, _, r := newCache(t, Config{})
	c.Update(netip.MustParseAddr("::ffff:192.0.2.1"), macA, UpdateFlags{Create: true})
	if _, _, ok := c.Lookup(ipA); !ok {
		t.Error("IPv4-mapped address not unmapped")
	}
	ll := netip.MustParseAddr("fe80::1")
	c.Update(ll.WithZone("eth0"), macA2, UpdateFlags{Create: true})
	if mac, _, ok := c.Lookup(ll); !ok || mac != macA2 {
		t.Error("zone not stripped")
	}
	c.Update(ip6A, macA, UpdateFlags{Create: true})
	c.Update(ipB, macA, UpdateFlags{Create: true})
	var got []netip.Addr
	for _, e := range c.Entries() {
		got = append(got, e.Addr)
	}
	if want := []netip.Addr{ipA, ipB, ip6A, ll}; !slices.Equal(got, want) {
		t.Errorf("Entries order %v, want %v", got, want)
	}
	c.Output(netip.Addr{}, wire.EtherTypeIPv4, pkt(1))
	if s, p, _ := r.take(); len(s)+len(p) != 0 {
		t.Errorf("invalid target: %v %v", s, p)
	}
}

func TestVisitStatsNames(t *testing.T) {
	c, _, _ := newCache(t, Config{})
	var names []string
	c.VisitStats(func(n string, _ uint64) { names = append(names, n) })
	for _, want := range []string{"solicits_sent", "resolved", "failed", "queue_drops", "evicted", "table_full", "entries"} {
		if !slices.Contains(names, want) {
			t.Errorf("no counter %q in %v", want, names)
		}
	}
}

func TestReachableTimeRedrawn(t *testing.T) {
	c, clk, _ := newCache(t, Config{})
	first := c.ReachableTime()
	stale(t, c)
	clk.Advance(3 * time.Hour) // the entry is collected meanwhile
	stale(t, c)
	c.Confirm(ipA) // enters Reachable: ReachableTime is drawn again
	if c.ReachableTime() == first {
		t.Errorf("ReachableTime %v not redrawn after 3h", first)
	}
	if c.Clock() != clk {
		t.Error("Clock")
	}
}

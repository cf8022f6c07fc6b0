package neigh

import (
	"net/netip"
	"slices"
	"sync"
	"testing"

	"ustack/wire"
)

// Output's lock-free path (Cache.hot) must behave exactly as the locked
// one: these tests send through it repeatedly, change the entry under it,
// and check that the next packet sees the change.

// resolved makes ipA Reachable at macA and sends once, so that the entry
// is in its hot slot.
func resolved(t *testing.T, c *Cache, r *recorder) {
	t.Helper()
	c.Output(ipA, wire.EtherTypeIPv4, pkt(0))
	c.Update(ipA, macA, UpdateFlags{Solicited: true, Override: true})
	c.Output(ipA, wire.EtherTypeIPv4, pkt(1))
	if _, p, _ := r.take(); len(p) != 2 || c.hot[hotIndex(ipA)].Load() == nil {
		t.Fatalf("sent %v; hot slot empty", p)
	}
}

func TestHotPathSeesStale(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	resolved(t, c, r)
	clk.Advance(c.ReachableTime())
	wantState(t, c, ipA, Stale)
	// The first packet to a Stale entry starts Delay (RFC 4861 §7.3.3):
	// the hot path must not send it as if nothing happened.
	c.Output(ipA, wire.EtherTypeIPv4, pkt(2))
	wantState(t, c, ipA, Delay)
	c.Output(ipA, wire.EtherTypeIPv4, pkt(3)) // Delay: the hot path again
	if _, p, _ := r.take(); !slices.Equal(p, []sent{{macA, wire.EtherTypeIPv4, 2}, {macA, wire.EtherTypeIPv4, 3}}) {
		t.Errorf("sent %v", p)
	}
}

func TestHotPathSeesNewAddress(t *testing.T) {
	c, _, r := newCache(t, Config{})
	resolved(t, c, r)
	c.Update(ipA, macA2, UpdateFlags{Solicited: true, Override: true})
	c.Output(ipA, wire.EtherTypeIPv4, pkt(2))
	if _, p, _ := r.take(); !slices.Equal(p, []sent{{macA2, wire.EtherTypeIPv4, 2}}) {
		t.Errorf("sent %v, want packet 2 to the new address", p)
	}
}

func TestHotPathSeesRemoveFailAndClose(t *testing.T) {
	c, clk, r := newCache(t, Config{})
	resolved(t, c, r)
	c.Remove(ipA)
	c.Output(ipA, wire.EtherTypeIPv4, pkt(2))
	wantState(t, c, ipA, Incomplete)
	if s, p, _ := r.take(); len(p) != 0 || len(s) != 1 {
		t.Fatalf("after Remove: sent %v, solicited %v; want queued and solicited", p, s)
	}
	clk.Advance(3 * DefaultRetransTimer) // resolution fails
	wantState(t, c, ipA, Failed)
	c.Output(ipA, wire.EtherTypeIPv4, pkt(3))
	if _, p, _ := r.take(); len(p) != 0 {
		t.Fatalf("Failed entry: sent %v", p)
	}
	c.Update(ipA, macA, UpdateFlags{Solicited: true, Override: true})
	c.Output(ipA, wire.EtherTypeIPv4, pkt(4))
	r.take()
	c.Close()
	c.Output(ipA, wire.EtherTypeIPv4, pkt(5))
	if _, p, _ := r.take(); len(p) != 0 || stat(c, "closed_drops") != 1 {
		t.Errorf("after Close: sent %v, closed_drops %d", p, stat(c, "closed_drops"))
	}
}

// TestHotPathCollisions: more neighbours than hot slots, sent to in
// turn, each packet to its own neighbour's address.
func TestHotPathCollisions(t *testing.T) {
	c, _, r := newCache(t, Config{})
	const n = 4 * hotSlots
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}) }
	mac := func(i int) wire.MAC { return wire.MAC{0x02, 0, 0, 0, 1, byte(i)} }
	for i := range n {
		if err := c.AddStatic(addr(i), mac(i)); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		for i := range n {
			c.Output(addr(i), wire.EtherTypeIPv4, pkt(byte(i)))
		}
		_, p, _ := r.take()
		if len(p) != n {
			t.Fatalf("round %d: %d sent, want %d", round, len(p), n)
		}
		for i, s := range p {
			if s.MAC != mac(int(s.ID)) || int(s.ID) != i {
				t.Fatalf("round %d: packet %d went to %v", round, s.ID, s.MAC)
			}
		}
	}
}

// TestHotPathConcurrent: senders on the hot path while the entry's
// address changes back and forth; every packet goes to one of the two
// addresses, and once the changes stop, to the last one (run with -race).
func TestHotPathConcurrent(t *testing.T) {
	c, _, r := newCache(t, Config{})
	resolved(t, c, r)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				c.Output(ipA, wire.EtherTypeIPv4, pkt(7))
			}
		}()
	}
	for i := range 200 {
		m := macA
		if i%2 == 0 {
			m = macA2
		}
		c.Update(ipA, m, UpdateFlags{Solicited: true, Override: true})
	}
	wg.Wait()
	_, p, _ := r.take()
	if len(p) != 2000 {
		t.Fatalf("%d sent, want 2000", len(p))
	}
	for _, s := range p {
		if s.MAC != macA && s.MAC != macA2 {
			t.Fatalf("sent to %v", s.MAC)
		}
	}
	c.Output(ipA, wire.EtherTypeIPv4, pkt(8))
	if _, p, _ := r.take(); len(p) != 1 || p[0].MAC != macA {
		t.Errorf("after the changes: sent %v, want to %v", p, macA)
	}
}

func TestPackUnpack(t *testing.T) {
	for _, st := range []State{None, Reachable, Permanent, Failed} {
		for _, m := range []wire.MAC{{}, macA, {0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa}} {
			if gs, gm := unpack(pack(st, m)); gs != st || gm != m {
				t.Errorf("unpack(pack(%v, %v)) = %v, %v", st, m, gs, gm)
			}
		}
	}
}

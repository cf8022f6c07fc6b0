package route

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

func TestLookup(t *testing.T) {
	var tb Table
	for _, r := range []Route{
		{Dst: mustPrefix("0.0.0.0/0"), Gateway: mustAddr("10.0.0.1"), IfIndex: 1, Metric: 100},
		{Dst: mustPrefix("0.0.0.0/0"), Gateway: mustAddr("10.0.1.1"), IfIndex: 2, Metric: 50},
		{Dst: mustPrefix("10.0.0.0/24"), IfIndex: 1, Origin: OriginConnected},
		{Dst: mustPrefix("10.0.1.0/24"), IfIndex: 2, Origin: OriginConnected},
		{Dst: mustPrefix("10.0.1.128/25"), Gateway: mustAddr("10.0.0.9"), IfIndex: 1},
		{Dst: mustPrefix("192.0.2.7/32"), Gateway: mustAddr("10.0.0.7"), IfIndex: 1},
		{Dst: mustPrefix("2001:db8::/32"), IfIndex: 3},
		{Dst: mustPrefix("::/0"), Gateway: mustAddr("fe80::1"), IfIndex: 3},
	} {
		if err := tb.Add(r); err != nil {
			t.Fatalf("Add(%v): %v", r, err)
		}
	}
	tests := []struct {
		dst     string
		want    string // Dst of the expected route
		wantIf  int
		wantNot bool
	}{
		{"10.0.0.5", "10.0.0.0/24", 1, false},
		{"10.0.1.5", "10.0.1.0/24", 2, false},
		{"10.0.1.200", "10.0.1.128/25", 1, false},
		{"192.0.2.7", "192.0.2.7/32", 1, false},
		{"192.0.2.8", "0.0.0.0/0", 2, false}, // lower metric default wins
		{"2001:db8::1", "2001:db8::/32", 3, false},
		{"2001:db9::1", "::/0", 3, false},
		{"::ffff:10.0.0.5", "10.0.0.0/24", 1, false}, // v4-mapped unmapped
	}
	for _, tc := range tests {
		r, ok := tb.Lookup(mustAddr(tc.dst))
		if !ok {
			t.Errorf("Lookup(%s): no route", tc.dst)
			continue
		}
		if r.Dst.String() != tc.want || r.IfIndex != tc.wantIf {
			t.Errorf("Lookup(%s) = %v, want %s on if %d", tc.dst, r, tc.want, tc.wantIf)
		}
	}
	if err := tb.Add(Route{Dst: mustPrefix("10.0.0.0/24"), IfIndex: 1, Origin: OriginConnected}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate Add = %v, want ErrExists", err)
	}
	if err := tb.Delete(Route{Dst: mustPrefix("0.0.0.0/0"), Gateway: mustAddr("10.0.1.1"), IfIndex: 2, Metric: 50}); err != nil {
		t.Fatal(err)
	}
	if r, _ := tb.Lookup(mustAddr("192.0.2.8")); r.IfIndex != 1 {
		t.Errorf("after delete, default = %v, want via if 1", r)
	}
	if n := tb.DeleteFunc(func(r Route) bool { return r.IfIndex == 1 }); n != 4 {
		t.Errorf("DeleteFunc removed %d, want 4", n)
	}
	if _, ok := tb.Lookup(mustAddr("192.0.2.8")); ok {
		t.Errorf("route to 192.0.2.8 remains after removing interface 1")
	}
	if err := tb.Add(Route{Dst: mustPrefix("10.0.0.0/8"), Gateway: mustAddr("fe80::1"), IfIndex: 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("mixed-family gateway accepted: %v", err)
	}
}

// TestLookupMatchesScan compares the trie with a linear longest-prefix scan
// over random tables and addresses.
func TestLookupMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		var tb Table
		var all []Route
		for i := 0; i < 200; i++ {
			var a [4]byte
			v := rng.Uint32() & 0x0f0f0fff // cluster to get overlaps
			a[0], a[1], a[2], a[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
			p := netip.PrefixFrom(netip.AddrFrom4(a), rng.IntN(33)).Masked()
			r := Route{Dst: p, IfIndex: 1 + rng.IntN(4), Metric: rng.IntN(3)}
			if tb.Add(r) == nil {
				all = append(all, r)
			}
		}
		// Delete half of them (by path copying) before comparing.
		if round%2 == 1 {
			kept := all[:0]
			for j, r := range all {
				if j%2 == 0 {
					if err := tb.Delete(r); err != nil {
						t.Fatalf("Delete(%v): %v", r, err)
					}
				} else {
					kept = append(kept, r)
				}
			}
			all = kept
			if got := len(tb.Routes()); got != len(all) {
				t.Fatalf("%d routes after deleting, want %d", got, len(all))
			}
		}
		for i := 0; i < 2000; i++ {
			v := rng.Uint32() & 0x0f0f0fff
			dst := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			var best *Route
			for j := range all {
				r := &all[j]
				if !r.Dst.Contains(dst) {
					continue
				}
				if best == nil || r.Dst.Bits() > best.Dst.Bits() ||
					(r.Dst.Bits() == best.Dst.Bits() && r.Metric < best.Metric) {
					best = r
				}
			}
			got, ok := tb.Lookup(dst)
			if (best != nil) != ok {
				t.Fatalf("Lookup(%v) ok=%v, scan found %v", dst, ok, best)
			}
			if ok && (got.Dst != best.Dst || got.Metric != best.Metric) {
				t.Fatalf("Lookup(%v) = %v, scan = %v", dst, got, *best)
			}
		}
	}
}

func TestConcurrentLookup(t *testing.T) {
	var tb Table
	tb.Add(Route{Dst: mustPrefix("0.0.0.0/0"), Gateway: mustAddr("10.0.0.1"), IfIndex: 1})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, ok := tb.Lookup(mustAddr("198.51.100.1")); !ok {
					t.Error("default route vanished during concurrent updates")
					return
				}
			}
		}()
	}
	for i := 0; i < 500; i++ {
		r := Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), IfIndex: 2}
		tb.Add(r)
		if i%2 == 0 {
			tb.Delete(r)
		}
	}
	close(stop)
	wg.Wait()
}

func TestLookupAllocs(t *testing.T) {
	var tb Table
	tb.Add(Route{Dst: mustPrefix("10.0.0.0/8"), IfIndex: 1})
	dst := mustAddr("10.1.2.3")
	if n := testing.AllocsPerRun(100, func() { tb.Lookup(dst) }); n != 0 {
		t.Errorf("Lookup allocates %v times, want 0", n)
	}
}

// BenchmarkLookup: a lookup in a table of 10k IPv4 routes.
func BenchmarkLookup(b *testing.B) {
	var tb Table
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 10000; i++ {
		v := rng.Uint32()
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 8+rng.IntN(25)).Masked()
		tb.Add(Route{Dst: p, IfIndex: 1})
	}
	tb.Add(Route{Dst: mustPrefix("0.0.0.0/0"), IfIndex: 2})
	dst := mustAddr("203.0.113.77")
	b.ReportAllocs()
	for b.Loop() {
		tb.Lookup(dst)
	}
}

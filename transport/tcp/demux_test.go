package tcp

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"ustack/internal/seqnum"
	"ustack/wire"
)

// nthID is a distinct tuple for every n < 2^32: peers across a /8, ports
// above 1024.
func nthID(n uint32) connID {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], 10<<24|n>>6)
	return connID{local: netip.AddrPortFrom(localIP, 443),
		remote: netip.AddrPortFrom(netip.AddrFrom4(a), uint16(1024+n%64))}
}

func newDemux() *demux {
	d := new(demux)
	d.init(0x1234567)
	return d
}

// TestDemuxMillion inserts a million connections and finds each again,
// and reports the memory an entry takes.
func TestDemuxMillion(t *testing.T) {
	const n = 1 << 20
	d := newDemux()
	c := new(Conn) // the table stores pointers: one value serves every key
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := uint32(0); i < n; i++ {
		k := keyOf(nthID(i))
		if !d.reserve(k) {
			t.Fatalf("reserve %d failed", i)
		}
		d.publish(k, c)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if d.len() != n {
		t.Fatalf("len = %d, want %d", d.len(), n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per entry", per)
	if per > 128 {
		t.Errorf("%.0f bytes per entry, want at most 128", per)
	}
	for i := uint32(0); i < n; i++ {
		if got, _ := d.lookup(keyOf(nthID(i))); got != c {
			t.Fatalf("lookup %d = %p", i, got)
		}
	}
	if got, res := d.lookup(keyOf(nthID(n))); got != nil || res {
		t.Fatalf("lookup of a missing tuple = %p, %v", got, res)
	}
	// Shards share the load.
	lo, hi := n, 0
	for i := range d.shards {
		l := len(d.shards[i].m)
		lo, hi = min(lo, l), max(hi, l)
	}
	if hi > 2*lo {
		t.Errorf("shard sizes from %d to %d: poor spread", lo, hi)
	}
	for i := uint32(0); i < n; i += 2 {
		if !d.remove(keyOf(nthID(i)), c) {
			t.Fatalf("remove %d failed", i)
		}
	}
	if d.len() != n/2 {
		t.Fatalf("len = %d after removing half", d.len())
	}
}

// TestDemuxConcurrent runs lookups on several goroutines while others
// insert and remove (run with -race).
func TestDemuxConcurrent(t *testing.T) {
	d := newDemux()
	conns := make([]*Conn, 64)
	for i := range conns {
		conns[i] = new(Conn)
	}
	const stable = 20000
	for i := uint32(0); i < stable; i++ {
		k := keyOf(nthID(i))
		d.reserve(k)
		d.publish(k, conns[i%64])
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 3 {
				for i := uint32(g); i < stable; i += 3 {
					if c, _ := d.lookup(keyOf(nthID(i))); c != conns[i%64] {
						t.Errorf("round %d: lookup %d = %p", r, i, c)
						return
					}
				}
			}
		}()
	}
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := uint32(1<<24 + g<<20)
			for i := uint32(0); i < 5000; i++ {
				k := keyOf(nthID(base + i))
				if !d.reserve(k) {
					t.Errorf("reserve %d failed", base+i)
					return
				}
				d.publish(k, conns[0])
				if i%2 == 0 && !d.remove(k, conns[0]) {
					t.Errorf("remove %d failed", base+i)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		d.each(func(*Conn) { n++ })
		if n < stable {
			t.Errorf("each saw %d connections, want at least %d", n, stable)
		}
	}()
	wg.Wait()
	if want := stable + 2*2500; d.len() != want {
		t.Errorf("len = %d, want %d", d.len(), want)
	}
}

// TestDemuxReserve: a reserved tuple holds segments until it is
// published, refuses a second reservation, and releases them when
// dropped.
func TestDemuxReserve(t *testing.T) {
	d := newDemux()
	k := keyOf(nthID(7))
	if !d.reserve(k) {
		t.Fatal("reserve failed")
	}
	if d.reserve(k) {
		t.Fatal("second reserve succeeded")
	}
	if c, res := d.lookup(k); c != nil || !res {
		t.Fatalf("lookup = %p, %v; want nil, reserved", c, res)
	}
	for i := range maxParked {
		if ok, full := d.park(k, &segment{seq: 100 + seqValue(i)}); !ok || full {
			t.Fatalf("park %d = %v, %v", i, ok, full)
		}
	}
	if ok, full := d.park(k, &segment{}); ok || !full {
		t.Fatalf("park beyond the bound = %v, %v; want false, true", ok, full)
	}
	c := new(Conn)
	segs := d.publish(k, c)
	if len(segs) != maxParked || segs[0].seq != 100 || segs[maxParked-1].seq != 100+maxParked-1 {
		t.Fatalf("publish returned %d segments", len(segs))
	}
	if ok, full := d.park(k, &segment{}); ok || full {
		t.Fatalf("park on a published tuple = %v, %v", ok, full)
	}
	if d.remove(k, nil) {
		t.Fatal("remove with the wrong connection succeeded")
	}
	if !d.remove(k, c) || d.len() != 0 {
		t.Fatal("remove failed")
	}
	// A dropped reservation releases what it parked.
	d.reserve(k)
	pkt := seg{src: netip.MustParseAddrPort("10.0.0.9:1"), dst: netip.MustParseAddrPort("10.0.0.1:2"),
		flags: wire.TCPFlagACK, payload: []byte("x")}.packet()
	d.park(k, &segment{pkt: pkt, payloadLen: 1})
	if !d.remove(k, nil) {
		t.Fatal("remove of a reservation failed")
	}
}

type seqValue = seqnum.Value

func BenchmarkDemuxLookup(b *testing.B) {
	const n = 1 << 20
	d := newDemux()
	c := new(Conn)
	keys := make([]tupleKey, n)
	for i := range keys {
		keys[i] = keyOf(nthID(uint32(i)))
		d.reserve(keys[i])
		d.publish(keys[i], c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if got, _ := d.lookup(keys[i&(n-1)]); got != c {
				b.Fatal("miss")
			}
			i += 7919
		}
	})
}

func BenchmarkKeyOf(b *testing.B) {
	id := nthID(12345)
	b.ReportAllocs()
	for b.Loop() {
		_ = keyOf(id)
	}
}

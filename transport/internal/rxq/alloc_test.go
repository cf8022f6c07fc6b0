//go:build !race

// Allocation tests run without the race detector, as elsewhere in ustack.

package rxq_test

import (
	"net/netip"
	"testing"

	"ustack/buf"
	"ustack/transport/internal/rxq"
)

// TestPushPopAllocs: once the queue has held as many packets, pushing and
// popping allocate nothing.
func TestPushPopAllocs(t *testing.T) {
	q := rxq.New[netip.AddrPort](1 << 20)
	defer q.Close()
	from := netip.MustParseAddrPort("10.0.0.2:9")
	ps := [3]*buf.Packet{packet(100), packet(200), packet(300)}
	cycle := func() {
		for _, p := range ps {
			q.Push(p, from)
		}
		<-q.Readable()
		for i := range ps {
			p, _, ok := q.Pop()
			if !ok {
				t.Fatal("queue empty")
			}
			ps[i] = p
		}
	}
	cycle()
	if n := testing.AllocsPerRun(1000, cycle); n != 0 {
		t.Errorf("push/pop: %v allocations per cycle, want 0", n)
	}
	for _, p := range ps {
		p.Release()
	}
}

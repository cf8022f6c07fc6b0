//go:build !race

// Allocation tests run without the race detector: under -race, sync.Pool
// drops a share of what it is given on purpose, so pooled paths allocate.

package memlink_test

import (
	"runtime/debug"
	"testing"
	"testing/synctest"

	"ustack/buf"
	"ustack/link"
	"ustack/link/internal/memlink"
	"ustack/wire"
)

// TestHashAllocs: picking a frame's queue allocates nothing, whether the
// headers are in one view or split over two, and neither does a push onto
// a multi-queue link and the delivery to the dispatcher.
func TestHashAllocs(t *testing.T) {
	f4 := ipFrame(true, 1, wire.IPProtoTCP, ap("10.0.0.1:40000"), ap("10.0.0.2:80"), 0)
	f6 := ipFrame(true, 0, wire.IPProtoUDP, ap("[2001:db8::1]:40000"), ap("[2001:db8::2]:80"), 0)
	sum := 0
	if n := testing.AllocsPerRun(1000, func() {
		sum += memlink.QueueOf(f4, link.TypeEthernet, 4) + memlink.QueueOf(f6, link.TypeEthernet, 4)
		sum += memlink.QueueOf(f4[wire.EthernetHeaderLen+wire.VLANTagLen:], link.TypeIP, 7)
	}); n != 0 {
		t.Errorf("QueueOf: %v allocations, want 0", n)
	}

	synctest.Test(t, func(t *testing.T) {
		defer debug.SetGCPercent(debug.SetGCPercent(-1)) // sync.Pool keeps what it holds
		var rx, tx link.Stats
		q := memlink.NewConfig(&stubEP{}, &rx, memlink.Config{Len: 64, Queues: 4, Type: link.TypeEthernet}, func(*buf.Packet) {})
		defer q.Close()
		q.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) { link.ReleaseAll(pkts, 0) }))
		batch := make([]*buf.Packet, 3)
		accept := func(*buf.Packet) bool { return true }
		push := func() {
			batch[0] = buf.FromBytes(f4)
			// Headers split over two views: the hash copies them to
			// the stack.
			batch[1] = buf.FromBytes(f6[:20])
			batch[1].Concat(buf.FromBytes(f6[20:]))
			batch[2] = buf.FromBytes(f6)
			q.Push(batch, accept, &tx)
			synctest.Wait()
		}
		for range 100 {
			push()
		}
		if n := testing.AllocsPerRun(1000, push); n != 0 {
			t.Errorf("Push and deliver on 4 queues: %v allocations per batch, want 0", n)
		}
		if rx.RxPackets.Load() == 0 {
			t.Fatal("nothing delivered")
		}
	})
}

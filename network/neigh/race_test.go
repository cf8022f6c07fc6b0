package neigh

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"ustack/wire"
)

// TestConcurrentOutput runs Output from many goroutines while another
// resolves, confirms and moves time, and checks that every packet is
// accounted for exactly once: sent, failed, dropped from a full queue,
// refused by a full table, or still queued at Close. Run it with -race.
func TestConcurrentOutput(t *testing.T) {
	c, clk, r := newCache(t, Config{MaxQueue: 4, MaxEntries: 8})
	const (
		workers = 8
		each    = 400
		targets = 16
	)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}) }
	mac := func(i int) wire.MAC { return wire.MAC{0x02, 0, 0, 0, 0, byte(1 + i)} }

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var ctl sync.WaitGroup
	ctl.Add(1)
	go func() {
		defer ctl.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stop:
				return
			default:
			}
			i := rng.IntN(targets)
			switch rng.IntN(5) {
			case 0:
				c.Update(addr(i), mac(i), UpdateFlags{Solicited: true, Override: true})
			case 1:
				c.Update(addr(i), mac(i), UpdateFlags{Create: true})
			case 2:
				c.Confirm(addr(i))
			case 3:
				c.Lookup(addr(i))
				c.Entries()
			case 4:
				clk.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for n := 0; n < each; n++ {
				c.Output(addr(rng.IntN(targets)), wire.EtherTypeIPv4, pkt(byte(w)))
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	ctl.Wait()

	queued := stat(c, "queued")
	_, p, f := r.take()
	total := uint64(len(p)) + uint64(len(f)) + stat(c, "queue_drops") + stat(c, "table_full") + queued
	if total != workers*each {
		t.Errorf("accounted for %d packets (sent %d, failed %d, queue drops %d, table full %d, queued %d), want %d",
			total, len(p), len(f), stat(c, "queue_drops"), stat(c, "table_full"), queued, workers*each)
	}
	for _, s := range p {
		if s.MAC[0] != 0x02 {
			t.Fatalf("sent to %v", s.MAC)
		}
	}
	if n := uint64(c.Len()); n > 8 {
		t.Errorf("%d entries, limit 8", n)
	}
}

package fault

import (
	"testing"
	"testing/synctest"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/link"
	"ustack/link/pipe"
)

// TestBridge joins two pipes, a1—a2 and b1—b2, by bridging a2 and b1, and
// sends through it both ways: a1→b2 is delayed 10ms, b2→a1 loses every
// frame. The pipes' reader goroutines run in a synctest bubble; time is the
// fake clock's.
func TestBridge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		a1, a2 := pipe.New(pipe.Config{})
		b1, b2 := pipe.New(pipe.Config{})
		defer func() {
			for _, ep := range []link.Endpoint{a1, a2, b1, b2} {
				ep.Close()
			}
		}()
		atA, atB := &collector{clk: clk}, &collector{clk: clk}
		a1.Attach(atA)
		b2.Attach(atB)
		br := NewBridge(a2, b1, Config{
			Tx:    Impairment{Delay: 10 * time.Millisecond},
			Rx:    Impairment{Loss: 1},
			Clock: clk,
		})

		a1.WriteBatch(frames(0, 5))
		synctest.Wait() // the frames wait in the bridge
		if len(atB.got) != 0 {
			t.Fatal("frames crossed before their delay")
		}
		clk.Advance(10 * time.Millisecond)
		synctest.Wait()
		if got := seqs(atB.got); !equal(got, []int{0, 1, 2, 3, 4}) {
			t.Fatalf("a1→b2 delivered %v", got)
		}
		if atB.got[0].at != 10*time.Millisecond {
			t.Errorf("arrived at %v, want 10ms", atB.got[0].at)
		}

		b2.WriteBatch(frames(0, 3))
		synctest.Wait()
		clk.Advance(time.Second)
		synctest.Wait()
		if len(atA.got) != 0 {
			t.Errorf("b2→a1 delivered %d frames through a lossy direction", len(atA.got))
		}

		br.Stop()
		br.Stop() // idempotent
		a1.WriteBatch(frames(0, 2))
		synctest.Wait()
		clk.Advance(time.Second)
		synctest.Wait()
		if len(atB.got) != 5 {
			t.Errorf("frames crossed after stop: %d", len(atB.got))
		}
		if a2.LinkStats().RxDrops.Load() != 2 {
			t.Errorf("a2 RxDrops = %d after stop, want 2 (detached)", a2.LinkStats().RxDrops.Load())
		}
		// The bridged links are still open.
		if _, err := b1.WriteBatch([]*buf.Packet{frame(9)}); err != nil {
			t.Errorf("b1 closed by stop: %v", err)
		}
	})
}

func TestBridgeTypeMismatch(t *testing.T) {
	a1, a2 := pipe.New(pipe.Config{})
	b1, b2 := pipe.New(pipe.Config{Type: link.TypeIP})
	defer func() {
		for _, ep := range []link.Endpoint{a1, a2, b1, b2} {
			ep.Close()
		}
	}()
	defer func() {
		if recover() == nil {
			t.Error("Bridge between Ethernet and IP links did not panic")
		}
	}()
	NewBridge(a2, b1, Config{})
}

// TestOverPipe wraps one side of a pipe: the decorator's Rx direction runs
// on the pipe's reader goroutine, the stack above answers inline.
func TestOverPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		a, b := pipe.New(pipe.Config{})
		f := New(a, Config{Tx: Impairment{Delay: time.Millisecond}, Clock: clk})
		defer f.Close()
		defer b.Close()
		f.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
			ep.WriteBatch(pkts) // echo through the delay
		}))
		atB := &collector{clk: clk}
		b.Attach(atB)
		b.WriteBatch(frames(0, 3))
		synctest.Wait()
		if len(atB.got) != 0 {
			t.Fatal("echo came back without the delay")
		}
		clk.Advance(time.Millisecond)
		synctest.Wait()
		if got := seqs(atB.got); !equal(got, []int{0, 1, 2}) {
			t.Errorf("echo: %v", got)
		}
		if f.LinkStats() != a.LinkStats() {
			t.Error("LinkStats is not the inner link's")
		}
	})
}

package loopback

import (
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"

	"ustack/buf"
	"ustack/link"
)

type recorder struct {
	mu      sync.Mutex
	seqs    []int
	flags   []buf.Flags
	batches []int
}

func (r *recorder) DeliverBatch(ep link.Endpoint, pkts []*buf.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, len(pkts))
	for _, p := range pkts {
		r.seqs = append(r.seqs, int(binary.BigEndian.Uint32(p.Pullup(4))))
		r.flags = append(r.flags, p.Flags)
		p.Release()
	}
}

func packet(i, n int) *buf.Packet {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, uint32(i))
	return buf.FromBytes(b)
}

func TestProperties(t *testing.T) {
	e := New(0)
	defer e.Close()
	if e.Type() != link.TypeIP || e.MTU() != DefaultMTU || !e.HardwareAddr().IsZero() ||
		!e.Capabilities().Has(link.CapLoopback) || e.Name() != "lo" || e.HeaderRoom() != 0 {
		t.Errorf("type %v mtu %d mac %v caps %v name %q", e.Type(), e.MTU(), e.HardwareAddr(), e.Capabilities(), e.Name())
	}
	f := New(1500)
	defer f.Close()
	if f.MTU() != 1500 {
		t.Error("MTU not honoured")
	}
	var _ link.Counted = e
}

func TestLoopsBackInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := New(1500)
		defer e.Close()
		var r recorder
		e.Attach(&r)
		var pkts []*buf.Packet
		for i := range 150 {
			pkts = append(pkts, packet(i, 20+i))
		}
		pkts = append(pkts, packet(150, 1501), packet(151, 1500)) // one too long
		if n, err := e.WriteBatch(pkts); n != 151 || err != nil {
			t.Fatalf("WriteBatch = %d, %v; want 151, nil", n, err)
		}
		synctest.Wait()
		if len(r.seqs) != 151 {
			t.Fatalf("got %d packets back, want 151", len(r.seqs))
		}
		for i, s := range r.seqs {
			want := i
			if i == 150 {
				want = 151
			}
			if s != want || r.flags[i] != buf.FlagLoopback {
				t.Fatalf("packet %d: seq %d flags %v", i, s, r.flags[i])
			}
		}
		for _, b := range r.batches {
			if b > link.MaxBatch {
				t.Errorf("batch of %d", b)
			}
		}
		s := e.LinkStats()
		if s.TxErrors.Load() != 1 || s.TxPackets.Load() != 151 || s.RxPackets.Load() != 151 {
			t.Errorf("tx errors %d, tx %d, rx %d", s.TxErrors.Load(), s.TxPackets.Load(), s.RxPackets.Load())
		}
	})
}

// TestSendFromReceive: the dispatcher writes on the same endpoint from
// DeliverBatch, as a stack answering itself does.
func TestSendFromReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := New(0)
		defer e.Close()
		done := make(chan struct{})
		count := 0
		e.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
			count += len(pkts)
			if count >= 50 {
				link.ReleaseAll(pkts, 0)
				close(done)
				return
			}
			ep.WriteBatch(pkts)
		}))
		e.WriteBatch([]*buf.Packet{packet(0, 40)})
		<-done
	})
}

func TestQueueFullAndDetach(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := New(0)
		defer e.Close()
		unblock := make(chan struct{})
		var r recorder
		first := true
		e.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
			if first {
				first = false
				<-unblock
			}
			r.DeliverBatch(ep, pkts)
		}))
		e.WriteBatch([]*buf.Packet{packet(0, 40)})
		synctest.Wait()
		var pkts []*buf.Packet
		for i := range queueLen + 10 {
			pkts = append(pkts, packet(i+1, 40))
		}
		if n, _ := e.WriteBatch(pkts); n != queueLen {
			t.Errorf("queued %d, want %d", n, queueLen)
		}
		if got := e.LinkStats().TxDrops.Load(); got != 10 {
			t.Errorf("TxDrops = %d, want 10", got)
		}
		close(unblock)
		synctest.Wait()
		if len(r.seqs) != queueLen+1 {
			t.Errorf("delivered %d", len(r.seqs))
		}
		e.Attach(nil)
		e.WriteBatch([]*buf.Packet{packet(0, 40)})
		synctest.Wait()
		if got := e.LinkStats().RxDrops.Load(); got != 1 || len(r.seqs) != queueLen+1 {
			t.Errorf("detached: RxDrops = %d, delivered %d", got, len(r.seqs))
		}
	})
}

func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	e := New(0)
	e.Attach(&recorder{})
	e.WriteBatch([]*buf.Packet{packet(0, 40)})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Errorf("%d goroutines after Close, had %d", after, before)
	}
	if n, err := e.WriteBatch([]*buf.Packet{packet(0, 40)}); n != 0 || !errors.Is(err, link.ErrClosed) {
		t.Errorf("WriteBatch after Close = %d, %v", n, err)
	}
	if err := e.Close(); !errors.Is(err, link.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}

package memlink_test

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"ustack/buf"
	"ustack/link"
	"ustack/link/internal/memlink"
)

// stubEP stands for the endpoint that owns the queue.
type stubEP struct{ link.Endpoint }

type recorder struct {
	mu      sync.Mutex
	eps     []link.Endpoint
	seqs    []int
	batches []int
	block   chan struct{} // if non-nil, DeliverBatch waits on it
}

func (r *recorder) DeliverBatch(ep link.Endpoint, pkts []*buf.Packet) {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eps = append(r.eps, ep)
	r.batches = append(r.batches, len(pkts))
	for _, p := range pkts {
		r.seqs = append(r.seqs, int(binary.BigEndian.Uint32(p.Pullup(4))))
		p.Release()
	}
}

func frame(seq, n int) *buf.Packet {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, uint32(seq))
	return buf.FromBytes(b)
}

func frames(from, count, n int) []*buf.Packet {
	var ps []*buf.Packet
	for i := range count {
		ps = append(ps, frame(from+i, n))
	}
	return ps
}

// atMost100 accepts frames of 4 to 100 bytes.
func atMost100(p *buf.Packet) bool { return p.Len() >= 4 && p.Len() <= 100 }

func TestPushAndDeliver(t *testing.T) {
	tests := []struct {
		name      string
		queueLen  int
		pkts      []*buf.Packet
		wantSent  int
		wantSeqs  int // frames delivered: seqs 0..wantSeqs-1 in order
		errs      uint64
		drops     uint64
		txBytes   uint64
		batchesAt int // at least this many batches
	}{
		{"in order in batches", 1000, frames(0, 150, 10), 150, 150, 0, 0, 1500, 3},
		{"unfit frames counted as errors", 10,
			append(frames(0, 2, 10), frame(9, 101), frame(2, 100), buf.FromBytes([]byte{0, 0, 9})), 3, 3, 2, 0, 120, 1},
		{"full queue drops the rest", 8, frames(0, 20, 10), 8, 8, 0, 12, 80, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rx, tx link.Stats
				ep := &stubEP{}
				var prepared atomic.Int32
				q := memlink.New(ep, &rx, tc.queueLen, func(*buf.Packet) { prepared.Add(1) })
				defer q.Close()
				r := &recorder{}
				// Push before attaching a reader that runs: hold delivery
				// until everything is pushed, so the queue bound matters.
				r.block = make(chan struct{})
				q.Attach(r)
				if n := q.Push(tc.pkts, atMost100, &tx); n != tc.wantSent {
					t.Fatalf("Push = %d, want %d", n, tc.wantSent)
				}
				close(r.block)
				synctest.Wait()
				r.mu.Lock()
				defer r.mu.Unlock()
				if len(r.seqs) != tc.wantSeqs {
					t.Fatalf("delivered %d frames, want %d", len(r.seqs), tc.wantSeqs)
				}
				for i, s := range r.seqs {
					if s != i {
						t.Fatalf("frame %d has seq %d: out of order", i, s)
					}
				}
				for _, n := range r.batches {
					if n > link.MaxBatch {
						t.Errorf("batch of %d frames, over link.MaxBatch", n)
					}
				}
				if len(r.batches) < tc.batchesAt {
					t.Errorf("%d batches, want at least %d", len(r.batches), tc.batchesAt)
				}
				for _, got := range r.eps {
					if got != ep {
						t.Errorf("DeliverBatch got endpoint %v, want the queue's", got)
					}
				}
				if n := int(prepared.Load()); n != tc.wantSeqs {
					t.Errorf("prepare called %d times, want %d", n, tc.wantSeqs)
				}
				got := [...]uint64{tx.TxPackets.Load(), tx.TxBytes.Load(), tx.TxErrors.Load(), tx.TxDrops.Load(), rx.RxPackets.Load()}
				want := [...]uint64{uint64(tc.wantSent), tc.txBytes, tc.errs, tc.drops, uint64(tc.wantSeqs)}
				if got != want {
					t.Errorf("tx packets, bytes, errors, drops, rx packets = %v, want %v", got, want)
				}
			})
		})
	}
}

func TestDetachedDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rx, tx link.Stats
		q := memlink.New(&stubEP{}, &rx, 16, func(*buf.Packet) {})
		defer q.Close()
		q.Push(frames(0, 3, 10), atMost100, &tx)
		synctest.Wait()
		if got := rx.RxDrops.Load(); got != 3 {
			t.Errorf("RxDrops = %d, want 3 (nothing attached)", got)
		}
		r := &recorder{}
		q.Attach(r)
		q.Push(frames(3, 1, 10), atMost100, &tx)
		synctest.Wait()
		q.Attach(nil)
		q.Push(frames(4, 1, 10), atMost100, &tx)
		synctest.Wait()
		if len(r.seqs) != 1 || r.seqs[0] != 3 || rx.RxDrops.Load() != 4 {
			t.Errorf("delivered %v, RxDrops %d; want [3] and 4", r.seqs, rx.RxDrops.Load())
		}
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rx, tx link.Stats
		q := memlink.New(&stubEP{}, &rx, 16, func(*buf.Packet) {})
		r := &recorder{block: make(chan struct{})}
		q.Attach(r)
		q.Push(frames(0, 1, 10), atMost100, &tx)
		synctest.Wait() // the reader is inside DeliverBatch
		q.Push(frames(1, 2, 10), atMost100, &tx)
		closed := make(chan error)
		go func() { closed <- q.Close() }()
		synctest.Wait()
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a batch was being delivered", err)
		default:
		}
		if !q.Closed() {
			t.Error("Closed = false during Close")
		}
		close(r.block)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if got := rx.RxDrops.Load(); got != 2 || len(r.seqs) != 1 {
			t.Errorf("RxDrops = %d, delivered %d; want 2 queued frames dropped, 1 delivered", got, len(r.seqs))
		}
		if n := q.Push(frames(3, 1, 10), atMost100, &tx); n != 0 || tx.TxDrops.Load() != 1 {
			t.Errorf("Push after Close = %d, TxDrops %d; want 0, 1", n, tx.TxDrops.Load())
		}
		if err := q.Close(); !errors.Is(err, link.ErrClosed) {
			t.Errorf("second Close = %v, want link.ErrClosed", err)
		}
	})
}

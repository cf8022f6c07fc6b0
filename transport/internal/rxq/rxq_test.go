package rxq_test

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"ustack/buf"
	"ustack/transport/internal/rxq"
)

// packet returns a packet of n bytes.
func packet(n int) *buf.Packet { return buf.New(0, n) }

// released reports whether the queue released p (a second Release panics).
// When it had not, it releases p now, so the test leaks nothing.
func released(p *buf.Packet) (was bool) {
	defer func() { was = recover() != nil }()
	p.Release()
	return false
}

func signalled(q *rxq.Queue[int]) bool {
	select {
	case <-q.Readable():
		return true
	default:
		return false
	}
}

// step is one operation on a queue: push a packet of push bytes from from
// (push > 0), pop (pop), or set the limit (limit > 0); then the queue must
// hold bytes bytes.
type step struct {
	push, from int
	pop        bool
	limit      int
	ok         bool // push: accepted; pop: a packet came out
	wantFrom   int  // pop: its sender
	wantLen    int  // pop: its length
	bytes      int
}

func push(n, from int, ok bool, bytes int) step {
	return step{push: n, from: from, ok: ok, bytes: bytes}
}
func pop(from, n, bytes int) step {
	return step{pop: true, ok: true, wantFrom: from, wantLen: n, bytes: bytes}
}
func popEmpty() step             { return step{pop: true} }
func setLimit(n, bytes int) step { return step{limit: n, bytes: bytes} }

func TestQueue(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"empty", 100, []step{popEmpty()}},
		{"fifo", 1000, []step{
			push(10, 1, true, 10), push(20, 2, true, 30), push(30, 3, true, 60),
			pop(1, 10, 50), pop(2, 20, 30), push(40, 4, true, 70),
			pop(3, 30, 40), pop(4, 40, 0), popEmpty(),
		}},
		{"limit overshoot by one", 100, []step{
			push(60, 1, true, 60), push(60, 2, true, 120), // 60 < 100: accepted
			push(1, 3, false, 120), // 120 >= 100: refused
			pop(1, 60, 60), push(1, 4, true, 61),
			pop(2, 60, 1), pop(4, 1, 0), popEmpty(),
		}},
		{"limit exactly reached", 100, []step{
			push(100, 1, true, 100), push(1, 2, false, 100), pop(1, 100, 0),
		}},
		{"one packet over the limit", 100, []step{
			push(500, 1, true, 500), push(1, 2, false, 500), pop(1, 500, 0),
		}},
		{"limit at least 1", 0, []step{
			push(5, 1, true, 5), push(5, 2, false, 5), pop(1, 5, 0),
		}},
		{"SetLimit keeps what is queued", 1000, []step{
			push(50, 1, true, 50), push(50, 2, true, 100),
			setLimit(10, 100), push(1, 3, false, 100),
			pop(1, 50, 50), push(1, 4, false, 50), pop(2, 50, 0),
			push(1, 5, true, 1), setLimit(-3, 1), push(1, 6, false, 1),
			pop(5, 1, 0),
		}},
		{"slides down when the array is full", 1000, []step{
			push(1, 1, true, 1), push(2, 2, true, 3), push(3, 3, true, 6), push(4, 4, true, 10),
			pop(1, 1, 9), pop(2, 2, 7),
			push(5, 5, true, 12), push(6, 6, true, 18), push(7, 7, true, 25),
			pop(3, 3, 22), pop(4, 4, 18), pop(5, 5, 13), pop(6, 6, 7), pop(7, 7, 0), popEmpty(),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := rxq.New[int](tc.limit)
			defer q.Close()
			for i, s := range tc.steps {
				switch {
				case s.push > 0:
					if got := q.Push(packet(s.push), s.from); got != s.ok {
						t.Fatalf("step %d: Push(%d bytes from %d) = %v, want %v", i, s.push, s.from, got, s.ok)
					}
				case s.pop:
					p, from, ok := q.Pop()
					if ok != s.ok {
						t.Fatalf("step %d: Pop ok = %v, want %v", i, ok, s.ok)
					}
					if !ok {
						if p != nil || from != 0 {
							t.Fatalf("step %d: empty Pop = %v, %d; want nil, 0", i, p, from)
						}
						break
					}
					if from != s.wantFrom || p.Len() != s.wantLen {
						t.Fatalf("step %d: Pop = %d bytes from %d, want %d from %d", i, p.Len(), from, s.wantLen, s.wantFrom)
					}
					p.Release()
				case s.limit != 0:
					q.SetLimit(s.limit)
				}
				if got := q.Bytes(); got != s.bytes {
					t.Fatalf("step %d: Bytes = %d, want %d", i, got, s.bytes)
				}
			}
		})
	}
}

func TestRefusedPushReleases(t *testing.T) {
	q := rxq.New[int](10)
	defer q.Close()
	q.Push(packet(10), 1)
	p := packet(1)
	if q.Push(p, 2) {
		t.Fatal("Push over the limit accepted")
	}
	if !released(p) {
		t.Error("refused packet not released")
	}
}

func TestErr(t *testing.T) {
	e1, e2 := errors.New("one"), errors.New("two")
	tests := []struct {
		name string
		set  []error
		want error
	}{
		{"none", nil, nil},
		{"one", []error{e1}, e1},
		{"latest wins", []error{e1, e2}, e2},
		{"cleared by nil", []error{e1, nil}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := rxq.New[int](100)
			defer q.Close()
			for _, err := range tc.set {
				q.SetErr(err)
			}
			if got := signalled(q); got != (len(tc.set) > 0) {
				t.Errorf("Readable signalled = %v after %d SetErr", got, len(tc.set))
			}
			if got := q.TakeErr(); got != tc.want {
				t.Errorf("TakeErr = %v, want %v", got, tc.want)
			}
			if got := q.TakeErr(); got != nil {
				t.Errorf("second TakeErr = %v, want nil (read and clear)", got)
			}
		})
	}
}

func TestErrBesidePackets(t *testing.T) {
	q := rxq.New[int](100)
	defer q.Close()
	errX := errors.New("x")
	q.Push(packet(5), 1)
	q.SetErr(errX)
	p, from, ok := q.Pop()
	if !ok || from != 1 {
		t.Fatalf("Pop = %v, %d, %v; the error must not hide the packet", p, from, ok)
	}
	p.Release()
	if got := q.TakeErr(); got != errX {
		t.Errorf("TakeErr = %v, want %v", got, errX)
	}
}

func TestWakeUps(t *testing.T) {
	q := rxq.New[int](1000)
	defer q.Close()
	if signalled(q) {
		t.Fatal("new queue is readable")
	}
	for i := range 3 {
		q.Push(packet(1), i)
	}
	if !signalled(q) {
		t.Fatal("Push did not signal")
	}
	if signalled(q) {
		t.Fatal("three pushes left more than one value")
	}
	for i := range 3 {
		p, _, _ := q.Pop()
		p.Release()
		more := i < 2
		if got := signalled(q); got != more {
			t.Fatalf("after Pop %d: signalled = %v, want %v (passed on while packets remain)", i, got, more)
		}
	}
	// A refused push does not wake anyone.
	q.SetLimit(1)
	q.Push(packet(5), 0)
	signalled(q)
	q.Push(packet(5), 0)
	if signalled(q) {
		t.Error("refused Push signalled")
	}
}

func TestClose(t *testing.T) {
	q := rxq.New[int](1000)
	ps := []*buf.Packet{packet(1), packet(2), packet(3)}
	for i, p := range ps {
		q.Push(p, i)
	}
	first, _, _ := q.Pop()
	signalled(q)
	errX := errors.New("x")
	q.SetErr(errX)
	signalled(q)

	q.Close()
	if !signalled(q) {
		t.Error("Close did not signal")
	}
	if q.Bytes() != 0 {
		t.Errorf("Bytes after Close = %d", q.Bytes())
	}
	for i, p := range ps[1:] {
		if !released(p) {
			t.Errorf("queued packet %d not released by Close", i+1)
		}
	}
	if released(first) {
		t.Error("Close released a packet already popped")
	}
	if p, _, ok := q.Pop(); ok {
		t.Errorf("Pop after Close = %v", p)
	}
	late := packet(1)
	if q.Push(late, 9) {
		t.Error("Push after Close accepted")
	}
	if !released(late) {
		t.Error("packet pushed after Close not released")
	}
	if got := q.TakeErr(); got != errX {
		t.Errorf("TakeErr after Close = %v, want the pending %v", got, errX)
	}
	q.Close()
	if signalled(q) {
		t.Error("second Close signalled")
	}
}

// TestConcurrent pushes from several goroutines while several readers pop,
// each waiting on Readable (run with -race). Every packet comes out once,
// and each reader sees each sender's packets in order.
func TestConcurrent(t *testing.T) {
	const senders, each, readers = 4, 500, 3
	q := rxq.New[int](1 << 30)
	defer q.Close()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		seen     = map[[2]int]bool{}
		total    int
		done     = make(chan struct{})
		doneOnce sync.Once
	)
	for r := range readers {
		wg.Go(func() {
			last := make([]int, senders)
			for i := range last {
				last[i] = -1
			}
			for {
				select {
				case <-q.Readable():
				case <-done:
					return
				}
				for {
					p, from, ok := q.Pop()
					if !ok {
						break
					}
					seq := int(binary.BigEndian.Uint32(p.Bytes()))
					p.Release()
					if seq <= last[from] {
						t.Errorf("reader %d: from %d got %d after %d", r, from, seq, last[from])
					}
					last[from] = seq
					mu.Lock()
					if seen[[2]int{from, seq}] {
						t.Errorf("packet %d from %d popped twice", seq, from)
					}
					seen[[2]int{from, seq}] = true
					total++
					if total == senders*each {
						doneOnce.Do(func() { close(done) })
					}
					mu.Unlock()
				}
			}
		})
	}
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				p := packet(4)
				binary.BigEndian.PutUint32(p.Bytes(), uint32(i))
				if !q.Push(p, s) {
					t.Errorf("Push %d from %d refused", i, s)
				}
			}
		})
	}
	wg.Wait()
	if total != senders*each {
		t.Errorf("popped %d packets, want %d", total, senders*each)
	}
}

func TestErrQueue(t *testing.T) {
	e1, e2, e3 := errors.New("one"), errors.New("two"), errors.New("three")
	// Default: one slot, the latest error wins (SO_ERROR).
	q := rxq.New[int](100)
	q.SetErr(e1)
	q.SetErr(e2)
	if err := q.TakeErr(); err != e2 {
		t.Errorf("single slot: TakeErr = %v, want the latest", err)
	}
	if err := q.TakeErr(); err != nil {
		t.Errorf("single slot: second TakeErr = %v, want nil", err)
	}
	// An error queue keeps them in order, dropping the oldest when full.
	q = rxq.New[int](100)
	q.SetErrQueue(2)
	q.SetErr(e1)
	q.SetErr(e2)
	q.SetErr(e3)
	for _, want := range []error{e2, e3, nil} {
		select {
		case <-q.Readable():
		default:
			if want != nil {
				t.Errorf("no wake-up with %v pending", want)
			}
		}
		if err := q.TakeErr(); err != want {
			t.Errorf("TakeErr = %v, want %v", err, want)
		}
	}
}

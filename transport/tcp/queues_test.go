package tcp

import (
	"bytes"
	"testing"
	"unsafe"

	"ustack/buf"
	"ustack/internal/seqnum"
)

// TestScoreboardWindow: acknowledging moves the scoreboard's window over
// its array instead of copying the records down, and adding reuses the
// room freed in front; the records stay in order through both.
func TestScoreboardWindow(t *testing.T) {
	var sb scoreboard
	next := seqnum.Value(1000)
	addN := func(n int) {
		for range n {
			sb.add(txSeg{seqRange: seqRange{next, next + 100}})
			next += 100
		}
	}
	check := func() {
		t.Helper()
		for i := 1; i < len(sb.segs); i++ {
			if sb.segs[i].start != sb.segs[i-1].end {
				t.Fatalf("records %d and %d not contiguous: %v %v", i-1, i, sb.segs[i-1].seqRange, sb.segs[i].seqRange)
			}
		}
		if len(sb.segs) > 0 && sb.segs[len(sb.segs)-1].end != next {
			t.Fatalf("last record ends at %d, want %d", sb.segs[len(sb.segs)-1].end, next)
		}
	}
	addN(64)
	size := 0
	for i := range 1000 {
		if i == 1 {
			size = len(sb.store) // after the first growth to hold 65
		}
		// Acknowledge 60 of the 64 in flight (cutting one in two), send
		// 60 more: the array never needs to grow.
		ack := sb.segs[60].start + 50
		want := int(sb.segs[0].start.Size(ack))
		acked := 0
		capBefore, roomy := cap(sb.segs), len(sb.segs) < cap(sb.segs)
		sb.ackTo(ack, func(s *txSeg) { acked += s.len() })
		if acked != want {
			t.Fatalf("acked %d bytes, want %d", acked, want)
		}
		if roomy && cap(sb.segs) >= capBefore {
			t.Fatalf("acknowledging copied the records down (window cap %d, was %d)", cap(sb.segs), capBefore)
		}
		if sb.segs[0].start != ack {
			t.Fatalf("first record starts at %d, want %d", sb.segs[0].start, ack)
		}
		check()
		addN(60)
		check()
	}
	if len(sb.store) != size {
		t.Errorf("array grew from %d to %d records with at most 65 in flight", size, len(sb.store))
	}
	sb.ackTo(next, func(*txSeg) {})
	if !sb.empty() || cap(sb.segs) != len(sb.store) {
		t.Errorf("after acknowledging all: %d records, window cap %d of %d", len(sb.segs), cap(sb.segs), len(sb.store))
	}
}

// TestRecvQueueReuse: pushing and reading keeps reusing the queue's
// array (no allocation while the number held is bounded) and yields the
// bytes in order, across partial reads.
func TestRecvQueueReuse(t *testing.T) {
	var r recvQueue
	var want, got bytes.Buffer
	b := byte(0)
	push := func() {
		p := buf.New(0, 100)
		for i := range p.Bytes() {
			p.Bytes()[i] = b
			b++
		}
		want.Write(p.Bytes())
		r.push(p)
	}
	for range 8 {
		push()
	}
	var base *(*buf.Packet)
	out := make([]byte, 250) // not a multiple of the packet size
	for i := range 1000 {
		if i == 10 {
			base = unsafe.SliceData(r.q) // grown to what it needs
		}
		for range 2 {
			push()
		}
		// Read 250 bytes, or what fits to keep 8 ± 2 packets held.
		n := r.read(out)
		got.Write(out[:n])
	}
	for r.n > 0 {
		n := r.read(out)
		got.Write(out[:n])
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatal("bytes read differ from bytes pushed")
	}
	if unsafe.SliceData(r.q) != base {
		t.Errorf("the queue's array changed: pushes reallocated it")
	}
	r.release()
}

package proto

import "sync"

// Batch carries one received batch of frames up the stack, so that the
// transports can leave per-batch work — TCP's acknowledgement decision and
// the data it may send in answer — until every frame of the batch has been
// processed, as Linux answers one GRO packet rather than each segment in
// it. The stack's dispatcher (stack.Interface.DeliverBatch) gets a Batch
// from GetBatch, calls SetLeft and hands it to the network protocol with
// each frame (IPv4's and IPv6's HandlePacketBatch), which passes it to the
// transport in PacketInfo.Batch; after the last frame it calls Flush, then PutBatch.
// Nothing may keep a Batch past its delivery (a segment held for later
// drops it).
//
// A Batch belongs to the goroutine that delivers the batch: it is not safe
// for concurrent use, and several receive queues each use their own.
type Batch struct {
	pending []BatchFlusher
	left    int  // frames of the batch after the one being processed
	pooled  bool // in the pool: a Defer now is a stale reference's
}

// SetLeft records how many frames of the batch follow the one about to be
// handed up; the deliverer calls it before each frame.
func (b *Batch) SetLeft(n int) { b.left = n }

// More reports whether frames of the batch follow the one being
// processed. Work for the last frame gains nothing from waiting: a
// transport does it at once (and then, if it deferred work for earlier
// frames, has nothing left for Flush).
func (b *Batch) More() bool { return b != nil && b.left > 0 }

// BatchFlusher is something with work deferred to the end of a batch.
type BatchFlusher interface {
	// FlushBatch does the deferred work. It runs on the goroutine that
	// delivered the batch, after the batch's last frame.
	FlushBatch()
}

// Defer arranges for f.FlushBatch to run when the batch is flushed. The
// caller avoids deferring the same f twice in one batch. On a nil Batch
// (no batch: a packet delivered on its own) it reports false and the
// caller does the work at once.
func (b *Batch) Defer(f BatchFlusher) bool {
	if b == nil {
		return false
	}
	if b.pooled {
		// Work deferred here would run at some other batch's end.
		panic("proto: Defer on a batch that was put back (a segment kept its batch past the delivery)")
	}
	b.pending = append(b.pending, f)
	return true
}

// Flush runs the deferred work in the order it was deferred. Work
// deferred while flushing runs too.
func (b *Batch) Flush() {
	for i := 0; i < len(b.pending); i++ {
		f := b.pending[i]
		b.pending[i] = nil
		f.FlushBatch()
	}
	b.pending = b.pending[:0]
	b.left = 0
}

var batches = sync.Pool{New: func() any { return new(Batch) }}

// GetBatch returns an empty Batch from a pool.
func GetBatch() *Batch {
	b := batches.Get().(*Batch)
	b.pooled = false
	return b
}

// PutBatch returns a flushed Batch to the pool.
func PutBatch(b *Batch) {
	if len(b.pending) != 0 {
		panic("proto: PutBatch of an unflushed batch")
	}
	b.pooled = true
	batches.Put(b)
}

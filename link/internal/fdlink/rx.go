package fdlink

import (
	"ustack/buf"

	"golang.org/x/sys/unix"
)

// minSmallChunk is the smallest chunk class of package buf; a small
// receive buffer uses all of it after the headroom.
const minSmallChunk = 2048

// RxBufs is the receive storage of a batch of frames. Each slot has a small
// packet, with buf.DefaultHeadroom in front, big enough for a frame of the
// link's MTU, and, when larger (GSO) frames can arrive, an overflow buffer
// for the rest of such a frame. A read scatters into both (readv,
// recvmmsg), so small frames pin only small pooled chunks and only large
// frames use the large ones. Not safe for concurrent use: it belongs to the
// reader goroutine.
type RxBufs struct {
	small, big int
	slots      []rxSlot
	iovs       []unix.Iovec // two per slot
}

type rxSlot struct{ small, big *buf.Packet }

// NewRxBufs returns storage for n frames of up to maxFrame bytes, where
// frames of up to mtuFrame bytes fit in the small buffer. Frames longer
// than maxFrame arrive truncated: Take's caller sees n == Cap().
func NewRxBufs(n, mtuFrame, maxFrame int) *RxBufs {
	small := max(mtuFrame+1, minSmallChunk-buf.DefaultHeadroom)
	big := 0
	if maxFrame+1 > small {
		big = maxFrame + 1 - small
	}
	return &RxBufs{small: small, big: big, slots: make([]rxSlot, n), iovs: make([]unix.Iovec, 2*n)}
}

// Cap is the most bytes a slot takes; a read of Cap() bytes may have been
// truncated.
func (r *RxBufs) Cap() int { return r.small + r.big }

// Iovecs makes sure slot i has its buffers and returns the iovecs to read
// into them.
func (r *RxBufs) Iovecs(i int) []unix.Iovec {
	s := &r.slots[i]
	iov := r.iovs[2*i : 2*i+2]
	if s.small == nil {
		s.small = buf.New(buf.DefaultHeadroom, r.small)
		b := s.small.Bytes()
		iov[0].Base = &b[0]
		iov[0].SetLen(len(b))
	}
	if r.big == 0 {
		return iov[:1]
	}
	if s.big == nil {
		s.big = buf.New(0, r.big)
		b := s.big.Bytes()
		iov[1].Base = &b[0]
		iov[1].SetLen(len(b))
	}
	return iov
}

// Take returns the frame of n bytes read into slot i and empties the slot
// (its buffers are replaced on the next Iovecs). The caller owns the
// packet.
func (r *RxBufs) Take(i, n int) *buf.Packet {
	s := &r.slots[i]
	p := s.small
	s.small = nil
	if n <= r.small {
		p.Truncate(n)
		return p
	}
	q := s.big
	s.big = nil
	q.Truncate(n - r.small)
	p.Concat(q)
	return p
}

// Release frees all buffers.
func (r *RxBufs) Release() {
	for i := range r.slots {
		s := &r.slots[i]
		s.small.Release()
		s.big.Release()
		*s = rxSlot{}
	}
	clear(r.iovs)
}

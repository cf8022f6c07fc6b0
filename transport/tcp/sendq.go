package tcp

import (
	"ustack/buf"
	"ustack/internal/seqnum"
)

// sendQueue holds the bytes written and not yet acknowledged, in pooled
// chunks of storage. Write copies user bytes into the chunks once; a
// segment is a packet whose views reference the chunks (Clone, then
// TrimFront and Truncate, then Concat), so sending and retransmitting copy
// nothing. A chunk's bytes past what was written may still be written
// while earlier bytes are in flight: no packet's views cover them.
//
// Copies of a payload byte between Write here and Read on a peer in the
// same process (two stacks over a pipe): 2. Write copies it into a chunk
// (1); slice, the TCP/IP/Ethernet headers (prepended in a chunk of their
// own, since the payload's chunk is shared), the link, the peer's input
// (which pulls up only headers) and its receive queue (which holds the
// packet as it came) share views; Read copies it out (2). The software
// checksum, when there is no offload, reads the bytes once more without
// copying them. stack's TestTCPPayloadCopies checks the count with buf's
// copy accounting.
type sendQueue struct {
	chunks []sqChunk
	head   seqnum.Value // sequence number of the first byte held
	n      int          // bytes held
}

// sqChunk is one piece of storage; bytes [off, end) of pkt are queued.
type sqChunk struct {
	pkt      *buf.Packet // storage; Len is its capacity; contiguous
	off, end int
}

// Chunk sizes: the pool's 16 KiB class for small queues, its 64 KiB class
// for bulk data.
const (
	chunkSmall = 16384 - 512
	chunkLarge = 65536
)

func (q *sendQueue) init(seq seqnum.Value) { q.head = seq }

// len is the number of bytes queued (sent or not).
func (q *sendQueue) len() int { return q.n }

// end is the sequence number after the last byte queued.
func (q *sendQueue) end() seqnum.Value { return q.head.Add(seqnum.Size(q.n)) }

// write appends a copy of b.
func (q *sendQueue) write(b []byte) {
	for len(b) > 0 {
		if k := len(q.chunks); k > 0 {
			ch := &q.chunks[k-1]
			if room := ch.pkt.Len() - ch.end; room > 0 {
				n := copy(ch.pkt.Bytes()[ch.end:], b)
				ch.end += n
				q.n += n
				b = b[n:]
				continue
			}
		}
		size := chunkLarge
		if q.n+len(b) < chunkSmall {
			size = chunkSmall
		}
		q.chunks = append(q.chunks, sqChunk{pkt: buf.New(0, size)})
	}
}

// slice returns a packet referencing the n bytes from seq on, which must
// be queued. The caller owns it.
func (q *sendQueue) slice(seq seqnum.Value, n int) *buf.Packet {
	off := int(q.head.Size(seq))
	var out *buf.Packet
	for i := 0; i < len(q.chunks) && n > 0; i++ {
		ch := &q.chunks[i]
		l := ch.end - ch.off
		if off >= l {
			off -= l
			continue
		}
		take := min(l-off, n)
		p := ch.pkt.Clone()
		p.TrimFront(ch.off + off)
		p.Truncate(take)
		if out == nil {
			out = p
		} else {
			out.Concat(p)
		}
		n -= take
		off = 0
	}
	return out
}

// ack drops the bytes before seq. A sequence number past the data (the
// FIN) is allowed.
func (q *sendQueue) ack(seq seqnum.Value) {
	if !seq.GreaterThan(q.head) {
		return
	}
	k := min(int(q.head.Size(seq)), q.n)
	q.head = q.head.Add(seqnum.Size(k))
	q.n -= k
	i := 0
	for k > 0 || (i < len(q.chunks)-1 && q.chunks[i].off == q.chunks[i].end) {
		ch := &q.chunks[i]
		l := ch.end - ch.off
		if k < l {
			ch.off += k
			break
		}
		k -= l
		ch.off = ch.end
		if i == len(q.chunks)-1 && ch.end < ch.pkt.Len() && q.n > 0 {
			// Keep the last chunk for more writes while data is
			// queued. Once everything is acknowledged it goes back
			// to the pool: an idle connection holds no 16 KiB chunk,
			// and the next write takes one from the pool.
			break
		}
		ch.pkt.Release()
		ch.pkt = nil
		i++
	}
	if i > 0 {
		n := copy(q.chunks, q.chunks[i:])
		clear(q.chunks[n:])
		q.chunks = q.chunks[:n]
	}
}

// release frees the storage; the queue is empty afterwards.
func (q *sendQueue) release() {
	for i := range q.chunks {
		if q.chunks[i].pkt != nil {
			q.chunks[i].pkt.Release()
		}
	}
	clear(q.chunks)
	q.chunks = q.chunks[:0]
	q.head = q.head.Add(seqnum.Size(q.n))
	q.n = 0
}

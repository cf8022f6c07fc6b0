package tcp

import (
	"slices"
	"sort"
	"time"

	"ustack/buf"
	"ustack/internal/seqnum"
)

// recvQueue holds received data: the in-order bytes Read takes, and the
// segments that arrived beyond a hole (RFC 9293 §3.10.7.4: "segments with
// higher beginning sequence numbers may be held for later processing"),
// kept sorted and without overlap, from which the SACK blocks are made
// (RFC 2018 §4).
type recvQueue struct {
	q    []*buf.Packet // in-order payloads from q[head] on; the first may be partly read
	head int           // q[:head] is consumed (nil); push reuses the room
	n    int           // bytes in q

	ooo      []oooSeg // beyond rcv.nxt, sorted, disjoint
	oooBytes int
	gen      uint64 // arrival counter: which block is the most recent
}

// oooSeg is data held beyond a hole.
type oooSeg struct {
	seq seqnum.Value
	pkt *buf.Packet
	gen uint64 // latest arrival touching it
}

func (s *oooSeg) end() seqnum.Value { return s.seq.Add(seqnum.Size(s.pkt.Len())) }

// seqRange is [start, end) of sequence space.
type seqRange struct {
	start, end seqnum.Value
}

func (r seqRange) len() int { return int(r.start.Size(r.end)) }

// push appends in-order data. It takes ownership of pkt.
// The queue's slice is reused in place (consumed entries are compacted
// away rather than sliced off), so steady-state pushes do not allocate.
func (r *recvQueue) push(pkt *buf.Packet) {
	if len(r.q) == cap(r.q) && r.head > 0 {
		k := copy(r.q, r.q[r.head:])
		clear(r.q[k:])
		r.q = r.q[:k]
		r.head = 0
	}
	r.q = append(r.q, pkt)
	r.n += pkt.Len()
}

// read copies up to len(b) bytes into b, releasing what is consumed.
func (r *recvQueue) read(b []byte) int {
	n := 0
	for n < len(b) && r.head < len(r.q) {
		p := r.q[r.head]
		k := p.CopyTo(b[n:])
		n += k
		if k == p.Len() {
			p.Release()
			r.q[r.head] = nil
			r.head++
		} else {
			p.TrimFront(k)
		}
	}
	if r.head == len(r.q) {
		r.q, r.head = r.q[:0], 0
	}
	r.n -= n
	return n
}

// insert queues out-of-order data at seq (after rcv.nxt). It takes
// ownership of pkt. Bytes already held are dropped; the first such range
// is returned for a D-SACK (RFC 2883 §4).
func (r *recvQueue) insert(seq seqnum.Value, pkt *buf.Packet) (dup seqRange, hasDup bool) {
	r.gen++
	start, end := seq, seq.Add(seqnum.Size(pkt.Len()))
	i := sort.Search(len(r.ooo), func(i int) bool { return r.ooo[i].end().GreaterThan(start) })
	var pieces [4]seqRange
	ps := pieces[:0]
	cur := start
	for j := i; j < len(r.ooo) && r.ooo[j].seq.LessThan(end) && cur.LessThan(end); j++ {
		s := &r.ooo[j]
		if cur.LessThan(s.seq) {
			ps = append(ps, seqRange{cur, s.seq})
		}
		ov := seqRange{seqnum.Max(cur, s.seq), seqnum.Min(end, s.end())}
		if !hasDup && ov.start.LessThan(ov.end) {
			dup, hasDup = ov, true
		}
		s.gen = r.gen
		cur = seqnum.Max(cur, s.end())
	}
	if cur.LessThan(end) {
		ps = append(ps, seqRange{cur, end})
	}
	if len(ps) == 0 {
		pkt.Release()
		return dup, hasDup
	}
	if len(ps) == 1 && ps[0] == (seqRange{start, end}) {
		r.ooo = slices.Insert(r.ooo, i, oooSeg{seq: start, pkt: pkt, gen: r.gen})
		r.oooBytes += pkt.Len()
		return dup, hasDup
	}
	// Cut pkt into the pieces that fill gaps.
	rest, restSeq := pkt, start
	for k, pr := range ps {
		rest.TrimFront(int(restSeq.Size(pr.start)))
		restSeq = pr.start
		piece := rest
		if k < len(ps)-1 || pr.end != end {
			rest = piece.Split(pr.len())
			restSeq = pr.end
		} else {
			rest = nil
		}
		r.ooo = append(r.ooo, oooSeg{seq: pr.start, pkt: piece, gen: r.gen})
		r.oooBytes += piece.Len()
	}
	if rest != nil {
		rest.Release()
	}
	slices.SortFunc(r.ooo, func(a, b oooSeg) int {
		switch {
		case a.seq.LessThan(b.seq):
			return -1
		case a.seq == b.seq:
			return 0
		}
		return 1
	})
	return dup, hasDup
}

// pull moves the held segments that rcv.nxt has reached into the in-order
// queue and returns the new rcv.nxt.
func (r *recvQueue) pull(nxt seqnum.Value) seqnum.Value {
	k := 0
	for ; k < len(r.ooo) && r.ooo[k].seq.LessThanEq(nxt); k++ {
		s := r.ooo[k]
		r.oooBytes -= s.pkt.Len()
		end := s.end()
		if !end.GreaterThan(nxt) {
			s.pkt.Release()
			continue
		}
		s.pkt.TrimFront(int(s.seq.Size(nxt)))
		r.push(s.pkt)
		nxt = end
	}
	if k > 0 {
		n := copy(r.ooo, r.ooo[k:])
		clear(r.ooo[n:])
		r.ooo = r.ooo[:n]
	}
	return nxt
}

// sackBlocks appends the blocks of held data (runs of contiguous
// segments), the one holding the latest arrival first and then by
// recency (RFC 2018 §4), at most max of them.
func (r *recvQueue) sackBlocks(out []seqRange, max int) []seqRange {
	if len(r.ooo) == 0 || max <= 0 {
		return out
	}
	type run struct {
		seqRange
		gen uint64
	}
	var buf [16]run
	runs := buf[:0]
	for i := range r.ooo {
		s := &r.ooo[i]
		if n := len(runs); n > 0 && runs[n-1].end == s.seq {
			runs[n-1].end = s.end()
			runs[n-1].gen = max64(runs[n-1].gen, s.gen)
			continue
		}
		runs = append(runs, run{seqRange{s.seq, s.end()}, s.gen})
	}
	slices.SortFunc(runs, func(a, b run) int {
		switch {
		case a.gen > b.gen:
			return -1
		case a.gen < b.gen:
			return 1
		}
		return 0
	})
	for _, rn := range runs {
		if max == 0 {
			break
		}
		out = append(out, rn.seqRange)
		max--
	}
	return out
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// highest is the end of the highest held segment (ok false when none).
func (r *recvQueue) highest() (seqnum.Value, bool) {
	if len(r.ooo) == 0 {
		return 0, false
	}
	return r.ooo[len(r.ooo)-1].end(), true
}

// release frees everything held.
func (r *recvQueue) release() {
	for i, p := range r.q[r.head:] {
		p.Release()
		r.q[r.head+i] = nil
	}
	r.q, r.head = r.q[:0], 0
	r.n = 0
	for i := range r.ooo {
		r.ooo[i].pkt.Release()
	}
	clear(r.ooo)
	r.ooo = r.ooo[:0]
	r.oooBytes = 0
}

// drsState is receive-buffer auto-tuning, in the manner of Linux's
// dynamic right-sizing: each receive-side RTT, the buffer grows to twice
// what the application read in that RTT (plus slack), so the window keeps
// ahead of the sender, up to net.inet.tcp.rmem_max.
type drsState struct {
	rtt    time.Duration // receive-side RTT (rcvRTTMeasure), 0 when unknown
	start  stamp
	copied int
}

// afterRead runs after Read took n bytes: auto-tuning, and a window
// update when the window opened enough to matter (RFC 9293 §3.8.6.2.2;
// at once if it had been closed or below half the buffer).
func (c *Conn) afterRead(n int) {
	now := c.now()
	c.autotune(n, now)
	switch c.st {
	case StateEstablished, StateFinWait1, StateFinWait2:
	default:
		return
	}
	if c.rcvFin {
		return
	}
	cur := 0
	if c.rcvAdv.GreaterThan(c.rcvNxt) {
		cur = int(c.rcvNxt.Size(c.rcvAdv))
	}
	free := c.rcvBuf - c.recvq.n - c.recvq.oooBytes
	if free-cur >= min(c.rcvBuf/2, c.advMSS) && cur <= c.rcvBuf/2 {
		c.sendAck()
	}
}

func (c *Conn) autotune(n int, now time.Time) {
	if c.rcvBufFixed {
		return
	}
	d := &c.drs
	if d.start == 0 {
		d.start = c.stampOf(now)
	}
	d.copied += n
	rtt := d.rtt
	if rtt == 0 {
		rtt = c.rtt.srtt
	}
	if rtt == 0 || now.Sub(c.timeOf(d.start)) < rtt {
		return
	}
	want := 2*d.copied + 16*c.advMSS
	if want > c.rcvBuf {
		if m := int(c.p.tun.RmemMax.Load()); want > m {
			want = m
		}
		if want > c.rcvBuf {
			c.rcvBuf = want
			c.p.stats.RcvBufGrowth.Inc()
		}
	}
	d.start, d.copied = c.stampOf(now), 0
}

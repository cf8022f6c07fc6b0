package tcp

import (
	"slices"
	"sort"
	"time"

	"ustack/internal/seqnum"
	"ustack/wire"
)

// The retransmission scoreboard (RFC 6675 §3): one record per segment
// sent and not yet cumulatively acknowledged, in sequence order, with what
// is known of it: SACKed, deemed lost, retransmitted. The data itself
// stays in the send queue; a record is only a range. From the marks the
// scoreboard keeps, in bytes of sequence space, what RFC 6675 calls
// "pipe" (see Conn.pipe).

type segFlags uint8

const (
	sfSacked      segFlags = 1 << iota // the peer has it (SACK)
	sfLost                             // deemed lost: to be (or being) retransmitted
	sfRetrans                          // a retransmission of it is in flight
	sfEverRetrans                      // retransmitted at least once (Karn, RACK)
)

// txSeg is one segment sent.
type txSeg struct {
	seqRange
	xmit  time.Time // last (re)transmission
	txn   uint64    // transmission order (ties of xmit, RACK)
	flags segFlags
	tx    rateSnap // delivery-rate state when sent (rate.go)
}

func (s *txSeg) has(f segFlags) bool { return s.flags&f != 0 }

// scoreboard is the list of segments in flight and its counters.
//
// segs is a window onto the array store: acknowledging moves its front
// (no copying per ACK, which with thousands of segments in flight would
// cost more than the rest of the ACK), and add reuses the room freed at
// the front by moving the window down once it reaches the end of the
// array while at most half full (amortized O(1) per segment, and no
// allocation in steady state).
type scoreboard struct {
	segs                  []txSeg
	store                 []txSeg // segs's array, whole (len == cap)
	sacked, lost, retrans int     // bytes with the marks (lost, retrans: not SACKed)
	lostPending           int     // bytes lost and not retransmitted since
	sackedSegs            int
	hint                  seqnum.Value // no lost, unretransmitted segment starts before it
	highSacked            seqnum.Value // end of the highest SACKed segment
	hasSacked             bool
}

// account adds (sign 1) or removes (sign -1) s from the counters.
func (sb *scoreboard) account(s *txSeg, sign int) {
	n := sign * s.len()
	if s.has(sfSacked) {
		sb.sacked += n
		sb.sackedSegs += sign
		return
	}
	if s.has(sfLost) {
		sb.lost += n
		if !s.has(sfRetrans) {
			sb.lostPending += n
		}
	}
	if s.has(sfRetrans) {
		sb.retrans += n
	}
}

// setFlags changes the marks of segs[i], keeping the counters.
func (sb *scoreboard) setFlags(i int, set, clear segFlags) {
	s := &sb.segs[i]
	sb.account(s, -1)
	s.flags = s.flags&^clear | set
	sb.account(s, 1)
	if s.has(sfLost) && !s.has(sfRetrans|sfSacked) && s.start.LessThan(sb.hint) {
		sb.hint = s.start
	}
}

func (sb *scoreboard) add(s txSeg) {
	if len(sb.segs) == 0 {
		sb.hint = s.start
	}
	sb.room()
	sb.segs = append(sb.segs, s)
	sb.account(&sb.segs[len(sb.segs)-1], 1)
}

// room makes room for one more record after segs, within store: by
// moving the window to the front of store when at most half of it is in
// use, else by growing store.
func (sb *scoreboard) room() {
	n := len(sb.segs)
	if n < cap(sb.segs) {
		return
	}
	if n > 0 && n <= len(sb.store)/2 {
		copy(sb.store, sb.segs)
		clear(sb.store[n:])
		sb.segs = sb.store[:n]
		return
	}
	store := make([]txSeg, max(2*len(sb.store), 2))
	copy(store, sb.segs)
	sb.store = store
	sb.segs = store[:n]
}

func (sb *scoreboard) empty() bool { return len(sb.segs) == 0 }

// find returns the index of the first segment that ends after seq.
func (sb *scoreboard) find(seq seqnum.Value) int {
	return sort.Search(len(sb.segs), func(i int) bool { return sb.segs[i].end.GreaterThan(seq) })
}

// split cuts segs[i] at at (strictly inside it) into two records with the
// same marks.
func (sb *scoreboard) split(i int, at seqnum.Value) {
	s := sb.segs[i]
	second := s
	second.start = at
	sb.segs[i].end = at
	sb.room()
	sb.segs = slices.Insert(sb.segs, i+1, second)
}

// ackTo removes the segments before ack (splitting one that ack cuts),
// calling f for each before it goes.
func (sb *scoreboard) ackTo(ack seqnum.Value, f func(s *txSeg)) {
	k := 0
	for ; k < len(sb.segs); k++ {
		s := &sb.segs[k]
		if !s.start.LessThan(ack) {
			break
		}
		if s.end.GreaterThan(ack) {
			sb.split(k, ack)
			s = &sb.segs[k]
		}
		f(s)
		sb.account(s, -1)
	}
	if k > 0 {
		clear(sb.segs[:k]) // the records hold pointers (time.Location)
		sb.segs = sb.segs[k:]
		if len(sb.segs) == 0 {
			sb.segs = sb.store[:0]
		}
	}
	if sb.hint.LessThan(ack) {
		sb.hint = ack
	}
	if sb.sackedSegs == 0 {
		sb.hasSacked = false
	}
}

// nextLost returns the index of the first segment deemed lost and not
// retransmitted since (RFC 6675 NextSeg rule 1), or -1.
func (sb *scoreboard) nextLost() int {
	if sb.lostPending <= 0 {
		return -1
	}
	for i := sb.find(sb.hint); i < len(sb.segs); i++ {
		s := &sb.segs[i]
		if s.has(sfLost) && !s.has(sfRetrans|sfSacked) {
			sb.hint = s.start
			return i
		}
	}
	sb.hint = sb.end()
	return -1
}

// end is the end of the last segment (or the hint when empty).
func (sb *scoreboard) end() seqnum.Value {
	if len(sb.segs) == 0 {
		return sb.hint
	}
	return sb.segs[len(sb.segs)-1].end
}

// reset drops every record.
func (sb *scoreboard) reset() {
	clear(sb.segs)
	sb.segs = sb.store[:0]
	sb.sacked, sb.lost, sb.retrans, sb.sackedSegs, sb.lostPending = 0, 0, 0, 0, 0
	sb.hasSacked = false
}

// markAllLost marks every segment not SACKed lost and forgets in-flight
// retransmissions (RFC 6675 §5.1 after an RTO; RFC 5681 §3.1).
func (sb *scoreboard) markAllLost() {
	for i := range sb.segs {
		if !sb.segs[i].has(sfSacked) {
			sb.setFlags(i, sfLost, sfRetrans)
		}
	}
}

// clearSacked forgets every SACK mark (the peer reneged).
func (sb *scoreboard) clearSacked() {
	for i := range sb.segs {
		if sb.segs[i].has(sfSacked) {
			sb.setFlags(i, 0, sfSacked)
		}
	}
	sb.hasSacked = false
}

// clearLost forgets every loss mark (an undone congestion response).
func (sb *scoreboard) clearLost() {
	for i := range sb.segs {
		if sb.segs[i].has(sfLost) {
			sb.setFlags(i, 0, sfLost)
		}
	}
}

// ---- SACK blocks received (RFC 2018 §3, RFC 2883 §4). ----

// processSACK marks the blocks of a received SACK option. ack is the
// segment's acknowledgment number; the first block is a D-SACK when it
// lies below ack or inside the second block. It records what it learned
// in ev.
func (c *Conn) processSACK(opts *wire.TCPOptions, ack seqnum.Value, ev *ackEvent) {
	blocks := opts.SACKBlocks()
	for i, b := range blocks {
		l, r := seqnum.Value(b.Left), seqnum.Value(b.Right)
		if !l.LessThan(r) {
			continue
		}
		if i == 0 && (r.LessThanEq(ack) || (len(blocks) > 1 &&
			seqnum.Value(blocks[1].Left).LessThanEq(l) && r.LessThanEq(seqnum.Value(blocks[1].Right)))) {
			c.onDSACK(seqRange{l, r}, ev)
			continue
		}
		// A block must describe data sent and not yet acknowledged.
		if r.GreaterThan(c.sndNxt) || !r.GreaterThan(c.sndUna) || l.LessThan(c.sndUna-seqnum.Value(c.maxSndWnd)) {
			continue
		}
		l = seqnum.Max(l, c.sndUna)
		c.markSacked(l, r, ev)
	}
}

// markSacked marks the segments in [l, r) SACKed, splitting records that
// the block cuts.
func (c *Conn) markSacked(l, r seqnum.Value, ev *ackEvent) {
	sb := &c.sb
	i := sb.find(l)
	for ; i < len(sb.segs) && sb.segs[i].start.LessThan(r); i++ {
		s := &sb.segs[i]
		if s.has(sfSacked) {
			continue
		}
		if s.start.LessThan(l) {
			sb.split(i, l)
			continue // the next iteration looks at the second half
		}
		if s.end.GreaterThan(r) {
			sb.split(i, r)
			s = &sb.segs[i]
		}
		ev.newlyDelivered(c, s, false)
		sb.setFlags(i, sfSacked, sfLost|sfRetrans)
		ev.sacked += s.len()
		if !sb.hasSacked || s.end.GreaterThan(sb.highSacked) {
			sb.highSacked, sb.hasSacked = s.end, true
		}
	}
}

// onDSACK handles a D-SACK block: the peer got [l, r) twice (RFC 2883).
// It feeds undo (RFC 3708: every retransmission of the episode reported
// duplicate means none was needed; a duplicate of data never
// retransmitted is the network's doing and counts for nothing), RACK's
// reordering window (RFC 8985 §6.2 step 4) and TLP (§7.4).
func (c *Conn) onDSACK(d seqRange, ev *ackEvent) {
	c.p.stats.DSACKRecv.Inc()
	c.stats.dsackRecv++
	ev.dsack = true
	if c.rack.tlpActive && c.rack.tlpRetrans && seqnum.Overlap(d.start, seqnum.Size(d.len()), c.rack.tlpSeq, seqnum.Size(c.rack.tlpLen)) {
		ev.dsackTLP = true
	}
	c.rackOnDSACK()
	u := &c.undo
	if !u.active || u.retrans <= 0 || d.end.GreaterThan(c.sndNxt) {
		return
	}
	if n := u.takeDup(d); n > 0 {
		// The peer had the original too: it was late, not lost
		// (reordering, RFC 8985 §6.2's RACK.reordering_seen).
		c.rack.reordSeen = true
		u.retrans -= n
		if u.retrans <= 0 {
			u.retrans = 0
			ev.dsackUndo = true
		}
	}
}

// isLostRFC6675 marks lost the segments that RFC 6675 §4 IsLost finds:
// DupThresh SACKed segments or more than (DupThresh-1)·SMSS SACKed bytes
// above them. It reports whether it marked any.
func (c *Conn) isLostRFC6675() bool {
	sb := &c.sb
	if !sb.hasSacked {
		return false
	}
	marked := false
	above, cnt := 0, 0
	for i := len(sb.segs) - 1; i >= 0; i-- {
		s := &sb.segs[i]
		if s.has(sfSacked) {
			above += s.len()
			cnt++
			continue
		}
		if cnt >= dupThresh || above > (dupThresh-1)*c.smss {
			if s.has(sfLost) {
				break // below here was marked before
			}
			sb.setFlags(i, sfLost, 0)
			marked = true
		}
	}
	return marked
}

// dupThresh is RFC 6675's DupThresh (RFC 5681 §3.2).
const dupThresh = 3

// ---- SACK blocks sent (RFC 2018 §4, RFC 2883). ----

// fillSACK adds the SACK blocks to an outgoing ACK: a pending D-SACK
// first, then the held out-of-order data, the most recent first; at most
// 3 blocks beside timestamps, 4 without.
func (c *Conn) fillSACK(o *wire.TCPOptions) {
	if !c.sackOK {
		return
	}
	limit := wire.TCPMaxSACKBlocks
	if o.HasTimestamps {
		limit = 3
	}
	var buf [wire.TCPMaxSACKBlocks]seqRange
	blocks := buf[:0]
	if c.hasDSACK {
		blocks = append(blocks, c.dsack)
		c.hasDSACK = false
		c.p.stats.DSACKSent.Inc()
	}
	blocks = c.recvq.sackBlocks(blocks, limit-len(blocks))
	for i, b := range blocks {
		o.SACK[i] = wire.SACKBlock{Left: uint32(b.start), Right: uint32(b.end)}
	}
	o.NumSACK = len(blocks)
}

// noteDSACK records a duplicate range to report in the next ACK (RFC
// 2883 §4: the first block).
func (c *Conn) noteDSACK(r seqRange) {
	if !c.sackOK || !r.start.LessThan(r.end) {
		return
	}
	c.dsack, c.hasDSACK = r, true
	c.ackNow = true
}

package offload

// Receive coalescing (GRO): a driver's batch goes through a Coalescer
// before it is dispatched, so the network and transport layers see one
// large TCP packet where the wire carried many MTU-sized ones.
//
//	batch in ─▶ for each frame: parse (link, IPv4/IPv6, TCP) and verify
//	           the TCP checksum ─▶ find its flow's open run ─▶ append the
//	           payload to the run's head (zero copy, buf.Packet.Concat) or
//	           close the run and start a new one ─▶ at the end, close every
//	           run: fix the head's IP length, IPv4 header checksum, TCP
//	           flags and partial checksum, and describe it as a GSO packet
//
// Why here and not in TCP: the stack carries each packet of a batch up
// inline, so a merge at the link saves the Ethernet, IP and TCP demux work
// (route, lookup, connection lock) for every merged segment, not only the
// state machine; and the merged packet is exactly what a local kernel
// sends with offloads on (a GSO frame with a partial checksum), which the
// stack takes already. What is not merged (other flows, separate large
// frames) still shares one ACK decision per connection per batch: the
// batch goes up the stack with its frames (proto.Batch).
//
// The merge rules follow what a segmenting sender produces, so that
// Segment of the result gives back the original segments: same flow
// (addresses, ports), consecutive sequence numbers, every segment but the
// last of the same size (GSOSize), same acknowledgment, window and TCP
// options (the timestamp value may grow: the merged packet keeps the
// first segment's, the one RFC 7323 §4.3 says to echo when acknowledging
// several segments), ACK set and no SYN, FIN, RST, URG or CWR, PSH only on
// the last; IPv4 without options or fragmentation, the same TOS, TTL and
// DF, identifications counting up by one or all equal with DF (RFC 6864
// §4.1); IPv6 without extension headers, the same traffic class, flow
// label and hop limit; the same link header. Checksums must be good: a
// frame with neither CsumValid nor NeedsCsum is verified in software
// (RFC 9293 §3.1) and, when bad, passed on unmerged for TCP to drop.

import (
	"encoding/binary"
	"net/netip"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// maxRuns is how many flows a Coalescer keeps open at once (Linux keeps 8
// per NAPI bucket list); the oldest is closed to make room.
const maxRuns = 8

// maxRunSegs bounds the segments merged into one packet, so a packet
// never has more views than the kernel takes in one writev (UIO_MAXIOV)
// should the stack forward it.
const maxRunSegs = 64

// TCP flags that end or forbid a merge (RFC 9293 §3.1, RFC 3168 §6.1).
const (
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
	tcpURG = 0x20
)

// Coalescer merges the in-order TCP segments of a received batch (GRO).
// The zero value is ready; it is not safe for concurrent use (a driver
// keeps one per reader goroutine). It holds no packets between calls.
type Coalescer struct {
	runs [maxRuns]run
	n    int // open runs
	// Merged counts the segments appended to an earlier one, and Built
	// the packets made of more than one, over the Coalescer's life.
	Merged, Built uint64
}

// run is one flow's packet being built: its head is out[idx].
type run struct {
	idx     int
	key     [36]byte // addresses and ports
	keyLen  int
	linkLen int
	l4Off   int // from the front of the frame
	hdrLen  int // link, IP and TCP headers
	v4      bool
	ipID    uint16 // of the last segment
	nextSeq uint32
	tsVal   uint32 // of the last segment, when hasTS
	hasTS   bool
	size    int // payload of the first segment: every other is at most this
	ipLen   int // IP length (IPv4 total length; IPv6 header + payload)
	segs    int
	psh     bool
}

// seg is what Coalesce reads from one frame.
type seg struct {
	run            // the header layout, key and sequence fields
	h       []byte // the frame's headers, contiguous
	payload int
	flags   byte
	seq     uint32
}

// Coalesce merges the TCP segments of pkts, a batch received on a link of
// type t, and appends the resulting packets to out, in the order of the
// first segment of each. Segments of one flow stay in order; a packet
// that is not TCP, or cannot be parsed, is passed on as it is after
// every open run is closed, so nothing moves across it. A merged packet
// carries Offload{GSO, GSOSize, HdrLen, NeedsCsum} with the pseudo-header
// sum in its TCP checksum field, as a local sender's large frame does; a
// segment whose checksum was verified here carries CsumValid. Frames that
// already carry GSO are passed on unmerged.
//
// It takes ownership of every packet in pkts (not of the slice): each
// one ends in out or, merged, is released.
func (c *Coalescer) Coalesce(pkts []*buf.Packet, t link.Type, out []*buf.Packet) []*buf.Packet {
	for _, p := range pkts {
		out = c.add(p, t, out)
	}
	c.closeAll(out)
	return out
}

func (c *Coalescer) add(p *buf.Packet, t link.Type, out []*buf.Packet) []*buf.Packet {
	var s seg
	switch parseSeg(p, t, &s) {
	case segOther:
		c.closeAll(out)
		return append(out, p)
	case segSingle:
		c.closeFlow(&s, out)
		return append(out, p)
	}
	if i := c.find(&s); i >= 0 {
		r := &c.runs[i]
		if r.canAppend(&s, out[r.idx]) {
			p.TrimFront(s.hdrLen)
			out[r.idx].Concat(p)
			r.segs++
			r.ipLen += s.payload
			r.ipID = s.ipID
			r.nextSeq += uint32(s.payload)
			r.tsVal = s.tsVal
			c.Merged++
			if s.flags&tcpPSH != 0 || s.payload < r.size || r.segs >= maxRunSegs {
				r.psh = s.flags&tcpPSH != 0
				c.close(i, out)
			}
			return out
		}
		c.close(i, out)
	}
	out = append(out, p)
	if s.flags&tcpPSH != 0 {
		return out // nothing may follow it
	}
	if c.n == maxRuns {
		c.close(0, out) // the oldest
	}
	r := &c.runs[c.n]
	c.n++
	*r = s.run
	r.idx = len(out) - 1
	r.size = s.payload
	r.segs = 1
	r.nextSeq = s.seq + uint32(s.payload)
	return out
}

func (c *Coalescer) find(s *seg) int {
	for i := range c.n {
		r := &c.runs[i]
		if r.keyLen == s.keyLen && r.key == s.key {
			return i
		}
	}
	return -1
}

// closeFlow closes the run of s's flow, if one is open.
func (c *Coalescer) closeFlow(s *seg, out []*buf.Packet) {
	if i := c.find(s); i >= 0 {
		c.close(i, out)
	}
}

func (c *Coalescer) closeAll(out []*buf.Packet) {
	for c.n > 0 {
		c.close(c.n-1, out)
	}
}

// close finishes run i's head packet and removes the run.
func (c *Coalescer) close(i int, out []*buf.Packet) {
	r := c.runs[i]
	copy(c.runs[i:c.n], c.runs[i+1:c.n])
	c.n--
	c.runs[c.n] = run{}
	if r.segs > 1 {
		r.finish(out[r.idx])
		c.Built++
	}
}

// canAppend reports whether s continues the run whose head is head.
func (r *run) canAppend(s *seg, head *buf.Packet) bool {
	if s.linkLen != r.linkLen || s.l4Off != r.l4Off || s.hdrLen != r.hdrLen ||
		s.seq != r.nextSeq || s.payload > r.size || r.ipLen+s.payload > 0xffff+boolInt(!r.v4)*ipv6HeaderLen {
		return false
	}
	h := head.Bytes()
	if len(h) < r.hdrLen {
		h = head.Pullup(r.hdrLen)
	}
	n := s.h
	// The link header, whole.
	if string(h[:r.linkLen]) != string(n[:r.linkLen]) {
		return false
	}
	ip, nip := h[r.linkLen:r.l4Off], n[r.linkLen:r.l4Off]
	if r.v4 {
		// Version/IHL, TOS; flags and fragment offset; TTL, protocol;
		// addresses.
		if ip[0] != nip[0] || ip[1] != nip[1] || ip[6] != nip[6] || ip[7] != nip[7] ||
			ip[8] != nip[8] || ip[9] != nip[9] || string(ip[12:20]) != string(nip[12:20]) {
			return false
		}
		df := binary.BigEndian.Uint16(nip[6:])&wire.IPv4FlagDF != 0
		if s.ipID != r.ipID+1 && !(df && s.ipID == r.ipID) {
			return false
		}
	} else if string(ip[:4]) != string(nip[:4]) || ip[6] != nip[6] || ip[7] != nip[7] ||
		string(ip[8:40]) != string(nip[8:40]) {
		return false
	}
	th, nth := h[r.l4Off:r.hdrLen], n[r.l4Off:r.hdrLen]
	// Ports, acknowledgment, data offset; flags (PSH may differ); window;
	// urgent pointer.
	if string(th[:4]) != string(nth[:4]) || string(th[8:13]) != string(nth[8:13]) ||
		th[13] != nth[13]&^tcpPSH || string(th[14:16]) != string(nth[14:16]) || string(th[18:20]) != string(nth[18:20]) {
		return false
	}
	// Options: equal, but for a timestamp value that does not go back.
	opts, nopts := th[20:], nth[20:]
	if r.hasTS {
		if int32(s.tsVal-r.tsVal) < 0 || string(opts[:4]) != string(nopts[:4]) || string(opts[8:]) != string(nopts[8:]) {
			return false
		}
		return true
	}
	return string(opts) == string(nopts)
}

// finish makes the head packet describe the merged segments.
func (r *run) finish(p *buf.Packet) {
	h := p.Pullup(r.hdrLen)
	ip := h[r.linkLen:]
	var src, dst netip.Addr
	t := buf.GSOTCPv6
	if r.v4 {
		t = buf.GSOTCPv4
		binary.BigEndian.PutUint16(ip[2:], uint16(r.ipLen))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^wire.Checksum(ip[:wire.IPv4MinHeaderLen], 0))
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	} else {
		binary.BigEndian.PutUint16(ip[4:], uint16(r.ipLen-ipv6HeaderLen))
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	}
	th := h[r.l4Off:]
	if r.psh {
		th[13] |= tcpPSH
	}
	l4Len := r.ipLen - (r.l4Off - r.linkLen)
	binary.BigEndian.PutUint16(th[16:], wire.PseudoHeaderChecksum(wire.IPProtoTCP, src, dst, l4Len))
	p.Offload = buf.Offload{
		NeedsCsum: true, CsumStart: uint16(r.l4Off), CsumOffset: 16,
		GSO: t, GSOSize: uint16(r.size), HdrLen: uint16(r.hdrLen),
	}
}

// Results of parseSeg.
const (
	segOther  = iota // not TCP over IP, or malformed: no flow
	segSingle        // TCP, but not to be merged (control segment, bad checksum, GSO)
	segMerge         // a data segment that may be merged
)

// parseSeg reads the headers of frame p into s. It trims link padding,
// verifies the TCP checksum when the link has not and marks it valid.
func parseSeg(p *buf.Packet, t link.Type, s *seg) int {
	ll, err := LinkHeaderLen(t, p)
	if err != nil {
		return segOther
	}
	b := p.Pullup(min(p.Len(), ll+ipv6HeaderLen))
	if len(b) < ll+wire.IPv4MinHeaderLen {
		return segOther
	}
	if t == link.TypeEthernet {
		et := wire.EtherType(binary.BigEndian.Uint16(b[ll-2:]))
		if et != wire.EtherTypeIPv4 && et != wire.EtherTypeIPv6 {
			return segOther
		}
	}
	ip := b[ll:]
	s.linkLen = ll
	var ipLen int
	switch ip[0] >> 4 {
	case 4:
		// RFC 791 §3.1: options and fragments are not merged.
		if ip[0]&0xf != 5 || wire.IPProtocol(ip[9]) != wire.IPProtoTCP {
			return segOther
		}
		if binary.BigEndian.Uint16(ip[6:])&(wire.IPv4FlagMF|0x1fff) != 0 {
			return segOther
		}
		s.v4 = true
		s.l4Off = ll + wire.IPv4MinHeaderLen
		ipLen = int(binary.BigEndian.Uint16(ip[2:]))
		s.ipID = binary.BigEndian.Uint16(ip[4:])
		s.keyLen = copy(s.key[:], ip[12:20])
	case 6:
		// RFC 8200 §4: extension headers are not merged.
		if len(ip) < ipv6HeaderLen || wire.IPProtocol(ip[6]) != wire.IPProtoTCP {
			return segOther
		}
		s.l4Off = ll + ipv6HeaderLen
		ipLen = ipv6HeaderLen + int(binary.BigEndian.Uint16(ip[4:]))
		s.keyLen = copy(s.key[:], ip[8:40])
	default:
		return segOther
	}
	if p.Offload.GSO != buf.GSONone {
		// Already large; its lengths may be 0. Find its flow if we can.
		if th := p.Pullup(s.l4Off + 4); th != nil {
			s.keyLen += copy(s.key[s.keyLen:], th[s.l4Off:])
			return segSingle
		}
		return segOther
	}
	if ipLen < s.l4Off-ll+wire.TCPMinHeaderLen || ll+ipLen > p.Len() {
		return segOther
	}
	p.Truncate(ll + ipLen) // link padding
	th := p.Pullup(s.l4Off + wire.TCPMinHeaderLen)
	doff := int(th[s.l4Off+12]>>4) * 4
	if doff < wire.TCPMinHeaderLen || s.l4Off-ll+doff > ipLen {
		return segOther
	}
	s.hdrLen = s.l4Off + doff
	s.h = p.Pullup(s.hdrLen)
	th = s.h[s.l4Off:]
	s.keyLen += copy(s.key[s.keyLen:], th[:4])
	s.ipLen = ipLen
	s.payload = ipLen - (s.hdrLen - ll)
	s.seq = binary.BigEndian.Uint32(th[4:])
	s.flags = th[13]
	if !checksumOK(p, s, ip) {
		return segSingle
	}
	if s.payload == 0 || s.flags&(tcpSYN|tcpFIN|tcpRST|tcpURG|tcpCWR) != 0 || s.flags&tcpACK == 0 {
		return segSingle
	}
	// The only options a merge may differ in are timestamps, and only
	// in the common layout (RFC 7323 Appendix A): NOP, NOP, TS.
	opts := th[wire.TCPMinHeaderLen:doff]
	if len(opts) >= 12 && opts[0] == 1 && opts[1] == 1 && opts[2] == 8 && opts[3] == 10 {
		s.hasTS = true
		s.tsVal = binary.BigEndian.Uint32(opts[4:])
	}
	return segMerge
}

// checksumOK checks the TCP checksum of s unless the link vouches for it
// (CsumValid, or a partial checksum from a local sender at the right
// place), and marks it valid.
func checksumOK(p *buf.Packet, s *seg, ip []byte) bool {
	o := &p.Offload
	if o.NeedsCsum {
		return int(o.CsumStart) == s.l4Off && o.CsumOffset == 16
	}
	if o.CsumValid {
		return true
	}
	var src, dst netip.Addr
	if s.v4 {
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	} else {
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	}
	l4Len := s.ipLen - (s.l4Off - s.linkLen)
	if wire.ChecksumCombine(wire.PseudoHeaderChecksum(wire.IPProtoTCP, src, dst, l4Len), Sum(p, s.l4Off, l4Len)) != 0xffff {
		return false
	}
	o.CsumValid = true
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

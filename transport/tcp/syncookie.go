package tcp

import (
	"encoding/binary"
	"time"

	"ustack/internal/seqnum"
)

// SYN cookies (RFC 4987 §3.6): when a listener's SYN queue is full, the
// SYN-ACK's sequence number carries what the listener would have kept, and
// the state is rebuilt from the ACK that returns it (SEG.ACK - 1). The
// cookie is
//
//	 31      27 26  24 23                                       0
//	+----------+------+------------------------------------------+
//	| t mod 32 | mss  |  MAC(secret, 4-tuple, peer ISN, t, mss,   |
//	|          | index|      options, our window scale) (24 bits) |
//	+----------+------+------------------------------------------+
//
// where t counts cookiePeriod intervals of the stack's clock. A cookie is
// accepted while t is the current or the previous counter: between one
// and two periods. The MSS is one of eight values (the largest not above
// the peer's). When the SYN carried timestamps, the low bits of our TSval
// carry the peer's window scale and SACK-permitted, as Linux does; the
// peer echoes them in TSecr. Those bits are under the MAC too, so a
// tampered echo fails like a tampered cookie. Without timestamps the
// connection has neither window scaling nor SACK.

// cookiePeriod is how often the cookie counter advances.
const cookiePeriod = 64 * time.Second

// cookieMSS are the MSS values a cookie can encode (3 bits), ascending.
var cookieMSS = [8]uint16{536, 1220, 1300, 1360, 1400, 1440, 1460, 8960}

// Bits of the option field a cookie covers: the low cookieTSBits of TSval
// hold the peer's window-scale shift (cookieNoWS when the peer sent none)
// and SACK-permitted; cookieTS says timestamps are on (it is implied by
// the ACK carrying timestamps, not sent).
const (
	cookieWSMask = 0x0f
	cookieNoWS   = 0x0f
	cookieSACK   = 0x10
	cookieTSBits = 5
	cookieTSMask = 1<<cookieTSBits - 1
	cookieTS     = 0x20
)

// cookieOpts are the options a cookie carries.
type cookieOpts struct {
	mss       int  // the peer's MSS, rounded down to a cookieMSS value
	sndWScale int  // peer's shift, -1 without window scaling
	sackOK    bool // SACK permitted both ways
	tsOK      bool // timestamps on
}

// bits is the option field covered by the MAC (and, minus cookieTS, sent
// in TSval).
func (o cookieOpts) bits() uint8 {
	if !o.tsOK {
		return cookieNoWS // no timestamps: no room for options
	}
	b := uint8(cookieNoWS)
	if o.sndWScale >= 0 {
		b = uint8(min(o.sndWScale, 14))
	}
	if o.sackOK {
		b |= cookieSACK
	}
	return b | cookieTS
}

// optsFromBits is the inverse of bits.
func optsFromBits(b uint8) cookieOpts {
	o := cookieOpts{sndWScale: -1}
	if b&cookieTS == 0 {
		return o
	}
	o.tsOK = true
	if ws := b & cookieWSMask; ws != cookieNoWS {
		o.sndWScale = int(ws)
	}
	o.sackOK = b&cookieSACK != 0
	return o
}

// mssIndex picks the largest cookie MSS not above mss (index 0 below all).
func mssIndex(mss int) uint8 {
	var idx uint8
	for i, m := range cookieMSS {
		if int(m) <= mss {
			idx = uint8(i)
		}
	}
	return idx
}

// cookieCounter is the counter t at now.
func (p *Protocol) cookieCounter(now time.Time) uint32 {
	return uint32(now.Sub(p.epoch) / cookiePeriod)
}

// cookieMAC is the 24-bit MAC of a cookie.
func (p *Protocol) cookieMAC(id connID, irs seqnum.Value, t uint32, mssIdx, optBits uint8, rcvWScale int) uint32 {
	var b [36 + 4 + 4 + 3]byte
	m := tupleBytes(b[:0], id)
	m = binary.BigEndian.AppendUint32(m, uint32(irs))
	m = binary.BigEndian.AppendUint32(m, t)
	m = append(m, mssIdx, optBits, byte(int8(rcvWScale)))
	return uint32(p.sec.cookie.sum(m)) & 0xffffff
}

// makeCookie returns the ISN for a SYN-ACK answering the SYN of id whose
// sequence number is irs, and the options as the connection will use them
// (o.mss rounded down; window scaling and SACK dropped without
// timestamps). ourWS is the shift we offer when the peer scales.
func (p *Protocol) makeCookie(id connID, irs seqnum.Value, o cookieOpts, ourWS int, now time.Time) (seqnum.Value, cookieOpts) {
	idx := mssIndex(o.mss)
	ob := o.bits()
	o = optsFromBits(ob)
	o.mss = int(cookieMSS[idx])
	t := p.cookieCounter(now)
	c := (t&31)<<27 | uint32(idx)<<24 | p.cookieMAC(id, irs, t, idx, ob, o.rcvWScale(ourWS))
	return seqnum.Value(c), o
}

// rcvWScale is our shift for the connection: ourWS when window scaling is
// on, else -1.
func (o cookieOpts) rcvWScale(ourWS int) int {
	if o.sndWScale < 0 {
		return -1
	}
	return ourWS
}

// cookieTSVal folds a cookie's option bits into the TSval to send (ts,
// from tsVal), keeping it no later than ts (RFC 7323 §5.4: TSval must not
// run ahead of the clock).
func cookieTSVal(ts uint32, o cookieOpts) uint32 {
	v := ts&^cookieTSMask | uint32(o.bits()&cookieTSMask)
	if int32(v-ts) > 0 {
		v -= cookieTSMask + 1
	}
	return v
}

// checkCookie validates the cookie returned by the ACK of a handshake:
// ack is SEG.ACK, seq is SEG.SEQ, and tsEcr the echoed timestamp when the
// ACK carries timestamps (hasTS); ourWS as for makeCookie. It returns the
// options the SYN-ACK offered when the MAC holds and the cookie is at most
// two periods old.
func (p *Protocol) checkCookie(id connID, seq, ack seqnum.Value, hasTS bool, tsEcr uint32, ourWS int, now time.Time) (cookieOpts, bool) {
	c := uint32(ack - 1)
	irs := seq - 1
	idx := uint8(c>>24) & 7
	ob := uint8(cookieNoWS)
	if hasTS {
		ob = uint8(tsEcr&cookieTSMask) | cookieTS
	}
	o := optsFromBits(ob)
	o.mss = int(cookieMSS[idx])
	ws := o.rcvWScale(ourWS)
	cur := p.cookieCounter(now)
	for age := uint32(0); age < 2 && age <= cur; age++ {
		t := cur - age
		if t&31 != c>>27 {
			continue
		}
		if p.cookieMAC(id, irs, t, idx, ob, ws) == c&0xffffff {
			return o, true
		}
	}
	return cookieOpts{}, false
}

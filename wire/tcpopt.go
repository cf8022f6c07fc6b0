package wire

import "encoding/binary"

// TCP options (RFC 9293 §3.1, §3.2): a sequence of single-octet options
// (end of option list, no operation) and kind-length-data options, the
// length counting kind and length. Padding after end of list is zero.

// TCPOptionKind is the kind octet of a TCP option.
type TCPOptionKind uint8

const (
	TCPOptEOL           TCPOptionKind = 0  // end of option list, RFC 9293
	TCPOptNOP           TCPOptionKind = 1  // no operation, RFC 9293
	TCPOptMSS           TCPOptionKind = 2  // maximum segment size, RFC 9293 §3.7.1, RFC 6691
	TCPOptWScale        TCPOptionKind = 3  // window scale, RFC 7323 §2
	TCPOptSACKPermitted TCPOptionKind = 4  // RFC 2018 §2
	TCPOptSACK          TCPOptionKind = 5  // RFC 2018 §3
	TCPOptTimestamps    TCPOptionKind = 8  // RFC 7323 §3
	TCPOptMD5           TCPOptionKind = 19 // RFC 2385
	TCPOptAO            TCPOptionKind = 29 // RFC 5925
	TCPOptMPTCP         TCPOptionKind = 30 // RFC 8684
	TCPOptFastOpen      TCPOptionKind = 34 // RFC 7413
)

func (k TCPOptionKind) String() string {
	switch k {
	case TCPOptEOL:
		return "eol"
	case TCPOptNOP:
		return "nop"
	case TCPOptMSS:
		return "mss"
	case TCPOptWScale:
		return "wscale"
	case TCPOptSACKPermitted:
		return "sackOK"
	case TCPOptSACK:
		return "sack"
	case TCPOptTimestamps:
		return "TS"
	case TCPOptMD5:
		return "md5"
	case TCPOptAO:
		return "tcp-ao"
	case TCPOptMPTCP:
		return "mptcp"
	case TCPOptFastOpen:
		return "tfo"
	}
	return "tcpopt(" + itoa(int(k)) + ")"
}

// Lengths of the options TCPOptions knows (kind and length octets
// included).
const (
	TCPOptMSSLen           = 4
	TCPOptWScaleLen        = 3
	TCPOptSACKPermittedLen = 2
	TCPOptTimestampsLen    = 10
	tcpOptSACKBase         = 2
	tcpSACKBlockLen        = 8
	tcpMaxOptionsLen       = TCPMaxHeaderLen - TCPMinHeaderLen
)

// TCPMaxSACKBlocks is the most SACK blocks an option can carry in 40
// bytes (RFC 2018 §3).
const TCPMaxSACKBlocks = 4

// TCPMaxWScale is the largest shift count a receiver uses; larger values
// are clamped to it (RFC 7323 §2.3). ParseTCPOptions keeps the value sent.
const TCPMaxWScale = 14

// SACKBlock is one block of a SACK option: the sequence numbers [Left,
// Right) have been received (RFC 2018 §3).
type SACKBlock struct {
	Left, Right uint32
}

// TCPOptions are the TCP options ustack understands, parsed or to encode.
// It holds no slices: parsing does not allocate and the struct can be
// copied. Unknown options are skipped by ParseTCPOptions and not encoded.
type TCPOptions struct {
	MSS           uint16 // valid if HasMSS
	HasMSS        bool
	WScale        uint8 // shift count as sent, valid if HasWScale
	HasWScale     bool
	SACKPermitted bool
	TSVal, TSEcr  uint32 // valid if HasTimestamps
	HasTimestamps bool
	NumSACK       int // number of blocks in SACK, 0..TCPMaxSACKBlocks
	SACK          [TCPMaxSACKBlocks]SACKBlock
}

// SACKBlocks returns the SACK blocks (a slice of o.SACK).
func (o *TCPOptions) SACKBlocks() []SACKBlock {
	return o.SACK[:min(max(o.NumSACK, 0), TCPMaxSACKBlocks)]
}

// TCPOption is one option found by TCPOptionIter. Data excludes kind and
// length and is empty for NOP. Off is the offset of the kind octet.
type TCPOption struct {
	Kind TCPOptionKind
	Data []byte
	Off  int
}

// TCPOptionIter walks a TCP options area without allocating, checking the
// framing of each option: RFC 9293 §3.1 says an implementation must be
// prepared for any option length, zero and one included.
type TCPOptionIter struct {
	opts []byte
	off  int
	err  error
}

// NewTCPOptionIter returns an iterator over opts (TCP.Options()).
func NewTCPOptionIter(opts []byte) TCPOptionIter { return TCPOptionIter{opts: opts} }

// Next returns the next option, NOPs included. It returns ok == false at
// the end of the area, at end of option list (the rest is padding), or on
// a malformed option (missing length, length below 2, or past the end),
// after which Err is ErrBadOption.
func (it *TCPOptionIter) Next() (opt TCPOption, ok bool) {
	if it.err != nil || it.off >= len(it.opts) {
		return TCPOption{}, false
	}
	off := it.off
	k := TCPOptionKind(it.opts[off])
	switch k {
	case TCPOptEOL:
		it.off = len(it.opts)
		return TCPOption{}, false
	case TCPOptNOP:
		it.off++
		return TCPOption{Kind: k, Data: it.opts[off+1 : off+1], Off: off}, true
	}
	if off+1 >= len(it.opts) {
		it.err = ErrBadOption
		return TCPOption{}, false
	}
	n := int(it.opts[off+1])
	if n < 2 || n > len(it.opts)-off {
		it.err = ErrBadOption
		return TCPOption{}, false
	}
	it.off = off + n
	return TCPOption{Kind: k, Data: it.opts[off+2 : off+n], Off: off}, true
}

// Err is nil or ErrBadOption once Next has returned false.
func (it *TCPOptionIter) Err() error { return it.err }

// ParseTCPOptions parses an options area (TCP.Options()) without
// allocating. It returns ErrBadOption for bad framing (see TCPOptionIter)
// and for a known option of the wrong length: MSS 4 (RFC 9293 §3.2), window
// scale 3 (RFC 7323 §2.2), SACK-permitted 2 (RFC 2018 §2), SACK 2+8n with
// 1 <= n <= 4 (RFC 2018 §3), timestamps 10 (RFC 7323 §3.2). Unknown kinds
// are skipped. If an option appears twice, the last one counts. Whether an
// option is allowed in a given segment (MSS, window scale and
// SACK-permitted only on SYN) is for the caller to decide.
func ParseTCPOptions(opts []byte) (TCPOptions, error) {
	var o TCPOptions
	it := NewTCPOptionIter(opts)
	for opt, ok := it.Next(); ok; opt, ok = it.Next() {
		d := opt.Data
		switch opt.Kind {
		case TCPOptMSS:
			if len(d) != TCPOptMSSLen-2 {
				return TCPOptions{}, ErrBadOption
			}
			o.MSS, o.HasMSS = binary.BigEndian.Uint16(d), true
		case TCPOptWScale:
			if len(d) != TCPOptWScaleLen-2 {
				return TCPOptions{}, ErrBadOption
			}
			o.WScale, o.HasWScale = d[0], true
		case TCPOptSACKPermitted:
			if len(d) != TCPOptSACKPermittedLen-2 {
				return TCPOptions{}, ErrBadOption
			}
			o.SACKPermitted = true
		case TCPOptSACK:
			n := len(d) / tcpSACKBlockLen
			if len(d)%tcpSACKBlockLen != 0 || n < 1 || n > TCPMaxSACKBlocks {
				return TCPOptions{}, ErrBadOption
			}
			o.NumSACK = n
			for i := range n {
				o.SACK[i] = SACKBlock{
					Left:  binary.BigEndian.Uint32(d[8*i:]),
					Right: binary.BigEndian.Uint32(d[8*i+4:]),
				}
			}
			clear(o.SACK[n:])
		case TCPOptTimestamps:
			if len(d) != TCPOptTimestampsLen-2 {
				return TCPOptions{}, ErrBadOption
			}
			o.TSVal = binary.BigEndian.Uint32(d)
			o.TSEcr = binary.BigEndian.Uint32(d[4:])
			o.HasTimestamps = true
		}
	}
	if it.Err() != nil {
		return TCPOptions{}, it.Err()
	}
	return o, nil
}

// Encoding. The usual layout keeps every multi-byte option 32-bit aligned
// with NOPs, the way Linux lays out its options (and so what middleboxes
// expect):
//
//	MSS:                    kind 2, len 4, mss
//	timestamps:             NOP, NOP, kind 8, len 10, val, ecr
//	  with SACK-permitted:  kind 4, len 2, kind 8, len 10, val, ecr
//	SACK-permitted alone:   NOP, NOP, kind 4, len 2
//	window scale:           NOP, kind 3, len 3, shift
//	SACK:                   NOP, NOP, kind 5, len 2+8n, blocks
//
// A Linux SYN thus reads "mss, sackOK, TS, nop, wscale". When that does
// not fit in 40 bytes (MSS, timestamps and 3 SACK blocks), the options are
// packed without NOPs and the area is padded with zeros (end of option
// list) to a multiple of 4 (RFC 9293 §3.1). If even that does not fit, SACK
// blocks are dropped from the end until it does (RFC 2018 §3: with
// timestamps, at most 3 blocks).

// layout chooses how o is encoded: how many SACK blocks, whether packed,
// and the encoded length.
func (o *TCPOptions) layout() (nsack int, packed bool, size int) {
	nsack = len(o.SACKBlocks())
	var aligned, raw int
	if o.HasMSS {
		aligned += TCPOptMSSLen
		raw += TCPOptMSSLen
	}
	if o.HasTimestamps {
		aligned += 2 + TCPOptTimestampsLen // NOPs or SACK-permitted
		raw += TCPOptTimestampsLen
		if o.SACKPermitted {
			raw += TCPOptSACKPermittedLen
		}
	} else if o.SACKPermitted {
		aligned += 2 + TCPOptSACKPermittedLen
		raw += TCPOptSACKPermittedLen
	}
	if o.HasWScale {
		aligned += 1 + TCPOptWScaleLen
		raw += TCPOptWScaleLen
	}
	for ; ; nsack-- {
		s := 0
		if nsack > 0 {
			s = tcpOptSACKBase + tcpSACKBlockLen*nsack
		}
		if a := aligned; a+2+s <= tcpMaxOptionsLen || s == 0 {
			if s > 0 {
				a += 2 + s
			}
			return nsack, false, a
		}
		if p := (raw + s + 3) &^ 3; p <= tcpMaxOptionsLen {
			return nsack, true, p
		}
	}
}

// Len is the encoded length of the options: a multiple of 4, at most 40.
func (o *TCPOptions) Len() int {
	_, _, n := o.layout()
	return n
}

// Encode writes the options into b[:o.Len()] (see the layout above).
func (o *TCPOptions) Encode(b []byte) {
	nsack, packed, size := o.layout()
	b = b[:size]
	i := 0
	put := func(v ...byte) { i += copy(b[i:], v) }
	nops := func(n int) {
		if !packed {
			for range n {
				put(byte(TCPOptNOP))
			}
		}
	}
	if o.HasMSS {
		put(byte(TCPOptMSS), TCPOptMSSLen)
		binary.BigEndian.PutUint16(b[i:], o.MSS)
		i += 2
	}
	if o.HasTimestamps {
		if o.SACKPermitted {
			put(byte(TCPOptSACKPermitted), TCPOptSACKPermittedLen)
		} else {
			nops(2)
		}
		put(byte(TCPOptTimestamps), TCPOptTimestampsLen)
		binary.BigEndian.PutUint32(b[i:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+4:], o.TSEcr)
		i += 8
	} else if o.SACKPermitted {
		nops(2)
		put(byte(TCPOptSACKPermitted), TCPOptSACKPermittedLen)
	}
	if o.HasWScale {
		nops(1)
		put(byte(TCPOptWScale), TCPOptWScaleLen, o.WScale)
	}
	if nsack > 0 {
		nops(2)
		put(byte(TCPOptSACK), byte(tcpOptSACKBase+tcpSACKBlockLen*nsack))
		for _, blk := range o.SACK[:nsack] {
			binary.BigEndian.PutUint32(b[i:], blk.Left)
			binary.BigEndian.PutUint32(b[i+4:], blk.Right)
			i += 8
		}
	}
	clear(b[i:]) // end of option list and zero padding
}

// String formats the options the way tcpdump does ("mss 1460,sackOK,TS val
// 1 ecr 0,wscale 7,sack 1 {1:2}"), in a fixed order.
func (o *TCPOptions) String() string {
	var s []byte
	sep := func() {
		if len(s) > 0 {
			s = append(s, ',')
		}
	}
	if o.HasMSS {
		s = append(s, "mss "+itoa(int(o.MSS))...)
	}
	if o.SACKPermitted {
		sep()
		s = append(s, "sackOK"...)
	}
	if o.HasTimestamps {
		sep()
		s = append(s, "TS val "+utoa(o.TSVal)+" ecr "+utoa(o.TSEcr)...)
	}
	if o.HasWScale {
		sep()
		s = append(s, "wscale "+itoa(int(o.WScale))...)
	}
	if blks := o.SACKBlocks(); len(blks) > 0 {
		sep()
		s = append(s, "sack "+itoa(len(blks))...)
		for _, blk := range blks {
			s = append(s, " {"+utoa(blk.Left)+":"+utoa(blk.Right)+"}"...)
		}
	}
	return string(s)
}

func utoa(n uint32) string { return itoa(int(n)) }

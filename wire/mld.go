package wire

import (
	"encoding/binary"
	"iter"
	"net/netip"
	"time"
)

// Multicast Listener Discovery: MLDv1 (RFC 2710) and MLDv2 (RFC 3810),
// ICMPv6 messages. As in ndp.go, parsers take the body after type, code
// and checksum (ICMPv6.Body()) and encoders write whole messages with a
// zero checksum. Sent with hop limit 1, a link-local source and a router
// alert in a hop-by-hop header (RFC 3810 §5; EncodeIPv6RouterAlertHeader).
//
//	query (130)     max resp code(16) reserved(16) multicast(128)
//	                [v2: resv(4) S(1) QRV(3) QQIC(8) N(16) sources(N×128)]
//	v1 report/done  max resp delay(16) reserved(16) multicast(128)
//	v2 report (143) reserved(16) M(16) M × record:
//	                type(8) aux len(8) N(16) multicast(128) sources(N×128) aux(aux len×32)

const (
	mldv1Len       = 20 // body of a v1 message (RFC 2710 §3: 24-byte message)
	mldv2QueryLen  = 24 // body of a v2 query before the sources (RFC 3810 §5.1: 28 bytes)
	mldv2ReportLen = 4
	mldv2RecordLen = 20
)

// MLDQuery is the body of a multicast listener query, version 1 or 2.
type MLDQuery []byte

// ParseMLDQuery checks a query body. Its length says the version (RFC
// 3810 §8.1): 20 bytes (a 24-byte message) is MLDv1, at least 24 with
// room for its sources is MLDv2, anything else is rejected (ErrBadLength
// for 21 to 23 bytes, which RFC 3810 §8.1 says to ignore).
func ParseMLDQuery(body []byte) (MLDQuery, error) {
	switch {
	case len(body) < mldv1Len:
		return nil, ErrTruncated
	case len(body) == mldv1Len:
		return MLDQuery(body), nil
	case len(body) < mldv2QueryLen:
		return nil, ErrBadLength
	}
	if mldv2QueryLen+16*int(binary.BigEndian.Uint16(body[22:])) > len(body) {
		return nil, ErrTruncated
	}
	return MLDQuery(body), nil
}

// IsV2 reports an MLDv2 query.
func (q MLDQuery) IsV2() bool { return len(q) >= mldv2QueryLen }

// MaxResponseCode is the raw maximum response code (delay) field.
func (q MLDQuery) MaxResponseCode() uint16 { return binary.BigEndian.Uint16(q[0:]) }

// MaxResponseDelay is the longest a listener may wait before reporting:
// milliseconds in MLDv1 (RFC 2710 §3.4); in MLDv2 a code of 32768 or more
// is a floating-point value (RFC 3810 §5.1.3).
func (q MLDQuery) MaxResponseDelay() time.Duration {
	c := uint32(q.MaxResponseCode())
	if q.IsV2() && c >= 0x8000 {
		c = (c&0xfff | 0x1000) << ((c>>12)&7 + 3)
	}
	return time.Duration(c) * time.Millisecond
}

// MulticastAddr is the group asked about; :: for a general query.
func (q MLDQuery) MulticastAddr() netip.Addr { return netip.AddrFrom16([16]byte(q[4:20])) }

// SuppressRouterSide is the S flag of an MLDv2 query (RFC 3810 §5.1.7).
func (q MLDQuery) SuppressRouterSide() bool { return q.IsV2() && q[20]&0x08 != 0 }

// QRV is the querier's robustness variable of an MLDv2 query; 0 for MLDv1
// or unset (RFC 3810 §5.1.8).
func (q MLDQuery) QRV() uint8 {
	if !q.IsV2() {
		return 0
	}
	return q[20] & 7
}

// QQIC is the raw querier's query interval code of an MLDv2 query.
func (q MLDQuery) QQIC() uint8 {
	if !q.IsV2() {
		return 0
	}
	return q[21]
}

// QueryInterval decodes QQIC: seconds, as a floating-point value from 128
// on (RFC 3810 §5.1.9).
func (q MLDQuery) QueryInterval() time.Duration {
	c := uint32(q.QQIC())
	if c >= 0x80 {
		c = (c&0xf | 0x10) << ((c>>4)&7 + 3)
	}
	return time.Duration(c) * time.Second
}

// NumSources is the number of sources of an MLDv2 query.
func (q MLDQuery) NumSources() int {
	if !q.IsV2() {
		return 0
	}
	return int(binary.BigEndian.Uint16(q[22:]))
}

// Source is the i-th source (0-based) of an MLDv2 query; the zero Addr if
// there is none.
func (q MLDQuery) Source(i int) netip.Addr {
	off := mldv2QueryLen + 16*i
	if i < 0 || i >= q.NumSources() || off+16 > len(q) {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(q[off : off+16]))
}

// Sources iterates over the sources of an MLDv2 query.
func (q MLDQuery) Sources() iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		for i := range q.NumSources() {
			if !yield(q.Source(i)) {
				return
			}
		}
	}
}

// MLDQueryFields is a query to encode.
type MLDQueryFields struct {
	MaxResponseDelay   time.Duration // whole milliseconds
	Multicast          netip.Addr    // the zero Addr or :: for a general query
	V2                 bool          // the fields below only go into an MLDv2 query
	SuppressRouterSide bool
	QRV                uint8 // 0..7
	QueryInterval      time.Duration
	Sources            []netip.Addr
}

func (f *MLDQueryFields) Len() int {
	if !f.V2 {
		return icmpv6MinHeaderLen + mldv1Len
	}
	return icmpv6MinHeaderLen + mldv2QueryLen + 16*len(f.Sources)
}

// Encode writes the message into b[:f.Len()]. The delay and interval are
// encoded as RFC 3810 §5.1.3 and §5.1.9 say, rounded down and clamped to
// what the codes can hold (an MLDv1 delay to 65535 ms).
func (f *MLDQueryFields) Encode(b []byte) {
	ndpHeader(b, ICMPv6MLDQuery)
	ms := clampUnits(f.MaxResponseDelay, time.Millisecond, 0xffffffff)
	put16(b[8:24], f.Multicast)
	if !f.V2 {
		binary.BigEndian.PutUint16(b[4:], uint16(min(ms, 0xffff)))
		return
	}
	binary.BigEndian.PutUint16(b[4:], uint16(floatCode(ms, 0x8000, 12)))
	b[24] = f.QRV & 7
	if f.SuppressRouterSide {
		b[24] |= 0x08
	}
	b[25] = uint8(floatCode(clampUnits(f.QueryInterval, time.Second, 0xffffffff), 0x80, 4))
	binary.BigEndian.PutUint16(b[26:], uint16(len(f.Sources)))
	for i, s := range f.Sources {
		put16(b[28+16*i:], s)
	}
}

// floatCode encodes v as an MLDv2 code (RFC 3810 §5.1.3, §5.1.9): below
// limit (0x8000 or 0x80) as is, else 1|exp(3)|mant(m bits) standing for
// (mant | 1<<m) << (exp+3), rounded down and clamped to the largest.
func floatCode(v, limit uint32, m uint) uint32 {
	if v < limit {
		return v
	}
	for exp := uint32(0); exp < 8; exp++ {
		if v < (2<<m)<<(exp+3) {
			return limit | exp<<m | (v>>(exp+3))&(1<<m-1)
		}
	}
	return limit | 7<<m | (1<<m - 1)
}

// MLDv1Report is the body of an MLDv1 report (131) or done (132) message
// (RFC 2710 §3).
type MLDv1Report []byte

// ParseMLDv1Report checks an MLDv1 report or done body.
func ParseMLDv1Report(body []byte) (MLDv1Report, error) {
	if len(body) < mldv1Len {
		return nil, ErrTruncated
	}
	return MLDv1Report(body), nil
}

func (r MLDv1Report) MulticastAddr() netip.Addr { return netip.AddrFrom16([16]byte(r[4:20])) }

// MLDv1ReportFields is an MLDv1 report or done to encode (RFC 3810 §8.3.1:
// a listener in MLDv1 compatibility mode sends these).
type MLDv1ReportFields struct {
	Type      ICMPv6Type // ICMPv6MLDReport or ICMPv6MLDDone
	Multicast netip.Addr
}

func (f *MLDv1ReportFields) Len() int { return icmpv6MinHeaderLen + mldv1Len }

// Encode writes the message into b[:f.Len()].
func (f *MLDv1ReportFields) Encode(b []byte) {
	ndpHeader(b, f.Type)
	put16(b[8:24], f.Multicast)
}

// Multicast address record types (RFC 3810 §5.2.12).
const (
	MLDv2ModeIsInclude   uint8 = 1
	MLDv2ModeIsExclude   uint8 = 2
	MLDv2ChangeToInclude uint8 = 3
	MLDv2ChangeToExclude uint8 = 4
	MLDv2AllowNewSources uint8 = 5
	MLDv2BlockOldSources uint8 = 6
)

// MLDv2Report is the body of an MLDv2 report (RFC 3810 §5.2).
type MLDv2Report []byte

// ParseMLDv2Report checks a report body: every record it counts must fit,
// sources and auxiliary data included. Bytes after the last record are
// ignored.
func ParseMLDv2Report(body []byte) (MLDv2Report, error) {
	if len(body) < mldv2ReportLen {
		return nil, ErrTruncated
	}
	r := MLDv2Report(body)
	off := mldv2ReportLen
	for range r.NumRecords() {
		n, ok := mldv2RecordSize(body[off:])
		if !ok {
			return nil, ErrTruncated
		}
		off += n
	}
	return r, nil
}

// mldv2RecordSize is the size of the record at the start of b, if b holds
// it whole.
func mldv2RecordSize(b []byte) (int, bool) {
	if len(b) < mldv2RecordLen {
		return 0, false
	}
	n := mldv2RecordLen + 16*int(binary.BigEndian.Uint16(b[2:])) + 4*int(b[1])
	return n, n <= len(b)
}

func (r MLDv2Report) NumRecords() int { return int(binary.BigEndian.Uint16(r[2:])) }

// Records returns an iterator over the records.
func (r MLDv2Report) Records() MLDv2RecordIter {
	return MLDv2RecordIter{b: r[mldv2ReportLen:], left: r.NumRecords()}
}

// MLDv2RecordIter walks the records of a report without allocating.
type MLDv2RecordIter struct {
	b    []byte
	left int
}

// Next returns the next record; ok is false after the last (or at one
// that does not fit, which a parsed report does not have).
func (it *MLDv2RecordIter) Next() (rec MLDv2RecordView, ok bool) {
	if it.left <= 0 {
		return nil, false
	}
	n, ok := mldv2RecordSize(it.b)
	if !ok {
		it.left = 0
		return nil, false
	}
	rec, it.b = MLDv2RecordView(it.b[:n:n]), it.b[n:]
	it.left--
	return rec, true
}

// MLDv2RecordView is one multicast address record of a parsed report.
type MLDv2RecordView []byte

func (v MLDv2RecordView) Type() uint8           { return v[0] }
func (v MLDv2RecordView) NumSources() int       { return int(binary.BigEndian.Uint16(v[2:])) }
func (v MLDv2RecordView) Multicast() netip.Addr { return netip.AddrFrom16([16]byte(v[4:20])) }
func (v MLDv2RecordView) AuxData() []byte       { return v[mldv2RecordLen+16*v.NumSources():] }
func (v MLDv2RecordView) Source(i int) netip.Addr {
	if i < 0 || i >= v.NumSources() {
		return netip.Addr{}
	}
	off := mldv2RecordLen + 16*i
	return netip.AddrFrom16([16]byte(v[off : off+16]))
}

// Sources iterates over the record's sources.
func (v MLDv2RecordView) Sources() iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		for i := range v.NumSources() {
			if !yield(v.Source(i)) {
				return
			}
		}
	}
}

// MLDv2Record is a multicast address record to encode (no auxiliary data:
// RFC 3810 §5.2.10 defines none).
type MLDv2Record struct {
	Type      uint8 // MLDv2ModeIsInclude, ...
	Multicast netip.Addr
	Sources   []netip.Addr
}

// MLDv2ReportFields is an MLDv2 report to encode.
type MLDv2ReportFields struct {
	Records []MLDv2Record
}

func (f *MLDv2ReportFields) Len() int {
	n := icmpv6MinHeaderLen + mldv2ReportLen
	for i := range f.Records {
		n += mldv2RecordLen + 16*len(f.Records[i].Sources)
	}
	return n
}

// Encode writes the message into b[:f.Len()].
func (f *MLDv2ReportFields) Encode(b []byte) {
	ndpHeader(b, ICMPv6MLDv2Report)
	binary.BigEndian.PutUint16(b[6:], uint16(len(f.Records)))
	off := 8
	for i := range f.Records {
		r := &f.Records[i]
		b[off], b[off+1] = r.Type, 0
		binary.BigEndian.PutUint16(b[off+2:], uint16(len(r.Sources)))
		put16(b[off+4:off+20], r.Multicast)
		off += mldv2RecordLen
		for _, s := range r.Sources {
			put16(b[off:off+16], s)
			off += 16
		}
	}
}

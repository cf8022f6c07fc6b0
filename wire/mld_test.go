package wire_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"ustack/wire"
)

func TestMLDQueryGolden(t *testing.T) {
	q, err := wire.ParseMLDQuery(body(goldenMLDv2Query))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "v2 IsV2", q.IsV2(), true)
	check(t, "v2 MaxResponseCode", q.MaxResponseCode(), 10000)
	check(t, "v2 MaxResponseDelay", q.MaxResponseDelay(), 10*time.Second)
	check(t, "v2 MulticastAddr", q.MulticastAddr(), netip.IPv6Unspecified())
	check(t, "v2 SuppressRouterSide", q.SuppressRouterSide(), false)
	check(t, "v2 QRV", q.QRV(), 2)
	check(t, "v2 QQIC", q.QQIC(), 125)
	check(t, "v2 QueryInterval", q.QueryInterval(), 125*time.Second)
	check(t, "v2 NumSources", q.NumSources(), 0)
	check(t, "v2 Source(0)", q.Source(0), netip.Addr{})
	f := wire.MLDQueryFields{MaxResponseDelay: 10 * time.Second, V2: true, QRV: 2, QueryInterval: 125 * time.Second}
	encodeICMPv6(t, "v2 query", goldenMLDv2Query, f.Len(), f.Encode)

	q, err = wire.ParseMLDQuery(body(goldenMLDv1Query))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "v1 IsV2", q.IsV2(), false)
	check(t, "v1 MaxResponseDelay", q.MaxResponseDelay(), 10*time.Second)
	check(t, "v1 MulticastAddr", q.MulticastAddr(), netip.IPv6Unspecified())
	check(t, "v1 QRV", q.QRV(), 0)
	check(t, "v1 QueryInterval", q.QueryInterval(), 0)
	check(t, "v1 NumSources", q.NumSources(), 0)
	check(t, "v1 SuppressRouterSide", q.SuppressRouterSide(), false)
	f = wire.MLDQueryFields{MaxResponseDelay: 10 * time.Second, Multicast: netip.IPv6Unspecified()}
	encodeICMPv6(t, "v1 query", goldenMLDv1Query, f.Len(), f.Encode)
}

// TestMLDQuerySources: a group-and-source-specific query round-trips.
func TestMLDQuerySources(t *testing.T) {
	srcs := []netip.Addr{a6one, a6two, llOne}
	grp := netip.MustParseAddr("ff0e::1:2")
	f := wire.MLDQueryFields{MaxResponseDelay: 40 * time.Second, Multicast: grp, V2: true, SuppressRouterSide: true,
		QRV: 7, QueryInterval: 300 * time.Second, Sources: srcs}
	b := filled(f.Len())
	f.Encode(b)
	check(t, "Len", f.Len(), 28+48)
	q, err := wire.ParseMLDQuery(b[4:])
	if err != nil {
		t.Fatal(err)
	}
	check(t, "MulticastAddr", q.MulticastAddr(), grp)
	check(t, "SuppressRouterSide", q.SuppressRouterSide(), true)
	check(t, "QRV", q.QRV(), 7)
	// 40000 ms = (0x1388 | 0x1000) << 3 ... encoded exactly: 40000/8 = 5000 = 0x1388.
	check(t, "MaxResponseCode", q.MaxResponseCode(), 0x8000|0<<12|0x388)
	check(t, "MaxResponseDelay", q.MaxResponseDelay(), 40*time.Second)
	// 300 s: 300 >> 4 = 18 = 0x12 → exp 1, mant 2: (0x12) << 4 = 288 s (rounded down).
	check(t, "QQIC", q.QQIC(), 0x80|1<<4|2)
	check(t, "QueryInterval", q.QueryInterval(), 288*time.Second)
	check(t, "NumSources", q.NumSources(), 3)
	for i, s := range srcs {
		check(t, "Source", q.Source(i), s)
	}
	var it []netip.Addr
	for s := range q.Sources() {
		it = append(it, s)
	}
	if d := diff(srcs, it); d != "" {
		t.Errorf("Sources %s", d)
	}
	for range q.Sources() {
		break // stopping early is fine
	}
	check(t, "Source(3)", q.Source(3), netip.Addr{})
	check(t, "Source(-1)", q.Source(-1), netip.Addr{})

	// Lengths (RFC 3810 §8.1): 20 is v1, 21-23 ignored, v2 sources must fit.
	for n := range len(b) - 4 + 1 {
		_, err := wire.ParseMLDQuery(b[4 : 4+n])
		switch {
		case n < 20 && !errors.Is(err, wire.ErrTruncated),
			n == 20 && err != nil,
			n > 20 && n < 24 && !errors.Is(err, wire.ErrBadLength),
			n >= 24 && n < 24+48 && !errors.Is(err, wire.ErrTruncated),
			n == 24+48 && err != nil:
			t.Errorf("query body of %d bytes: %v", n, err)
		}
	}
}

// TestMLDCodes checks the floating-point codes of RFC 3810 §5.1.3 and
// §5.1.9 both ways.
func TestMLDCodes(t *testing.T) {
	for _, tc := range []struct {
		ms   int
		code uint16
		back int // what the code stands for
	}{
		{0, 0, 0},
		{1, 1, 1},
		{32767, 32767, 32767},
		{32768, 0x8000, 32768},
		{32769, 0x8000, 32768},
		{65535, 0x8fff, 65528},
		{65536, 0x9000, 65536},
		{8387584, 0xffff, 8387584}, // the largest: (0xfff|0x1000) << 10
		{9000000, 0xffff, 8387584}, // clamped
	} {
		f := wire.MLDQueryFields{MaxResponseDelay: time.Duration(tc.ms) * time.Millisecond, V2: true}
		b := filled(f.Len())
		f.Encode(b)
		q, _ := wire.ParseMLDQuery(b[4:])
		check(t, "code", q.MaxResponseCode(), tc.code)
		check(t, "delay", q.MaxResponseDelay(), time.Duration(tc.back)*time.Millisecond)
	}
	for _, tc := range []struct {
		s    int
		qqic uint8
		back int
	}{
		{0, 0, 0}, {125, 125, 125}, {127, 127, 127}, {128, 0x80, 128}, {129, 0x80, 128},
		{248, 0x8f, 248}, {250, 0x8f, 248}, {256, 0x90, 256}, {31744, 0xff, 31744}, {100000, 0xff, 31744},
	} {
		f := wire.MLDQueryFields{QueryInterval: time.Duration(tc.s) * time.Second, V2: true}
		b := filled(f.Len())
		f.Encode(b)
		q, _ := wire.ParseMLDQuery(b[4:])
		check(t, "QQIC", q.QQIC(), tc.qqic)
		check(t, "QueryInterval", q.QueryInterval(), time.Duration(tc.back)*time.Second)
	}
	// MLDv1 delays are plain milliseconds, clamped to 16 bits.
	f := wire.MLDQueryFields{MaxResponseDelay: 70 * time.Second}
	b := filled(f.Len())
	f.Encode(b)
	q, _ := wire.ParseMLDQuery(b[4:])
	check(t, "v1 clamped delay", q.MaxResponseDelay(), 65535*time.Millisecond)
}

func TestMLDReportGolden(t *testing.T) {
	r, err := wire.ParseMLDv1Report(body(goldenMLDv1Report))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "v1 MulticastAddr", r.MulticastAddr(), netip.MustParseAddr("ff02::1:ff00:1"))
	v1 := wire.MLDv1ReportFields{Type: wire.ICMPv6MLDReport, Multicast: r.MulticastAddr()}
	encodeICMPv6(t, "v1 report", goldenMLDv1Report, v1.Len(), v1.Encode)
	if _, err := wire.ParseMLDv1Report(body(goldenMLDv1Report)[:19]); !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("short v1 report: %v", err)
	}

	for _, tc := range []struct {
		frame  []byte
		groups []string
	}{
		{goldenMLDv2Report, []string{"ff02::1:ff00:1"}},
		{goldenMLDv2Report4, []string{"ff02::1:ff00:0", "ff02::1:ff00:2", "ff05::2", "ff02::2"}},
	} {
		rep, err := wire.ParseMLDv2Report(body(tc.frame))
		if err != nil {
			t.Fatal(err)
		}
		check(t, "NumRecords", rep.NumRecords(), len(tc.groups))
		var f wire.MLDv2ReportFields
		it := rep.Records()
		for rec, ok := it.Next(); ok; rec, ok = it.Next() {
			check(t, "record Type", rec.Type(), wire.MLDv2ChangeToExclude)
			check(t, "NumSources", rec.NumSources(), 0)
			check(t, "AuxData", len(rec.AuxData()), 0)
			f.Records = append(f.Records, wire.MLDv2Record{Type: rec.Type(), Multicast: rec.Multicast()})
		}
		var got []string
		for _, r := range f.Records {
			got = append(got, r.Multicast.String())
		}
		if d := diff(tc.groups, got); d != "" {
			t.Errorf("groups %s", d)
		}
		encodeICMPv6(t, "v2 report", tc.frame, f.Len(), f.Encode)

		// Every prefix that cuts a record fails.
		bd := body(tc.frame)
		for n := range len(bd) {
			if _, err := wire.ParseMLDv2Report(bd[:n]); !errors.Is(err, wire.ErrTruncated) {
				t.Errorf("v2 report cut to %d of %d: %v", n, len(bd), err)
			}
		}
	}
}

// TestMLDv2ReportSources: records with sources and auxiliary data.
func TestMLDv2ReportSources(t *testing.T) {
	g1, g2 := netip.MustParseAddr("ff15::1"), netip.MustParseAddr("ff15::2")
	f := wire.MLDv2ReportFields{Records: []wire.MLDv2Record{
		{Type: wire.MLDv2ModeIsInclude, Multicast: g1, Sources: []netip.Addr{a6one, a6two}},
		{Type: wire.MLDv2BlockOldSources, Multicast: g2},
		{Type: wire.MLDv2AllowNewSources, Multicast: g1, Sources: []netip.Addr{llOne}},
	}}
	check(t, "Len", f.Len(), 8+20+32+20+20+16)
	b := filled(f.Len())
	f.Encode(b)
	rep, err := wire.ParseMLDv2Report(b[4:])
	if err != nil {
		t.Fatal(err)
	}
	var got []wire.MLDv2Record
	it := rep.Records()
	for rec, ok := it.Next(); ok; rec, ok = it.Next() {
		r := wire.MLDv2Record{Type: rec.Type(), Multicast: rec.Multicast()}
		for s := range rec.Sources() {
			r.Sources = append(r.Sources, s)
		}
		check(t, "Source(out of range)", rec.Source(rec.NumSources()), netip.Addr{})
		got = append(got, r)
	}
	if d := diff(f.Records, got); d != "" {
		t.Errorf("records %s", d)
	}
	// Auxiliary data (aux len in 32-bit words) is skipped over.
	aux := unhex(`
		00 00 00 02
		01 01 00 00  ff 15 00 00 00 00 00 00 00 00 00 00 00 00 00 01  de ad be ef // include, 1 aux word
		06 00 00 00  ff 15 00 00 00 00 00 00 00 00 00 00 00 00 00 02
	`)
	rep, err = wire.ParseMLDv2Report(aux)
	if err != nil {
		t.Fatal(err)
	}
	it = rep.Records()
	rec, _ := it.Next()
	checkBytes(t, "AuxData", rec.AuxData(), []byte{0xde, 0xad, 0xbe, 0xef})
	rec, ok := it.Next()
	check(t, "second record", ok && rec.Multicast() == g2, true)
	if _, ok := it.Next(); ok {
		t.Error("a third record")
	}
	if _, err := wire.ParseMLDv2Report(aux[:len(aux)-1]); !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("cut: %v", err)
	}
	// An MLDv1 done.
	done := wire.MLDv1ReportFields{Type: wire.ICMPv6MLDDone, Multicast: g1}
	b = filled(done.Len())
	done.Encode(b)
	checkBytes(t, "done", b, append([]byte{132, 0, 0, 0, 0, 0, 0, 0}, g1.AsSlice()...))
}

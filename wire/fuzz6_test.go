package wire_test

import (
	"errors"
	"net/netip"
	"testing"

	"ustack/wire"
)

// Fuzz targets for the IPv6 formats, seeded from the golden packets. As in
// fuzz_test.go: no panic on any input; what parses re-encodes to Len bytes
// and parses back to the same fields.

func FuzzIPv6(f *testing.F) {
	for _, fr := range ipv6Frames {
		f.Add(ip6(fr))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := wire.ParseIPv6Quote(b); err == nil {
			_, _ = q.Payload(), q.Packet()
		}
		h, err := wire.ParseIPv6(b)
		if err != nil {
			return
		}
		if _, err := wire.ParseIPv6Quote(b); err != nil {
			t.Fatalf("ParseIPv6 accepts what ParseIPv6Quote rejects: %v", err)
		}
		if len(h.Payload()) != h.PayloadLen() {
			t.Fatalf("Payload %d bytes, PayloadLen %d", len(h.Payload()), h.PayloadLen())
		}
		it := wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
		for _, ok := it.Next(); ok; _, ok = it.Next() {
		}
		fields := ipv6Fields(h)
		enc := filled(fields.Len())
		fields.Encode(enc)
		checkBytes(t, "re-encode", enc, h.Header())
		h2, err := wire.ParseIPv6(append(enc, h.Payload()...))
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if d := diff(fields, ipv6Fields(h2)); d != "" {
			t.Fatalf("reparse %s", d)
		}
	})
}

func FuzzIPv6Ext(f *testing.F) {
	for _, fr := range ipv6Frames {
		h, _ := wire.ParseIPv6(ip6(fr))
		f.Add(uint8(h.NextHeader()), h.Payload())
	}
	for _, fr := range readPcap(f, "ipv6_large.pcap")[:2] {
		h, _ := wire.ParseIPv6(ip6(fr))
		f.Add(uint8(h.NextHeader()), h.Payload()[:64])
	}
	f.Add(uint8(wire.IPProtoAH), append(unhex(`3c 04 00 00 00 00 01 00 00 00 00 01`), make([]byte, 12)...))
	f.Fuzz(func(t *testing.T, first uint8, b []byte) {
		it := wire.NewIPv6ExtIter(wire.IPProtocol(first), b)
		end := 0
		for e, ok := it.Next(); ok; e, ok = it.Next() {
			if e.Offset != end || e.Len < 8 || e.Offset+e.Len > len(b) {
				t.Fatalf("header at %d len %d after %d, in %d bytes", e.Offset, e.Len, end, len(b))
			}
			if e.Len%8 != 0 && e.Type != wire.IPProtoAH || e.Len%4 != 0 {
				t.Fatalf("%v of length %d", e.Type, e.Len)
			}
			if e.Type == wire.IPProtoHopByHop && e.Offset != 0 {
				t.Fatal("hop-by-hop not first")
			}
			checkBytes(t, "Data", e.Data, b[e.Offset:e.Offset+e.Len])
			end += e.Len
			switch e.Type {
			case wire.IPProtoHopByHop, wire.IPProtoDstOpts:
				checkOptionsRoundTrip(t, e)
			case wire.IPProtoFragment:
				fr, err := wire.ParseIPv6Fragment(e.Data)
				if err != nil {
					t.Fatal(err)
				}
				ff := wire.IPv6FragmentFields{NextHeader: fr.NextHeader(), Offset: fr.Offset(), More: fr.MoreFragments(), ID: fr.ID()}
				enc := filled(ff.Len())
				ff.Encode(enc)
				fr2, _ := wire.ParseIPv6Fragment(enc)
				got := wire.IPv6FragmentFields{NextHeader: fr2.NextHeader(), Offset: fr2.Offset(), More: fr2.MoreFragments(), ID: fr2.ID()}
				if d := diff(ff, got); d != "" {
					t.Fatalf("fragment reparse %s", d)
				}
				if fr2.IsAtomic() != (ff.Offset == 0 && !ff.More) {
					t.Fatal("IsAtomic")
				}
			case wire.IPProtoRouting:
				r, err := wire.ParseIPv6Routing(e.Data)
				if err != nil || len(r) != e.Len {
					t.Fatalf("routing header: %v, %d of %d bytes", err, len(r), e.Len)
				}
				_, _, _ = r.RoutingType(), r.SegmentsLeft(), r.Data()
			}
		}
		switch err := it.Err(); {
		case err == nil:
			if it.UpperOffset() != end || wire.IsIPv6ExtHeader(it.Upper()) && !isLaterFragment(b, end) {
				t.Fatalf("upper %v at %d, walked %d", it.Upper(), it.UpperOffset(), end)
			}
			if it.NextHeaderOffset() < -34 || it.NextHeaderOffset() >= max(end, 1) {
				t.Fatalf("NextHeaderOffset %d", it.NextHeaderOffset())
			}
		case errors.Is(err, wire.ErrBadHeaderChain):
			if bo := it.BadOffset(); bo < -34 || bo >= end {
				t.Fatalf("BadOffset %d after %d bytes", bo, end)
			}
		case errors.Is(err, wire.ErrTruncated):
			if bo := it.BadOffset(); bo < end || bo > len(b) {
				t.Fatalf("BadOffset %d, walked %d of %d", bo, end, len(b))
			}
		default:
			t.Fatalf("Err = %v", err)
		}
	})
}

// isLaterFragment reports whether the walk ended after a fragment header
// with a nonzero offset ending at end.
func isLaterFragment(b []byte, end int) bool {
	if end < 8 {
		return false
	}
	f, _ := wire.ParseIPv6Fragment(b[end-8:])
	return f.Offset() != 0
}

// checkOptionsRoundTrip re-encodes the options of a hop-by-hop or
// destination options header, padding included: when the area is well
// formed the header comes back byte for byte.
func checkOptionsRoundTrip(t *testing.T, e wire.IPv6Ext) {
	t.Helper()
	var opts []wire.IPv6OptionFields
	it := wire.NewIPv6OptIter(e.Options())
	prev := -1
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		if o.Offset <= prev || o.Offset+o.Len() > len(e.Options()) {
			t.Fatalf("option at %d len %d after %d", o.Offset, o.Len(), prev)
		}
		prev = o.Offset
		_, _ = o.RouterAlert()
		opts = append(opts, wire.IPv6OptionFields{Type: o.Type, Data: o.Data})
	}
	if it.Err() != nil {
		if bo := it.BadOffset(); bo < 0 || bo >= len(e.Options()) {
			t.Fatalf("BadOffset %d of %d", bo, len(e.Options()))
		}
		return
	}
	hf := wire.IPv6OptionsHeaderFields{NextHeader: e.NextHeader(), Options: opts}
	if hf.Len() != e.Len {
		t.Fatalf("Len %d, header %d", hf.Len(), e.Len)
	}
	enc := filled(hf.Len())
	hf.Encode(enc)
	checkBytes(t, "options header re-encode", enc, e.Data)
}

var fuzzSrc, fuzzDst = netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::1")

func FuzzICMPv6(f *testing.F) {
	for _, fr := range ipv6Frames {
		if h, _ := wire.ParseIPv6(ip6(fr)); h.NextHeader() == wire.IPProtoICMPv6 || h.NextHeader() == wire.IPProtoHopByHop && h.Payload()[0] == 58 {
			f.Add(icmp6(fr))
		}
	}
	f.Add(icmp6At(readPcap(f, "ipv6_large.pcap")[pcapPTB], 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.ParseICMPv6(b)
		if err != nil {
			return
		}
		_, _, _, _ = m.ID(), m.Seq(), m.MTU(), m.Pointer()
		_ = m.Type().String()
		if q, err := m.Quote(); err == nil {
			_, _, _ = q.Src(), q.Payload(), q.Packet()
		}
		checkNDPMessage(t, m)
		if len(m) < wire.ICMPv6HeaderLen {
			return
		}
		fields := wire.ICMPv6Fields{Type: m.Type(), Code: m.Code(), Rest: m.Rest()}
		enc := filled(fields.Len() + len(m.Payload()))
		fields.Encode(enc)
		copy(enc[fields.Len():], m.Payload())
		m2, err := wire.ParseICMPv6(enc)
		if err != nil {
			t.Fatal(err)
		}
		m2.UpdateChecksum(fuzzSrc, fuzzDst)
		if !m2.ChecksumValid(fuzzSrc, fuzzDst) {
			t.Fatal("checksum invalid after UpdateChecksum")
		}
		if m.ChecksumValid(fuzzSrc, fuzzDst) && m.Checksum() != m2.Checksum() && m.Checksum() != 0xffff && m2.Checksum() != 0 {
			t.Fatalf("checksum %#04x, recomputed %#04x", m.Checksum(), m2.Checksum())
		}
		if d := diff(fields, wire.ICMPv6Fields{Type: m2.Type(), Code: m2.Code(), Rest: m2.Rest()}); d != "" {
			t.Fatalf("reparse %s", d)
		}
	})
}

// checkNDPMessage parses an ND message of m's type, re-encodes what the
// Fields can express, and checks it parses back the same.
func checkNDPMessage(t *testing.T, m wire.ICMPv6) {
	t.Helper()
	lla := func(opts []byte, typ uint8) *wire.MAC {
		o, ok := wire.FindNDPOption(opts, typ)
		if !ok {
			return nil
		}
		mac, ok := o.LinkAddr()
		if !ok {
			return nil
		}
		return &mac
	}
	type encoder interface {
		Len() int
		Encode([]byte)
	}
	roundTrip := func(e encoder) []byte {
		b := filled(e.Len())
		e.Encode(b)
		if b[0] != uint8(m.Type()) {
			t.Fatalf("encoded type %d, want %d", b[0], m.Type())
		}
		return b[4:]
	}
	switch m.Type() {
	case wire.ICMPv6NeighborSolicit:
		ns, err := wire.ParseNDPNeighborSolicit(m.Body())
		if err != nil {
			return
		}
		f := wire.NDPNeighborSolicitFields{Target: ns.Target(), SourceLLA: lla(ns.Options(), wire.NDPOptSourceLLA)}
		ns2, err := wire.ParseNDPNeighborSolicit(roundTrip(&f))
		if err != nil || ns2.Target() != f.Target || (lla(ns2.Options(), wire.NDPOptSourceLLA) == nil) != (f.SourceLLA == nil) {
			t.Fatalf("NS round trip: %v", err)
		}
	case wire.ICMPv6NeighborAdvert:
		na, err := wire.ParseNDPNeighborAdvert(m.Body())
		if err != nil {
			return
		}
		f := wire.NDPNeighborAdvertFields{Router: na.Router(), Solicited: na.Solicited(), Override: na.Override(),
			Target: na.Target(), TargetLLA: lla(na.Options(), wire.NDPOptTargetLLA)}
		na2, err := wire.ParseNDPNeighborAdvert(roundTrip(&f))
		if err != nil || na2.Target() != f.Target || na2.Router() != f.Router || na2.Solicited() != f.Solicited || na2.Override() != f.Override {
			t.Fatalf("NA round trip: %v", err)
		}
	case wire.ICMPv6RouterSolicit:
		rs, err := wire.ParseNDPRouterSolicit(m.Body())
		if err != nil {
			return
		}
		f := wire.NDPRouterSolicitFields{SourceLLA: lla(rs.Options(), wire.NDPOptSourceLLA)}
		if _, err := wire.ParseNDPRouterSolicit(roundTrip(&f)); err != nil {
			t.Fatalf("RS round trip: %v", err)
		}
	case wire.ICMPv6RouterAdvert:
		ra, err := wire.ParseNDPRouterAdvert(m.Body())
		if err != nil {
			return
		}
		f := wire.NDPRouterAdvertFields{CurHopLimit: ra.CurHopLimit(), Managed: ra.Managed(), Other: ra.Other(),
			RouterLifetime: ra.RouterLifetime(), ReachableTime: ra.ReachableTime(), RetransTimer: ra.RetransTimer(),
			SourceLLA: lla(ra.Options(), wire.NDPOptSourceLLA)}
		it := wire.NewNDPOptIter(ra.Options())
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if p, ok := o.PrefixInfo(); ok {
				f.Prefixes = append(f.Prefixes, p)
			}
			if mtu, ok := o.MTU(); ok && mtu != 0 {
				f.MTU = mtu
			}
		}
		ra2, err := wire.ParseNDPRouterAdvert(roundTrip(&f))
		if err != nil {
			t.Fatalf("RA round trip: %v", err)
		}
		got := wire.NDPRouterAdvertFields{CurHopLimit: ra2.CurHopLimit(), Managed: ra2.Managed(), Other: ra2.Other(),
			RouterLifetime: ra2.RouterLifetime(), ReachableTime: ra2.ReachableTime(), RetransTimer: ra2.RetransTimer(),
			SourceLLA: lla(ra2.Options(), wire.NDPOptSourceLLA)}
		it = wire.NewNDPOptIter(ra2.Options())
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if p, ok := o.PrefixInfo(); ok {
				got.Prefixes = append(got.Prefixes, p)
			}
			if mtu, ok := o.MTU(); ok {
				got.MTU = mtu
			}
		}
		if d := diff(f, got); d != "" {
			t.Fatalf("RA round trip %s", d)
		}
	case wire.ICMPv6Redirect:
		r, err := wire.ParseNDPRedirect(m.Body())
		if err != nil {
			return
		}
		f := wire.NDPRedirectFields{Target: r.Target(), Dst: r.Dst(), TargetLLA: lla(r.Options(), wire.NDPOptTargetLLA)}
		if o, ok := wire.FindNDPOption(r.Options(), wire.NDPOptRedirectedHeader); ok {
			f.Redirected, _ = o.RedirectedHeader()
		}
		r2, err := wire.ParseNDPRedirect(roundTrip(&f))
		if err != nil || r2.Target() != f.Target || r2.Dst() != f.Dst {
			t.Fatalf("redirect round trip: %v", err)
		}
	}
}

func FuzzNDPOptions(f *testing.F) {
	for _, tc := range []struct {
		frame []byte
		fixed int
	}{{goldenNS, 20}, {goldenNA, 20}, {goldenDADNS, 20}, {goldenRA, 12}, {goldenIPv6RS, 4}, {goldenRedirect, 36}} {
		f.Add(body(tc.frame)[tc.fixed:])
	}
	f.Add([]byte{1, 0, 2, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var enc []byte
		it := wire.NewNDPOptIter(b)
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if (len(o.Data)+2)%8 != 0 || len(o.Data) < 6 {
				t.Fatalf("option data of %d bytes", len(o.Data))
			}
			of := wire.NDPOptionFields{Type: o.Type, Data: o.Data}
			e := filled(of.Len())
			of.Encode(e)
			enc = append(enc, e...)
			_, _ = o.LinkAddr()
			_, _ = o.MTU()
			_, _ = o.RedirectedHeader()
			if p, ok := o.PrefixInfo(); ok {
				if !p.Prefix.IsValid() || p.Prefix.Bits() > 128 || p.Prefix != p.Prefix.Masked() {
					t.Fatalf("prefix %v", p.Prefix)
				}
				ra := wire.NDPRouterAdvertFields{Prefixes: []wire.NDPPrefixInfo{p}}
				rb := filled(ra.Len())
				ra.Encode(rb)
				po, _ := wire.FindNDPOption(rb[16:], wire.NDPOptPrefixInfo)
				p2, ok := po.PrefixInfo()
				if d := diff(p, p2); !ok || d != "" {
					t.Fatalf("prefix round trip %s", d)
				}
			}
		}
		checkBytes(t, "re-encode", enc, b[:len(enc)])
		if err := wire.ValidateNDPOptions(b); (err != nil) != (it.Err() != nil) {
			t.Fatalf("ValidateNDPOptions %v, iterator %v", err, it.Err())
		}
		if it.Err() != nil && !errors.Is(it.Err(), wire.ErrBadOption) {
			t.Fatalf("Err = %v", it.Err())
		}
		if it.Err() == nil && len(enc) != len(b) {
			t.Fatalf("walked %d of %d bytes without error", len(enc), len(b))
		}
	})
}

func FuzzMLD(f *testing.F) {
	for _, fr := range [][]byte{goldenMLDv2Query, goldenMLDv1Query, goldenMLDv2Report, goldenMLDv2Report4, goldenMLDv1Report} {
		f.Add(body(fr))
	}
	f.Add(unhex(`00 00 00 02  01 01 00 01  ff 15 00 00 00 00 00 00 00 00 00 00 00 00 00 01
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01  de ad be ef
		06 00 00 00  ff 15 00 00 00 00 00 00 00 00 00 00 00 00 00 02`))
	f.Add(unhex(`9c 40 00 00  ff 0e 00 00 00 00 00 00 00 00 00 00 00 01 00 02  0f 92 00 01
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := wire.ParseMLDv1Report(b); err == nil {
			_ = r.MulticastAddr()
		}
		if q, err := wire.ParseMLDQuery(b); err == nil {
			qf := mldQueryFields(q)
			enc := filled(qf.Len())
			qf.Encode(enc)
			q2, err := wire.ParseMLDQuery(enc[4:])
			if err != nil {
				t.Fatalf("query reparse: %v", err)
			}
			if d := diff(qf, mldQueryFields(q2)); d != "" {
				t.Fatalf("query reparse %s", d)
			}
			if q2.MaxResponseCode() != q.MaxResponseCode() || q2.QQIC() != q.QQIC() {
				t.Fatalf("codes %#x/%#x, reencoded %#x/%#x", q.MaxResponseCode(), q.QQIC(), q2.MaxResponseCode(), q2.QQIC())
			}
		}
		r, err := wire.ParseMLDv2Report(b)
		if err != nil {
			return
		}
		var rf wire.MLDv2ReportFields
		it := r.Records()
		n := 0
		for rec, ok := it.Next(); ok; rec, ok = it.Next() {
			mr := wire.MLDv2Record{Type: rec.Type(), Multicast: rec.Multicast()}
			for i := range rec.NumSources() {
				mr.Sources = append(mr.Sources, rec.Source(i))
			}
			_ = rec.AuxData()
			rf.Records = append(rf.Records, mr)
			n++
		}
		if n != r.NumRecords() {
			t.Fatalf("%d records of %d", n, r.NumRecords())
		}
		enc := filled(rf.Len())
		rf.Encode(enc)
		r2, err := wire.ParseMLDv2Report(enc[4:])
		if err != nil {
			t.Fatalf("report reparse: %v", err)
		}
		var got wire.MLDv2ReportFields
		it = r2.Records()
		for rec, ok := it.Next(); ok; rec, ok = it.Next() {
			mr := wire.MLDv2Record{Type: rec.Type(), Multicast: rec.Multicast()}
			for i := range rec.NumSources() {
				mr.Sources = append(mr.Sources, rec.Source(i))
			}
			got.Records = append(got.Records, mr)
		}
		if d := diff(rf, got); d != "" {
			t.Fatalf("report reparse %s", d)
		}
	})
}

func mldQueryFields(q wire.MLDQuery) wire.MLDQueryFields {
	f := wire.MLDQueryFields{MaxResponseDelay: q.MaxResponseDelay(), Multicast: q.MulticastAddr(), V2: q.IsV2()}
	if f.V2 {
		f.SuppressRouterSide, f.QRV, f.QueryInterval = q.SuppressRouterSide(), q.QRV(), q.QueryInterval()
		for i := range q.NumSources() {
			f.Sources = append(f.Sources, q.Source(i))
		}
	}
	return f
}

// decodeFrame6 runs an IPv6 frame through every parser, as a receive path
// would, and returns the first error.
func decodeFrame6(b []byte) error {
	_, _, typ, p, err := wire.ParseEthernetFrame(b)
	if err != nil {
		return err
	}
	if typ != wire.EtherTypeIPv6 {
		return wire.ErrUnsupported
	}
	h, err := wire.ParseIPv6(p)
	if err != nil {
		return err
	}
	it := wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		oit := wire.NewIPv6OptIter(e.Options())
		for _, ok := oit.Next(); ok; _, ok = oit.Next() {
		}
		if oit.Err() != nil {
			return oit.Err()
		}
	}
	if it.Err() != nil {
		return it.Err()
	}
	upper := h.Payload()[it.UpperOffset():]
	switch it.Upper() {
	case wire.IPProtoUDP:
		_, err = wire.ParseUDP(upper)
	case wire.IPProtoICMPv6:
		var m wire.ICMPv6
		if m, err = wire.ParseICMPv6(upper); err != nil {
			return err
		}
		switch m.Type() {
		case wire.ICMPv6NeighborSolicit:
			_, err = wire.ParseNDPNeighborSolicit(m.Body())
		case wire.ICMPv6NeighborAdvert:
			_, err = wire.ParseNDPNeighborAdvert(m.Body())
		case wire.ICMPv6RouterSolicit:
			_, err = wire.ParseNDPRouterSolicit(m.Body())
		case wire.ICMPv6RouterAdvert:
			_, err = wire.ParseNDPRouterAdvert(m.Body())
		case wire.ICMPv6Redirect:
			_, err = wire.ParseNDPRedirect(m.Body())
		case wire.ICMPv6MLDQuery:
			_, err = wire.ParseMLDQuery(m.Body())
		case wire.ICMPv6MLDReport, wire.ICMPv6MLDDone:
			_, err = wire.ParseMLDv1Report(m.Body())
		case wire.ICMPv6MLDv2Report:
			_, err = wire.ParseMLDv2Report(m.Body())
		default:
			if m.Type().IsError() {
				_, err = m.Quote()
			}
		}
	}
	return err
}

// TestIPv6FramePrefixes: every golden IPv6 frame decodes through all its
// layers; every proper prefix fails cleanly somewhere.
func TestIPv6FramePrefixes(t *testing.T) {
	for i, frame := range ipv6Frames {
		if err := decodeFrame6(frame); err != nil {
			t.Errorf("frame %d: %v", i, err)
		}
		for n := range len(frame) {
			if decodeFrame6(frame[:n]) == nil {
				t.Errorf("frame %d cut to %d of %d bytes decoded", i, n, len(frame))
			}
		}
	}
}

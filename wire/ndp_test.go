package wire_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"ustack/wire"
)

// ndpOpt is an ND option as the tests compare it.
type ndpOpt struct {
	Type uint8
	Data string
}

func ndpOpts(t *testing.T, b []byte) []ndpOpt {
	t.Helper()
	var got []ndpOpt
	it := wire.NewNDPOptIter(b)
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		got = append(got, ndpOpt{o.Type, string(o.Data)})
	}
	if it.Err() != nil {
		t.Errorf("options: %v", it.Err())
	}
	return got
}

// encodeICMPv6 runs an encoder into 0xa5 (with 2 spare bytes that must
// stay), fixes the checksum for the frame's addresses, and compares with
// the frame's ICMPv6 message.
func encodeICMPv6(t *testing.T, name string, frame []byte, n int, encode func([]byte)) {
	t.Helper()
	want := icmp6(frame)
	if n != len(want) {
		t.Errorf("%s: Len %d, want %d", name, n, len(want))
		return
	}
	b := filled(n + 2)
	encode(b)
	checkBytes(t, name+" beyond Len", b[n:], filled(2))
	h, _ := wire.ParseIPv6(ip6(frame))
	wire.ICMPv6(b[:n]).UpdateChecksum(h.Src(), h.Dst())
	checkBytes(t, name, b[:n], want)
}

func body(frame []byte) []byte { return icmp6(frame)[4:] }

func TestNDPNeighborGolden(t *testing.T) {
	ns, err := wire.ParseNDPNeighborSolicit(body(goldenNS))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "NS Target", ns.Target(), a6two)
	if d := diff([]ndpOpt{{wire.NDPOptSourceLLA, string(macOne[:])}}, ndpOpts(t, ns.Options())); d != "" {
		t.Errorf("NS options %s", d)
	}
	o, _ := wire.FindNDPOption(ns.Options(), wire.NDPOptSourceLLA)
	if m, ok := o.LinkAddr(); !ok || m != macOne {
		t.Errorf("LinkAddr = %v, %v", m, ok)
	}
	encodeICMPv6(t, "NS", goldenNS, (&wire.NDPNeighborSolicitFields{Target: a6two, SourceLLA: &macOne}).Len(), func(b []byte) {
		(&wire.NDPNeighborSolicitFields{Target: a6two, SourceLLA: &macOne}).Encode(b)
	})

	// DAD: no link-layer option, a nonce (RFC 7527) that LinkAddr refuses.
	dad, err := wire.ParseNDPNeighborSolicit(body(goldenDADNS))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "DAD Target", dad.Target(), a6two)
	if d := diff([]ndpOpt{{wire.NDPOptNonce, "\x2a\x89\x12\x28\x26\x70"}}, ndpOpts(t, dad.Options())); d != "" {
		t.Errorf("DAD options %s", d)
	}
	if _, ok := wire.FindNDPOption(dad.Options(), wire.NDPOptSourceLLA); ok {
		t.Error("DAD probe has a source link-layer address")
	}
	nonce, _ := wire.FindNDPOption(dad.Options(), wire.NDPOptNonce)
	if _, ok := nonce.LinkAddr(); ok {
		t.Error("LinkAddr of a nonce")
	}
	f := wire.NDPNeighborSolicitFields{Target: a6two}
	b := filled(f.Len())
	f.Encode(b)
	// The probe without its nonce: same bytes, checksum zero.
	checkBytes(t, "DAD NS without nonce", b, append([]byte{135, 0, 0, 0}, icmp6(goldenDADNS)[4:24]...))

	na, err := wire.ParseNDPNeighborAdvert(body(goldenNA))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "NA flags", [3]bool{na.Router(), na.Solicited(), na.Override()}, [3]bool{true, true, true})
	check(t, "NA Target", na.Target(), a6two)
	if d := diff([]ndpOpt{{wire.NDPOptTargetLLA, string(macTwo[:])}}, ndpOpts(t, na.Options())); d != "" {
		t.Errorf("NA options %s", d)
	}
	naf := wire.NDPNeighborAdvertFields{Router: true, Solicited: true, Override: true, Target: a6two, TargetLLA: &macTwo}
	encodeICMPv6(t, "NA", goldenNA, naf.Len(), naf.Encode)

	na, err = wire.ParseNDPNeighborAdvert(body(goldenNANoOpt))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "NA (NUD) flags", [3]bool{na.Router(), na.Solicited(), na.Override()}, [3]bool{false, true, false})
	check(t, "NA (NUD) options", len(na.Options()), 0)
	naf = wire.NDPNeighborAdvertFields{Solicited: true, Target: a6one}
	encodeICMPv6(t, "NA (NUD)", goldenNANoOpt, naf.Len(), naf.Encode)
}

func TestNDPRouterGolden(t *testing.T) {
	rs, err := wire.ParseNDPRouterSolicit(body(goldenIPv6RS))
	if err != nil {
		t.Fatal(err)
	}
	if d := diff([]ndpOpt{{wire.NDPOptSourceLLA, string(macTwo[:])}}, ndpOpts(t, rs.Options())); d != "" {
		t.Errorf("RS options %s", d)
	}
	rsf := wire.NDPRouterSolicitFields{SourceLLA: &macTwo}
	encodeICMPv6(t, "RS", goldenIPv6RS, rsf.Len(), rsf.Encode)
	rsf = wire.NDPRouterSolicitFields{}
	encodeICMPv6(t, "RS (rdisc6)", goldenRSNoOpt, rsf.Len(), rsf.Encode)

	ra, err := wire.ParseNDPRouterAdvert(body(goldenRA))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "CurHopLimit", ra.CurHopLimit(), 64)
	check(t, "Managed", ra.Managed(), false)
	check(t, "Other", ra.Other(), true)
	check(t, "Flags", ra.Flags(), wire.NDPRAOther)
	check(t, "RouterLifetime", ra.RouterLifetime(), 1800*time.Second)
	check(t, "ReachableTime", ra.ReachableTime(), 30*time.Second)
	check(t, "RetransTimer", ra.RetransTimer(), time.Second)
	pi := wire.NDPPrefixInfo{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true,
		ValidLifetime: 86400 * time.Second, PreferredLifetime: 14400 * time.Second}
	var (
		gotPI  wire.NDPPrefixInfo
		gotMTU uint32
		gotLLA wire.MAC
		n      int
	)
	it := wire.NewNDPOptIter(ra.Options())
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		n++
		if p, ok := o.PrefixInfo(); ok {
			gotPI = p
		}
		if m, ok := o.MTU(); ok {
			gotMTU = m
		}
		if m, ok := o.LinkAddr(); ok {
			gotLLA = m
		}
	}
	check(t, "options", n, 3)
	check(t, "Offset at end", it.Offset(), len(ra.Options()))
	if d := diff(pi, gotPI); d != "" {
		t.Errorf("PrefixInfo %s", d)
	}
	check(t, "MTU", gotMTU, 1500)
	check(t, "SourceLLA", gotLLA, macTwo)

	raf := wire.NDPRouterAdvertFields{CurHopLimit: 64, Other: true, RouterLifetime: 1800 * time.Second,
		ReachableTime: 30 * time.Second, RetransTimer: time.Second, SourceLLA: &macTwo, MTU: 1500,
		Prefixes: []wire.NDPPrefixInfo{pi}}
	encodeICMPv6(t, "RA", goldenRA, raf.Len(), raf.Encode)
}

func TestNDPRedirectGolden(t *testing.T) {
	r, err := wire.ParseNDPRedirect(body(goldenRedirect))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Target", r.Target(), llOne)
	check(t, "Dst", r.Dst(), netip.MustParseAddr("2001:db8:5::1"))
	o, ok := wire.FindNDPOption(r.Options(), wire.NDPOptRedirectedHeader)
	if !ok {
		t.Fatal("no redirected header")
	}
	pkt, ok := o.RedirectedHeader()
	if !ok {
		t.Fatal("RedirectedHeader not ok")
	}
	q, err := wire.ParseIPv6Quote(pkt)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "redirected Dst", q.Dst(), r.Dst())
	lla, _ := wire.FindNDPOption(r.Options(), wire.NDPOptTargetLLA)
	if m, ok := lla.LinkAddr(); !ok || m != macOne {
		t.Errorf("target LLA %v %v", m, ok)
	}
	f := wire.NDPRedirectFields{Target: llOne, Dst: r.Dst(), TargetLLA: &macOne, Redirected: pkt[:104]}
	encodeICMPv6(t, "redirect", goldenRedirect, f.Len(), f.Encode)
	// Padding to 8: a 5-byte quote makes a 16-byte option.
	f = wire.NDPRedirectFields{Target: llOne, Dst: r.Dst(), Redirected: []byte{1, 2, 3, 4, 5}}
	b := filled(f.Len())
	f.Encode(b)
	checkBytes(t, "short redirected header", b[40:], []byte{4, 2, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0})
}

// TestNDPErrors: RFC 4861 §4.6: an option of length zero, or one running
// past the end, drops the whole message.
func TestNDPErrors(t *testing.T) {
	lenZero := append(append([]byte{}, body(goldenNS)[:20]...), 1, 0, 2, 0, 0, 0, 0, 1)
	past := append(append([]byte{}, body(goldenNS)[:20]...), 1, 2, 2, 0, 0, 0, 0, 1)
	odd := append(append([]byte{}, body(goldenNS)...), 1)
	for _, tc := range []struct {
		name  string
		parse func([]byte) error
		b     []byte
		want  error
	}{
		{"NS length 0", nsParse, lenZero, wire.ErrBadOption},
		{"NS option past end", nsParse, past, wire.ErrBadOption},
		{"NS trailing byte", nsParse, odd, wire.ErrBadOption},
		{"NS short", nsParse, body(goldenNS)[:19], wire.ErrTruncated},
		{"NA short", func(b []byte) error { _, err := wire.ParseNDPNeighborAdvert(b); return err }, body(goldenNA)[:19], wire.ErrTruncated},
		{"RS short", func(b []byte) error { _, err := wire.ParseNDPRouterSolicit(b); return err }, []byte{0, 0, 0}, wire.ErrTruncated},
		{"RA short", func(b []byte) error { _, err := wire.ParseNDPRouterAdvert(b); return err }, body(goldenRA)[:11], wire.ErrTruncated},
		{"redirect short", func(b []byte) error { _, err := wire.ParseNDPRedirect(b); return err }, body(goldenRedirect)[:35], wire.ErrTruncated},
		{"RA length 0", func(b []byte) error { _, err := wire.ParseNDPRouterAdvert(b); return err },
			append(append([]byte{}, body(goldenRA)[:12]...), 3, 0), wire.ErrBadOption},
	} {
		if err := tc.parse(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Every prefix of every ND message fails cleanly, and those that cut
	// an option fail with ErrBadOption.
	for _, tc := range []struct {
		frame []byte
		fixed int
		parse func([]byte) error
	}{
		{goldenNS, 20, nsParse},
		{goldenDADNS, 20, nsParse},
		{goldenNA, 20, func(b []byte) error { _, err := wire.ParseNDPNeighborAdvert(b); return err }},
		{goldenRA, 12, func(b []byte) error { _, err := wire.ParseNDPRouterAdvert(b); return err }},
		{goldenIPv6RS, 4, func(b []byte) error { _, err := wire.ParseNDPRouterSolicit(b); return err }},
		{goldenRedirect, 36, func(b []byte) error { _, err := wire.ParseNDPRedirect(b); return err }},
	} {
		bd := body(tc.frame)
		if err := tc.parse(bd); err != nil {
			t.Errorf("% x: %v", bd[:8], err)
		}
		ends := map[int]bool{}
		it := wire.NewNDPOptIter(bd[tc.fixed:])
		for _, ok := it.Next(); ok; _, ok = it.Next() {
			ends[tc.fixed+it.Offset()] = true
		}
		for n := range len(bd) {
			err := tc.parse(bd[:n])
			switch {
			case n < tc.fixed && !errors.Is(err, wire.ErrTruncated):
				t.Errorf("type %d cut to %d: %v, want ErrTruncated", tc.frame[54], n, err)
			case n >= tc.fixed && !ends[n] && n != tc.fixed && !errors.Is(err, wire.ErrBadOption):
				t.Errorf("type %d cut to %d: %v, want ErrBadOption", tc.frame[54], n, err)
			case n >= tc.fixed && (ends[n] || n == tc.fixed) && err != nil:
				t.Errorf("type %d cut to %d (between options): %v", tc.frame[54], n, err)
			}
		}
	}
}

func nsParse(b []byte) error { _, err := wire.ParseNDPNeighborSolicit(b); return err }

func TestNDPOptionDecoders(t *testing.T) {
	pio := func(plen uint8) wire.NDPOption {
		d := make([]byte, 30)
		d[0], d[1] = plen, 0x80
		copy(d[2:], []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
		copy(d[14:], netip.MustParseAddr("2001:db8:1:2:3:4:5:6").AsSlice())
		return wire.NDPOption{Type: wire.NDPOptPrefixInfo, Data: d}
	}
	p, ok := pio(48).PrefixInfo()
	want := wire.NDPPrefixInfo{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), OnLink: true, ValidLifetime: wire.NDPInfiniteLifetime}
	if !ok || diff(want, p) != "" {
		t.Errorf("PrefixInfo /48: %v %s", ok, diff(want, p))
	}
	p, ok = pio(128).PrefixInfo()
	if !ok || p.Prefix != netip.MustParsePrefix("2001:db8:1:2:3:4:5:6/128") {
		t.Errorf("PrefixInfo /128: %v %v", p, ok)
	}
	// RFC 4861 §4.6.2: a prefix length over 128 is invalid.
	for _, o := range []wire.NDPOption{pio(129), pio(255), {Type: wire.NDPOptPrefixInfo, Data: make([]byte, 22)}, {Type: wire.NDPOptMTU, Data: make([]byte, 30)}} {
		if _, ok := o.PrefixInfo(); ok {
			t.Errorf("PrefixInfo ok on %d/%d", o.Type, len(o.Data))
		}
	}
	for _, o := range []wire.NDPOption{{Type: wire.NDPOptMTU, Data: make([]byte, 14)}, {Type: wire.NDPOptSourceLLA, Data: make([]byte, 6)}} {
		if _, ok := o.MTU(); ok {
			t.Errorf("MTU ok on %d/%d", o.Type, len(o.Data))
		}
	}
	for _, o := range []wire.NDPOption{{Type: wire.NDPOptSourceLLA, Data: make([]byte, 14)}, {Type: wire.NDPOptMTU, Data: make([]byte, 6)}} {
		if _, ok := o.LinkAddr(); ok {
			t.Errorf("LinkAddr ok on %d/%d", o.Type, len(o.Data))
		}
	}
	if _, ok := (wire.NDPOption{Type: wire.NDPOptRedirectedHeader, Data: make([]byte, 5)}).RedirectedHeader(); ok {
		t.Error("RedirectedHeader ok on 5 bytes")
	}

	// NDPOptionFields: padded to 8 with zeros (an RDNSS option, RFC 8106).
	f := wire.NDPOptionFields{Type: wire.NDPOptRDNSS, Data: append([]byte{0, 0, 0, 0, 0x0e, 0x10}, a6two.AsSlice()...)}
	b := filled(f.Len())
	f.Encode(b)
	checkBytes(t, "RDNSS", b, append([]byte{25, 3, 0, 0, 0, 0, 0x0e, 0x10}, a6two.AsSlice()...))
	f = wire.NDPOptionFields{Type: 200, Data: []byte{1}}
	b = filled(f.Len() + 1)
	f.Encode(b)
	checkBytes(t, "padded", b, []byte{200, 1, 1, 0, 0, 0, 0, 0, 0xa5})

	// Lifetimes: all ones is infinite, encoders clamp.
	raf := wire.NDPRouterAdvertFields{RouterLifetime: 100000 * time.Second, ReachableTime: -time.Second,
		Prefixes: []wire.NDPPrefixInfo{{Prefix: netip.MustParsePrefix("2001:db8:1:2:3::/80"), ValidLifetime: 200 * 365 * 24 * time.Hour, PreferredLifetime: 1500 * time.Millisecond}}}
	b = filled(raf.Len())
	raf.Encode(b)
	ra, err := wire.ParseNDPRouterAdvert(b[4:])
	if err != nil {
		t.Fatal(err)
	}
	check(t, "clamped RouterLifetime", ra.RouterLifetime(), 65535*time.Second)
	check(t, "clamped ReachableTime", ra.ReachableTime(), 0)
	o, _ := wire.FindNDPOption(ra.Options(), wire.NDPOptPrefixInfo)
	p, _ = o.PrefixInfo()
	check(t, "Prefix", p.Prefix, netip.MustParsePrefix("2001:db8:1:2:3::/80"))
	check(t, "infinite ValidLifetime", p.ValidLifetime, wire.NDPInfiniteLifetime)
	check(t, "truncated PreferredLifetime", p.PreferredLifetime, time.Second)
	if _, ok := wire.FindNDPOption(ra.Options(), wire.NDPOptSourceLLA); ok {
		t.Error("SourceLLA present without one")
	}
}

package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"ustack/wire"
)

// extStep is one header of a chain, as the iterator should report it.
type extStep struct {
	Type   wire.IPProtocol
	Offset int
	Len    int
}

// walkExt walks a packet's chain and returns what it saw.
func walkExt(h wire.IPv6) (steps []extStep, it wire.IPv6ExtIter) {
	it = wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		steps = append(steps, extStep{e.Type, e.Offset, e.Len})
	}
	return steps, it
}

func TestIPv6ExtGolden(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frame    []byte
		steps    []extStep
		upper    wire.IPProtocol
		upperOff int
		nhOff    int // offset of the next-header field naming upper
	}{
		{"no extension", goldenEcho6, nil, wire.IPProtoICMPv6, 0, -34},
		{"MLD hop-by-hop", goldenMLDv2Report, []extStep{{wire.IPProtoHopByHop, 0, 8}}, wire.IPProtoICMPv6, 8, 0},
		{"dst opts", goldenDstOptUnknown, []extStep{{wire.IPProtoDstOpts, 0, 8}}, wire.IPProtoICMPv6, 8, 0},
		{"routing type 0", goldenRH0, []extStep{{wire.IPProtoRouting, 0, 24}}, wire.IPProtoICMPv6, 24, 0},
		{"unknown upper", goldenProto150, nil, 150, 0, -34},
		{"chain", goldenExtChain, []extStep{
			{wire.IPProtoHopByHop, 0, 8}, {wire.IPProtoDstOpts, 8, 8}, {wire.IPProtoFragment, 16, 8},
		}, wire.IPProtoICMPv6, 24, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := wire.ParseIPv6(ip6(tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			steps, it := walkExt(h)
			if d := diff(tc.steps, steps); d != "" {
				t.Errorf("steps %s", d)
			}
			check(t, "Err", it.Err(), nil)
			check(t, "Upper", it.Upper(), tc.upper)
			check(t, "UpperOffset", it.UpperOffset(), tc.upperOff)
			check(t, "NextHeaderOffset", it.NextHeaderOffset(), tc.nhOff)
			// The pointer Linux put in goldenParamNextHeader.
			if tc.upper == 150 {
				check(t, "pointer", uint32(wire.IPv6HeaderLen+it.NextHeaderOffset()), wire.ICMPv6(icmp6(goldenParamNextHeader)).Pointer())
			}
			// Next stays false.
			if _, ok := it.Next(); ok {
				t.Error("Next after the end returned ok")
			}
		})
	}
}

// TestIPv6ExtData checks what the iterator yields inside headers, against
// the bytes of goldenExtChain and goldenRH0.
func TestIPv6ExtData(t *testing.T) {
	h, _ := wire.ParseIPv6(ip6(goldenExtChain))
	it := wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
	hbh, _ := it.Next()
	check(t, "hop-by-hop NextHeader", hbh.NextHeader(), wire.IPProtoDstOpts)
	checkBytes(t, "hop-by-hop Data", hbh.Data, h.Payload()[:8])
	checkBytes(t, "hop-by-hop Options", hbh.Options(), h.Payload()[2:8])
	dst, _ := it.Next()
	check(t, "dst opts NextHeader", dst.NextHeader(), wire.IPProtoFragment)
	fr, _ := it.Next()
	if fr.Options() != nil {
		t.Error("fragment header has Options")
	}
	f, err := wire.ParseIPv6Fragment(fr.Data)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "NextHeader", f.NextHeader(), wire.IPProtoICMPv6)
	check(t, "Offset", f.Offset(), 0)
	check(t, "MoreFragments", f.MoreFragments(), false)
	check(t, "ID", f.ID(), 0x12345678)
	check(t, "IsAtomic", f.IsAtomic(), true)
	// The echo request after the chain checks out against the addresses.
	m, err := wire.ParseICMPv6(h.Payload()[it.UpperOffset():])
	if err != nil || !m.ChecksumValid(h.Src(), h.Dst()) {
		t.Errorf("echo after the chain: %v, checksum valid %v", err, err == nil && m.ChecksumValid(h.Src(), h.Dst()))
	}

	h, _ = wire.ParseIPv6(ip6(goldenRH0))
	it = wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
	e, _ := it.Next()
	r, err := wire.ParseIPv6Routing(e.Data)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "RoutingType", r.RoutingType(), wire.IPv6RoutingType0)
	check(t, "SegmentsLeft", r.SegmentsLeft(), 1)
	check(t, "NextHeader", r.NextHeader(), wire.IPProtoICMPv6)
	checkBytes(t, "Data", r.Data(), e.Data[4:])
	// Linux points at the routing type for a type 0 header with segments
	// left (RFC 5095 §3, RFC 8200 §4.4): 40 + offset + 2.
	check(t, "pointer", wire.ICMPv6(icmp6(goldenParamHeader)).Pointer(), uint32(wire.IPv6HeaderLen+e.Offset+2))
	check(t, "IPv6SegmentsLeftOffset", e.Data[wire.IPv6SegmentsLeftOffset], 1)
	for n := range 24 {
		if _, err := wire.ParseIPv6Routing(e.Data[:n]); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("ParseIPv6Routing [:%d]: %v", n, err)
		}
	}
}

// TestIPv6ExtErrors: framing errors, a misplaced hop-by-hop header, AH's
// own length unit, ESP and no-next-header ending the walk.
func TestIPv6ExtErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		first    wire.IPProtocol
		b        []byte
		steps    []extStep
		err      error
		bad      int
		upper    wire.IPProtocol
		upperOff int
	}{
		{"hop-by-hop second", wire.IPProtoDstOpts, unhex(`00 00 01 04 00 00 00 00  3a 00 01 04 00 00 00 00`),
			[]extStep{{wire.IPProtoDstOpts, 0, 8}}, wire.ErrBadHeaderChain, 0, 0, 0},
		{"hop-by-hop twice", wire.IPProtoHopByHop, unhex(`00 00 01 04 00 00 00 00  3a 00 01 04 00 00 00 00`),
			[]extStep{{wire.IPProtoHopByHop, 0, 8}}, wire.ErrBadHeaderChain, 0, 0, 0},
		{"shorter than 8", wire.IPProtoDstOpts, unhex(`3a 00 01 04 00 00 00`), nil, wire.ErrTruncated, 0, 0, 0},
		{"length past end", wire.IPProtoRouting, unhex(`3a 01 00 00 00 00 00 00  00 00 00 00 00 00 00`), nil, wire.ErrTruncated, 1, 0, 0},
		{"second header cut", wire.IPProtoDstOpts, unhex(`2b 00 01 04 00 00 00 00  3a 00 00`),
			[]extStep{{wire.IPProtoDstOpts, 0, 8}}, wire.ErrTruncated, 8, 0, 0},
		// RFC 4302 §2.2: AH's length is in 4-byte units, minus 2; here 4
		// means 24 bytes (12 of ICV).
		{"AH", wire.IPProtoAH, append(unhex(`06 04 00 00  00 00 01 00  00 00 00 01`), make([]byte, 12)...),
			[]extStep{{wire.IPProtoAH, 0, 24}}, nil, 0, wire.IPProtoTCP, 24},
		{"ESP ends the walk", wire.IPProtoDstOpts, unhex(`32 00 01 04 00 00 00 00  de ad be ef`),
			[]extStep{{wire.IPProtoDstOpts, 0, 8}}, nil, 0, wire.IPProtoESP, 8},
		{"no next header", wire.IPProtoNoNext, nil, nil, nil, 0, wire.IPProtoNoNext, 0},
		{"empty payload, extension named", wire.IPProtoHopByHop, nil, nil, wire.ErrTruncated, 0, 0, 0},
		// A non-first fragment: what follows is data, not a header.
		{"later fragment", wire.IPProtoFragment, unhex(`00 00 05 a8 13 f2 13 07  ff ff ff ff`),
			[]extStep{{wire.IPProtoFragment, 0, 8}}, nil, 0, wire.IPProtoHopByHop, 8},
		// RFC 7112: a first fragment whose chain runs past its end.
		{"first fragment, chain cut", wire.IPProtoFragment, unhex(`3c 00 00 01 13 f2 13 07  3a 01 00 00 00 00 00 00`),
			[]extStep{{wire.IPProtoFragment, 0, 8}}, wire.ErrTruncated, 9, 0, 0},
		{"mobility, HIP, shim6, 253, 254", 135, unhex(`8b 00 00 00 00 00 00 00  8c 00 00 00 00 00 00 00  fd 00 00 00 00 00 00 00  fe 00 00 00 00 00 00 00  3b 00 00 00 00 00 00 00`),
			[]extStep{{135, 0, 8}, {139, 8, 8}, {140, 16, 8}, {253, 24, 8}, {254, 32, 8}}, nil, 0, wire.IPProtoNoNext, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := wire.NewIPv6ExtIter(tc.first, tc.b)
			var steps []extStep
			for e, ok := it.Next(); ok; e, ok = it.Next() {
				steps = append(steps, extStep{e.Type, e.Offset, e.Len})
			}
			if d := diff(tc.steps, steps); d != "" {
				t.Errorf("steps %s", d)
			}
			if !errors.Is(it.Err(), tc.err) || (tc.err == nil) != (it.Err() == nil) {
				t.Fatalf("Err = %v, want %v", it.Err(), tc.err)
			}
			if tc.err != nil {
				check(t, "BadOffset", it.BadOffset(), tc.bad)
				return
			}
			check(t, "Upper", it.Upper(), tc.upper)
			check(t, "UpperOffset", it.UpperOffset(), tc.upperOff)
		})
	}
	// A hop-by-hop header second: the pointer is the next-header field of
	// the header naming it (RFC 8200 §4.1 with §4: code 1).
	it := wire.NewIPv6ExtIter(wire.IPProtoRouting, unhex(`3c 00 00 00 00 00 00 00  00 00 01 04 00 00 00 00  00 00 00 00 00 00 00 00`))
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	check(t, "BadOffset of misplaced hop-by-hop", it.BadOffset(), 8)
}

func TestIsIPv6ExtHeader(t *testing.T) {
	yes := map[wire.IPProtocol]bool{0: true, 43: true, 44: true, 51: true, 60: true, 135: true, 139: true, 140: true, 253: true, 254: true}
	for p := range 256 {
		check(t, wire.IPProtocol(p).String(), wire.IsIPv6ExtHeader(wire.IPProtocol(p)), yes[wire.IPProtocol(p)])
	}
}

// TestIPv6FragmentsGolden: the two fragments of ping -6 -s 2000 parse;
// put together they are the echo request, whose checksum holds.
func TestIPv6FragmentsGolden(t *testing.T) {
	frames := readPcap(t, "ipv6_large.pcap")
	var whole []byte
	var h wire.IPv6
	for i, want := range []struct {
		off  int
		more bool
		n    int
	}{{0, true, 1448}, {1448, false, 560}} {
		var err error
		h, err = wire.ParseIPv6(ip6(frames[pcapFrag1+i]))
		if err != nil {
			t.Fatal(err)
		}
		steps, it := walkExt(h)
		if d := diff([]extStep{{wire.IPProtoFragment, 0, 8}}, steps); d != "" || it.Err() != nil {
			t.Fatalf("fragment %d: steps %s, err %v", i, d, it.Err())
		}
		f, err := wire.ParseIPv6Fragment(h.Payload())
		if err != nil {
			t.Fatal(err)
		}
		check(t, "Offset", f.Offset(), want.off)
		check(t, "MoreFragments", f.MoreFragments(), want.more)
		check(t, "ID", f.ID(), 0x13f21307)
		check(t, "NextHeader", f.NextHeader(), wire.IPProtoICMPv6)
		check(t, "IsAtomic", f.IsAtomic(), false)
		check(t, "data", len(h.Payload())-8, want.n)
		// The first fragment's walk goes on to ICMPv6; the second's ends
		// after the fragment header.
		check(t, "Upper", it.Upper(), wire.IPProtoICMPv6)
		check(t, "UpperOffset", it.UpperOffset(), 8)
		if len(whole) != f.Offset() {
			t.Fatalf("fragment at %d after %d bytes", f.Offset(), len(whole))
		}
		whole = append(whole, h.Payload()[8:]...)

		// Encode the fragment header back.
		ff := wire.IPv6FragmentFields{NextHeader: f.NextHeader(), Offset: f.Offset(), More: f.MoreFragments(), ID: f.ID()}
		b := filled(ff.Len() + 2)
		ff.Encode(b)
		checkBytes(t, "Encode", b[:8], h.Payload()[:8])
		checkBytes(t, "beyond Len", b[8:], filled(2))
	}
	m, err := wire.ParseICMPv6(whole)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "reassembled type", m.Type(), wire.ICMPv6EchoRequest)
	check(t, "reassembled length", len(whole), 2008)
	check(t, "reassembled checksum valid", m.ChecksumValid(h.Src(), h.Dst()), true)

	for n := range 8 {
		if _, err := wire.ParseIPv6Fragment(make([]byte, n)); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("ParseIPv6Fragment of %d bytes: %v", n, err)
		}
	}
}

func TestIPv6Options(t *testing.T) {
	type opt struct {
		Type   uint8
		Data   string
		Offset int
		Action uint8
	}
	walk := func(area []byte) ([]opt, wire.IPv6OptIter) {
		var got []opt
		it := wire.NewIPv6OptIter(area)
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if o.Len() != 2+len(o.Data) && o.Type != wire.IPv6OptPad1 {
				t.Errorf("Len %d with %d data bytes", o.Len(), len(o.Data))
			}
			got = append(got, opt{o.Type, string(o.Data), o.Offset, o.Action()})
		}
		return got, it
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  []opt
	}{
		{"MLD (router alert, PadN)", goldenMLDv2Report, []opt{{5, "\x00\x00", 0, 0}, {1, "", 4, 0}}},
		{"query (router alert, Pad1, Pad1)", goldenMLDv2Query, []opt{{5, "\x00\x00", 0, 0}, {0, "", 4, 0}, {0, "", 5, 0}}},
		{"unknown 0x87", goldenDstOptUnknown, []opt{{0x87, "\x01\x02\x03\x04", 0, 2}}},
	} {
		h, _ := wire.ParseIPv6(ip6(tc.frame))
		it := wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
		e, _ := it.Next()
		got, oit := walk(e.Options())
		if d := diff(tc.want, got); d != "" || oit.Err() != nil {
			t.Errorf("%s: %s %v", tc.name, d, oit.Err())
		}
	}
	// Linux's pointer for the unknown option is its type octet.
	check(t, "pointer", wire.ICMPv6(icmp6(goldenParamOption)).Pointer(), uint32(wire.IPv6HeaderLen+0+2+0))

	ra := wire.IPv6Option{Type: wire.IPv6OptRouterAlert, Data: []byte{0, 1}}
	if v, ok := ra.RouterAlert(); !ok || v != wire.IPv6RouterAlertRSVP {
		t.Errorf("RouterAlert = %v, %v", v, ok)
	}
	for _, o := range []wire.IPv6Option{{Type: wire.IPv6OptRouterAlert, Data: []byte{0}}, {Type: wire.IPv6OptPadN, Data: []byte{0, 0}}} {
		if _, ok := o.RouterAlert(); ok {
			t.Errorf("RouterAlert ok on %+v", o)
		}
	}
	// RFC 8200 §4.2: the two high bits say what to do; the third that
	// the data may change.
	for typ, want := range map[uint8]uint8{0x05: 0, 0x3e: 0, 0x4f: 1, 0x87: 2, 0xc2: 3, 0xff: 3} {
		check(t, "Action", wire.IPv6Option{Type: typ}.Action(), want)
	}
	check(t, "action constants", [4]uint8{wire.IPv6OptActionSkip, wire.IPv6OptActionDiscard, wire.IPv6OptActionDiscardICMP, wire.IPv6OptActionDiscardICMPUnicast}, [4]uint8{0, 1, 2, 3})
	check(t, "ChangesEnRoute", wire.IPv6Option{Type: 0x3e}.ChangesEnRoute(), true)
	check(t, "ChangesEnRoute", wire.IPv6Option{Type: 0x05}.ChangesEnRoute(), false)
	check(t, "IsPadding", wire.IPv6Option{Type: wire.IPv6OptPad1}.IsPadding(), true)

	for _, tc := range []struct {
		area []byte
		bad  int
	}{
		{[]byte{0, 5}, 1},             // Pad1, then a type with no length
		{[]byte{1, 3, 0, 0}, 1},       // PadN longer than the area
		{[]byte{0xc2, 4, 0, 0, 1}, 1}, // jumbo cut
	} {
		got, it := walk(tc.area)
		if !errors.Is(it.Err(), wire.ErrBadOption) || it.BadOffset() != tc.bad {
			t.Errorf("% x: %v at %d (after %v), want ErrBadOption at %d", tc.area, it.Err(), it.BadOffset(), got, tc.bad)
		}
	}
}

// TestIPv6OptionsEncode: the encoders reproduce Linux's hop-by-hop
// headers byte for byte.
func TestIPv6OptionsEncode(t *testing.T) {
	hbh := icmp6At(goldenMLDv2Report, 0)[:8]
	b := filled(wire.IPv6RouterAlertHeaderLen + 2)
	wire.EncodeIPv6RouterAlertHeader(b, wire.IPProtoICMPv6, wire.IPv6RouterAlertMLD)
	checkBytes(t, "EncodeIPv6RouterAlertHeader", b[:8], hbh)
	checkBytes(t, "beyond", b[8:], filled(2))

	for _, tc := range []struct {
		name string
		f    wire.IPv6OptionsHeaderFields
		want []byte
	}{
		{"router alert + PadN (Linux MLD)", wire.IPv6OptionsHeaderFields{NextHeader: wire.IPProtoICMPv6,
			Options: []wire.IPv6OptionFields{{Type: wire.IPv6OptRouterAlert, Data: []byte{0, 0}}}}, hbh},
		{"router alert, Pad1, Pad1 (bridge querier)", wire.IPv6OptionsHeaderFields{NextHeader: wire.IPProtoICMPv6,
			Options: []wire.IPv6OptionFields{{Type: wire.IPv6OptRouterAlert, Data: []byte{0, 0}}, {Type: wire.IPv6OptPad1}, {Type: wire.IPv6OptPad1}}},
			icmp6At(goldenMLDv2Query, 0)[:8]},
		{"unknown option, no padding", wire.IPv6OptionsHeaderFields{NextHeader: wire.IPProtoICMPv6,
			Options: []wire.IPv6OptionFields{{Type: 0x87, Data: []byte{1, 2, 3, 4}}}}, icmp6At(goldenDstOptUnknown, 0)[:8]},
		{"empty: PadN of 4", wire.IPv6OptionsHeaderFields{NextHeader: wire.IPProtoTCP}, []byte{6, 0, 1, 4, 0, 0, 0, 0}},
		{"one pad byte: Pad1", wire.IPv6OptionsHeaderFields{NextHeader: wire.IPProtoUDP,
			Options: []wire.IPv6OptionFields{{Type: 0x1e, Data: make([]byte, 3)}}}, []byte{17, 0, 0x1e, 3, 0, 0, 0, 0}},
		{"two units", wire.IPv6OptionsHeaderFields{NextHeader: wire.IPProtoUDP,
			Options: []wire.IPv6OptionFields{{Type: 0x1e, Data: bytes.Repeat([]byte{7}, 7)}}},
			[]byte{17, 1, 0x1e, 7, 7, 7, 7, 7, 7, 7, 7, 1, 3, 0, 0, 0}},
	} {
		b := filled(tc.f.Len() + 2)
		tc.f.Encode(b)
		checkBytes(t, tc.name, b[:tc.f.Len()], tc.want)
		checkBytes(t, tc.name+" beyond Len", b[tc.f.Len():], filled(2))
	}
	defer func() {
		if recover() == nil {
			t.Error("Encode of 256 data bytes did not panic")
		}
	}()
	f := wire.IPv6OptionFields{Type: 0x1e, Data: make([]byte, 256)}
	f.Encode(make([]byte, 300))
}

// TestIPv6ExtPrefixes: every prefix of a chain fails cleanly.
func TestIPv6ExtPrefixes(t *testing.T) {
	for _, frame := range [][]byte{goldenExtChain, goldenRH0, goldenMLDv2Report, goldenDstOptUnknown} {
		h, _ := wire.ParseIPv6(ip6(frame))
		_, whole := walkExt(h)
		for n := range whole.UpperOffset() {
			it := wire.NewIPv6ExtIter(h.NextHeader(), h.Payload()[:n])
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
			if !errors.Is(it.Err(), wire.ErrTruncated) {
				t.Errorf("% x cut to %d: %v", h.Payload()[:whole.UpperOffset()], n, it.Err())
			}
		}
	}
}

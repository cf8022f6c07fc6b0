package wire_test

import (
	"errors"
	"net/netip"
	"testing"

	"ustack/wire"
)

func ipv4Opts(frame []byte) []byte {
	h, err := wire.ParseIPv4(ip(frame))
	if err != nil {
		panic(err)
	}
	return h.Options()
}

// optSummary is what a test compares for each option.
type optSummary struct {
	Type wire.IPv4OptionType
	Len  int
	Off  int
}

func collect(t *testing.T, opts []byte) ([]wire.IPv4Option, error) {
	t.Helper()
	var got []wire.IPv4Option
	it := wire.NewIPv4OptionIter(opts)
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		got = append(got, o)
	}
	return got, it.Err()
}

func TestIPv4OptionsGolden(t *testing.T) {
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")

	t.Run("record route request", func(t *testing.T) {
		opts, err := collect(t, ipv4Opts(goldenEchoRR))
		if err != nil || len(opts) != 2 {
			t.Fatalf("%d options, %v", len(opts), err)
		}
		check(t, "opt 0", optSummary{opts[0].Type, opts[0].Len(), opts[0].Off}, optSummary{wire.IPv4OptNOP, 1, 0})
		rr := opts[1]
		check(t, "opt 1", optSummary{rr.Type, rr.Len(), rr.Off}, optSummary{wire.IPv4OptRecordRoute, 39, 1})
		check(t, "Pointer", rr.Pointer(), 8)
		check(t, "RouteAddrs", rr.RouteAddrs(), 9)
		check(t, "RouteAddr(0)", rr.RouteAddr(0), a1)
		check(t, "RouteAddr(1)", rr.RouteAddr(1), netip.IPv4Unspecified())
		check(t, "RouteAddr(9)", rr.RouteAddr(9), netip.Addr{})
		check(t, "RouteAddr(-1)", rr.RouteAddr(-1), netip.Addr{})
		check(t, "Copied", rr.Type.Copied(), false)
		if bad, err := wire.CheckIPv4Options(ipv4Opts(goldenEchoRR)); err != nil {
			t.Errorf("CheckIPv4Options: %v at %d", err, bad)
		}
	})
	t.Run("record route reply, EOL", func(t *testing.T) {
		opts, err := collect(t, ipv4Opts(goldenEchoReplyRR))
		if err != nil || len(opts) != 1 {
			t.Fatalf("%d options, %v", len(opts), err)
		}
		rr := opts[0]
		check(t, "Pointer", rr.Pointer(), 16)
		for i, want := range []netip.Addr{a1, a2, a2, netip.IPv4Unspecified()} {
			check(t, "RouteAddr", rr.RouteAddr(i), want)
		}
		if err := wire.ValidateIPv4Options(ipv4Opts(goldenEchoReplyRR)); err != nil {
			t.Error(err)
		}
	})
	t.Run("timestamp", func(t *testing.T) {
		h, _ := wire.ParseIPv4(ip(goldenEchoTS))
		ts, ok := h.FindOption(wire.IPv4OptTimestamp)
		if !ok {
			t.Fatal("no timestamp option")
		}
		check(t, "Len", ts.Len(), 40)
		check(t, "Pointer", ts.Pointer(), 9)
		of, fl := ts.TimestampFlags()
		check(t, "overflow", of, 0)
		check(t, "flag", fl, wire.IPv4TSOnly)
		checkBytes(t, "first stamp", ts.Data[2:6], []byte{0x01, 0x43, 0x26, 0xac})
		check(t, "Class", ts.Type.Class(), 2)
		check(t, "Number", ts.Type.Number(), 4)
		if err := wire.ValidateIPv4Options(h.Options()); err != nil {
			t.Error(err)
		}
	})
	t.Run("router alert", func(t *testing.T) {
		opts := ipv4Opts(goldenIGMPRA)
		ra, ok := wire.FindIPv4Option(opts, wire.IPv4OptRouterAlert)
		if !ok {
			t.Fatal("no router alert")
		}
		v, ok := ra.RouterAlert()
		check(t, "RouterAlert ok", ok, true)
		check(t, "RouterAlert", v, 0)
		check(t, "Copied", ra.Type.Copied(), true)
		check(t, "Class", ra.Type.Class(), 0)
		check(t, "Number", ra.Type.Number(), 20)
		if err := wire.ValidateIPv4Options(opts); err != nil {
			t.Error(err)
		}
		b := filled(wire.IPv4RouterAlertLen)
		wire.EncodeIPv4RouterAlert(b, 0)
		checkBytes(t, "EncodeIPv4RouterAlert", b, opts)
	})
	if _, ok := wire.FindIPv4Option(ipv4Opts(goldenEchoRR), wire.IPv4OptTimestamp); ok {
		t.Error("found a timestamp in the record route packet")
	}
	if _, ok := wire.FindIPv4Option(ipv4Opts(goldenEchoReplyRR), wire.IPv4OptEOL); ok {
		t.Error("found EOL")
	}
	if _, ok := (wire.IPv4Option{Type: wire.IPv4OptNOP}).RouterAlert(); ok {
		t.Error("RouterAlert ok on a NOP")
	}
}

func TestIPv4OptionFieldsEncode(t *testing.T) {
	// Rebuild goldenEchoRR's options: NOP, then record route with its data.
	want := ipv4Opts(goldenEchoRR)
	nop := wire.IPv4OptionFields{Type: wire.IPv4OptNOP, Data: []byte{9, 9}} // data ignored
	rr := wire.IPv4OptionFields{Type: wire.IPv4OptRecordRoute, Data: want[3:40]}
	b := filled(nop.Len() + rr.Len())
	nop.Encode(b)
	rr.Encode(b[nop.Len():])
	checkBytes(t, "Encode", b, want)
	eol := wire.IPv4OptionFields{Type: wire.IPv4OptEOL}
	check(t, "EOL Len", eol.Len(), 1)

	// With IPv4Fields: a router alert makes IHL 6.
	var ra [wire.IPv4RouterAlertLen]byte
	wire.EncodeIPv4RouterAlert(ra[:], 0)
	f := wire.IPv4Fields{TOS: 0xc0, TotalLen: 40, Flags: wire.IPv4FlagDF, TTL: 1, Protocol: wire.IPProtoIGMP,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("224.0.0.22"), Options: ra[:]}
	hb := filled(f.Len())
	f.Encode(hb)
	checkBytes(t, "IGMP header", hb, ip(goldenIGMPRA)[:24])
}

func TestIPv4OptionTypeString(t *testing.T) {
	for typ, want := range map[wire.IPv4OptionType]string{
		wire.IPv4OptEOL: "eol", wire.IPv4OptNOP: "nop", wire.IPv4OptRecordRoute: "rr",
		wire.IPv4OptTimestamp: "ts", wire.IPv4OptSecurity: "security", wire.IPv4OptLSRR: "lsrr",
		wire.IPv4OptStreamID: "sid", wire.IPv4OptSSRR: "ssrr", wire.IPv4OptRouterAlert: "ra",
		25: "ipopt(25)",
	} {
		check(t, "String", typ.String(), want)
	}
	check(t, "LSRR copied", wire.IPv4OptLSRR.Copied(), true)
	check(t, "SSRR copied", wire.IPv4OptSSRR.Copied(), true)
	check(t, "Security copied", wire.IPv4OptSecurity.Copied(), true)
}

func TestCheckIPv4Options(t *testing.T) {
	rr := func(ptr byte, slots int) []byte {
		b := []byte{7, byte(3 + 4*slots), ptr}
		return append(b, make([]byte, 4*slots)...)
	}
	ts := func(ptr, flag byte, size int) []byte {
		b := []byte{68, byte(size), ptr, flag}
		return append(b, make([]byte, size-4)...)
	}
	cat := func(bs ...[]byte) (out []byte) {
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		opts []byte
		bad  int // -1: valid
	}{
		{"empty", nil, -1},
		{"padding after EOL is ignored", []byte{0, 0xff, 0x01, 0x33}, -1},
		{"NOPs", []byte{1, 1, 1, 1}, -1},
		{"unknown option, framing ok", []byte{0x1e, 4, 0, 0}, -1},
		{"unknown option, length 0", []byte{0x1e, 0, 0, 0}, 1},
		{"unknown option, length 1", []byte{0x1e, 1, 0, 0}, 1},
		{"length past the end", []byte{1, 0x1e, 4, 0}, 2},
		{"type without length", []byte{1, 1, 1, 0x1e}, 3},
		{"rr empty, pointer 4", rr(4, 1), -1},
		{"rr full, pointer past end", rr(8, 1), -1},
		{"rr length 2", []byte{7, 2, 1, 1}, 1},
		{"rr pointer 3", rr(3, 1), 2},
		{"rr pointer inside last slot", cat(rr(5, 1), []byte{1}), 2},
		{"rr twice", cat(rr(4, 1), rr(4, 1)), 7},
		{"lsrr and ssrr", cat([]byte{131, 7, 4, 0, 0, 0, 0}, []byte{137, 7, 4, 0, 0, 0, 0}), 7},
		{"lsrr then rr", cat([]byte{131, 7, 4, 0, 0, 0, 0}, rr(4, 1)), -1},
		{"ts only", ts(5, 0, 12), -1},
		{"ts with addresses", ts(5, 1, 12), -1},
		{"ts prespecified", ts(13, 3, 12), -1},
		{"ts flag 2", ts(5, 2, 12), 3},
		{"ts pointer 4", ts(4, 0, 12), 2},
		{"ts entry does not fit", ts(5, 1, 8), 2},
		{"ts length 3", []byte{68, 3, 5, 0}, 1},
		{"ts twice", cat(ts(5, 0, 8), ts(5, 0, 8)), 8},
		{"router alert", []byte{148, 4, 0, 0}, -1},
		{"router alert length 3", []byte{148, 3, 0, 1}, 1},
		{"router alert twice is allowed", []byte{148, 4, 0, 0, 148, 4, 0, 0}, -1},
		{"stream id", []byte{136, 4, 0, 1}, -1},
		{"stream id length 6", []byte{136, 6, 0, 1, 0, 0}, 1},
		{"stream id twice", []byte{136, 4, 0, 1, 136, 4, 0, 1}, 4},
		{"security", []byte{130, 3, 0xab, 0}, -1},
		{"security length 2", []byte{130, 2, 1, 1}, 1},
		{"security twice", []byte{130, 3, 0xab, 130, 3, 0xab, 0, 0}, 3},
	} {
		bad, err := wire.CheckIPv4Options(tc.opts)
		switch {
		case tc.bad < 0 && err != nil:
			t.Errorf("%s: %v at %d, want valid", tc.name, err, bad)
		case tc.bad >= 0 && !errors.Is(err, wire.ErrBadOption):
			t.Errorf("%s: err = %v, want ErrBadOption", tc.name, err)
		case tc.bad >= 0 && bad != tc.bad:
			t.Errorf("%s: bad offset %d, want %d", tc.name, bad, tc.bad)
		}
		if (wire.ValidateIPv4Options(tc.opts) == nil) != (err == nil) {
			t.Errorf("%s: ValidateIPv4Options disagrees", tc.name)
		}
	}
}

// TestIPv4OptionPrefixes cuts each golden options area at every length: a
// cut inside an option is ErrBadOption, a cut between options is valid.
func TestIPv4OptionPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []byte
		cutsOK []int
	}{
		{"nop rr", ipv4Opts(goldenEchoRR), []int{0, 1, 40}},
		{"rr eol", ipv4Opts(goldenEchoReplyRR), []int{0, 39, 40}},
		{"ts", ipv4Opts(goldenEchoTS), []int{0, 40}},
		{"ra", ipv4Opts(goldenIGMPRA), []int{0, 4}},
	} {
		ok := map[int]bool{}
		for _, n := range tc.cutsOK {
			ok[n] = true
		}
		for n := 0; n <= len(tc.opts); n++ {
			_, err := collect(t, tc.opts[:n])
			if ok[n] != (err == nil) {
				t.Errorf("%s[:%d]: iterator err = %v", tc.name, n, err)
			}
			if !ok[n] && wire.ValidateIPv4Options(tc.opts[:n]) == nil {
				t.Errorf("%s[:%d]: ValidateIPv4Options accepted a cut option", tc.name, n)
			}
		}
	}
}

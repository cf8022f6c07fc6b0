package wire_test

import (
	"errors"
	"testing"

	"ustack/wire"
)

func tcpOpts(frame []byte) []byte {
	s, err := wire.ParseTCP(l4(frame))
	if err != nil {
		panic(err)
	}
	return s.Options()
}

func TestTCPOptionIterGolden(t *testing.T) {
	type kl struct {
		Kind wire.TCPOptionKind
		Len  int
		Off  int
	}
	want := []kl{
		{wire.TCPOptMSS, 2, 0}, {wire.TCPOptSACKPermitted, 0, 4}, {wire.TCPOptTimestamps, 8, 6},
		{wire.TCPOptNOP, 0, 16}, {wire.TCPOptWScale, 1, 17},
	}
	var got []kl
	it := wire.NewTCPOptionIter(tcpOpts(goldenSYN))
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		got = append(got, kl{o.Kind, len(o.Data), o.Off})
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	if d := diff(want, got); d != "" {
		t.Errorf("options %s", d)
	}
}

func TestParseTCPOptions(t *testing.T) {
	mss := []byte{2, 4, 0x05, 0xb4}
	for _, tc := range []struct {
		name string
		opts []byte
		want wire.TCPOptions
		err  error
	}{
		{"empty", nil, wire.TCPOptions{}, nil},
		{"mss", mss, wire.TCPOptions{MSS: 1460, HasMSS: true}, nil},
		{"eol then garbage", []byte{2, 4, 0, 1, 0, 0xff, 0xff, 0xff}, wire.TCPOptions{MSS: 1, HasMSS: true}, nil},
		{"nop padding", []byte{1, 1, 1, 3, 3, 7}, wire.TCPOptions{WScale: 7, HasWScale: true}, nil},
		{"wscale above 14 kept as sent", []byte{3, 3, 15, 0}, wire.TCPOptions{WScale: 15, HasWScale: true}, nil},
		{"sack-permitted", []byte{4, 2, 0, 0}, wire.TCPOptions{SACKPermitted: true}, nil},
		{"unknown kinds skipped", []byte{30, 4, 0, 0, 34, 2, 253, 6, 1, 2, 3, 4, 2, 4, 0, 9},
			wire.TCPOptions{MSS: 9, HasMSS: true}, nil},
		{"four SACK blocks", []byte{5, 34, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0},
			wire.TCPOptions{NumSACK: 4, SACK: [4]wire.SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}, nil},
		{"last one counts", []byte{2, 4, 0, 1, 2, 4, 0, 2, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 5, 10, 0, 0, 0, 9, 0, 0, 0, 10},
			wire.TCPOptions{MSS: 2, HasMSS: true, NumSACK: 1, SACK: [4]wire.SACKBlock{{9, 10}}}, nil},

		{"length 0", []byte{30, 0, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"length 1", []byte{30, 1, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"kind without length", []byte{1, 1, 1, 2}, wire.TCPOptions{}, wire.ErrBadOption},
		{"length past the end", []byte{2, 4, 5}, wire.TCPOptions{}, wire.ErrBadOption},
		{"mss length 3", []byte{2, 3, 5, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"mss length 5", []byte{2, 5, 5, 0, 0, 0, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"wscale length 2", []byte{3, 2, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"wscale length 4", []byte{3, 4, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"sack-permitted length 3", []byte{4, 3, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"sack length 2", []byte{5, 2, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"sack length 9", []byte{5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"sack five blocks", append([]byte{5, 42}, make([]byte, 40)...), wire.TCPOptions{}, wire.ErrBadOption},
		{"timestamps length 9", []byte{8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
		{"timestamps length 11", []byte{8, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, wire.TCPOptions{}, wire.ErrBadOption},
	} {
		got, err := wire.ParseTCPOptions(tc.opts)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			continue
		}
		if d := diff(tc.want, got); d != "" {
			t.Errorf("%s: %s", tc.name, d)
		}
	}
}

// TestTCPOptionsPrefixes cuts the golden option areas at every length: a
// cut inside an option is ErrBadOption, a cut between options parses the
// options before it.
func TestTCPOptionsPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []byte
		cutsOK []int
	}{
		{"SYN", tcpOpts(goldenSYN), []int{0, 4, 6, 16, 17, 20}},
		{"SACK", tcpOpts(goldenSACK), []int{0, 1, 2, 12, 13, 14, 32}},
	} {
		ok := map[int]bool{}
		for _, n := range tc.cutsOK {
			ok[n] = true
		}
		for n := 0; n <= len(tc.opts); n++ {
			_, err := wire.ParseTCPOptions(tc.opts[:n])
			if ok[n] && err != nil {
				t.Errorf("%s[:%d]: %v", tc.name, n, err)
			}
			if !ok[n] && !errors.Is(err, wire.ErrBadOption) {
				t.Errorf("%s[:%d]: err = %v, want ErrBadOption", tc.name, n, err)
			}
		}
	}
}

func TestTCPOptionsEncode(t *testing.T) {
	ts := func(o wire.TCPOptions) wire.TCPOptions {
		o.TSVal, o.TSEcr, o.HasTimestamps = 0x01020304, 0x05060708, true
		return o
	}
	blocks := [4]wire.SACKBlock{{0x11, 0x12}, {0x21, 0x22}, {0x31, 0x32}, {0x41, 0x42}}
	tsBytes := []byte{8, 10, 1, 2, 3, 4, 5, 6, 7, 8}
	cat := func(bs ...[]byte) (out []byte) {
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	sack := func(n int) []byte {
		b := []byte{5, byte(2 + 8*n)}
		for _, blk := range blocks[:n] {
			b = append(b, 0, 0, 0, byte(blk.Left), 0, 0, 0, byte(blk.Right))
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		o     wire.TCPOptions
		want  []byte
		reget *wire.TCPOptions // what parsing the encoding gives, if not o
	}{
		{"none", wire.TCPOptions{}, nil, nil},
		{"mss", wire.TCPOptions{MSS: 536, HasMSS: true}, []byte{2, 4, 2, 0x18}, nil},
		{"ts", ts(wire.TCPOptions{}), cat([]byte{1, 1}, tsBytes), nil},
		{"sackOK alone", wire.TCPOptions{SACKPermitted: true}, []byte{1, 1, 4, 2}, nil},
		{"wscale alone", wire.TCPOptions{WScale: 14, HasWScale: true}, []byte{1, 3, 3, 14}, nil},
		{"Linux SYN", ts(wire.TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, WScale: 7, HasWScale: true}),
			cat([]byte{2, 4, 5, 0xb4, 4, 2}, tsBytes, []byte{1, 3, 3, 7}), nil},
		{"SYN without timestamps", wire.TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, WScale: 7, HasWScale: true},
			[]byte{2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7}, nil},
		{"one SACK block", wire.TCPOptions{NumSACK: 1, SACK: blocks}, cat([]byte{1, 1}, sack(1)), &wire.TCPOptions{NumSACK: 1, SACK: [4]wire.SACKBlock{blocks[0]}}},
		{"four SACK blocks", wire.TCPOptions{NumSACK: 4, SACK: blocks}, cat([]byte{1, 1}, sack(4)), nil},
		{"ts and 3 SACK blocks fill 40", ts(wire.TCPOptions{NumSACK: 3, SACK: blocks}),
			cat([]byte{1, 1}, tsBytes, []byte{1, 1}, sack(3)), &wire.TCPOptions{TSVal: 0x01020304, TSEcr: 0x05060708, HasTimestamps: true, NumSACK: 3, SACK: [4]wire.SACKBlock{blocks[0], blocks[1], blocks[2]}}},
		{"ts and 4 SACK blocks: 3 sent (RFC 2018 §3)", ts(wire.TCPOptions{NumSACK: 4, SACK: blocks}),
			cat([]byte{1, 1}, tsBytes, []byte{1, 1}, sack(3)), &wire.TCPOptions{TSVal: 0x01020304, TSEcr: 0x05060708, HasTimestamps: true, NumSACK: 3, SACK: [4]wire.SACKBlock{blocks[0], blocks[1], blocks[2]}}},
		{"mss, ts, 3 blocks: packed", ts(wire.TCPOptions{MSS: 1, HasMSS: true, NumSACK: 3, SACK: blocks}),
			cat([]byte{2, 4, 0, 1}, tsBytes, sack(3)), &wire.TCPOptions{MSS: 1, HasMSS: true, TSVal: 0x01020304, TSEcr: 0x05060708, HasTimestamps: true, NumSACK: 3, SACK: [4]wire.SACKBlock{blocks[0], blocks[1], blocks[2]}}},
		{"all but SACK-permitted and MSS with 3 blocks: aligned would be 44",
			ts(wire.TCPOptions{WScale: 2, HasWScale: true, NumSACK: 3, SACK: blocks}),
			cat(tsBytes, []byte{3, 3, 2}, sack(3), []byte{0}),
			&wire.TCPOptions{WScale: 2, HasWScale: true, TSVal: 0x01020304, TSEcr: 0x05060708, HasTimestamps: true, NumSACK: 3, SACK: [4]wire.SACKBlock{blocks[0], blocks[1], blocks[2]}}},
		{"all with 2 blocks: aligned fills 40",
			ts(wire.TCPOptions{MSS: 1, HasMSS: true, SACKPermitted: true, WScale: 2, HasWScale: true, NumSACK: 2, SACK: blocks}),
			cat([]byte{2, 4, 0, 1, 4, 2}, tsBytes, []byte{1, 3, 3, 2, 1, 1}, sack(2)),
			&wire.TCPOptions{MSS: 1, HasMSS: true, SACKPermitted: true, WScale: 2, HasWScale: true, TSVal: 0x01020304, TSEcr: 0x05060708, HasTimestamps: true, NumSACK: 2, SACK: [4]wire.SACKBlock{blocks[0], blocks[1]}}},
		{"NumSACK out of range", wire.TCPOptions{NumSACK: 9, SACK: blocks}, cat([]byte{1, 1}, sack(4)), &wire.TCPOptions{NumSACK: 4, SACK: blocks}},
		{"NumSACK negative", wire.TCPOptions{NumSACK: -1, SACK: blocks}, nil, &wire.TCPOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.o.Len()
			check(t, "Len", n, len(tc.want))
			b := filled(n + 4)
			tc.o.Encode(b)
			checkBytes(t, "Encode", b[:n], tc.want)
			checkBytes(t, "beyond Len", b[n:], filled(4))
			got, err := wire.ParseTCPOptions(b[:n])
			if err != nil {
				t.Fatal(err)
			}
			want := tc.o
			if tc.reget != nil {
				want = *tc.reget
			}
			if d := diff(want, got); d != "" {
				t.Errorf("parse(encode) %s", d)
			}
		})
	}
}

// TestTCPOptionsLenAll: for every combination, Len is a multiple of 4, at
// most 40, Encode writes exactly Len bytes and the encoding parses back.
func TestTCPOptionsLenAll(t *testing.T) {
	for mask := range 16 {
		for nsack := range 5 {
			o := wire.TCPOptions{
				HasMSS: mask&1 != 0, MSS: 1400, SACKPermitted: mask&2 != 0,
				HasWScale: mask&4 != 0, WScale: 9, HasTimestamps: mask&8 != 0, TSVal: 1, TSEcr: 2,
				NumSACK: nsack, SACK: [4]wire.SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}},
			}
			n := o.Len()
			if n%4 != 0 || n > 40 {
				t.Errorf("%+v: Len %d", o, n)
			}
			b := filled(n)
			o.Encode(b)
			got, err := wire.ParseTCPOptions(b)
			if err != nil {
				t.Fatalf("%+v: %v", o, err)
			}
			o = normOpts(o)
			if got.NumSACK < nsack {
				// Only SACK blocks may be dropped, and only when they
				// would not fit.
				if raw := 4*btoi(o.HasMSS) + 2*btoi(o.SACKPermitted) + 3*btoi(o.HasWScale) + 10*btoi(o.HasTimestamps) + 2 + 8*nsack; raw <= 40 {
					t.Errorf("%+v: dropped SACK blocks from %d raw bytes", o, raw)
				}
				o.NumSACK = got.NumSACK
				clear(o.SACK[got.NumSACK:])
			}
			if d := diff(o, got); d != "" {
				t.Errorf("parse(encode) %s", d)
			}
		}
	}
}

// normOpts zeroes what an encoding does not carry: values whose Has flag
// is false and SACK blocks past NumSACK.
func normOpts(o wire.TCPOptions) wire.TCPOptions {
	if !o.HasMSS {
		o.MSS = 0
	}
	if !o.HasWScale {
		o.WScale = 0
	}
	if !o.HasTimestamps {
		o.TSVal, o.TSEcr = 0, 0
	}
	o.NumSACK = len(o.SACKBlocks())
	clear(o.SACK[o.NumSACK:])
	return o
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestTCPOptionsString(t *testing.T) {
	o, err := wire.ParseTCPOptions(tcpOpts(goldenSYN))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "String", o.String(), "mss 1460,sackOK,TS val 4016840401 ecr 0,wscale 10")
	o, _ = wire.ParseTCPOptions(tcpOpts(goldenSACK))
	check(t, "String", o.String(), "TS val 16909060 ecr 84281096,sack 2 {8448:8704} {8960:9216}")
	check(t, "SACKBlocks", len(o.SACKBlocks()), 2)
	check(t, "Kind.String", wire.TCPOptFastOpen.String(), "tfo")
	check(t, "Kind.String", wire.TCPOptionKind(99).String(), "tcpopt(99)")
}

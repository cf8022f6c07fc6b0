package offload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"ustack/buf"
)

// hdr builds a virtio-net header in host byte order.
func hdr(flags, gso uint8, hdrLen, gsoSize, csumStart, csumOff uint16) []byte {
	b := make([]byte, HeaderLen)
	b[0], b[1] = flags, gso
	binary.NativeEndian.PutUint16(b[2:], hdrLen)
	binary.NativeEndian.PutUint16(b[4:], gsoSize)
	binary.NativeEndian.PutUint16(b[6:], csumStart)
	binary.NativeEndian.PutUint16(b[8:], csumOff)
	return b
}

func TestParseEncodeHeader(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want buf.Offload
	}{
		{"plain", hdr(0, 0, 0, 0, 0, 0), buf.Offload{}},
		{"data valid", hdr(flagDataValid, 0, 0, 0, 0, 0), buf.Offload{CsumValid: true}},
		{"partial udp", hdr(flagNeedsCsum, 0, 0, 0, 34, 6), buf.Offload{NeedsCsum: true, CsumStart: 34, CsumOffset: 6}},
		{"tso4", hdr(flagNeedsCsum, gsoTCPv4, 66, 1448, 34, 16),
			buf.Offload{NeedsCsum: true, CsumStart: 34, CsumOffset: 16, GSO: buf.GSOTCPv4, GSOSize: 1448, HdrLen: 66}},
		{"tso6", hdr(flagNeedsCsum, gsoTCPv6, 86, 1428, 54, 16),
			buf.Offload{NeedsCsum: true, CsumStart: 54, CsumOffset: 16, GSO: buf.GSOTCPv6, GSOSize: 1428, HdrLen: 86}},
		{"uso", hdr(flagNeedsCsum, gsoUDPL4, 42, 1000, 34, 6),
			buf.Offload{NeedsCsum: true, CsumStart: 34, CsumOffset: 6, GSO: buf.GSOUDPL4, GSOSize: 1000, HdrLen: 42}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHeader(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("ParseHeader:\n got %+v\nwant %+v", got, tc.want)
			}
			enc := bytes.Repeat([]byte{0xa5}, HeaderLen)
			if err := EncodeHeader(enc, &tc.want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, tc.b) {
				t.Fatalf("EncodeHeader = % x, want % x", enc, tc.b)
			}
			// The 12-byte variant: the same, then num_buffers = 0.
			mrg := bytes.Repeat([]byte{0xa5}, HeaderLenMrgRxbuf)
			if err := EncodeHeader(mrg, &tc.want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(mrg, append(append([]byte{}, tc.b...), 0, 0)) {
				t.Fatalf("EncodeHeader (mrg_rxbuf) = % x", mrg)
			}
			if got, err := ParseHeader(mrg); err != nil || got != tc.want {
				t.Fatalf("ParseHeader (mrg_rxbuf) = %+v, %v", got, err)
			}
		})
	}
}

func TestParseHeaderECN(t *testing.T) {
	got, err := ParseHeader(hdr(flagNeedsCsum, gsoTCPv4|gsoECN, 66, 1448, 34, 16))
	if err != nil || got.GSO != buf.GSOTCPv4 {
		t.Fatalf("ECN TSO header = %+v, %v", got, err)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	for name, b := range map[string][]byte{
		"short":       make([]byte, HeaderLen-1),
		"ufo":         hdr(flagNeedsCsum, gsoUDP, 42, 1000, 34, 6),
		"unknown gso": hdr(0, 9, 0, 0, 0, 0),
		"gso size 0":  hdr(flagNeedsCsum, gsoTCPv4, 66, 0, 34, 16),
	} {
		if _, err := ParseHeader(b); !errors.Is(err, ErrHeader) {
			t.Errorf("%s: err = %v, want ErrHeader", name, err)
		}
	}
	if err := EncodeHeader(make([]byte, 11), &buf.Offload{}); !errors.Is(err, ErrHeader) {
		t.Errorf("EncodeHeader into 11 bytes: err = %v", err)
	}
	if err := EncodeHeader(make([]byte, HeaderLen), &buf.Offload{GSO: 77}); !errors.Is(err, ErrHeader) {
		t.Errorf("EncodeHeader of unknown GSO: err = %v", err)
	}
}

func TestHeaderAllocs(t *testing.T) {
	b := hdr(flagNeedsCsum, gsoTCPv4, 66, 1448, 34, 16)
	out := make([]byte, HeaderLen)
	n := testing.AllocsPerRun(100, func() {
		o, _ := ParseHeader(b)
		_ = EncodeHeader(out, &o)
	})
	if n != 0 {
		t.Fatalf("%v allocations per parse+encode, want 0", n)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(hdr(0, 0, 0, 0, 0, 0))
	f.Add(hdr(flagNeedsCsum, gsoTCPv4, 66, 1448, 34, 16))
	f.Add(hdr(flagNeedsCsum|flagDataValid, gsoUDPL4|gsoECN, 42, 1000, 34, 6))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseHeader(b)
		if err != nil {
			return
		}
		// Encoding normalises (DATA_VALID is dropped next to NEEDS_CSUM,
		// the ECN bit is dropped); after that, encode∘parse is the identity.
		enc := make([]byte, HeaderLen)
		if err := EncodeHeader(enc, &o); err != nil {
			t.Fatalf("EncodeHeader of parsed %+v: %v", o, err)
		}
		o2, err := ParseHeader(enc)
		if err != nil {
			t.Fatalf("ParseHeader of encoded % x: %v", enc, err)
		}
		enc2 := make([]byte, HeaderLen)
		if err := EncodeHeader(enc2, &o2); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encode not stable: % x then % x (%v)", enc, enc2, err)
		}
		if o2.GSO != o.GSO || o2.GSOSize != o.GSOSize || o2.NeedsCsum != o.NeedsCsum ||
			o2.CsumStart != o.CsumStart || o2.CsumOffset != o.CsumOffset {
			t.Fatalf("round trip: %+v -> %+v", o, o2)
		}
	})
}

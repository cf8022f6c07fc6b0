package frag

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"ustack/buf"
	"ustack/link/offload"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// piece is what send saw.
type piece struct {
	data []byte
	off  int
	more bool
}

// collect runs Split and returns the pieces, releasing each.
func collect(t *testing.T, payload *buf.Packet, first, rest int) ([]piece, error) {
	t.Helper()
	var out []piece
	err := Split(payload, first, rest, func(p *buf.Packet, off int, more bool) error {
		out = append(out, piece{p.ToBytes(), off, more})
		p.Release()
		return nil
	})
	return out, err
}

// released reports whether p was already released: releasing it again
// panics. (If it was not, it is released now.)
func released(p *buf.Packet) (yes bool) {
	defer func() {
		if r := recover(); r != nil {
			yes = true
		}
	}()
	p.Release()
	return false
}

func TestSplitSizes(t *testing.T) {
	for _, tc := range []struct {
		n, first, rest int
		want           []int // piece lengths
	}{
		{3000, 1480, 1480, []int{1480, 1480, 40}},
		{2960, 1480, 1480, []int{1480, 1480}}, // no empty last piece
		{100, 1480, 1480, []int{100}},         // fits: one piece, the last
		{0, 1480, 1480, []int{0}},
		{3000, 1452, 1452, []int{1448, 1448, 104}}, // rounded down to 8
		{2000, 1440, 1476, []int{1440, 560}},       // IPv4: shorter later headers
		{2000, 1000, 503, []int{1000, 496, 496, 8}},
		{17, 8, 8, []int{8, 8, 1}},
	} {
		t.Run(fmt.Sprintf("%d/%d/%d", tc.n, tc.first, tc.rest), func(t *testing.T) {
			data := pattern(tc.n)
			got, err := collect(t, buf.FromBytes(data), tc.first, tc.rest)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d pieces, want %d", len(got), len(tc.want))
			}
			var joined []byte
			off := 0
			for i, p := range got {
				if len(p.data) != tc.want[i] {
					t.Errorf("piece %d: %d bytes, want %d", i, len(p.data), tc.want[i])
				}
				if p.off != off {
					t.Errorf("piece %d: offset %d, want %d", i, p.off, off)
				}
				last := i == len(got)-1
				if p.more == last {
					t.Errorf("piece %d: more = %v", i, p.more)
				}
				if !last && len(p.data)%Unit != 0 {
					t.Errorf("piece %d: %d bytes, not a multiple of 8", i, len(p.data))
				}
				off += len(p.data)
				joined = append(joined, p.data...)
			}
			if !bytes.Equal(joined, data) {
				t.Errorf("pieces do not add up to the payload")
			}
		})
	}
}

// TestSplitZeroCopy: pieces share the payload's storage, across views, and
// take a header in front.
func TestSplitZeroCopy(t *testing.T) {
	a, b := pattern(1000), pattern(2500)
	payload := buf.Wrap(a)
	payload.Concat(buf.Wrap(b))
	want := append(append([]byte(nil), a...), b...)
	var joined []byte
	err := Split(payload, 1024, 1024, func(p *buf.Packet, off int, more bool) error {
		defer p.Release()
		// The first byte of each piece is the payload's byte, in place.
		v := p.View(0)
		src := &a[min(off, len(a)-1)]
		if off >= len(a) {
			src = &b[off-len(a)]
		}
		if &v[0] != src {
			t.Errorf("piece at %d is a copy", off)
		}
		hdr := p.Prepend(40)
		for i := range hdr {
			hdr[i] = 0xa5
		}
		got := p.ToBytes()
		if !bytes.Equal(got[:40], bytes.Repeat([]byte{0xa5}, 40)) {
			t.Errorf("header at %d not in front", off)
		}
		joined = append(joined, got[40:]...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(joined, want) {
		t.Errorf("data changed by the headers")
	}
	// The headers went in front of the pieces, not over the payload.
	if !bytes.Equal(a, pattern(1000)) || !bytes.Equal(b, pattern(2500)) {
		t.Errorf("a header was written over the payload's bytes")
	}
}

func TestSplitNoRoom(t *testing.T) {
	for _, tc := range []struct{ first, rest int }{{7, 1480}, {1480, 7}, {0, 0}, {-20, 1480}} {
		payload := buf.FromBytes(pattern(100))
		called := false
		err := Split(payload, tc.first, tc.rest, func(p *buf.Packet, _ int, _ bool) error {
			called = true
			p.Release()
			return nil
		})
		if !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("first %d rest %d: err %v, want EMSGSIZE", tc.first, tc.rest, err)
		}
		if called {
			t.Errorf("first %d rest %d: a piece was sent", tc.first, tc.rest)
		}
		if !released(payload) {
			t.Errorf("first %d rest %d: payload not released", tc.first, tc.rest)
		}
	}
}

// TestSplitSendError: every piece goes to send even after one fails, and
// the first error comes back.
func TestSplitSendError(t *testing.T) {
	errA, errB := errors.New("a"), errors.New("b")
	var offs []int
	err := Split(buf.FromBytes(pattern(5000)), 1000, 1000, func(p *buf.Packet, off int, more bool) error {
		p.Release()
		offs = append(offs, off)
		switch off {
		case 1000:
			return errA
		case 3000:
			return errB
		}
		return nil
	})
	if err != errA {
		t.Errorf("err %v, want the first send error", err)
	}
	if fmt.Sprint(offs) != "[0 1000 2000 3000 4000]" {
		t.Errorf("pieces sent at %v", offs)
	}
}

// udpPartial is a UDP datagram whose checksum is left to complete
// (buf.Offload.NeedsCsum), as a transport hands it down.
func udpPartial(n int) *buf.Packet {
	b := pattern(8 + n)
	b[6], b[7] = 0x12, 0x34 // the pseudo-header sum
	p := buf.FromBytes(b)
	p.Offload.NeedsCsum = true
	p.Offload.CsumStart, p.Offload.CsumOffset = 0, 6
	return p
}

func TestSplitCompletesChecksum(t *testing.T) {
	want := udpPartial(3000)
	if err := offload.Complete(want); err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, udpPartial(3000), 1480, 1480)
	if err != nil {
		t.Fatal(err)
	}
	var joined []byte
	for _, p := range got {
		joined = append(joined, p.data...)
	}
	if !bytes.Equal(joined, want.ToBytes()) {
		t.Errorf("checksum not completed: % x, want % x", joined[:8], want.ToBytes()[:8])
	}
	want.Release()

	bad := udpPartial(100)
	bad.Offload.CsumStart = 200 // past the end
	called := false
	err = Split(bad, 1480, 1480, func(p *buf.Packet, _ int, _ bool) error {
		called = true
		p.Release()
		return nil
	})
	if !errors.Is(err, offload.ErrCsumRange) || called {
		t.Errorf("bad partial checksum: err %v, sent %v", err, called)
	}
	if !released(bad) {
		t.Errorf("payload with a bad checksum not released")
	}
}

package buf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// seq returns n bytes counting up from start (mod 256), so misplaced bytes
// show in a diff.
func seq(start, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(start + i)
	}
	return b
}

func fill(b []byte, v byte) []byte {
	for i := range b {
		b[i] = v
	}
	return b
}

// shape builds a packet holding want in a particular layout of views and
// chunks; every operation is tested against every shape.
type shape struct {
	name  string
	build func(want []byte) *Packet
}

var shapes = []shape{
	{"one-view", func(b []byte) *Packet { return FromBytes(b) }},
	{"no-headroom", func(b []byte) *Packet {
		p := New(0, len(b))
		copy(p.Bytes(), b)
		return p
	}},
	{"wrapped", func(b []byte) *Packet { return Wrap(append([]byte(nil), b...)) }},
	{"three-views", func(b []byte) *Packet {
		// [0,k) prepended into a fresh chunk in front of a Wrap, the rest
		// appended in two pieces.
		k := len(b) / 3
		p := Wrap(append([]byte(nil), b[k:2*k]...))
		copy(p.Prepend(k), b[:k])
		q := FromBytes(b[2*k:])
		p.Concat(q)
		return p
	}},
	{"split-halves-concat", func(b []byte) *Packet {
		p := FromBytes(b)
		q := p.Split(len(b) / 2)
		p.Concat(q) // p now holds the same chunk twice
		return p
	}},
}

// check compares p with the model bytes through every read accessor.
func check(t *testing.T, p *Packet, want []byte) {
	t.Helper()
	if p.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", p.Len(), len(want))
	}
	if got := p.ToBytes(); !bytes.Equal(got, want) {
		t.Fatalf("data mismatch\n got %x\nwant %x", got, want)
	}
	var joined []byte
	for i := 0; i < p.NumViews(); i++ {
		joined = append(joined, p.View(i)...)
	}
	if !bytes.Equal(joined, want) {
		t.Fatalf("views join to %x, want %x", joined, want)
	}
	if p.Contiguous() && len(want) > 0 && !bytes.Equal(p.Bytes(), want) {
		t.Fatalf("Bytes() = %x, want %x", p.Bytes(), want)
	}
	if !p.Contiguous() && p.Bytes() != nil {
		t.Fatalf("Bytes() of a %d-view packet is not nil", p.NumViews())
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name           string
		headroom, size int
	}{
		{"empty", 0, 0},
		{"headroom-only", DefaultHeadroom, 0},
		{"small", DefaultHeadroom, 60},
		{"frame", DefaultHeadroom, 1514},
		{"class-boundary", 0, 2048},
		{"medium", DefaultHeadroom, 9000},
		{"large", DefaultHeadroom, 65535},
		{"unpooled", DefaultHeadroom, 200000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(tc.headroom, tc.size)
			defer p.Release()
			if p.Len() != tc.size {
				t.Errorf("Len() = %d, want %d", p.Len(), tc.size)
			}
			if p.Headroom() != tc.headroom {
				t.Errorf("Headroom() = %d, want %d", p.Headroom(), tc.headroom)
			}
			if !p.Contiguous() || len(p.Bytes()) != tc.size {
				t.Errorf("Bytes() has %d bytes, Contiguous() = %v", len(p.Bytes()), p.Contiguous())
			}
			// The whole data is writable.
			copy(p.Bytes(), seq(0, tc.size))
			check(t, p, seq(0, tc.size))
		})
	}
}

func TestFromBytesCopies(t *testing.T) {
	b := seq(0, 100)
	p := FromBytes(b)
	defer p.Release()
	b[0] = 0xff
	if p.Bytes()[0] != 0 {
		t.Fatal("FromBytes aliases its argument")
	}
	if p.Headroom() != DefaultHeadroom {
		t.Errorf("Headroom() = %d, want %d", p.Headroom(), DefaultHeadroom)
	}
}

func TestWrapAliases(t *testing.T) {
	b := seq(0, 100)
	p := Wrap(b)
	defer p.Release()
	if &p.Bytes()[0] != &b[0] {
		t.Fatal("Wrap copied its argument")
	}
	if p.Headroom() != 0 {
		t.Errorf("Headroom() = %d, want 0", p.Headroom())
	}
	h := p.Prepend(4)
	copy(h, "head")
	if string(b[:4]) == "head" {
		t.Fatal("Prepend wrote into wrapped memory")
	}
	check(t, p, append([]byte("head"), seq(0, 100)...))
}

func TestPrepend(t *testing.T) {
	for _, sh := range shapes {
		for _, n := range []int{0, 1, 14, 20, DefaultHeadroom, DefaultHeadroom + 1, 3000} {
			t.Run(fmt.Sprintf("%s/%d", sh.name, n), func(t *testing.T) {
				data := seq(0, 90)
				p := sh.build(data)
				defer p.Release()
				room := p.Headroom()
				h := p.Prepend(n)
				if len(h) != n {
					t.Fatalf("Prepend(%d) returned %d bytes", n, len(h))
				}
				fill(h, 0xee)
				check(t, p, append(fill(make([]byte, n), 0xee), data...))
				if n <= room && p.Headroom() != room-n {
					t.Errorf("Headroom() = %d after Prepend(%d) from %d", p.Headroom(), n, room)
				}
			})
		}
	}
}

func TestAppend(t *testing.T) {
	for _, sh := range shapes {
		for _, n := range []int{0, 1, 100, 5000} {
			t.Run(fmt.Sprintf("%s/%d", sh.name, n), func(t *testing.T) {
				data := seq(0, 90)
				p := sh.build(data)
				defer p.Release()
				fill(p.Append(n), 0xaa)
				p.AppendBytes([]byte("tail"))
				want := append(append(append([]byte{}, data...), fill(make([]byte, n), 0xaa)...), "tail"...)
				check(t, p, want)
			})
		}
	}
}

func TestTrimFront(t *testing.T) {
	for _, sh := range shapes {
		for _, n := range []int{0, 1, 29, 30, 31, 45, 89, 90, 200} {
			t.Run(fmt.Sprintf("%s/%d", sh.name, n), func(t *testing.T) {
				data := seq(0, 90)
				p := sh.build(data)
				defer p.Release()
				p.TrimFront(n)
				check(t, p, data[min(n, len(data)):])
				// A trimmed packet can grow back at the front.
				copy(p.Prepend(3), "abc")
				check(t, p, append([]byte("abc"), data[min(n, len(data)):]...))
			})
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, sh := range shapes {
		for _, n := range []int{0, 1, 29, 30, 31, 45, 89, 90, 200} {
			t.Run(fmt.Sprintf("%s/%d", sh.name, n), func(t *testing.T) {
				data := seq(0, 90)
				p := sh.build(data)
				defer p.Release()
				p.Truncate(n)
				keep := data[:min(n, len(data))]
				check(t, p, keep)
				p.AppendBytes([]byte("xyz"))
				check(t, p, append(append([]byte{}, keep...), "xyz"...))
			})
		}
	}
}

func TestSplit(t *testing.T) {
	for _, sh := range shapes {
		for _, off := range []int{0, 1, 29, 30, 31, 45, 60, 89, 90} {
			t.Run(fmt.Sprintf("%s/%d", sh.name, off), func(t *testing.T) {
				data := seq(0, 90)
				p := sh.build(data)
				q := p.Split(off)
				check(t, p, data[:off])
				check(t, q, data[off:])
				// Each half grows at its cut without disturbing the other.
				fill(p.Append(5), 0x11)
				fill(q.Prepend(5), 0x22)
				check(t, p, append(append([]byte{}, data[:off]...), fill(make([]byte, 5), 0x11)...))
				check(t, q, append(fill(make([]byte, 5), 0x22), data[off:]...))
				p.Release()
				check(t, q, append(fill(make([]byte, 5), 0x22), data[off:]...))
				q.Release()
			})
		}
	}
}

func TestSplitOutOfRangePanics(t *testing.T) {
	for _, off := range []int{-1, 11} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			p := FromBytes(seq(0, 10))
			defer p.Release()
			defer func() {
				if recover() == nil {
					t.Errorf("Split(%d) of a 10-byte packet did not panic", off)
				}
			}()
			p.Split(off)
		})
	}
}

// TestPrependAfterSplitUsesNewChunk checks that bytes shared between packets
// are never written: the headroom in front of the second half is the first
// half's data.
func TestPrependAfterSplitUsesNewChunk(t *testing.T) {
	data := seq(0, 100)
	p := FromBytes(data)
	defer p.Release()
	q := p.Split(50)
	defer q.Release()
	if q.Headroom() != 0 {
		t.Errorf("Headroom() of the shared second half = %d, want 0", q.Headroom())
	}
	fill(q.Prepend(20), 0xff)
	check(t, p, data[:50])
	if q.NumViews() != 2 {
		t.Errorf("after Prepend the second half has %d views, want 2 (new chunk in front)", q.NumViews())
	}
	// The first half may not grow into the second half's bytes either.
	fill(p.Append(20), 0xee)
	check(t, q, append(fill(make([]byte, 20), 0xff), data[50:]...))
}

func TestPrependUsesHeadroomOnceSoleOwner(t *testing.T) {
	p := FromBytes(seq(0, 100))
	q := p.Split(50)
	p.Release() // q is now the chunk's only holder
	defer q.Release()
	if q.Headroom() == 0 {
		t.Fatal("Headroom() = 0 after the other half was released")
	}
	fill(q.Prepend(20), 0xff)
	if q.NumViews() != 1 {
		t.Errorf("NumViews() = %d, want 1 (headroom reused)", q.NumViews())
	}
	check(t, q, append(fill(make([]byte, 20), 0xff), seq(50, 50)...))
}

func TestClone(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			data := seq(0, 90)
			p := sh.build(data)
			p.IfIndex = 7
			p.Flags = FlagLinkBroadcast
			p.Offload.CsumValid = true
			c := p.Clone()
			check(t, c, data)
			if c.IfIndex != 7 || c.Flags != FlagLinkBroadcast || !c.Offload.CsumValid {
				t.Errorf("Clone lost metadata: %+v %v %+v", c.IfIndex, c.Flags, c.Offload)
			}
			if c.Headroom() != 0 {
				t.Errorf("clone Headroom() = %d, want 0 (shared)", c.Headroom())
			}
			fill(c.Prepend(10), 0xcc)
			fill(p.Prepend(10), 0xdd)
			fill(c.Append(10), 0xcc)
			fill(p.Append(10), 0xdd)
			wrap := func(v byte) []byte {
				b := append(fill(make([]byte, 10), v), data...)
				return append(b, fill(make([]byte, 10), v)...)
			}
			check(t, p, wrap(0xdd))
			check(t, c, wrap(0xcc))
			p.Release()
			check(t, c, wrap(0xcc))
			c.Release()
		})
	}
}

func TestDeepCopy(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			data := seq(0, 90)
			p := sh.build(data)
			p.IfIndex = 3
			p.Offload.NeedsCsum = true
			p.LinkHeader = p.Pullup(14)
			d := p.DeepCopy()
			defer d.Release()
			check(t, d, data)
			if !d.Contiguous() || d.Headroom() != DefaultHeadroom {
				t.Errorf("DeepCopy: Contiguous() = %v, Headroom() = %d", d.Contiguous(), d.Headroom())
			}
			if d.IfIndex != 3 || !d.Offload.NeedsCsum || d.LinkHeader != nil {
				t.Errorf("DeepCopy metadata: IfIndex=%d Offload=%+v LinkHeader=%x", d.IfIndex, d.Offload, d.LinkHeader)
			}
			fill(d.Bytes(), 0)
			check(t, p, data)
			p.Release()
		})
	}
}

func TestConcat(t *testing.T) {
	for _, a := range shapes {
		for _, b := range shapes {
			t.Run(a.name+"+"+b.name, func(t *testing.T) {
				da, db := seq(0, 40), seq(100, 50)
				p, q := a.build(da), b.build(db)
				p.Concat(q)
				defer p.Release()
				want := append(append([]byte{}, da...), db...)
				check(t, p, want)
				copy(p.Prepend(2), "hd")
				p.AppendBytes([]byte("tl"))
				check(t, p, append(append([]byte("hd"), want...), "tl"...))
			})
		}
	}
}

func TestPullup(t *testing.T) {
	for _, sh := range shapes {
		for _, n := range []int{0, 1, 29, 30, 31, 60, 89, 90, 91} {
			t.Run(fmt.Sprintf("%s/%d", sh.name, n), func(t *testing.T) {
				data := seq(0, 90)
				p := sh.build(data)
				defer p.Release()
				views := p.NumViews()
				h := p.Pullup(n)
				if n > len(data) {
					if h != nil {
						t.Fatalf("Pullup(%d) of %d bytes = %x, want nil", n, len(data), h)
					}
					check(t, p, data)
					return
				}
				if !bytes.Equal(h, data[:n]) {
					t.Fatalf("Pullup(%d) = %x, want %x", n, h, data[:n])
				}
				if n > 0 && !bytes.Equal(p.View(0)[:n], data[:n]) {
					t.Fatalf("first view after Pullup(%d) = %x", n, p.View(0))
				}
				if p.NumViews() > views+1 {
					t.Errorf("Pullup grew views from %d to %d", views, p.NumViews())
				}
				check(t, p, data)
				// The pulled-up bytes are the packet's: writes show.
				if n > 0 {
					h[0] = 0xff
					want := append([]byte{0xff}, data[1:]...)
					check(t, p, want)
				}
			})
		}
	}
}

func TestPullupKeepsHeaderSlices(t *testing.T) {
	p := shapes[2].build(seq(0, 90)) // three views
	defer p.Release()
	p.LinkHeader = p.View(0)[:14]
	saved := append([]byte(nil), p.LinkHeader...)
	p.Pullup(60)
	if !bytes.Equal(p.LinkHeader, saved) {
		t.Fatalf("LinkHeader changed by Pullup: %x, want %x", p.LinkHeader, saved)
	}
}

func TestReadAt(t *testing.T) {
	for _, sh := range shapes {
		for _, tc := range []struct {
			off, n  int64
			wantN   int
			wantErr error
		}{
			{0, 90, 90, nil},
			{0, 100, 90, io.EOF},
			{0, 0, 0, nil},
			{29, 3, 3, nil},
			{30, 30, 30, nil},
			{45, 45, 45, nil},
			{45, 50, 45, io.EOF},
			{89, 1, 1, nil},
			{90, 1, 0, io.EOF},
			{1000, 1, 0, io.EOF},
		} {
			t.Run(fmt.Sprintf("%s/%d+%d", sh.name, tc.off, tc.n), func(t *testing.T) {
				data := seq(0, 90)
				p := sh.build(data)
				defer p.Release()
				b := make([]byte, tc.n)
				n, err := p.ReadAt(b, tc.off)
				if n != tc.wantN || err != tc.wantErr {
					t.Fatalf("ReadAt(%d bytes, %d) = %d, %v; want %d, %v", tc.n, tc.off, n, err, tc.wantN, tc.wantErr)
				}
				if n > 0 && !bytes.Equal(b[:n], data[tc.off:tc.off+int64(n)]) {
					t.Fatalf("ReadAt read %x", b[:n])
				}
			})
		}
	}
	p := FromBytes(seq(0, 10))
	defer p.Release()
	if _, err := p.ReadAt(make([]byte, 1), -1); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("ReadAt at -1: err = %v, want a non-EOF error", err)
	}
}

func TestCopyTo(t *testing.T) {
	for _, sh := range shapes {
		for _, n := range []int{0, 1, 30, 45, 90, 120} {
			t.Run(fmt.Sprintf("%s/%d", sh.name, n), func(t *testing.T) {
				data := seq(0, 90)
				p := sh.build(data)
				defer p.Release()
				b := fill(make([]byte, n), 0xee)
				got := p.CopyTo(b)
				if want := min(n, len(data)); got != want {
					t.Fatalf("CopyTo(%d bytes) = %d, want %d", n, got, want)
				}
				if !bytes.Equal(b[:got], data[:got]) {
					t.Fatalf("CopyTo copied %x", b[:got])
				}
				for _, c := range b[got:] {
					if c != 0xee {
						t.Fatal("CopyTo wrote past the data")
					}
				}
			})
		}
	}
}

func TestAppendViews(t *testing.T) {
	p := shapes[3].build(seq(0, 90))
	defer p.Release()
	vs := p.AppendViews([][]byte{[]byte("x")})
	if len(vs) != 1+p.NumViews() || string(vs[0]) != "x" {
		t.Fatalf("AppendViews returned %d views", len(vs))
	}
	if !bytes.Equal(bytes.Join(vs[1:], nil), seq(0, 90)) {
		t.Fatal("AppendViews data mismatch")
	}
}

// TestFragmentReassemble cuts a 20 KB payload into IP-style fragments by
// repeated Split, gives each a 20-byte header by Prepend, then strips the
// headers and rebuilds the payload by Concat.
func TestFragmentReassemble(t *testing.T) {
	const payload, fragSize, hdrLen = 20 * 1024, 1480, 20
	data := make([]byte, payload)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	rest := FromBytes(data)
	var frags []*Packet
	for rest.Len() > 0 {
		n := min(fragSize, rest.Len())
		next := rest.Split(n)
		frags = append(frags, rest)
		rest = next
	}
	rest.Release()
	if want := (payload + fragSize - 1) / fragSize; len(frags) != want {
		t.Fatalf("%d fragments, want %d", len(frags), want)
	}
	for i, f := range frags {
		h := f.Prepend(hdrLen)
		fill(h, byte(0xf0+i%16))
		h[0] = byte(i)
	}
	// Headers went into new chunks: every fragment still carries its part.
	for i, f := range frags {
		want := data[i*fragSize : min((i+1)*fragSize, payload)]
		b := f.ToBytes()
		if b[0] != byte(i) || !bytes.Equal(b[hdrLen:], want) {
			t.Fatalf("fragment %d corrupted", i)
		}
	}
	// Reassemble (in reverse arrival order, as the first fragment is
	// needed to start the datagram).
	whole := frags[0]
	whole.TrimFront(hdrLen)
	for _, f := range frags[1:] {
		f.TrimFront(hdrLen)
		whole.Concat(f)
	}
	defer whole.Release()
	check(t, whole, data)
}

func TestDoubleReleasePanics(t *testing.T) {
	p := FromBytes(seq(0, 10))
	p.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("second Release did not panic")
		}
	}()
	p.Release()
}

func TestReleaseNil(t *testing.T) {
	var p *Packet
	p.Release() // must not panic
}

func TestGSOTypeString(t *testing.T) {
	for typ, want := range map[GSOType]string{
		GSONone: "none", GSOTCPv4: "tcpv4", GSOTCPv6: "tcpv6", GSOUDPL4: "udp-l4", 9: "gso(9)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("GSOType(%d).String() = %q, want %q", typ, got, want)
		}
	}
}

// TestNoEmptyViews: zero-length Prepend, Append and Concat of an empty
// packet leave a contiguous packet contiguous (an empty view used to make
// Bytes return nil).
func TestNoEmptyViews(t *testing.T) {
	p := FromBytes(seq(0, 10))
	defer p.Release()
	p.Prepend(0)
	p.Append(0)
	p.Concat(New(DefaultHeadroom, 0))
	if !p.Contiguous() || !bytes.Equal(p.Bytes(), seq(0, 10)) {
		t.Errorf("NumViews() = %d, Bytes() = %x", p.NumViews(), p.Bytes())
	}
	e := New(DefaultHeadroom, 0)
	defer e.Release()
	e.Concat(FromBytes(seq(0, 10)))
	if !e.Contiguous() || !bytes.Equal(e.Bytes(), seq(0, 10)) {
		t.Errorf("empty.Concat: NumViews() = %d, Bytes() = %x", e.NumViews(), e.Bytes())
	}
}

// TestOffloadOffsetsFollowFront: CsumStart and HdrLen count from the front,
// so Prepend and TrimFront move them.
func TestOffloadOffsetsFollowFront(t *testing.T) {
	p := New(DefaultHeadroom, 100)
	defer p.Release()
	p.Offload = Offload{NeedsCsum: true, CsumStart: 0, CsumOffset: 6, GSO: GSOUDPL4, GSOSize: 50, HdrLen: 8}
	p.Prepend(20)
	p.Prepend(14)
	if p.Offload.CsumStart != 34 || p.Offload.HdrLen != 42 {
		t.Fatalf("after prepending 34: CsumStart %d HdrLen %d, want 34, 42", p.Offload.CsumStart, p.Offload.HdrLen)
	}
	p.TrimFront(14)
	if p.Offload.CsumStart != 20 || p.Offload.HdrLen != 28 {
		t.Fatalf("after trimming 14: CsumStart %d HdrLen %d, want 20, 28", p.Offload.CsumStart, p.Offload.HdrLen)
	}
	p.TrimFront(30)
	if p.Offload.NeedsCsum || p.Offload.HdrLen != 0 || p.Offload.GSO != GSOUDPL4 {
		t.Fatalf("trimming past the checksum start: %+v, want NeedsCsum cleared, HdrLen 0, GSO kept", p.Offload)
	}
}

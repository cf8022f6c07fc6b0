package fdlink

import (
	"bytes"
	"testing"
	"unsafe"

	"ustack/buf"
	"ustack/link"
	"ustack/link/offload"
)

// fill writes b into a slot's buffers as a scattering read would.
func fill(bufs [][]byte, b []byte) {
	for _, v := range bufs {
		n := copy(v, b)
		b = b[n:]
	}
}

// views returns the buffers slot i's iovecs point to.
func views(r *RxBufs, i int) [][]byte {
	var vs [][]byte
	for _, iov := range r.Iovecs(i) {
		vs = append(vs, unsafe.Slice(iov.Base, iov.Len))
	}
	return vs
}

func TestRxBufs(t *testing.T) {
	r := NewRxBufs(2, 1524, 65600)
	defer r.Release()
	if r.Cap() != 65601 {
		t.Fatalf("Cap = %d, want 65601", r.Cap())
	}
	for _, n := range []int{60, r.small, r.small + 1, 40000, r.Cap()} {
		data := bytes.Repeat([]byte{byte(n)}, n)
		vs := views(r, 1)
		if len(vs) != 2 || len(vs[0]) != r.small {
			t.Fatalf("iovecs %d, first %d bytes", len(vs), len(vs[0]))
		}
		fill(vs, data)
		p := r.Take(1, n)
		if !bytes.Equal(p.ToBytes(), data) {
			t.Fatalf("frame of %d bytes: data differs", n)
		}
		if p.Headroom() < buf.DefaultHeadroom {
			t.Fatalf("frame of %d bytes: headroom %d", n, p.Headroom())
		}
		if n <= r.small && p.NumViews() != 1 {
			t.Fatalf("small frame in %d views", p.NumViews())
		}
		p.Release()
	}
	// Without large frames there is one iovec.
	s := NewRxBufs(1, 1524, 1524)
	if vs := views(s, 0); len(vs) != 1 {
		t.Fatalf("%d iovecs without large frames", len(vs))
	}
	s.Release()
}

type countDispatcher struct{ n int }

func (c *countDispatcher) DeliverBatch(_ link.Endpoint, pkts []*buf.Packet) {
	c.n += len(pkts)
	link.ReleaseAll(pkts, 0)
}

func frame(o buf.Offload, payload []byte) *buf.Packet {
	p := buf.New(buf.DefaultHeadroom, offload.HeaderLen+len(payload))
	if err := offload.EncodeHeader(p.Bytes()[:offload.HeaderLen], &o); err != nil {
		panic(err)
	}
	copy(p.Bytes()[offload.HeaderLen:], payload)
	return p
}

func TestInputDispatch(t *testing.T) {
	var b Base
	b.Info = Info{Type: link.TypeIP}
	var out []*buf.Packet
	out = b.Input(frame(buf.Offload{CsumValid: true}, []byte{0x45, 1, 2}), out)
	if len(out) != 1 || !bytes.Equal(out[0].ToBytes(), []byte{0x45, 1, 2}) || !out[0].Offload.CsumValid {
		t.Fatalf("Input = %v", out)
	}
	// A short frame, a bad header, a partial checksum out of range.
	short := buf.FromBytes([]byte{1, 2, 3})
	bad := frame(buf.Offload{}, []byte{1})
	bad.Bytes()[1] = 0x03 // UFO
	partial := frame(buf.Offload{NeedsCsum: true, CsumStart: 100, CsumOffset: 6}, []byte{1, 2})
	for _, p := range []*buf.Packet{short, bad, partial} {
		out = b.Input(p, out)
	}
	if len(out) != 1 || b.Stats.RxErrors.Load() != 3 || b.Stats.RxPackets.Load() != 4 {
		t.Fatalf("%d packets, RxErrors %d RxPackets %d", len(out), b.Stats.RxErrors.Load(), b.Stats.RxPackets.Load())
	}
	// Detached: dropped and counted.
	b.Dispatch(nil, out)
	if b.Stats.RxDrops.Load() != 1 {
		t.Fatalf("RxDrops = %d", b.Stats.RxDrops.Load())
	}
	d := &countDispatcher{}
	b.Attach(d)
	out = b.Input(frame(buf.Offload{}, []byte{0x45}), out[:0])
	b.Dispatch(nil, out)
	if d.n != 1 {
		t.Fatalf("dispatcher got %d packets", d.n)
	}
}

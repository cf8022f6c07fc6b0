package fdlink

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"ustack/buf"
	"ustack/link"
	"ustack/link/offload"
	"ustack/wire"
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

// tcpFrame is an Ethernet frame with an IPv4 TCP segment from port sport
// carrying n bytes at sequence number seq, with a correct checksum.
func tcpFrame(sport uint16, seq uint32, n int) []byte {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	tcp := make([]byte, 20+n)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12], tcp[13] = 5<<4, 0x10
	binary.BigEndian.PutUint16(tcp[14:], 1000)
	for i := range n {
		tcp[20+i] = byte(seq) + byte(i)
	}
	binary.BigEndian.PutUint16(tcp[16:], ^wire.ChecksumCombine(wire.PseudoHeaderChecksum(wire.IPProtoTCP, src, dst, len(tcp)), wire.Checksum(tcp, 0)))
	f := wire.IPv4Fields{TotalLen: 20 + len(tcp), ID: 7, Flags: wire.IPv4FlagDF, TTL: 64, Protocol: wire.IPProtoTCP, Src: src, Dst: dst}
	ip := make([]byte, 20)
	f.Encode(ip)
	eth := make([]byte, 14)
	(&wire.EthernetFields{Dst: wire.MAC{2, 0, 0, 0, 0, 2}, Src: wire.MAC{2, 0, 0, 0, 0, 1}, Type: wire.EtherTypeIPv4}).Encode(eth)
	return append(append(eth, ip...), tcp...)
}

func TestFlushGRO(t *testing.T) {
	var b Base
	b.Info = Info{Type: link.TypeEthernet, Accept: offload.Accept{GRO: true}}
	d := &countDispatcher{}
	b.Attach(d)
	var g offload.Coalescer
	scratch := make([]*buf.Packet, 0, 8)
	var batch []*buf.Packet
	for i := range 4 {
		batch = append(batch, buf.FromBytes(tcpFrame(1, uint32(i*100), 100)))
	}
	scratch = b.Flush(nil, batch, &g, scratch)
	if d.n != 1 || b.Offload.RxCoalesced.Load() != 3 || b.Offload.RxGROPackets.Load() != 1 || len(scratch) != 0 {
		t.Fatalf("delivered %d, coalesced %d into %d", d.n, b.Offload.RxCoalesced.Load(), b.Offload.RxGROPackets.Load())
	}
	// Without GRO the batch goes as it is.
	b.Accept.GRO = false
	batch = batch[:0]
	for i := range 4 {
		batch = append(batch, buf.FromBytes(tcpFrame(1, uint32(i*100), 100)))
	}
	b.Flush(nil, batch, &g, scratch)
	if d.n != 5 {
		t.Fatalf("delivered %d, want 5", d.n)
	}
}

func TestQueueOf(t *testing.T) {
	tt := &TunTap{queues: make([]*tunQueue, 4)}
	tt.Info.Type = link.TypeEthernet
	seen := make(map[int]bool)
	for sport := range uint16(64) {
		p := buf.FromBytes(tcpFrame(sport, 0, 10))
		q := buf.FromBytes(tcpFrame(sport, 999, 500))
		a, b := tt.queueOf(p), tt.queueOf(q)
		if a != b || a < 0 || a >= 4 {
			t.Fatalf("port %d: queues %d and %d", sport, a, b)
		}
		seen[a] = true
		p.Release()
		q.Release()
	}
	if len(seen) != 4 {
		t.Errorf("64 flows on %d of 4 queues", len(seen))
	}
	arp := buf.FromBytes(make([]byte, 42))
	arp.Bytes()[12], arp.Bytes()[13] = 0x08, 0x06
	short := buf.FromBytes([]byte{1, 2, 3})
	if tt.queueOf(arp) != 0 || tt.queueOf(short) != 0 {
		t.Errorf("non-IP frames not on queue 0")
	}
	arp.Release()
	short.Release()
}

package offload

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// element is one TCP segment as the GRO checker compares it: what must
// come out of coalescing and re-segmenting exactly as it went in.
type element struct {
	seq   uint32
	flags byte
	hdr   string // link header, TOS/TC, TTL, ack, window, urgent, options without TSval
	data  string
	l4OK  bool
}

// flowsOf splits frames into TCP segments per flow (addresses and ports)
// and the other frames, in order. Merged packets (GSO set) are completed
// and cut with Segment first, so they count as the segments they hold.
func flowsOf(frames []*buf.Packet, t link.Type) (map[string][]element, []string, error) {
	flows := make(map[string][]element)
	var others []string
	for i, f := range frames {
		b := f.ToBytes()
		ll := 0
		if t == link.TypeEthernet {
			n, err := LinkHeaderLen(t, f)
			if err != nil {
				others = append(others, string(b))
				continue
			}
			ll = n
		}
		var ips [][]byte
		if f.Offload.GSO != buf.GSONone {
			if err := checkMerged(f, ll); err != nil {
				return nil, nil, fmt.Errorf("frame %d: %v", i, err)
			}
			q := buf.FromBytes(b[ll:])
			q.Offload = buf.Offload{GSO: f.Offload.GSO, GSOSize: f.Offload.GSOSize}
			segs, err := Segment(q, nil)
			if err != nil {
				return nil, nil, fmt.Errorf("frame %d: re-segmenting: %v", i, err)
			}
			for _, s := range segs {
				ips = append(ips, append(append([]byte{}, b[:ll]...), s.ToBytes()...))
				s.Release()
			}
		} else {
			ips = [][]byte{b}
		}
		for _, fb := range ips {
			p, ok := parse(fb[ll:])
			if !ok || p.proto != wire.IPProtoTCP {
				others = append(others, string(fb))
				continue
			}
			h := p.headers
			key := string(p.src.AsSlice()) + string(p.dst.AsSlice()) + string(h[p.l4Off:p.l4Off+4])
			var e element
			e.seq, e.flags, e.data, e.l4OK = p.seq, p.flags, string(p.data), p.l4OK
			var ipf []byte
			if p.v4 {
				ipf = []byte{h[1], h[8]}
			} else {
				ipf = []byte{h[0], h[1], h[2], h[3], h[7]}
			}
			opts := append([]byte{}, h[p.l4Off+20:]...)
			if len(opts) >= 12 && opts[0] == 1 && opts[1] == 1 && opts[2] == 8 && opts[3] == 10 {
				clear(opts[4:8])
			}
			e.hdr = string(fb[:ll]) + string(ipf) + string(h[p.l4Off+8:p.l4Off+13]) +
				string(h[p.l4Off+14:p.l4Off+16]) + string(h[p.l4Off+18:p.l4Off+20]) + string(opts)
			flows[key] = append(flows[key], e)
		}
	}
	return flows, others, nil
}

// checkMerged checks a merged packet's headers: lengths, the IPv4
// header checksum and the partial TCP checksum.
func checkMerged(f *buf.Packet, ll int) error {
	o := f.Offload
	b := f.ToBytes()
	p, ok := parse(b[ll:])
	if !ok || p.proto != wire.IPProtoTCP {
		return fmt.Errorf("merged packet does not parse")
	}
	if p.ipLen != len(b)-ll || !p.ipCsumOK {
		return fmt.Errorf("merged packet: IP length %d of %d, header checksum ok %v", p.ipLen, len(b)-ll, p.ipCsumOK)
	}
	if !o.NeedsCsum || int(o.CsumStart) != ll+p.l4Off || o.CsumOffset != 16 || int(o.HdrLen) != ll+p.hdrLen ||
		(o.GSO == buf.GSOTCPv4) != p.v4 || o.GSOSize == 0 || len(p.data) <= int(o.GSOSize) {
		return fmt.Errorf("merged packet: offload %+v (v4 %v, %d bytes of data)", o, p.v4, len(p.data))
	}
	q := buf.FromBytes(b)
	defer q.Release()
	q.Offload = o
	if err := Complete(q); err != nil {
		return err
	}
	if c, _ := parse(q.ToBytes()[ll:]); !c.l4OK {
		return fmt.Errorf("merged packet: completed checksum is wrong")
	}
	return nil
}

// checkCoalesce checks out, what Coalesce made of the frames in, and
// releases it. in holds the frames' bytes as they went in; inPkts the
// packets themselves: those not in out must have been released.
func checkCoalesce(t link.Type, in [][]byte, inPkts, out []*buf.Packet) error {
	defer releaseAll(out)
	if err := checkReleased(inPkts, out); err != nil {
		return err
	}
	var ins []*buf.Packet
	for _, b := range in {
		ins = append(ins, buf.FromBytes(b))
	}
	defer releaseAll(ins)
	wantFlows, wantOthers, err := flowsOf(ins, t)
	if err != nil {
		return err
	}
	gotFlows, gotOthers, err := flowsOf(out, t)
	if err != nil {
		return err
	}
	if len(gotOthers) != len(wantOthers) {
		return fmt.Errorf("%d other frames out, want %d", len(gotOthers), len(wantOthers))
	}
	for i := range wantOthers {
		// Link padding of a TCP frame may be trimmed; others pass as they are.
		if !bytes.HasPrefix([]byte(wantOthers[i]), []byte(gotOthers[i])) {
			return fmt.Errorf("other frame %d changed", i)
		}
	}
	if len(gotFlows) != len(wantFlows) {
		return fmt.Errorf("%d flows out, want %d", len(gotFlows), len(wantFlows))
	}
	for k, want := range wantFlows {
		got := gotFlows[k]
		if len(got) != len(want) {
			return fmt.Errorf("flow %x: %d segments out, want %d", k, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				return fmt.Errorf("flow %x segment %d:\n got %+v\nwant %+v", k, i, got[i], want[i])
			}
		}
	}
	return nil
}

// checkReleased checks that every packet of in is in out (once) or was
// released. Call it before anything takes packets from the pool.
func checkReleased(in, out []*buf.Packet) error {
	kept := make(map[*buf.Packet]bool)
	for _, p := range out {
		if kept[p] {
			return fmt.Errorf("packet %p twice in the output", p)
		}
		kept[p] = true
	}
	for i, p := range in {
		if !kept[p] && !released(p) {
			return fmt.Errorf("input %d neither in the output nor released", i)
		}
	}
	return nil
}

// released reports whether p was released, by releasing it again: a
// second Release panics. Only for packets that nothing has taken from the
// pool since (the checker allocates none before asking).
func released(p *buf.Packet) (yes bool) {
	defer func() { yes = recover() != nil }()
	p.Release()
	return false
}

// tcpSegs cuts the packet s describes into segments of size bytes of
// payload, as a sender's TSO would (Segment), and returns their bytes.
func tcpSegs(t *testing.T, s spec, size int) [][]byte {
	t.Helper()
	pkt := buf.FromBytes(build(s))
	pkt.Offload = buf.Offload{GSO: buf.GSOTCPv4, GSOSize: uint16(size)}
	if s.v6 {
		pkt.Offload.GSO = buf.GSOTCPv6
	}
	segs, err := Segment(pkt, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, p := range segs {
		out = append(out, p.ToBytes())
		p.Release()
	}
	return out
}

func packets(frames [][]byte) []*buf.Packet {
	var ps []*buf.Packet
	for _, b := range frames {
		ps = append(ps, buf.FromBytes(b))
	}
	return ps
}

func ethFrame(ip []byte, v6 bool, vlan bool) []byte {
	h := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
	if vlan {
		h = append(h, 0x81, 0x00, 0x00, 0x07)
	}
	if v6 {
		h = append(h, 0x86, 0xdd)
	} else {
		h = append(h, 0x08, 0x00)
	}
	return append(h, ip...)
}

// TestCoalesceRoundTrip: segments of one large packet, cut as a sender's
// TSO cuts them, merge back into that packet, byte for byte once its
// checksum is completed.
func TestCoalesceRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    spec
		size int
		eth  bool
	}{
		{"v4", spec{payload: 20000, tcpFlags: 0x18, id: 9, seq: 0xfffff000}, 1448, false},
		{"v4 timestamps", spec{payload: 14000, tcpFlags: 0x18, tcpOpts: tsOpt}, 1448, false},
		{"v4 short last", spec{payload: 3000, tcpFlags: 0x10}, 1000, true},
		{"v6", spec{v6: true, payload: 30000, tcpFlags: 0x18, tcpOpts: tsOpt}, 1428, true},
		{"v4 max", spec{payload: 65535 - 40, tcpFlags: 0x18}, 1460, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lt := link.TypeIP
			var frames [][]byte
			for _, s := range tcpSegs(t, tc.s, tc.size) {
				if tc.eth {
					s = ethFrame(s, tc.s.v6, false)
					lt = link.TypeEthernet
				}
				frames = append(frames, s)
			}
			var c Coalescer
			in := packets(frames)
			out := c.Coalesce(in, lt, nil)
			if err := checkReleased(in, out); err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || c.Merged != uint64(len(frames)-1) {
				t.Fatalf("%d frames became %d packets, %d merged", len(frames), len(out), c.Merged)
			}
			want := build(tc.s)
			if tc.eth {
				want = ethFrame(want, tc.s.v6, false)
			}
			done := out[0].DeepCopy()
			defer done.Release()
			if err := Complete(done); err != nil {
				t.Fatal(err)
			}
			if got := done.ToBytes(); !bytes.Equal(got, want) {
				t.Fatalf("merged packet differs from the original:\n got % x\nwant % x", got[:80], want[:80])
			}
			if err := checkCoalesce(lt, frames, nil, out); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCoalesceRules: what may and may not be merged.
func TestCoalesceRules(t *testing.T) {
	ack := byte(0x10)
	seg := func(seq uint32, n int, mod func(*spec)) []byte {
		s := spec{seq: seq, payload: n, payloadAt: int(seq), tcpFlags: ack, tcpOpts: tsOpt, id: uint16(seq / 100)}
		if mod != nil {
			mod(&s)
		}
		return build(s)
	}
	setTS := func(b []byte, val uint32) []byte {
		binary.BigEndian.PutUint32(b[20+20+4:], val)
		binary.BigEndian.PutUint16(b[36:], 0)
		c := ^wire.ChecksumCombine(wire.PseudoHeaderChecksum(wire.IPProtoTCP, src4, dst4, len(b)-20), wire.Checksum(b[20:], 0))
		binary.BigEndian.PutUint16(b[36:], c)
		return b
	}
	udp := build(spec{udp: true, payload: 100})
	tests := []struct {
		name   string
		frames [][]byte
		want   []int // segments in each output packet
	}{
		{"in order", [][]byte{seg(0, 100, nil), seg(100, 100, nil), seg(200, 100, nil)}, []int{3}},
		{"short last ends", [][]byte{seg(0, 100, nil), seg(100, 50, nil), seg(150, 50, nil)}, []int{2, 1}},
		{"longer later", [][]byte{seg(0, 100, nil), seg(100, 200, nil)}, []int{1, 1}},
		{"gap", [][]byte{seg(0, 100, nil), seg(200, 100, nil), seg(300, 100, nil)}, []int{1, 2}},
		{"psh ends", [][]byte{seg(0, 100, nil), seg(100, 100, func(s *spec) { s.tcpFlags |= tcpPSH }), seg(200, 100, nil)}, []int{2, 1}},
		{"psh head", [][]byte{seg(0, 100, func(s *spec) { s.tcpFlags |= tcpPSH }), seg(100, 100, nil)}, []int{1, 1}},
		{"fin", [][]byte{seg(0, 100, nil), seg(100, 100, func(s *spec) { s.tcpFlags |= tcpFIN })}, []int{1, 1}},
		{"pure ack between", [][]byte{seg(0, 100, nil), seg(100, 0, nil), seg(100, 100, nil)}, []int{1, 1, 1}},
		{"cwr", [][]byte{seg(0, 100, func(s *spec) { s.tcpFlags |= tcpCWR }), seg(100, 100, nil)}, []int{1, 1}},
		{"ttl", [][]byte{seg(0, 100, nil), seg(100, 100, func(s *spec) { s.ttl = 9 })}, []int{1, 1}},
		{"window", [][]byte{seg(0, 100, nil), seg(100, 100, func(s *spec) { s.wnd = 9 })}, []int{1, 1}},
		{"ip options", [][]byte{seg(0, 100, func(s *spec) { s.ipOpts = []byte{1, 1, 1, 0} }), seg(100, 100, nil)}, []int{1, 1}},
		{"bad checksum", [][]byte{seg(0, 100, nil), seg(100, 100, func(s *spec) { s.badCsum = true }), seg(200, 100, nil)}, []int{1, 1, 1}},
		{"ip id jump", [][]byte{seg(0, 100, nil), seg(100, 100, func(s *spec) { s.id = 77 })}, []int{1, 1}},
		{"ip id fixed", [][]byte{seg(0, 100, func(s *spec) { s.id = 5 }), seg(100, 100, func(s *spec) { s.id = 5 })}, []int{2}},
		{"ts grows", [][]byte{seg(0, 100, nil), setTS(seg(100, 100, nil), 2)}, []int{2}},
		{"ts goes back", [][]byte{setTS(seg(0, 100, nil), 5), setTS(seg(100, 100, nil), 4)}, []int{1, 1}},
		{"other flow interleaved", [][]byte{seg(0, 100, nil), seg(0, 100, func(s *spec) { s.sport = 9 }),
			seg(100, 100, nil), seg(100, 100, func(s *spec) { s.sport = 9 })}, []int{2, 2}},
		{"udp flushes", [][]byte{seg(0, 100, nil), udp, seg(100, 100, nil)}, []int{1, 0, 1}},
		{"v6", [][]byte{seg(0, 100, func(s *spec) { s.v6 = true }), seg(100, 100, func(s *spec) { s.v6 = true })}, []int{2}},
		{"v6 hop-by-hop", [][]byte{seg(0, 100, func(s *spec) { s.v6, s.hopByHop = true, 1 }),
			seg(100, 100, func(s *spec) { s.v6, s.hopByHop = true, 1 })}, []int{1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Coalescer
			in := packets(tc.frames)
			out := c.Coalesce(in, link.TypeIP, nil)
			var got []int
			for _, p := range out {
				n := 1
				if p.Offload.GSO != buf.GSONone {
					n = (p.Len() - int(p.Offload.HdrLen) + int(p.Offload.GSOSize) - 1) / int(p.Offload.GSOSize)
				} else if q, ok := parse(p.ToBytes()); !ok || q.proto != wire.IPProtoTCP {
					n = 0
				}
				got = append(got, n)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("segments per packet %v, want %v", got, tc.want)
			}
			if err := checkCoalesce(link.TypeIP, tc.frames, in, out); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCoalesceManyFlows: more flows than runs; the oldest is closed.
func TestCoalesceManyFlows(t *testing.T) {
	var frames [][]byte
	for round := range 3 {
		for f := range maxRuns + 2 {
			frames = append(frames, build(spec{sport: uint16(100 + f), seq: uint32(round * 50), payloadAt: round * 50, payload: 50, tcpFlags: 0x10}))
		}
	}
	var c Coalescer
	in := packets(frames)
	out := c.Coalesce(in, link.TypeIP, nil)
	if err := checkCoalesce(link.TypeIP, frames, in, out); err != nil {
		t.Fatal(err)
	}
}

func TestCoalesceLimits(t *testing.T) {
	// 65535 bytes of IP packet at most: 1000-byte segments, 66 of them.
	var frames [][]byte
	for i := range 66 {
		frames = append(frames, build(spec{seq: uint32(i * 1000), payloadAt: i * 1000, payload: 1000, tcpFlags: 0x10, id: uint16(i)}))
	}
	var c Coalescer
	in := packets(frames)
	out := c.Coalesce(in, link.TypeIP, nil)
	for _, p := range out {
		if p.Len() > 65535 {
			t.Fatalf("merged packet of %d bytes", p.Len())
		}
	}
	if len(out) != 2 {
		t.Errorf("%d packets, want 2", len(out))
	}
	if err := checkCoalesce(link.TypeIP, frames, in, out); err != nil {
		t.Fatal(err)
	}
}

// TestCoalesceVLAN: frames with the same tag merge; different tags don't.
func TestCoalesceVLAN(t *testing.T) {
	a := ethFrame(build(spec{payload: 100, tcpFlags: 0x10}), false, true)
	b := ethFrame(build(spec{seq: 100, payloadAt: 100, payload: 100, tcpFlags: 0x10, id: 1}), false, true)
	c2 := ethFrame(build(spec{seq: 200, payloadAt: 200, payload: 100, tcpFlags: 0x10, id: 2}), false, true)
	c2[15] = 8 // another VID
	frames := [][]byte{a, b, c2}
	var c Coalescer
	in := packets(frames)
	out := c.Coalesce(in, link.TypeEthernet, nil)
	if len(out) != 2 {
		t.Fatalf("%d packets, want 2", len(out))
	}
	if err := checkCoalesce(link.TypeEthernet, frames, in, out); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkCoalesce(b *testing.B) {
	var frames [][]byte
	for i := range 44 {
		frames = append(frames, ethFrame(build(spec{seq: uint32(i * 1448), payloadAt: i * 1448, payload: 1448,
			tcpFlags: 0x10, tcpOpts: tsOpt, id: uint16(i)}), false, false))
	}
	in := make([]*buf.Packet, len(frames))
	out := make([]*buf.Packet, 0, len(frames))
	var c Coalescer
	b.SetBytes(int64(44 * 1448))
	b.ReportAllocs()
	for b.Loop() {
		for i, f := range frames {
			in[i] = buf.FromBytes(f)
			in[i].Offload.CsumValid = true
		}
		out = c.Coalesce(in, link.TypeEthernet, out[:0])
		releaseAll(out)
	}
}

//go:build !race

package offload

import (
	"testing"

	"ustack/buf"
	"ustack/link"
)

// The race detector makes sync.Pool drop items at random, so allocation
// budgets are checked only without it.

func TestSegmentAllocs(t *testing.T) {
	frame := build(spec{payload: 65535 - 40, tcpFlags: 0x18})
	out := make([]*buf.Packet, 0, 64)
	n := testing.AllocsPerRun(50, func() {
		pkt := buf.FromBytes(frame)
		pkt.Offload = buf.Offload{GSO: buf.GSOTCPv4, GSOSize: 1448, NeedsCsum: true, CsumStart: 20, CsumOffset: 16}
		out, _ = PrepareRx(pkt, link.TypeIP, Accept{}, out[:0])
		releaseAll(out)
	})
	if n > 0 {
		t.Fatalf("%v allocations to segment a 64 KiB packet, want 0", n)
	}
}

func TestCompleteAllocs(t *testing.T) {
	b, o := partial(build(spec{udp: true, payload: 1400}))
	n := testing.AllocsPerRun(100, func() {
		pkt := buf.FromBytes(b)
		pkt.Offload = o
		_ = Complete(pkt)
		pkt.Release()
	})
	if n > 0 {
		t.Fatalf("%v allocations per Complete, want 0", n)
	}
}

func TestCoalesceAllocs(t *testing.T) {
	var frames [][]byte
	for i := range 44 {
		frames = append(frames, ethFrame(build(spec{seq: uint32(i * 1448), payloadAt: i * 1448, payload: 1448,
			tcpFlags: 0x10, tcpOpts: tsOpt, id: uint16(i)}), false, false))
	}
	in := make([]*buf.Packet, len(frames))
	out := make([]*buf.Packet, 0, len(frames))
	var c Coalescer
	n := testing.AllocsPerRun(50, func() {
		for i, b := range frames {
			in[i] = buf.FromBytes(b)
		}
		out = c.Coalesce(in, link.TypeEthernet, out[:0])
		if len(out) != 1 {
			t.Fatalf("%d packets", len(out))
		}
		releaseAll(out)
	})
	if n > 0 {
		t.Fatalf("%v allocations to coalesce 44 segments, want 0", n)
	}
}

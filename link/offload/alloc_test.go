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

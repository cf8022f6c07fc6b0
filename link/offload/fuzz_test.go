package offload

import (
	"testing"

	"ustack/buf"
)

// FuzzSegment feeds Segment arbitrary packets, GSO types, segment sizes and
// view layouts. It must not panic; when it succeeds the segments must be
// valid, of the right sizes, and their payloads must concatenate to the
// original payload.
func FuzzSegment(f *testing.F) {
	seeds := []struct {
		s   spec
		gso buf.GSOType
	}{
		{spec{payload: 3000, tcpFlags: 0x19 | tcpCWR}, buf.GSOTCPv4},
		{spec{payload: 1000, tcpOpts: tsOpt, ipOpts: []byte{1, 1, 1, 0}}, buf.GSOTCPv4},
		{spec{v6: true, payload: 2000, tcpFlags: 0x18}, buf.GSOTCPv6},
		{spec{v6: true, hopByHop: 1, payload: 2000}, buf.GSOTCPv6},
		{spec{udp: true, payload: 1500}, buf.GSOUDPL4},
		{spec{v6: true, udp: true, payload: 1500, ipLenZero: true}, buf.GSOUDPL4},
	}
	for _, sd := range seeds {
		f.Add(build(sd.s), uint8(sd.gso), uint16(500), uint16(33), uint16(700))
	}
	f.Fuzz(func(t *testing.T, b []byte, gso uint8, size, cut1, cut2 uint16) {
		pkt := packetOf(b, int(cut1), int(cut2))
		if pkt == nil {
			return
		}
		pkt.Offload = buf.Offload{GSO: buf.GSOType(gso % 4), GSOSize: size}
		segs, err := Segment(pkt, nil)
		if err != nil {
			return
		}
		defer releaseAll(segs)
		if gso%4 == 0 {
			return // returned as it is
		}
		if err := checkSegments(b, int(size), segs); err != nil {
			t.Fatal(err)
		}
	})
}

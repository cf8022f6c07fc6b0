package wire_test

import (
	"net/netip"
	"testing"

	"ustack/wire"
)

var sink int

// TestParseAllocs: the receive path (frame, IPv4 with options, UDP, TCP
// with options, ICMP with its quote, ARP) allocates nothing.
func TestParseAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Ethernet+VLAN", func() {
			_, tags, _, p, err := wire.ParseEthernetFrame(goldenQinQ)
			if err != nil {
				panic(err)
			}
			sink += tags.N + len(p)
		}},
		{"IPv4 with options", func() {
			h, err := wire.ParseIPv4(ip(goldenEchoRR))
			if err != nil || !h.ChecksumValid() {
				panic(err)
			}
			if _, err := h.CheckOptions(); err != nil {
				panic(err)
			}
			it := h.OptionIter()
			for o, ok := it.Next(); ok; o, ok = it.Next() {
				sink += o.Len() + o.Pointer()
				if o.RouteAddr(0).Is4() {
					sink++
				}
			}
			if o, ok := h.FindOption(wire.IPv4OptRecordRoute); ok {
				sink += o.RouteAddrs()
			}
			if h.Src() == h.Dst() {
				sink++
			}
			sink += int(h.PseudoHeaderChecksum())
		}},
		{"UDP", func() {
			h, _ := wire.ParseIPv4(ip(goldenUDP))
			u, err := wire.ParseUDP(h.Payload())
			if err != nil {
				panic(err)
			}
			sink += int(u.SrcPort()) + len(u.Payload()) + int(wire.Checksum(u, h.PseudoHeaderChecksum()))
		}},
		{"TCP with options", func() {
			h, _ := wire.ParseIPv4(ip(goldenSYN))
			s, err := wire.ParseTCP(h.Payload())
			if err != nil || !s.ChecksumValid(h.PseudoHeaderChecksum()) {
				panic(err)
			}
			o, err := s.ParseOptions()
			if err != nil {
				panic(err)
			}
			sink += int(o.MSS) + int(o.WScale) + len(o.SACKBlocks())
			s2, _ := wire.ParseTCP(l4(goldenSACK))
			o, err = s2.ParseOptions()
			if err != nil {
				panic(err)
			}
			sink += len(o.SACKBlocks())
		}},
		{"ICMP quote", func() {
			m, err := wire.ParseICMPv4(l4(goldenPortUnreach))
			if err != nil {
				panic(err)
			}
			q, err := m.Quote()
			if err != nil {
				panic(err)
			}
			sink += len(q.Payload())
		}},
		{"ARP", func() {
			a, err := wire.ParseARP(goldenARPRequest[14:])
			if err != nil {
				panic(err)
			}
			if a.TargetIP().Is4() {
				sink++
			}
		}},
		{"errors", func() {
			_, err1 := wire.ParseIPv4(ip(goldenSYN)[:10])
			_, err2 := wire.ParseTCPOptions([]byte{2, 3, 0})
			_, err3 := wire.CheckIPv4Options([]byte{7, 1})
			if err1 == nil || err2 == nil || err3 == nil {
				panic("no error")
			}
		}},
	} {
		if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
}

// TestEncodeAllocs: the send path's encoders allocate nothing either.
func TestEncodeAllocs(t *testing.T) {
	buf := make([]byte, 128)
	ipf := wire.IPv4Fields{TotalLen: 60, TTL: 64, Protocol: wire.IPProtoTCP,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")}
	tf := wire.TCPFields{SrcPort: 1, DstPort: 2, Flags: wire.TCPFlagSYN, Window: 65535,
		Options: wire.TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, HasTimestamps: true, HasWScale: true, WScale: 7}}
	n := testing.AllocsPerRun(100, func() {
		ipf.Encode(buf)
		tf.Encode(buf[20:])
		wire.TCP(buf[20:60]).UpdateChecksum(wire.IPv4(buf).PseudoHeaderChecksum())
	})
	if n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

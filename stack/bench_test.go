package stack_test

import (
	"net/netip"
	"testing"

	"ustack/buf"
	"ustack/transport/udp"
	"ustack/wire"
)

// BenchmarkUDPSend measures one 1000-byte datagram from a UDP endpoint to
// the link (UDP, IPv4, neighbour lookup, Ethernet framing).
func BenchmarkUDPSend(b *testing.B) {
	s, _ := sinkStack(b)
	ep, err := s.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 5000), udp.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ep.Close()
	to := netip.MustParseAddrPort("10.0.0.2:7")
	payload := make([]byte, 1000)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ep.WriteTo(payload, to); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUDPReceive measures one 1000-byte datagram from the link to a
// socket queue and out (Ethernet, IPv4, UDP checksum, demux, queue).
func BenchmarkUDPReceive(b *testing.B) {
	s, l := sinkStack(b)
	ep, err := s.UDP().Bind(netip.MustParseAddrPort("0.0.0.0:7"), udp.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ep.Close()
	src, dst := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")
	payload := make([]byte, 1000)
	frame := make([]byte, 14+20+8+len(payload))
	(&wire.EthernetFields{Dst: l.mac, Src: peerMAC, Type: wire.EtherTypeIPv4}).Encode(frame)
	(&wire.IPv4Fields{TotalLen: 20 + 8 + len(payload), TTL: 64, Protocol: wire.IPProtoUDP, Src: src, Dst: dst}).Encode(frame[14:])
	u := frame[34:]
	(&wire.UDPFields{SrcPort: 9, DstPort: 7, Length: 8 + len(payload)}).Encode(u)
	wire.UDP(u).SetChecksum(wire.UDPChecksum(wire.PseudoHeaderChecksum(wire.IPProtoUDP, src, dst, len(u)), wire.Checksum(u, 0)))
	batch := make([]*buf.Packet, 1)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		batch[0] = buf.FromBytes(frame)
		l.d.DeliverBatch(l, batch)
		pkt, _, ok := ep.Recv()
		if !ok {
			b.Fatal("not delivered")
		}
		pkt.Release()
	}
}

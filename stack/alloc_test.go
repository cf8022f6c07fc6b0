//go:build !race

// Allocation tests run without the race detector: under -race, sync.Pool
// drops a share of what it is given on purpose, so pooled paths allocate.

package stack_test

import (
	"net/netip"
	"runtime/debug"
	"testing"

	"ustack/buf"
	"ustack/transport/udp"
	"ustack/wire"
)

// measure runs f with the garbage collector off, so sync.Pool keeps what
// it holds, after a warm-up that fills the pools.
func measure(f func()) float64 {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for i := 0; i < 100; i++ {
		f()
	}
	return testing.AllocsPerRun(1000, f)
}

// TestSendPathAllocs: a UDP datagram from an endpoint to the link makes no
// heap allocation (UDP → IPv4 → neighbour → Ethernet → link).
func TestSendPathAllocs(t *testing.T) {
	s, l := sinkStack(t)
	ep, err := s.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 5000), udpOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	to := netip.MustParseAddrPort("10.0.0.2:7")
	payload := make([]byte, 1000)
	if n := measure(func() {
		if _, err := ep.WriteTo(payload, to); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("send path: %v allocations per datagram, want 0", n)
	}
	if l.written.Load() == 0 {
		t.Fatalf("nothing reached the link")
	}
}

// TestReceivePathAllocs: a frame from the link to a socket's queue and out
// again makes no heap allocation (link → Ethernet → IPv4 → UDP → queue).
func TestReceivePathAllocs(t *testing.T) {
	s, l := sinkStack(t)
	ep, err := s.UDP().Bind(netip.MustParseAddrPort("0.0.0.0:7"), udpOptions())
	if err != nil {
		t.Fatal(err)
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
	got := 0
	if n := measure(func() {
		batch[0] = buf.FromBytes(frame)
		l.d.DeliverBatch(l, batch)
		pkt, _, ok := ep.Recv()
		if !ok {
			t.Fatal("datagram not delivered")
		}
		got += pkt.Len()
		pkt.Release()
	}); n != 0 {
		t.Errorf("receive path: %v allocations per frame, want 0", n)
	}
	if got == 0 {
		t.Fatal("nothing received")
	}
}

func udpOptions() udp.Options { return udp.Options{} }

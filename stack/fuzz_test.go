package stack_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/stack"
	"ustack/wire"
)

var (
	fuzzUs   = netip.MustParseAddr("10.0.0.1")
	fuzzPeer = netip.MustParseAddr("10.0.0.2")
)

// frame builds an Ethernet frame from the peer to us.
func frame(dst wire.MAC, et wire.EtherType, payload []byte) []byte {
	b := make([]byte, 14+len(payload))
	(&wire.EthernetFields{Dst: dst, Src: peerMAC, Type: et}).Encode(b)
	copy(b[14:], payload)
	return b
}

func ipv4Frame(dst wire.MAC, f wire.IPv4Fields, payload []byte) []byte {
	f.TotalLen = f.Len() + len(payload)
	if f.TTL == 0 {
		f.TTL = 64
	}
	b := make([]byte, f.TotalLen)
	f.Encode(b)
	copy(b[f.Len():], payload)
	return frame(dst, wire.EtherTypeIPv4, b)
}

func echoRequest(seq uint16) []byte {
	m := make([]byte, 8+16)
	(&wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Rest: wire.EchoRest(1, seq)}).Encode(m)
	wire.ICMPv4(m).UpdateChecksum()
	return m
}

// FuzzStackInput feeds arbitrary frames to an interface. Whatever comes in,
// the stack must not panic, every frame must be delivered to a protocol or
// dropped with a counted reason, nothing may stay held after the
// reassembly timeout, and a valid echo request right after must still be
// answered.
func FuzzStackInput(f *testing.F) {
	us := wire.MAC{2, 0, 0, 0, 0, 1}
	arp := make([]byte, wire.ARPLen)
	(&wire.ARPFields{Op: wire.ARPRequest, SenderMAC: peerMAC, SenderIP: fuzzPeer, TargetIP: fuzzUs}).Encode(arp)
	f.Add(frame(wire.BroadcastMAC, wire.EtherTypeARP, arp))
	f.Add(ipv4Frame(us, wire.IPv4Fields{Protocol: wire.IPProtoICMP, Src: fuzzPeer, Dst: fuzzUs}, echoRequest(1)))
	udp := make([]byte, 8+4)
	(&wire.UDPFields{SrcPort: 9, DstPort: 7, Length: 12}).Encode(udp)
	f.Add(ipv4Frame(us, wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: fuzzPeer, Dst: fuzzUs}, udp))
	f.Add(ipv4Frame(us, wire.IPv4Fields{ID: 7, Flags: wire.IPv4FlagMF, Protocol: wire.IPProtoUDP, Src: fuzzPeer, Dst: fuzzUs}, make([]byte, 64)))
	f.Add(ipv4Frame(us, wire.IPv4Fields{ID: 7, FragOff: 64, Protocol: wire.IPProtoUDP, Src: fuzzPeer, Dst: fuzzUs}, make([]byte, 8)))
	f.Add(ipv4Frame(us, wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: fuzzPeer, Dst: fuzzUs, Options: []byte{0x94, 4, 0, 0}}, udp))
	f.Add(frame(us, wire.EtherTypeVLAN, []byte{0, 1, 8, 0, 0x45}))
	f.Add([]byte{1, 2, 3})

	clk := clock.NewFake(time.Unix(0, 0))
	s, l := sinkStackOpts(f, stack.Options{Name: "fuzz", Clock: clk})
	ping := ipv4Frame(us, wire.IPv4Fields{Protocol: wire.IPProtoICMP, Src: fuzzPeer, Dst: fuzzUs}, echoRequest(2))
	batch := make([]*buf.Packet, 1)
	f.Fuzz(func(t *testing.T, b []byte) {
		batch[0] = buf.FromBytes(b)
		l.d.DeliverBatch(l, batch)
		clk.Advance(time.Minute) // past every reassembly and neighbour timer
		st := s.Stats()
		if st["ipv4.reasm.pending"] != 0 || st["ipv4.reasm.bytes"] != 0 {
			t.Fatalf("reassembly holds %d datagrams, %d bytes after the timeout", st["ipv4.reasm.pending"], st["ipv4.reasm.bytes"])
		}
		var drops uint64
		for name, v := range st {
			if strings.HasPrefix(name, "if.eth0.drop.") {
				drops += v
			}
		}
		if in := st["if.eth0.in.packets"]; in != st["if.eth0.delivered"]+drops {
			t.Fatalf("interface: in %d != delivered %d + dropped %d", in, st["if.eth0.delivered"], drops)
		}
		before := l.written.Load()
		batch[0] = buf.FromBytes(ping)
		l.d.DeliverBatch(l, batch)
		if l.written.Load() != before+1 {
			t.Fatalf("a valid echo request after %x went unanswered", b)
		}
	})
}

package ipv6

import (
	"bytes"
	"sync"
	"testing"

	"ustack/buf"
	"ustack/wire"
)

// FuzzHandlePacket feeds arbitrary packets to the input path: nothing may
// panic, every packet is released once (buf panics on a double release),
// and whatever is sent back is a well-formed IPv6 packet within 1280
// bytes when it is an ICMPv6 error. Run it with -fuzzminimizetime=100x:
// buf's pools make coverage vary between runs of one input, so minimizing
// each new input would take the full default minute.
func FuzzHandlePacket(f *testing.F) {
	udp := udpDatagram(peer, local, 1, 2, []byte("seed"))
	f.Add(ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}, udp))
	f.Add(ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoHopByHop, Src: peer, Dst: local},
		cat(optsHeader(wire.IPProtoDstOpts, opt(0xde, 1)), optsHeader(wire.IPProtoRouting), routingHeader(wire.IPProtoUDP, 0, 1), udp)))
	f.Add(frag(1, 0, true, wire.IPProtoUDP, make([]byte, 16)))
	f.Add(frag(1, 16, false, wire.IPProtoUDP, make([]byte, 8)))
	f.Add(echoRequest(peer, local, 1, 2, []byte("ping")))
	f.Add(ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: peer, Dst: local}, chain(20, udp)))
	f.Add(errorTo(peer, wire.ICMPv6Fields{Type: wire.ICMPv6PacketTooBig, Rest: 1300},
		ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: local, Dst: peer}, udp)))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A rig per input: coverage must not depend on earlier inputs.
		r := newRig(t)
		r.p.SetNDHandler(&ndSink{})
		r.input(r.if1, b)
		// A second copy as a fragment continuation exercises held state.
		r.input(r.if1, b)
		for _, s := range r.if1.take() {
			h, err := wire.ParseIPv6(s.b)
			if err != nil {
				t.Fatalf("sent a malformed packet: %v", err)
			}
			if h.NextHeader() == wire.IPProtoICMPv6 {
				m, err := wire.ParseICMPv6(h.Payload())
				if err != nil || !m.ChecksumValid(h.Src(), h.Dst()) {
					t.Fatalf("sent a bad ICMPv6 message")
				}
				if m.Type().IsError() && len(s.b) > wire.IPv6MinMTU {
					t.Fatalf("error of %d bytes", len(s.b))
				}
			}
		}
	})
}

// TestConcurrentInput runs the input path from several readers at once
// (as several links do), for the race detector.
func TestConcurrentInput(t *testing.T) {
	r := newRig(t)
	r.udp.noListen = false
	dgram := udpDatagram(peer, local, 7, 9, pattern(6000))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				id := uint32(g*1000 + i)
				for _, f := range fragments(t, r.p, wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}, id, dgram, 1500) {
					r.p.HandlePacket(r.if1, buf.FromBytes(f))
				}
				r.p.HandlePacket(r.if1, buf.FromBytes(echoRequest(peer, local, 1, uint16(i), nil)))
				r.p.JoinGroup(1, wire.SolicitedNodeMulticast(far))
				r.p.Route(far, local, 0)
				r.p.LeaveGroup(1, wire.SolicitedNodeMulticast(far))
			}
		})
	}
	wg.Wait()
	r.udp.mu.Lock()
	defer r.udp.mu.Unlock()
	if len(r.udp.got) != 80 {
		t.Fatalf("reassembled %d of 80", len(r.udp.got))
	}
	for _, g := range r.udp.got {
		if !bytes.Equal(g, dgram) {
			t.Fatalf("a datagram came out wrong")
		}
	}
}

package ipv4

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"ustack/buf"
	"ustack/proto"
	"ustack/wire"
)

func TestValidation(t *testing.T) {
	good := ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: peer, Dst: local},
		udpDatagram(peer, local, 1, 2, []byte("hi")))
	tests := []struct {
		name   string
		mangle func(b []byte) []byte
		reason proto.DropReason
	}{
		{"truncated", func(b []byte) []byte { return b[:12] }, proto.DropTruncated},
		{"version 6", func(b []byte) []byte { b[0] = 0x65; return b }, proto.DropBadVersion},
		{"IHL 4", func(b []byte) []byte { b[0] = 0x44; return b }, proto.DropBadHeaderLen},
		{"IHL past packet", func(b []byte) []byte { b[0] = 0x4f; return b }, proto.DropBadHeaderLen},
		{"total length short", func(b []byte) []byte { b[3] = 10; wire.IPv4(b).UpdateChecksum(); return b }, proto.DropBadLength},
		{"total length long", func(b []byte) []byte { b[2] = 0x10; wire.IPv4(b).UpdateChecksum(); return b }, proto.DropBadLength},
		{"checksum", func(b []byte) []byte { b[10] ^= 1; return b }, proto.DropBadChecksum},
		{"broadcast source", func(b []byte) []byte {
			wire.IPv4(b).SetSrc(limitedBroadcast)
			wire.IPv4(b).UpdateChecksum()
			return b
		}, proto.DropBadSource},
		{"loopback source", func(b []byte) []byte {
			wire.IPv4(b).SetSrc(netip.MustParseAddr("127.0.0.1"))
			wire.IPv4(b).UpdateChecksum()
			return b
		}, proto.DropBadSource},
		{"not ours, no forwarding", func(b []byte) []byte {
			wire.IPv4(b).SetDst(netip.MustParseAddr("192.0.2.1"))
			wire.IPv4(b).UpdateChecksum()
			return b
		}, proto.DropForwardingOff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.input(r.if1, tc.mangle(bytes.Clone(good)))
			if got := r.p.counters.Dropped(tc.reason); got != 1 {
				t.Errorf("drop %v = %d, want 1 (drops: %d total)", tc.reason, got, r.p.counters.TotalDrops())
			}
			if len(r.udp.got) != 0 {
				t.Errorf("malformed packet delivered")
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		r := newRig(t)
		// Ethernet padding after the datagram must be cut off.
		r.input(r.if1, append(bytes.Clone(good), 0, 0, 0, 0))
		if len(r.udp.got) != 1 || !bytes.Equal(r.udp.got[0], good[20:]) {
			t.Fatalf("got %x, want %x", r.udp.got, good[20:])
		}
		if i := r.udp.info[0]; i.Src != peer || i.Dst != local || i.IfIndex != 1 || i.TTL != 64 {
			t.Errorf("info = %+v", i)
		}
	})
}

func TestOptions(t *testing.T) {
	payload := udpDatagram(peer, local, 1, 2, []byte("x"))
	tests := []struct {
		name string
		opts []byte
		ok   bool
	}{
		{"router alert", []byte{0x94, 4, 0, 0}, true},
		{"nops and eol", []byte{1, 1, 1, 0}, true},
		{"zero length", []byte{0x94, 0, 0, 0}, false},
		{"length one", []byte{0x44, 1, 0, 0}, false},
		{"past header", []byte{0x94, 8, 0, 0}, false},
		{"lsrr refused", []byte{0x83, 7, 4, 10, 0, 0, 9, 0}, false},
		{"truncated type", []byte{1, 1, 1, 0x94}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.input(r.if1, ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: peer, Dst: local, Options: tc.opts}, payload))
			if got := len(r.udp.got) == 1; got != tc.ok {
				t.Errorf("delivered = %v, want %v", got, tc.ok)
			}
			if !tc.ok && r.p.counters.Dropped(proto.DropBadOption) != 1 {
				t.Errorf("bad option not counted")
			}
		})
	}
}

// fragments cuts a datagram with the package's own fragmenter.
func fragments(t *testing.T, p *Protocol, f wire.IPv4Fields, payload []byte, mtu int) [][]byte {
	t.Helper()
	var out [][]byte
	pkt := buf.FromBytes(payload)
	err := p.fragment(&f, pkt, mtu, func(frag *buf.Packet) error {
		out = append(out, frag.ToBytes())
		frag.Release()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFragmentReassemble(t *testing.T) {
	data := pattern(20000)
	dgram := udpDatagram(peer, local, 7, 9, data)
	for _, order := range []string{"in order", "reversed", "shuffled"} {
		t.Run(order, func(t *testing.T) {
			r := newRig(t)
			frags := fragments(t, r.p, wire.IPv4Fields{ID: 77, TTL: 64, Protocol: wire.IPProtoUDP, Src: peer, Dst: local}, dgram, 1500)
			if len(frags) != 14 {
				t.Fatalf("%d fragments, want 14", len(frags))
			}
			for i, f := range frags {
				h, err := wire.ParseIPv4(f)
				if err != nil || !h.ChecksumValid() || len(f) > 1500 {
					t.Fatalf("fragment %d bad: %v len %d", i, err, len(f))
				}
				if h.MoreFragments() != (i < len(frags)-1) || h.FragmentOffset() != i*1480 {
					t.Fatalf("fragment %d: MF %v offset %d", i, h.MoreFragments(), h.FragmentOffset())
				}
			}
			switch order {
			case "reversed":
				for i, j := 0, len(frags)-1; i < j; i, j = i+1, j-1 {
					frags[i], frags[j] = frags[j], frags[i]
				}
			case "shuffled":
				rand.New(rand.NewPCG(3, 4)).Shuffle(len(frags), func(i, j int) { frags[i], frags[j] = frags[j], frags[i] })
			}
			for _, f := range frags {
				r.input(r.if1, f)
			}
			if len(r.udp.got) != 1 || !bytes.Equal(r.udp.got[0], dgram) {
				t.Fatalf("reassembled %d datagrams; equal=%v", len(r.udp.got), len(r.udp.got) == 1 && bytes.Equal(r.udp.got[0], dgram))
			}
			if r.p.reasm.pending() != 0 || r.p.reasm.bytes() != 0 {
				t.Errorf("reassembly state left: %d datagrams, %d bytes", r.p.reasm.pending(), r.p.reasm.bytes())
			}
		})
	}
}

func TestReassemblyDuplicateAndOverlap(t *testing.T) {
	dgram := udpDatagram(peer, local, 7, 9, pattern(4000))
	hdr := wire.IPv4Fields{ID: 5, TTL: 64, Protocol: wire.IPProtoUDP, Src: peer, Dst: local}

	t.Run("duplicate kept out", func(t *testing.T) {
		r := newRig(t)
		frags := fragments(t, r.p, hdr, dgram, 1500)
		r.input(r.if1, frags[0])
		r.input(r.if1, frags[0])
		for _, f := range frags[1:] {
			r.input(r.if1, f)
		}
		if len(r.udp.got) != 1 || !bytes.Equal(r.udp.got[0], dgram) {
			t.Fatalf("datagram lost to a duplicate fragment")
		}
		if r.p.counters.Dropped(proto.DropFragDuplicate) != 1 {
			t.Errorf("duplicate not counted")
		}
	})
	t.Run("overlap drops datagram", func(t *testing.T) {
		r := newRig(t)
		frags := fragments(t, r.p, hdr, dgram, 1500)
		r.input(r.if1, frags[0])
		// A fragment at offset 8 overlapping the first.
		bad := ipPacket(wire.IPv4Fields{ID: 5, Flags: wire.IPv4FlagMF, FragOff: 8, Protocol: wire.IPProtoUDP, Src: peer, Dst: local}, make([]byte, 16))
		r.input(r.if1, bad)
		for _, f := range frags[1:] {
			r.input(r.if1, f)
		}
		if len(r.udp.got) != 0 {
			t.Fatalf("overlapping datagram delivered")
		}
		if r.p.counters.Dropped(proto.DropFragOverlap) < 2 {
			t.Errorf("overlap drops = %d, want the held fragment and the overlapping one", r.p.counters.Dropped(proto.DropFragOverlap))
		}
		// The fragments after the overlap start a new datagram that never
		// completes; it times out.
		r.clk.Advance(DefaultReassemblyTime + time.Second)
		if r.p.reasm.pending() != 0 || r.p.reasm.bytes() != 0 {
			t.Errorf("state left after timeout: %d, %d bytes", r.p.reasm.pending(), r.p.reasm.bytes())
		}
	})
	t.Run("too big", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, ipPacket(wire.IPv4Fields{ID: 9, FragOff: 65528, Protocol: wire.IPProtoUDP, Src: peer, Dst: local}, make([]byte, 16)))
		if r.p.counters.Dropped(proto.DropFragTooBig) != 1 {
			t.Errorf("oversize fragment not dropped")
		}
	})
	t.Run("odd length middle", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, ipPacket(wire.IPv4Fields{ID: 9, Flags: wire.IPv4FlagMF, Protocol: wire.IPProtoUDP, Src: peer, Dst: local}, make([]byte, 13)))
		if r.p.counters.Dropped(proto.DropFragInvalid) != 1 {
			t.Errorf("non-multiple-of-8 fragment not dropped")
		}
	})
}

func TestReassemblyTimeout(t *testing.T) {
	r := newRig(t)
	dgram := udpDatagram(peer, local, 7, 9, pattern(3000))
	frags := fragments(t, r.p, wire.IPv4Fields{ID: 1, TTL: 64, Protocol: wire.IPProtoUDP, Src: peer, Dst: local}, dgram, 1500)
	r.input(r.if1, frags[0])
	r.input(r.if1, frags[1])
	r.clk.Advance(DefaultReassemblyTime - time.Second)
	if r.p.reasm.pending() != 1 {
		t.Fatalf("datagram gone before its time")
	}
	r.clk.Advance(2 * time.Second)
	if r.p.reasm.pending() != 0 || r.p.reasm.bytes() != 0 {
		t.Fatalf("datagram held past its time")
	}
	if got := r.p.counters.Dropped(proto.DropFragTimeout); got != 2 {
		t.Errorf("timeout drops = %d, want 2", got)
	}
	// RFC 1122 §3.3.2: time exceeded (reassembly) goes back to the sender.
	sent := r.if1.take()
	if len(sent) != 1 {
		t.Fatalf("sent %d packets, want one ICMP error", len(sent))
	}
	h, _ := wire.ParseIPv4(sent[0].b)
	m := wire.ICMPv4(h.Payload())
	if h.Dst() != peer || m.Type() != wire.ICMPv4TimeExceeded || m.Code() != wire.ICMPv4ReassemblyExceeded || !m.ChecksumValid() {
		t.Errorf("error = %v type %v code %d", h.Dst(), m.Type(), m.Code())
	}
}

func TestReassemblyMemoryCap(t *testing.T) {
	r := newRig(t)
	r.sys.Set("net.inet.ip.reass_maxmem", "8000")
	for id := uint16(0); id < 10; id++ {
		r.input(r.if1, ipPacket(wire.IPv4Fields{ID: id, Flags: wire.IPv4FlagMF, Protocol: wire.IPProtoUDP, Src: peer, Dst: local}, make([]byte, 1480)))
	}
	if b := r.p.reasm.bytes(); b > 8000 {
		t.Errorf("holding %d bytes over the 8000 cap", b)
	}
	if r.p.counters.Dropped(proto.DropFragMemory) == 0 {
		t.Errorf("no evictions counted")
	}
	if got := r.p.reasm.pending(); got != 5 {
		t.Errorf("%d datagrams pending, want the newest 5", got)
	}
}

func TestPortUnreachableAndRules(t *testing.T) {
	r := newRig(t)
	r.udp.noListen = true
	dgram := udpDatagram(peer, local, 7, 9, []byte("hello"))
	r.input(r.if1, ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: peer, Dst: local}, dgram))
	sent := r.if1.take()
	if len(sent) != 1 {
		t.Fatalf("sent %d, want port unreachable", len(sent))
	}
	h, _ := wire.ParseIPv4(sent[0].b)
	m := wire.ICMPv4(h.Payload())
	if m.Type() != wire.ICMPv4DstUnreachable || m.Code() != wire.ICMPv4PortUnreachable || h.Src() != local || h.Dst() != peer {
		t.Fatalf("got %v/%d %v->%v", m.Type(), m.Code(), h.Src(), h.Dst())
	}
	quote := m.Payload()
	if !bytes.Equal(quote[20:], dgram) {
		t.Errorf("quote does not carry the datagram")
	}
	// No error for a broadcast datagram (RFC 1122 §3.2.2).
	r.input(r.if1, ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: peer, Dst: netip.MustParseAddr("10.0.0.255")}, dgram))
	if s := r.if1.take(); len(s) != 0 {
		t.Errorf("error sent for a broadcast datagram")
	}
	// Unknown protocol: protocol unreachable.
	r.input(r.if1, ipPacket(wire.IPv4Fields{Protocol: 253, Src: peer, Dst: local}, []byte("12345678")))
	sent = r.if1.take()
	if len(sent) != 1 {
		t.Fatalf("no protocol unreachable")
	}
	h, _ = wire.ParseIPv4(sent[0].b)
	if m := wire.ICMPv4(h.Payload()); m.Code() != wire.ICMPv4ProtoUnreachable {
		t.Errorf("code %d, want protocol unreachable", m.Code())
	}
}

func TestICMPRateLimit(t *testing.T) {
	r := newRig(t)
	r.udp.noListen = true
	r.sys.Set("net.inet.icmp.ratelimit", "10")
	r.sys.Set("net.inet.icmp.ratelimit_burst", "5")
	dgram := ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: peer, Dst: local}, udpDatagram(peer, local, 7, 9, nil))
	for i := 0; i < 20; i++ {
		r.input(r.if1, dgram)
	}
	// The bucket started full at the default burst, then was capped at 5.
	if n := len(r.if1.take()); n < 5 || n > DefaultICMPBurst {
		t.Errorf("sent %d errors in a burst", n)
	}
	r.clk.Advance(time.Second)
	for i := 0; i < 20; i++ {
		r.input(r.if1, dgram)
	}
	if n := len(r.if1.take()); n != 5 {
		t.Errorf("after 1s at 10/s with burst 5: sent %d, want 5", n)
	}
	if r.p.icmp.counters.Dropped(proto.DropRateLimited) == 0 {
		t.Errorf("rate-limited errors not counted")
	}
}

func TestEcho(t *testing.T) {
	r := newRig(t)
	req := make([]byte, 8+56)
	(&wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Rest: wire.EchoRest(0x1234, 7)}).Encode(req)
	copy(req[8:], pattern(56))
	wire.ICMPv4(req).UpdateChecksum()
	r.input(r.if1, ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoICMP, Src: peer, Dst: local}, req))
	sent := r.if1.take()
	if len(sent) != 1 {
		t.Fatalf("sent %d, want an echo reply", len(sent))
	}
	h, _ := wire.ParseIPv4(sent[0].b)
	m := wire.ICMPv4(h.Payload())
	if m.Type() != wire.ICMPv4EchoReply || m.ID() != 0x1234 || m.Seq() != 7 || !m.ChecksumValid() ||
		!bytes.Equal(m.Payload(), req[8:]) || h.Src() != local || h.Dst() != peer || sent[0].next != peer {
		t.Errorf("bad reply: %v id %x seq %d", m.Type(), m.ID(), m.Seq())
	}
	// Bad checksum: dropped, no reply.
	req[2] ^= 0xff
	r.input(r.if1, ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoICMP, Src: peer, Dst: local}, req))
	if len(r.if1.take()) != 0 || r.p.icmp.counters.Dropped(proto.DropBadChecksum) != 1 {
		t.Errorf("bad-checksum echo answered or not counted")
	}
}

func TestForwarding(t *testing.T) {
	far := netip.MustParseAddr("10.0.1.2")
	dgram := udpDatagram(peer, far, 1, 2, pattern(100))
	t.Run("off", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: peer, Dst: far}, dgram))
		if len(r.if2.take()) != 0 || r.p.counters.Dropped(proto.DropForwardingOff) != 1 {
			t.Errorf("forwarded with forwarding off")
		}
	})
	t.Run("on", func(t *testing.T) {
		r := newRig(t)
		r.sys.Set("net.inet.ip.forwarding", "1")
		r.input(r.if1, ipPacket(wire.IPv4Fields{TTL: 10, Protocol: wire.IPProtoUDP, Src: peer, Dst: far}, dgram))
		sent := r.if2.take()
		if len(sent) != 1 || sent[0].next != far {
			t.Fatalf("not forwarded: %v", sent)
		}
		h, _ := wire.ParseIPv4(sent[0].b)
		if h.TTL() != 9 || !h.ChecksumValid() || !bytes.Equal(h.Payload(), dgram) {
			t.Errorf("forwarded TTL %d checksum ok %v", h.TTL(), h.ChecksumValid())
		}
	})
	t.Run("ttl expiry", func(t *testing.T) {
		r := newRig(t)
		r.sys.Set("net.inet.ip.forwarding", "1")
		r.input(r.if1, ipPacket(wire.IPv4Fields{TTL: 1, Protocol: wire.IPProtoUDP, Src: peer, Dst: far}, dgram))
		if len(r.if2.take()) != 0 {
			t.Fatalf("forwarded a TTL 1 packet")
		}
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("no time exceeded")
		}
		h, _ := wire.ParseIPv4(sent[0].b)
		m := wire.ICMPv4(h.Payload())
		if m.Type() != wire.ICMPv4TimeExceeded || m.Code() != wire.ICMPv4TTLExceeded || h.Src() != local {
			t.Errorf("got %v/%d from %v", m.Type(), m.Code(), h.Src())
		}
	})
	t.Run("fragment on smaller MTU", func(t *testing.T) {
		r := newRig(t)
		r.sys.Set("net.inet.ip.forwarding", "1")
		r.if2.mtu = 576
		big := udpDatagram(peer, far, 1, 2, pattern(1400))
		r.input(r.if1, ipPacket(wire.IPv4Fields{TTL: 10, ID: 99, Protocol: wire.IPProtoUDP, Src: peer, Dst: far}, big))
		sent := r.if2.take()
		if len(sent) != 3 {
			t.Fatalf("%d fragments, want 3", len(sent))
		}
		var got []byte
		for _, s := range sent {
			h, _ := wire.ParseIPv4(s.b)
			if len(s.b) > 576 || h.TTL() != 9 || h.ID() != 99 || !h.ChecksumValid() {
				t.Errorf("fragment len %d ttl %d id %d", len(s.b), h.TTL(), h.ID())
			}
			got = append(got, h.Payload()...)
		}
		if !bytes.Equal(got, big) {
			t.Errorf("fragments do not add up to the datagram")
		}
	})
	t.Run("DF on smaller MTU", func(t *testing.T) {
		r := newRig(t)
		r.sys.Set("net.inet.ip.forwarding", "1")
		r.if2.mtu = 576
		big := udpDatagram(peer, far, 1, 2, pattern(1400))
		r.input(r.if1, ipPacket(wire.IPv4Fields{TTL: 10, Flags: wire.IPv4FlagDF, Protocol: wire.IPProtoUDP, Src: peer, Dst: far}, big))
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("no fragmentation needed sent")
		}
		h, _ := wire.ParseIPv4(sent[0].b)
		m := wire.ICMPv4(h.Payload())
		if m.Type() != wire.ICMPv4DstUnreachable || m.Code() != wire.ICMPv4FragNeeded || m.MTU() != 576 {
			t.Errorf("got %v/%d mtu %d", m.Type(), m.Code(), m.MTU())
		}
	})
}

func TestErrorDeliveredToTransport(t *testing.T) {
	r := newRig(t)
	// We sent 10.0.0.1:5000 -> 10.0.0.2:53; the peer says port unreachable.
	orig := ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoUDP, Src: local, Dst: peer}, udpDatagram(local, peer, 5000, 53, []byte("q")))
	msg := make([]byte, 8+len(orig))
	(&wire.ICMPv4Fields{Type: wire.ICMPv4DstUnreachable, Code: wire.ICMPv4PortUnreachable}).Encode(msg)
	copy(msg[8:], orig)
	wire.ICMPv4(msg).UpdateChecksum()
	r.input(r.if1, ipPacket(wire.IPv4Fields{Protocol: wire.IPProtoICMP, Src: peer, Dst: local}, msg))
	if len(r.udp.errs) != 1 {
		t.Fatalf("error not delivered")
	}
	e := r.udp.errs[0]
	if e.Kind != proto.ErrPortUnreachable || e.Src != local || e.Dst != peer || len(e.Quote) < 8 ||
		wire.UDP(e.Quote).SrcPort() != 5000 || e.Kind.Errno().Error() != "connection refused" {
		t.Errorf("error = %+v", e)
	}
}

func TestWritePacketFragmentsAndDF(t *testing.T) {
	r := newRig(t)
	rt, err := r.p.Route(peer, netip.Addr{}, 0)
	if err != nil || rt.Src != local || rt.NextHop != peer || rt.IfIndex != 1 {
		t.Fatalf("Route = %+v, %v", rt, err)
	}
	payload := udpDatagram(local, peer, 1, 2, pattern(3000))
	if err := r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(payload)); err != nil {
		t.Fatal(err)
	}
	sent := r.if1.take()
	if len(sent) != 3 {
		t.Fatalf("%d packets, want 3 fragments", len(sent))
	}
	if err := r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{DF: true}, buf.FromBytes(payload)); err == nil {
		t.Errorf("DF datagram over the MTU accepted")
	}
	// Default route through the gateway.
	rt, err = r.p.Route(netip.MustParseAddr("198.51.100.1"), netip.Addr{}, 0)
	if err != nil || rt.NextHop != netip.MustParseAddr("10.0.1.254") || rt.Src != netip.MustParseAddr("10.0.1.1") {
		t.Errorf("default route = %+v, %v", rt, err)
	}
	if _, err := r.p.Route(peer, netip.MustParseAddr("10.9.9.9"), 0); err == nil {
		t.Errorf("non-local source accepted")
	}
}

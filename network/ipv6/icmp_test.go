package ipv6

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"ustack/buf"
	"ustack/proto"
	"ustack/wire"
)

func echoRequest(src, dst netip.Addr, id, seq uint16, data []byte) []byte {
	return ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, Src: src, Dst: dst},
		icmpMessage(src, dst, wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.EchoRest(id, seq)}, data))
}

func TestEcho(t *testing.T) {
	data := pattern(56)
	t.Run("unicast", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, echoRequest(peer, local, 0x1234, 7, data))
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("sent %d, want an echo reply", len(sent))
		}
		h, m := sentICMP(t, sent[0])
		if m.Type() != wire.ICMPv6EchoReply || m.Code() != 0 || m.ID() != 0x1234 || m.Seq() != 7 || !bytes.Equal(m.Payload(), data) ||
			h.Src() != local || h.Dst() != peer || sent[0].next != peer || h.HopLimit() != DefaultHopLimit {
			t.Errorf("bad reply: %v id %x seq %d %v->%v hlim %d", m.Type(), m.ID(), m.Seq(), h.Src(), h.Dst(), h.HopLimit())
		}
	})
	t.Run("to our address on another interface", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, echoRequest(peer, local2, 1, 1, data))
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("no reply")
		}
		if h, _ := sentICMP(t, sent[0]); h.Src() != local2 {
			t.Errorf("reply from %v, want the address asked", h.Src())
		}
	})
	t.Run("link-local", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if2, echoRequest(peerLL, netip.MustParseAddr("fe80::2"), 1, 1, data))
		sent := r.if2.take()
		if len(sent) != 1 || sent[0].next != peerLL {
			t.Fatalf("no reply on the interface asked: %v", sent)
		}
		if h, _ := sentICMP(t, sent[0]); h.Src() != netip.MustParseAddr("fe80::2") || h.Dst() != peerLL {
			t.Errorf("reply %v->%v", h.Src(), h.Dst())
		}
	})
	t.Run("multicast", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, echoRequest(peerLL, allNodes, 1, 1, data))
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("multicast echo not answered (RFC 4443 §4.1 SHOULD)")
		}
		if h, _ := sentICMP(t, sent[0]); h.Src() != localLL || h.Dst() != peerLL {
			t.Errorf("reply %v->%v, want a unicast address of the interface", h.Src(), h.Dst())
		}
		r.input(r.if1, echoRequest(peer, allNodes, 1, 2, data))
		if s := r.if1.take(); len(s) != 1 || wire.IPv6(s[0].b).Src() != local {
			t.Errorf("multicast echo from a global peer not answered from the interface's global address")
		}
		r.sys.Set("net.inet6.icmp6.echo_multicast", "0")
		r.input(r.if1, echoRequest(peerLL, allNodes, 1, 3, data))
		if len(r.if1.take()) != 0 {
			t.Errorf("multicast echo answered with echo_multicast off")
		}
	})
	t.Run("bad checksum", func(t *testing.T) {
		r := newRig(t)
		b := echoRequest(peer, local, 1, 1, data)
		b[43] ^= 0xff
		r.input(r.if1, b)
		if len(r.if1.take()) != 0 || r.p.icmp.counters.Dropped(proto.DropBadChecksum) != 1 {
			t.Errorf("bad-checksum echo answered or not counted")
		}
	})
	t.Run("fragmented request", func(t *testing.T) {
		r := newRig(t)
		big := icmpMessage(peer, local, wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.EchoRest(9, 9)}, pattern(4000))
		for _, f := range fragments(t, r.p, wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, Src: peer, Dst: local}, 3, big, 1500) {
			r.input(r.if1, f)
		}
		sent := r.if1.take()
		if len(sent) != 3 {
			t.Fatalf("reply in %d packets, want 3 fragments", len(sent))
		}
		// The reply reassembles, in another rig playing the peer.
		p2 := newRig(t)
		p2.if1.addrs = append(p2.if1.addrs, netip.MustParsePrefix("2001:db8:1::2/64"))
		pings := &sink{p: wire.IPProtoICMPv6}
		p2.p.RegisterTransport(pings)
		for _, s := range sent {
			p2.input(p2.if1, s.b)
		}
		if len(pings.got) != 1 || !bytes.Equal(pings.got[0][8:], pattern(4000)) || wire.ICMPv6(pings.got[0]).Type() != wire.ICMPv6EchoReply {
			t.Errorf("reply did not reassemble into the echo data")
		}
	})
}

func TestICMPDemux(t *testing.T) {
	r := newRig(t)
	pings := &sink{p: wire.IPProtoICMPv6}
	r.p.RegisterTransport(pings)
	msg := func(typ wire.ICMPv6Type, hl uint8) []byte {
		return ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, HopLimit: hl, Src: peerLL, Dst: localLL},
			icmpMessage(peerLL, localLL, wire.ICMPv6Fields{Type: typ}, make([]byte, 16)))
	}
	// Without an ND handler, ND messages are counted and dropped.
	r.input(r.if1, msg(wire.ICMPv6NeighborSolicit, 255))
	if r.p.icmp.counters.Dropped(proto.DropUnsupported) != 1 {
		t.Errorf("ND without a handler not counted")
	}
	nd := &ndSink{}
	r.p.SetNDHandler(nd)
	for _, typ := range []wire.ICMPv6Type{130, 131, 132, 133, 134, 135, 136, 137, 143} {
		r.input(r.if1, msg(typ, 255))
	}
	if len(nd.got) != 9 || nd.info[0].TTL != 255 || nd.info[0].Src != peerLL || nd.info[0].IfIndex != 1 {
		t.Errorf("ND handler got %v, info %+v", nd.got, nd.info)
	}
	// Echo replies and unknown informational messages go to the ICMPv6
	// transport; nothing else does.
	r.input(r.if1, msg(wire.ICMPv6EchoReply, 64))
	r.input(r.if1, msg(200, 64))
	if len(pings.got) != 2 || pings.info[0].Proto != wire.IPProtoICMPv6 {
		t.Errorf("ping transport got %d", len(pings.got))
	}
	if len(r.if1.take()) != 0 {
		t.Errorf("something was answered")
	}
}

func TestErrorsSent(t *testing.T) {
	t.Run("port unreachable", func(t *testing.T) {
		r := newRig(t)
		r.udp.noListen = true
		dgram := udpDatagram(peer, local, 7, 9, []byte("hello"))
		in := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}, dgram)
		r.input(r.if1, in)
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("sent %d, want port unreachable", len(sent))
		}
		h, m := sentICMP(t, sent[0])
		if m.Type() != wire.ICMPv6DstUnreachable || m.Code() != wire.ICMPv6PortUnreachable || h.Src() != local || h.Dst() != peer {
			t.Fatalf("got %v/%d %v->%v", m.Type(), m.Code(), h.Src(), h.Dst())
		}
		if !bytes.Equal(m.Payload(), in) {
			t.Errorf("quote is not the invoking packet")
		}
	})
	t.Run("quote fits 1280", func(t *testing.T) {
		r := newRig(t)
		r.udp.noListen = true
		in := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}, udpDatagram(peer, local, 7, 9, pattern(1400)))
		r.input(r.if1, in)
		sent := r.if1.take()
		if len(sent) != 1 || len(sent[0].b) != wire.IPv6MinMTU {
			t.Fatalf("error of %d bytes, want 1280", len(sent[0].b))
		}
		_, m := sentICMP(t, sent[0])
		if !bytes.Equal(m.Payload(), in[:wire.ICMPv6ErrorQuoteLen]) {
			t.Errorf("quote is not the start of the invoking packet")
		}
	})
	suppressed := []struct {
		name string
		in   []byte
	}{
		{"to multicast", ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: allNodes}, udpDatagram(peer, allNodes, 7, 9, nil))},
		{"from the unspecified address", ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: netip.IPv6Unspecified(), Dst: local},
			udpDatagram(netip.IPv6Unspecified(), local, 7, 9, nil))},
		{"about an error", ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: peer, Dst: local},
			cat(optsHeader(wire.IPProtoICMPv6, opt(0x9e, 0, 0)), icmpMessage(peer, local, wire.ICMPv6Fields{Type: wire.ICMPv6DstUnreachable}, make([]byte, 48))))},
		{"about a redirect", ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: peer, Dst: local},
			cat(optsHeader(wire.IPProtoICMPv6, opt(0x9e, 0, 0)), icmpMessage(peer, local, wire.ICMPv6Fields{Type: wire.ICMPv6Redirect}, make([]byte, 32))))},
	}
	for _, tc := range suppressed {
		t.Run("none "+tc.name, func(t *testing.T) {
			r := newRig(t)
			r.udp.noListen = true
			r.input(r.if1, tc.in)
			if n := len(r.if1.take()); n != 0 {
				t.Errorf("sent %d errors", n)
			}
			if r.p.counters.TotalDrops()+r.p.counters.Delivered.Load() == 0 {
				t.Errorf("packet neither dropped nor delivered")
			}
		})
	}
	t.Run("about an informational message", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: peer, Dst: local},
			cat(optsHeader(wire.IPProtoICMPv6, opt(0x9e, 0, 0)), icmpMessage(peer, local, wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest}, nil))))
		paramProblem(t, r, wire.ICMPv6UnrecognizedOption, 42)
	})
}

func TestICMPRateLimit(t *testing.T) {
	r := newRig(t)
	r.udp.noListen = true
	r.sys.Set("net.inet6.icmp6.ratelimit", "10")
	r.sys.Set("net.inet6.icmp6.ratelimit_burst", "5")
	in := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}, udpDatagram(peer, local, 7, 9, nil))
	for i := 0; i < 100; i++ {
		r.input(r.if1, in)
	}
	// The bucket started full at the default burst, then was capped at 5.
	if n := len(r.if1.take()); n < 5 || n > DefaultICMPBurst {
		t.Errorf("sent %d errors in a burst", n)
	}
	r.clk.Advance(time.Second)
	for i := 0; i < 20; i++ {
		r.input(r.if1, in)
	}
	if n := len(r.if1.take()); n != 5 {
		t.Errorf("after 1s at 10/s with burst 5: sent %d, want 5", n)
	}
	r.clk.Advance(300 * time.Millisecond)
	for i := 0; i < 20; i++ {
		r.input(r.if1, in)
	}
	if n := len(r.if1.take()); n != 3 {
		t.Errorf("after 300ms at 10/s: sent %d, want 3", n)
	}
	if r.p.icmp.counters.Dropped(proto.DropRateLimited) == 0 {
		t.Errorf("rate-limited errors not counted")
	}
	// Echo replies are not errors: not limited.
	for i := 0; i < 20; i++ {
		r.input(r.if1, echoRequest(peer, local, 1, uint16(i), nil))
	}
	if n := len(r.if1.take()); n != 20 {
		t.Errorf("echo replies limited: %d of 20", n)
	}
}

// errorTo builds an ICMPv6 error from `from` to us about a packet we sent.
func errorTo(from netip.Addr, f wire.ICMPv6Fields, orig []byte) []byte {
	return ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, Src: from, Dst: local},
		icmpMessage(from, local, f, orig))
}

func TestErrorsReceived(t *testing.T) {
	router := netip.MustParseAddr("2001:db8:1::fe")
	dst := netip.MustParseAddr("2001:db8:77::1")
	udp := udpDatagram(local, dst, 5000, 53, []byte("q"))
	orig := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: local, Dst: dst}, udp)
	tests := []struct {
		name  string
		typ   wire.ICMPv6Type
		code  uint8
		kind  proto.ErrorKind
		errno syscall.Errno
	}{
		{"no route", wire.ICMPv6DstUnreachable, wire.ICMPv6NoRoute, proto.ErrNetUnreachable, syscall.ENETUNREACH},
		{"admin prohibited", wire.ICMPv6DstUnreachable, wire.ICMPv6AdminProhibited, proto.ErrAdminProhibited, syscall.EACCES},
		{"beyond scope", wire.ICMPv6DstUnreachable, wire.ICMPv6BeyondScope, proto.ErrHostUnreachable, syscall.EHOSTUNREACH},
		{"address unreachable", wire.ICMPv6DstUnreachable, wire.ICMPv6AddrUnreachable, proto.ErrHostUnreachable, syscall.EHOSTUNREACH},
		{"port unreachable", wire.ICMPv6DstUnreachable, wire.ICMPv6PortUnreachable, proto.ErrPortUnreachable, syscall.ECONNREFUSED},
		{"reject route", wire.ICMPv6DstUnreachable, wire.ICMPv6RejectRoute, proto.ErrAdminProhibited, syscall.EACCES},
		{"hop limit", wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceeded, proto.ErrTimeExceeded, syscall.EHOSTUNREACH},
		{"reassembly", wire.ICMPv6TimeExceeded, wire.ICMPv6ReassemblyExceeded, proto.ErrReassemblyTimeExceeded, syscall.EHOSTUNREACH},
		{"bad header", wire.ICMPv6ParamProblem, wire.ICMPv6ErroneousHeader, proto.ErrParamProblem, syscall.EPROTO},
		{"unknown next header", wire.ICMPv6ParamProblem, wire.ICMPv6UnrecognizedNextHeader, proto.ErrProtoUnreachable, syscall.ENOPROTOOPT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.input(r.if1, errorTo(router, wire.ICMPv6Fields{Type: tc.typ, Code: tc.code}, orig))
			if len(r.udp.errs) != 1 {
				t.Fatalf("error not delivered")
			}
			e := r.udp.errs[0]
			if e.Kind != tc.kind || e.Kind.Errno() != tc.errno || e.From != router || e.Src != local || e.Dst != dst ||
				e.Proto != wire.IPProtoUDP || !bytes.Equal(e.Quote, udp) || e.Type != uint8(tc.typ) || e.Code != tc.code {
				t.Errorf("error = %+v", e)
			}
		})
	}
	t.Run("through extension headers", func(t *testing.T) {
		r := newRig(t)
		o := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: local, Dst: dst},
			cat(optsHeader(wire.IPProtoFragment), fragHeader(wire.IPProtoUDP, 0, true, 1), udp))
		r.input(r.if1, errorTo(router, wire.ICMPv6Fields{Type: wire.ICMPv6DstUnreachable, Code: wire.ICMPv6PortUnreachable}, o))
		if len(r.udp.errs) != 1 || !bytes.Equal(r.udp.errs[0].Quote, udp) {
			t.Errorf("error through extension headers not delivered")
		}
	})
	t.Run("not about our packet", func(t *testing.T) {
		r := newRig(t)
		o := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: far, Dst: dst}, udp)
		r.input(r.if1, errorTo(router, wire.ICMPv6Fields{Type: wire.ICMPv6DstUnreachable}, o))
		if len(r.udp.errs) != 0 || r.p.icmp.counters.Dropped(proto.DropNotForUs) != 1 {
			t.Errorf("error about someone else's packet delivered")
		}
	})
	t.Run("quote too short", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, errorTo(router, wire.ICMPv6Fields{Type: wire.ICMPv6DstUnreachable}, orig[:44]))
		if len(r.udp.errs) != 0 || r.p.icmp.counters.Dropped(proto.DropTruncated) != 1 {
			t.Errorf("short quote delivered")
		}
	})
	t.Run("about an echo request", func(t *testing.T) {
		r := newRig(t)
		pings := &sink{p: wire.IPProtoICMPv6}
		r.p.RegisterTransport(pings)
		echo := icmpMessage(local, dst, wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.EchoRest(3, 4)}, nil)
		o := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, Src: local, Dst: dst}, echo)
		r.input(r.if1, errorTo(router, wire.ICMPv6Fields{Type: wire.ICMPv6TimeExceeded}, o))
		if len(pings.errs) != 1 || wire.ICMPv6(pings.errs[0].Quote).ID() != 3 {
			t.Errorf("error about an echo request not delivered to the ICMPv6 transport")
		}
	})
}

func TestResolutionFailed(t *testing.T) {
	r := newRig(t)
	rt, _ := r.p.Route(peer, netip.Addr{}, 0)
	r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(udpDatagram(local, peer, 5000, 53, []byte("q"))))
	sent := r.if1.take()
	// The neighbour never answered: address unreachable, to ourselves
	// through the loopback, and on to the UDP endpoint.
	r.p.ResolutionFailed(r.if1, buf.FromBytes(sent[0].b))
	if r.p.counters.Dropped(proto.DropNeighFailed) != 1 {
		t.Errorf("not counted")
	}
	if len(r.udp.errs) != 1 || r.udp.errs[0].Kind != proto.ErrHostUnreachable || r.udp.errs[0].Code != wire.ICMPv6AddrUnreachable {
		t.Fatalf("errors %+v", r.udp.errs)
	}
	// A forwarded packet's source gets it over the link.
	r.p.ResolutionFailed(r.if2, buf.FromBytes(ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: far},
		udpDatagram(peer, far, 1, 2, nil))))
	if s := r.if1.take(); len(s) != 1 {
		t.Errorf("address unreachable not sent to the remote source")
	}
}

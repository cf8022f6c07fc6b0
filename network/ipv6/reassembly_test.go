package ipv6

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"ustack/proto"
	"ustack/wire"
)

// frag builds one fragment from peer to local: the fragment header and
// data, after an optional unfragmentable part whose first header is named
// by first (the fragment header when unfrag is empty).
func frag(id uint32, off int, more bool, next wire.IPProtocol, data []byte) []byte {
	return ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoFragment, Src: peer, Dst: local},
		cat(fragHeader(next, off, more, id), data))
}

func TestReassembly(t *testing.T) {
	dgram := udpDatagram(peer, local, 7, 9, pattern(20000))
	for _, order := range []string{"in order", "reversed", "shuffled"} {
		t.Run(order, func(t *testing.T) {
			r := newRig(t)
			frags := fragments(t, r.p, wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}, 77, dgram, 1500)
			if len(frags) != 14 {
				t.Fatalf("%d fragments, want 14", len(frags))
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
				t.Fatalf("reassembled %d datagrams", len(r.udp.got))
			}
			if i := r.udp.info[0]; i.Src != peer || i.Dst != local || i.Proto != wire.IPProtoUDP {
				t.Errorf("info = %+v", i)
			}
			if r.p.reasm.pending() != 0 || r.p.reasm.bytes() != 0 || r.p.reasmOK.Load() != 1 || r.clk.Pending() != 0 {
				t.Errorf("state left: %d datagrams, %d bytes, %d timers", r.p.reasm.pending(), r.p.reasm.bytes(), r.clk.Pending())
			}
		})
	}
}

func TestReassemblyWithExtensionHeaders(t *testing.T) {
	// hop-by-hop | fragment | destination options | UDP: the hop-by-hop
	// header is unfragmentable, the destination options are processed
	// after reassembly (and an unknown option there is reported with a
	// pointer into the reassembled packet).
	r := newRig(t)
	udp := udpDatagram(peer, local, 7, 9, pattern(3000))
	hbh := optsHeader(wire.IPProtoFragment, opt(wire.IPv6OptRouterAlert, 0, 0))
	fragmentable := cat(optsHeader(wire.IPProtoUDP), udp)
	cut := 1504
	mk := func(off int, more bool, data []byte) []byte {
		return ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoHopByHop, Src: peer, Dst: local},
			cat(hbh, fragHeader(wire.IPProtoDstOpts, off, more, 5), data))
	}
	r.input(r.if1, mk(cut, false, fragmentable[cut:]))
	r.input(r.if1, mk(0, true, fragmentable[:cut]))
	if len(r.udp.got) != 1 || !bytes.Equal(r.udp.got[0], udp) {
		t.Fatalf("not reassembled through extension headers")
	}

	bad := cat(optsHeader(wire.IPProtoUDP, opt(0x9e, 1, 2)), udp)
	r.input(r.if1, mk(cut, false, bad[cut:]))
	r.input(r.if1, mk(0, true, bad[:cut]))
	sent := r.if1.take()
	if len(r.udp.got) != 1 || len(sent) != 1 {
		t.Fatalf("delivered %d, sent %d", len(r.udp.got), len(sent))
	}
	_, m := sentICMP(t, sent[0])
	// The reassembled packet: IPv6 | hop-by-hop (8) | dst opts: the
	// option's type is at 40+8+2.
	if m.Type() != wire.ICMPv6ParamProblem || m.Code() != wire.ICMPv6UnrecognizedOption || m.Pointer() != 50 {
		t.Errorf("got %v code %d pointer %d", m.Type(), m.Code(), m.Pointer())
	}
	q, _ := m.Quote()
	if q.NextHeader() != wire.IPProtoHopByHop || q.Payload()[0] != byte(wire.IPProtoDstOpts) {
		t.Errorf("quote is not the reassembled packet")
	}
}

func TestReassemblyOverlap(t *testing.T) {
	dgram := udpDatagram(peer, local, 7, 9, pattern(4000))
	hdr := wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}

	t.Run("duplicate kept out", func(t *testing.T) {
		r := newRig(t)
		frags := fragments(t, r.p, hdr, 5, dgram, 1500)
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
	t.Run("overlap drops the whole datagram", func(t *testing.T) {
		r := newRig(t)
		frags := fragments(t, r.p, hdr, 5, dgram, 1500)
		r.input(r.if1, frags[0])
		r.input(r.if1, frag(5, 8, true, wire.IPProtoUDP, make([]byte, 16))) // inside the first
		for _, f := range frags[1:] {
			r.input(r.if1, f)
		}
		if len(r.udp.got) != 0 {
			t.Fatalf("overlapping datagram delivered")
		}
		// RFC 5722: the held fragment, the overlapping one, and the ones
		// that came after.
		if got := int(r.p.counters.Dropped(proto.DropFragOverlap)); got != 2+len(frags)-1 {
			t.Errorf("overlap drops = %d, want %d", got, 2+len(frags)-1)
		}
		r.clk.Advance(DefaultReassemblyTime + time.Second)
		if r.p.reasm.pending() != 0 || r.p.reasm.bytes() != 0 {
			t.Errorf("state left after timeout: %d, %d bytes", r.p.reasm.pending(), r.p.reasm.bytes())
		}
		if n := len(r.if1.take()); n != 0 {
			t.Errorf("sent %d packets: an overlap is discarded silently", n)
		}
		// After the timeout the identification is free again.
		for _, f := range frags {
			r.input(r.if1, f)
		}
		if len(r.udp.got) != 1 {
			t.Errorf("datagram with the identification of an old overlap not reassembled")
		}
	})
	t.Run("two last fragments", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, frag(6, 16, false, wire.IPProtoUDP, make([]byte, 16)))
		r.input(r.if1, frag(6, 32, false, wire.IPProtoUDP, make([]byte, 16)))
		if r.p.counters.Dropped(proto.DropFragOverlap) != 2 {
			t.Errorf("inconsistent ends not treated as overlap")
		}
	})
}

func TestAtomicFragment(t *testing.T) {
	r := newRig(t)
	udp := udpDatagram(peer, local, 7, 9, []byte("atomic"))
	// A pending fragment with the same identification must not be
	// touched (RFC 6946 §4).
	r.input(r.if1, frag(9, 1024, true, wire.IPProtoUDP, make([]byte, 64)))
	r.input(r.if1, frag(9, 0, false, wire.IPProtoUDP, udp))
	if len(r.udp.got) != 1 || !bytes.Equal(r.udp.got[0], udp) {
		t.Fatalf("atomic fragment not delivered")
	}
	if r.p.atomicFrags.Load() != 1 || r.p.reasm.pending() != 1 || r.p.reasm.bytes() != 64+fragOverhead {
		t.Errorf("atomic %d, pending %d (%d bytes)", r.p.atomicFrags.Load(), r.p.reasm.pending(), r.p.reasm.bytes())
	}
	if r.p.counters.Dropped(proto.DropFragOverlap) != 0 {
		t.Errorf("atomic fragment mixed with the pending datagram")
	}
}

// paramProblem checks that exactly one parameter problem was sent.
func paramProblem(t *testing.T, r *rig, code uint8, ptr uint32) {
	t.Helper()
	sent := r.if1.take()
	if len(sent) != 1 {
		t.Fatalf("sent %d packets, want a parameter problem", len(sent))
	}
	_, m := sentICMP(t, sent[0])
	if m.Type() != wire.ICMPv6ParamProblem || m.Code() != code || m.Pointer() != ptr {
		t.Errorf("got %v code %d pointer %d, want code %d pointer %d", m.Type(), m.Code(), m.Pointer(), code, ptr)
	}
}

func TestFragmentRules(t *testing.T) {
	t.Run("incomplete chain in first fragment", func(t *testing.T) {
		// RFC 7112: destination options header runs past the fragment.
		r := newRig(t)
		r.input(r.if1, frag(3, 2048, false, wire.IPProtoDstOpts, make([]byte, 8))) // held
		r.input(r.if1, frag(3, 0, true, wire.IPProtoDstOpts, []byte{byte(wire.IPProtoUDP), 1, 1, 4, 0, 0, 0, 0}))
		paramProblem(t, r, wire.ICMPv6IncompleteChain, 0)
		if r.p.tinyFirst.Load() != 1 || r.p.reasm.pending() != 0 {
			t.Errorf("incomplete_chain %d, pending %d", r.p.tinyFirst.Load(), r.p.reasm.pending())
		}
	})
	t.Run("upper-layer header not in first fragment", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, frag(4, 0, true, wire.IPProtoDstOpts, optsHeader(wire.IPProtoTCP)))
		paramProblem(t, r, wire.ICMPv6IncompleteChain, 0)
		r.input(r.if1, frag(4, 0, true, wire.IPProtoTCP, make([]byte, 16))) // 16 of TCP's 20
		paramProblem(t, r, wire.ICMPv6IncompleteChain, 0)
		r.input(r.if1, frag(4, 0, true, wire.IPProtoUDP, make([]byte, 8))) // UDP fits
		if len(r.if1.take()) != 0 || r.p.reasm.pending() != 1 {
			t.Errorf("whole chain refused")
		}
	})
	t.Run("length not a multiple of 8", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, frag(5, 0, true, wire.IPProtoUDP, make([]byte, 13)))
		paramProblem(t, r, wire.ICMPv6ErroneousHeader, 4)
		if r.p.counters.Dropped(proto.DropFragInvalid) != 1 {
			t.Errorf("not counted")
		}
	})
	t.Run("past 65535", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, frag(6, 65528, false, wire.IPProtoUDP, make([]byte, 16)))
		paramProblem(t, r, wire.ICMPv6ErroneousHeader, 42)
		if r.p.counters.Dropped(proto.DropFragTooBig) != 1 {
			t.Errorf("not counted")
		}
	})
	t.Run("to multicast: no error", func(t *testing.T) {
		r := newRig(t)
		b := frag(7, 0, true, wire.IPProtoUDP, make([]byte, 13))
		wire.IPv6(b).SetDst(allNodes)
		r.input(r.if1, b)
		if len(r.if1.take()) != 0 || r.p.counters.Dropped(proto.DropFragInvalid) != 1 {
			t.Errorf("error sent about a multicast packet, or not dropped")
		}
	})
}

func TestReassemblyTimeout(t *testing.T) {
	dgram := udpDatagram(peer, local, 7, 9, pattern(3000))
	hdr := wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}
	t.Run("first fragment came", func(t *testing.T) {
		r := newRig(t)
		frags := fragments(t, r.p, hdr, 1, dgram, 1280)
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
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("sent %d packets, want time exceeded", len(sent))
		}
		h, m := sentICMP(t, sent[0])
		if h.Dst() != peer || h.Src() != local || m.Type() != wire.ICMPv6TimeExceeded || m.Code() != wire.ICMPv6ReassemblyExceeded {
			t.Errorf("error %v->%v %v code %d", h.Src(), h.Dst(), m.Type(), m.Code())
		}
		// It quotes the first fragment, fragment header and all.
		if q := m.Payload(); !bytes.Equal(q, frags[0][:len(q)]) || len(sent[0].b) > wire.IPv6MinMTU {
			t.Errorf("quote is not the first fragment (%d bytes sent)", len(sent[0].b))
		}
	})
	t.Run("first fragment missing", func(t *testing.T) {
		r := newRig(t)
		frags := fragments(t, r.p, hdr, 1, dgram, 1280)
		r.input(r.if1, frags[1])
		r.input(r.if1, frags[2])
		r.clk.Advance(DefaultReassemblyTime + time.Second)
		if r.p.reasm.pending() != 0 || len(r.if1.take()) != 0 {
			t.Errorf("error sent without the first fragment")
		}
	})
	t.Run("tunable", func(t *testing.T) {
		r := newRig(t)
		r.sys.Set("net.inet6.ip6.reass_timeout", "5s")
		r.input(r.if1, fragments(t, r.p, hdr, 1, dgram, 1280)[1])
		r.clk.Advance(6 * time.Second)
		if r.p.reasm.pending() != 0 {
			t.Errorf("tunable timeout not applied")
		}
	})
}

func TestReassemblyMemoryCap(t *testing.T) {
	r := newRig(t)
	r.sys.Set("net.inet6.ip6.reass_maxmem", "8000")
	for id := uint32(0); id < 10; id++ {
		r.input(r.if1, frag(id, 0, true, wire.IPProtoUDP, make([]byte, 1456)))
	}
	if b := r.p.reasm.bytes(); b > 8000 {
		t.Errorf("holding %d bytes over the 8000 cap", b)
	}
	if r.p.counters.Dropped(proto.DropFragMemory) == 0 {
		t.Errorf("no evictions counted")
	}
	// Each held fragment counts its data and an overhead.
	want := 8000 / (1456 + fragOverhead)
	if got := r.p.reasm.pending(); got != want {
		t.Errorf("%d datagrams pending, want the newest %d", got, want)
	}
	// Evicted datagrams send no time exceeded later.
	r.clk.Advance(DefaultReassemblyTime + time.Second)
	if n := len(r.if1.take()); n != want {
		t.Errorf("sent %d time exceeded, want %d (for the datagrams still held)", n, want)
	}
	// A flood of tiny fragments holds at most cap/overhead datagrams.
	r.sys.Set("net.inet6.ip6.reass_maxmem", "1000000")
	for id := uint32(100); id < 10100; id++ {
		r.input(r.if1, frag(id, 8, true, wire.IPProtoUDP, make([]byte, 8)))
	}
	if got := r.p.reasm.pending(); got > 1000000/fragOverhead || r.p.reasm.bytes() > 1000000 {
		t.Errorf("%d tiny datagrams held (%d bytes)", got, r.p.reasm.bytes())
	}
}

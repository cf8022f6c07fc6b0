package arp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"ustack/buf"
	"ustack/network/neigh"
	"ustack/proto"
	"ustack/wire"
)

func unhex(s string) []byte {
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestRequestForUs(t *testing.T) {
	e := newEnv(t)
	// who-has 192.0.2.1 tell 192.0.2.2 (02:00:00:00:00:02)
	in := buf.FromBytes(unhex(`
		0001 0800 06 04 0001
		020000000002 c0000202
		000000000000 c0000201`))
	e.p.HandlePacket(e.ifc, in)

	out := e.ifc.take()
	if len(out) != 1 {
		t.Fatalf("sent %d frames, want 1 reply", len(out))
	}
	// 192.0.2.1 is-at 02:00:00:00:00:01, to the requester only.
	want := unhex(`
		0001 0800 06 04 0002
		020000000001 c0000201
		020000000002 c0000202`)
	if out[0].Dst != peerMAC || out[0].ET != wire.EtherTypeARP || !bytes.Equal(out[0].Data, want) {
		t.Errorf("reply = %v %v %x, want to %v ARP %x", out[0].Dst, out[0].ET, out[0].Data, peerMAC, want)
	}
	// RFC 826: we are the target, so the requester is cached (Stale: we
	// never asked for it).
	mac, st, ok := e.cache.Lookup(peerIP)
	if !ok || mac != peerMAC || st != neigh.Stale {
		t.Errorf("requester cached as %v %v %v, want %v STALE", mac, st, ok, peerMAC)
	}
	c := e.p.Counters()
	if c.InPackets.Load() != 1 || c.Delivered.Load() != 1 || c.OutPackets.Load() != 1 || c.TotalDrops() != 0 {
		t.Errorf("counters in=%d delivered=%d out=%d drops=%d", c.InPackets.Load(), c.Delivered.Load(),
			c.OutPackets.Load(), c.TotalDrops())
	}
}

func TestRequestForSomeoneElse(t *testing.T) {
	e := newEnv(t)
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, peerIP, otherIP)))
	if out := e.ifc.take(); len(out) != 0 {
		t.Errorf("answered a request for another host: %v", out)
	}
	if e.cache.Len() != 0 {
		t.Errorf("cached a sender that didn't address us: %+v", e.cache.Entries())
	}

	// An existing entry for the sender is refreshed (RFC 826 merge): its
	// garbage collection starts over.
	e.cache.Update(peerIP, peerMAC, neigh.UpdateFlags{Create: true})
	e.clk.Advance(50 * time.Second)
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, peerIP, otherIP)))
	e.clk.Advance(50 * time.Second)
	if st := e.state(peerIP); st != neigh.Stale {
		t.Fatalf("entry after refresh: %v, want STALE", st)
	}
	// A new hardware address replaces the old one.
	newMAC := wire.MAC{0x02, 0, 0, 0, 0, 0x22}
	e.p.HandlePacket(e.ifc, arpPacket(request(newMAC, peerIP, otherIP)))
	if mac, _, _ := e.cache.Lookup(peerIP); mac != newMAC {
		t.Errorf("entry at %v, want %v", mac, newMAC)
	}
	if out := e.ifc.take(); len(out) != 0 {
		t.Errorf("sent %v", out)
	}
}

func TestReplyResolvesQueued(t *testing.T) {
	e := newEnv(t)
	e.cache.Output(peerIP, wire.EtherTypeIPv4, buf.FromBytes([]byte{0x45, 1}))
	e.cache.Output(peerIP, wire.EtherTypeIPv4, buf.FromBytes([]byte{0x45, 2}))

	out := e.ifc.take()
	if len(out) != 1 {
		t.Fatalf("sent %d frames, want one request", len(out))
	}
	// who-has 192.0.2.2 tell 192.0.2.1, broadcast, target MAC zero.
	want := encode(request(ourMAC, ourIP, peerIP))
	if out[0].Dst != wire.BroadcastMAC || out[0].ET != wire.EtherTypeARP || !bytes.Equal(out[0].Data, want) {
		t.Errorf("request = %v %x, want broadcast %x", out[0].Dst, out[0].Data, want)
	}

	e.p.HandlePacket(e.ifc, arpPacket(replyTo(peerMAC, peerIP, ourMAC, ourIP)))
	if st := e.state(peerIP); st != neigh.Reachable {
		t.Errorf("after reply: %v, want REACHABLE", st)
	}
	wantSent := []frame{{peerMAC, wire.EtherTypeIPv4, []byte{0x45, 1}}, {peerMAC, wire.EtherTypeIPv4, []byte{0x45, 2}}}
	if !slices.EqualFunc(e.sink.sent, wantSent, frameEq) {
		t.Errorf("flushed %v, want %v", e.sink.sent, wantSent)
	}
	if out := e.ifc.take(); len(out) != 0 {
		t.Errorf("answered a reply: %v", out)
	}
	// No more requests once resolved.
	e.clk.Advance(10 * time.Second)
	if out := e.ifc.take(); len(out) != 0 {
		t.Errorf("sent %v after resolution", out)
	}
}

func frameEq(a, b frame) bool { return a.Dst == b.Dst && a.ET == b.ET && bytes.Equal(a.Data, b.Data) }

func TestBroadcastReplyIsNotConfirmation(t *testing.T) {
	e := newEnv(t)
	e.cache.Output(peerIP, wire.EtherTypeIPv4, buf.FromBytes([]byte{1}))
	pkt := arpPacket(replyTo(peerMAC, peerIP, ourMAC, ourIP))
	pkt.Flags |= buf.FlagLinkBroadcast
	e.p.HandlePacket(e.ifc, pkt)
	if st := e.state(peerIP); st != neigh.Stale {
		t.Errorf("after broadcast reply: %v, want STALE", st)
	}
	if len(e.sink.sent) != 1 {
		t.Errorf("flushed %v", e.sink.sent)
	}
}

func TestRequestRetriesAndFailure(t *testing.T) {
	e := newEnv(t)
	e.cache.Output(peerIP, wire.EtherTypeIPv4, buf.FromBytes([]byte{1}))
	e.clk.Advance(3 * time.Second)
	if out := e.ifc.take(); len(out) != 3 {
		t.Errorf("%d requests, want 3 (RFC 1122 §2.3.2.1: one per second)", len(out))
	}
	if !slices.Equal(e.sink.failed, []netip.Addr{peerIP}) {
		t.Errorf("failed = %v", e.sink.failed)
	}
	var n uint64
	e.p.VisitStats(func(name string, v uint64) {
		if name == "arp.out.requests" {
			n = v
		}
	})
	if n != 3 {
		t.Errorf("arp.out.requests = %d", n)
	}
}

func TestUnicastProbe(t *testing.T) {
	e := newEnv(t)
	e.cache.Update(peerIP, peerMAC, neigh.UpdateFlags{Create: true})
	e.cache.Output(peerIP, wire.EtherTypeIPv4, buf.FromBytes([]byte{1})) // Stale -> Delay
	e.clk.Advance(neigh.DefaultDelayFirstProbe)
	out := e.ifc.take()
	if len(out) != 1 || out[0].Dst != peerMAC || !bytes.Equal(out[0].Data, encode(request(ourMAC, ourIP, peerIP))) {
		t.Fatalf("probe = %+v, want a request unicast to %v", out, peerMAC)
	}
	e.p.HandlePacket(e.ifc, arpPacket(replyTo(peerMAC, peerIP, ourMAC, ourIP)))
	if st := e.state(peerIP); st != neigh.Reachable {
		t.Errorf("after answered probe: %v", st)
	}
}

func TestDrops(t *testing.T) {
	valid := encode(request(peerMAC, peerIP, ourIP))
	mod := func(f func(b []byte) []byte) []byte { return f(slices.Clone(valid)) }
	cases := []struct {
		name string
		data []byte
		want proto.DropReason
	}{
		{"empty", nil, proto.DropTruncated},
		{"7 bytes", valid[:7], proto.DropTruncated},
		{"27 bytes", valid[:27], proto.DropTruncated},
		{"hardware type 6", mod(func(b []byte) []byte { b[1] = 6; return b }), proto.DropUnsupported},
		{"protocol IPv6", mod(func(b []byte) []byte { b[2], b[3] = 0x86, 0xdd; return b }), proto.DropUnsupported},
		{"hlen 8", mod(func(b []byte) []byte { b[4] = 8; return b }), proto.DropBadLength},
		{"plen 16", mod(func(b []byte) []byte { b[5] = 16; return b }), proto.DropBadLength},
		{"op 0", mod(func(b []byte) []byte { b[7] = 0; return b }), proto.DropUnsupported},
		{"op RARP request", mod(func(b []byte) []byte { b[7] = 3; return b }), proto.DropUnsupported},
		{"op InARP", mod(func(b []byte) []byte { b[7] = 8; return b }), proto.DropUnsupported},
		{"op 0x0101", mod(func(b []byte) []byte { b[6] = 1; return b }), proto.DropUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.p.HandlePacket(e.ifc, buf.FromBytes(c.data))
			ctr := e.p.Counters()
			if ctr.Dropped(c.want) != 1 || ctr.TotalDrops() != 1 || ctr.Delivered.Load() != 0 {
				t.Errorf("drops %d for %v (total %d), want 1", ctr.Dropped(c.want), c.want, ctr.TotalDrops())
			}
			if len(e.ifc.take()) != 0 || e.cache.Len() != 0 {
				t.Error("acted on a dropped packet")
			}
		})
	}
}

func TestPaddedFrameAccepted(t *testing.T) {
	e := newEnv(t)
	// Ethernet pads the 28-byte packet to 46 bytes.
	b := append(encode(request(peerMAC, peerIP, ourIP)), make([]byte, 18)...)
	e.p.HandlePacket(e.ifc, buf.FromBytes(b))
	if out := e.ifc.take(); len(out) != 1 || len(out[0].Data) != wire.ARPLen {
		t.Errorf("reply to padded request: %+v", out)
	}
}

func TestBadSenders(t *testing.T) {
	cases := []struct {
		name string
		f    wire.ARPFields
		flag buf.Flags
		want proto.DropReason
	}{
		{"our own MAC", request(ourMAC, peerIP, ourIP), 0, proto.DropBadSource},
		{"broadcast MAC", request(wire.BroadcastMAC, peerIP, ourIP), 0, proto.DropBadSource},
		{"multicast MAC", request(wire.MAC{0x01, 0, 0x5e, 0, 0, 1}, peerIP, ourIP), 0, proto.DropBadSource},
		{"zero MAC", request(wire.MAC{}, peerIP, ourIP), 0, proto.DropBadSource},
		{"multicast IP", request(peerMAC, netip.MustParseAddr("224.0.0.1"), ourIP), 0, proto.DropBadSource},
		{"limited broadcast IP", request(peerMAC, netip.MustParseAddr("255.255.255.255"), ourIP), 0, proto.DropBadSource},
		{"directed broadcast IP", request(peerMAC, netip.MustParseAddr("192.0.2.255"), ourIP), 0, proto.DropBadSource},
		{"loopback IP", request(peerMAC, netip.MustParseAddr("127.0.0.1"), ourIP), 0, proto.DropBadSource},
		{"target multicast", request(peerMAC, peerIP, netip.MustParseAddr("224.0.0.1")), 0, proto.DropMalformed},
		{"target zero", request(peerMAC, peerIP, netip.IPv4Unspecified()), 0, proto.DropMalformed},
		{"frame for another host", request(peerMAC, peerIP, ourIP), buf.FlagLinkOtherHost, proto.DropNotForUs},
		{"looped back", request(peerMAC, peerIP, ourIP), buf.FlagLoopback, proto.DropNotForUs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			pkt := arpPacket(c.f)
			pkt.Flags = c.flag
			e.p.HandlePacket(e.ifc, pkt)
			if got := e.p.Counters().Dropped(c.want); got != 1 {
				t.Errorf("dropped %d for %v, want 1", got, c.want)
			}
			if out := e.ifc.take(); len(out) != 0 {
				t.Errorf("sent %v", out)
			}
			if e.cache.Len() != 0 {
				t.Errorf("cached %+v", e.cache.Entries())
			}
		})
	}
}

func TestProbeNotCached(t *testing.T) {
	e := newEnv(t)
	// RFC 5227 probe for our address: answered, not cached.
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, netip.IPv4Unspecified(), ourIP)))
	out := e.ifc.take()
	want := encode(replyTo(ourMAC, ourIP, peerMAC, netip.IPv4Unspecified()))
	if len(out) != 1 || out[0].Dst != peerMAC || !bytes.Equal(out[0].Data, want) {
		t.Fatalf("answer to probe = %+v, want %x to %v", out, want, peerMAC)
	}
	// Probe for another address: ignored.
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, netip.IPv4Unspecified(), otherIP)))
	if out := e.ifc.take(); len(out) != 0 {
		t.Errorf("answered a probe for another host: %v", out)
	}
	if e.cache.Len() != 0 {
		t.Errorf("cached a probe: %+v", e.cache.Entries())
	}
	if d := e.p.Counters().TotalDrops(); d != 0 {
		t.Errorf("%d drops", d)
	}
}

func TestNoProxyARP(t *testing.T) {
	e := newEnv(t)
	// 198.51.100.1 belongs to another interface of the stack.
	other := &fakeIfc{idx: 2, mac: wire.MAC{0x02, 0, 0, 0, 0, 0x99},
		addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}}
	e.ifs.ifcs = append(e.ifs.ifcs, other)
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, peerIP, netip.MustParseAddr("198.51.100.1"))))
	if out := e.ifc.take(); len(out) != 0 {
		t.Errorf("answered for another interface's address: %v", out)
	}
}

func TestConflictDefended(t *testing.T) {
	e := newEnv(t)
	// Another host claims our address (a gratuitous ARP from it).
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, ourIP, ourIP)))
	out := e.ifc.take()
	if len(out) != 1 || out[0].Dst != wire.BroadcastMAC || !bytes.Equal(out[0].Data, encode(request(ourMAC, ourIP, ourIP))) {
		t.Fatalf("defence = %+v, want one announcement", out)
	}
	if e.cache.Len() != 0 {
		t.Errorf("cached our own address: %+v", e.cache.Entries())
	}
	// Within DefendInterval: no second defence (RFC 5227 §2.4 (b)).
	e.clk.Advance(DefendInterval - time.Second)
	e.p.HandlePacket(e.ifc, arpPacket(replyTo(peerMAC, ourIP, ourMAC, ourIP)))
	if out := e.ifc.take(); len(out) != 0 {
		t.Errorf("defended again within DefendInterval: %v", out)
	}
	e.clk.Advance(time.Second)
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, ourIP, ourIP)))
	if out := e.ifc.take(); len(out) != 1 {
		t.Errorf("no defence after DefendInterval: %v", out)
	}
	var conflicts uint64
	e.p.VisitStats(func(n string, v uint64) {
		if n == "arp.conflicts" {
			conflicts = v
		}
	})
	if conflicts != 3 {
		t.Errorf("arp.conflicts = %d, want 3", conflicts)
	}
}

func TestAnnounce(t *testing.T) {
	e := newEnv(t)
	e.p.Announce(e.ifc, ourIP)
	want := unhex(`
		0001 0800 06 04 0001
		020000000001 c0000201
		000000000000 c0000201`)
	check := func(out []frame) {
		t.Helper()
		if len(out) != 1 || out[0].Dst != wire.BroadcastMAC || out[0].ET != wire.EtherTypeARP || !bytes.Equal(out[0].Data, want) {
			t.Fatalf("announcement = %+v, want broadcast %x", out, want)
		}
	}
	check(e.ifc.take())
	e.clk.Advance(AnnounceInterval - time.Nanosecond)
	if out := e.ifc.take(); len(out) != 0 {
		t.Fatalf("second announcement early: %v", out)
	}
	e.clk.Advance(time.Nanosecond)
	check(e.ifc.take())
	e.clk.Advance(time.Minute)
	if out := e.ifc.take(); len(out) != 0 {
		t.Fatalf("more than %d announcements: %v", AnnounceNum, out)
	}
}

func TestAnnounceCancelled(t *testing.T) {
	t.Run("detached", func(t *testing.T) {
		e := newEnv(t)
		e.p.Announce(e.ifc, ourIP)
		e.p.Detach(e.ifc.idx)
		if n := e.clk.Pending(); n != 0 {
			t.Errorf("%d timers left after Detach", n)
		}
		e.clk.Advance(AnnounceInterval)
		if out := e.ifc.take(); len(out) != 1 {
			t.Errorf("sent %d announcements, want 1", len(out))
		}
		// Detached: packets are dropped.
		e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, peerIP, ourIP)))
		if e.p.Counters().Dropped(proto.DropInterfaceDown) != 1 {
			t.Error("packet on a detached interface not dropped")
		}
	})
	t.Run("address removed", func(t *testing.T) {
		e := newEnv(t)
		e.p.Announce(e.ifc, ourIP)
		e.ifc.addrs = nil
		e.clk.Advance(AnnounceInterval)
		if out := e.ifc.take(); len(out) != 1 {
			t.Errorf("sent %d announcements, want 1", len(out))
		}
	})
	t.Run("not attached", func(t *testing.T) {
		ifc := &fakeIfc{idx: 5, mac: ourMAC}
		p := New(&fakeIfs{ifcs: []*fakeIfc{ifc}}, nil)
		p.Announce(ifc, ourIP)
		p.Announce(ifc, netip.MustParseAddr("2001:db8::1")) // not IPv4: nothing
		if out := ifc.take(); len(out) != 1 {
			t.Errorf("sent %d, want 1", len(out))
		}
	})
}

func TestInterfaceDown(t *testing.T) {
	e := newEnv(t)
	e.ifc.down = true
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, peerIP, ourIP)))
	if e.p.Counters().Dropped(proto.DropInterfaceDown) != 1 || len(e.ifc.take()) != 0 {
		t.Error("packet on a down interface not dropped")
	}
}

func TestLinkErrorCounted(t *testing.T) {
	e := newEnv(t)
	e.ifc.err = errors.New("link down")
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, peerIP, ourIP)))
	if e.p.Counters().Dropped(proto.DropLinkError) != 1 {
		t.Error("failed reply not counted")
	}
}

func TestResolverSource(t *testing.T) {
	p := New(&fakeIfs{}, nil)
	cases := []struct {
		name   string
		addrs  []string
		target string
		dst    wire.MAC
		want   string // sender IP; "" = nothing sent
	}{
		{"in subnet", []string{"10.0.0.1/8", "192.0.2.1/24"}, "192.0.2.7", wire.MAC{}, "192.0.2.1"},
		{"second subnet", []string{"192.0.2.1/24", "192.0.2.129/25"}, "192.0.2.200", wire.MAC{}, "192.0.2.129"},
		{"off subnet: first IPv4", []string{"2001:db8::1/64", "10.0.0.1/8", "192.0.2.1/24"}, "198.51.100.1", wire.MAC{}, "10.0.0.1"},
		{"unicast probe", []string{"192.0.2.1/24"}, "192.0.2.2", peerMAC, "192.0.2.1"},
		{"no IPv4 address", []string{"2001:db8::1/64"}, "192.0.2.2", wire.MAC{}, ""},
		{"IPv6 target", []string{"192.0.2.1/24"}, "2001:db8::2", wire.MAC{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ifc := &fakeIfc{idx: 1, mac: ourMAC}
			for _, a := range c.addrs {
				ifc.addrs = append(ifc.addrs, netip.MustParsePrefix(a))
			}
			p.Resolver(ifc).Solicit(netip.MustParseAddr(c.target), c.dst)
			out := ifc.take()
			if c.want == "" {
				if len(out) != 0 {
					t.Errorf("sent %v", out)
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("sent %d frames", len(out))
			}
			a, err := wire.ParseARP(out[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			wantDst := c.dst
			if wantDst.IsZero() {
				wantDst = wire.BroadcastMAC
			}
			if a.Op() != wire.ARPRequest || a.SenderIP() != netip.MustParseAddr(c.want) ||
				a.TargetIP() != netip.MustParseAddr(c.target) || a.SenderMAC() != ourMAC ||
				!a.TargetMAC().IsZero() || out[0].Dst != wantDst {
				t.Errorf("request %x to %v, want sender %s target %s to %v", out[0].Data, out[0].Dst, c.want, c.target, wantDst)
			}
		})
	}
}

func TestVisitStats(t *testing.T) {
	e := newEnv(t)
	e.p.HandlePacket(e.ifc, arpPacket(request(peerMAC, peerIP, ourIP)))
	got := map[string]uint64{}
	e.p.VisitStats(func(n string, v uint64) { got[n] = v })
	want := map[string]uint64{"arp.in.packets": 1, "arp.in.requests": 1, "arp.out.replies": 1, "arp.out.packets": 1, "arp.delivered": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if e.p.EtherType() != wire.EtherTypeARP {
		t.Error("EtherType")
	}
}

// FuzzHandlePacket: no input panics, and every packet is either delivered
// or dropped with a reason.
func FuzzHandlePacket(f *testing.F) {
	f.Add(encode(request(peerMAC, peerIP, ourIP)))
	f.Add(encode(replyTo(peerMAC, peerIP, ourMAC, ourIP)))
	f.Add(encode(request(peerMAC, netip.IPv4Unspecified(), ourIP)))
	f.Add(encode(request(peerMAC, ourIP, ourIP)))
	f.Add([]byte{0, 1, 8, 0, 6, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := newEnv(t)
		e.p.HandlePacket(e.ifc, buf.FromBytes(b))
		c := e.p.Counters()
		if c.Delivered.Load()+c.TotalDrops() != 1 {
			t.Fatalf("delivered %d, dropped %d", c.Delivered.Load(), c.TotalDrops())
		}
	})
}

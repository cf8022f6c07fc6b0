package tcp

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"ustack/buf"
	"ustack/link"
	"ustack/proto"
	"ustack/wire"
)

var closedPort = netip.AddrPortFrom(localIP, 9)

// TestRSTClosedPort: RFC 9293 §3.10.7.1 answers for a port nobody
// listens on.
func TestRSTClosedPort(t *testing.T) {
	peer := peerN(1)
	for _, tc := range []struct {
		name     string
		in       seg
		want     bool
		seq, ack uint32
		flags    wire.TCPFlags
	}{
		{"ACK", seg{seq: 100, ack: 5000, flags: fACK}, true, 5000, 0, fRST},
		{"ACK with data", seg{seq: 100, ack: 5000, flags: fACK | fPSH, payload: []byte("abc")}, true, 5000, 0, fRST},
		{"SYN", seg{seq: 100, flags: fSYN}, true, 0, 101, fRST | fACK},
		{"SYN with data", seg{seq: 100, flags: fSYN, payload: []byte("hello")}, true, 0, 106, fRST | fACK},
		{"FIN", seg{seq: 0xffffffff, flags: fFIN}, true, 0, 0, fRST | fACK},
		{"PSH data", seg{seq: 7, flags: fPSH, payload: []byte("xy")}, true, 0, 9, fRST | fACK},
		{"FIN ACK", seg{seq: 7, ack: 8, flags: fFIN | fACK}, true, 8, 0, fRST},
		{"RST", seg{seq: 7, flags: fRST}, false, 0, 0, 0},
		{"RST ACK", seg{seq: 7, ack: 9, flags: fRST | fACK}, false, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.in.src, tc.in.dst = peer, closedPort
			e.inject(t, tc.in)
			sent := e.net.take()
			if !tc.want {
				if len(sent) != 0 {
					t.Fatalf("answered a RST with %+v", sent)
				}
				return
			}
			if len(sent) != 1 {
				t.Fatalf("sent %d segments, want one RST", len(sent))
			}
			s := sent[0]
			if s.src != closedPort || s.dst != peer || uint32(s.seq) != tc.seq || uint32(s.ack) != tc.ack ||
				s.flags != tc.flags || len(s.payload) != 0 || s.wnd != 0 {
				t.Errorf("sent %+v, want %v seq %d ack %d", s, tc.flags, tc.seq, tc.ack)
			}
			if e.stat("tcp.no_port_rsts") != 1 || e.stat("tcp.out_rsts") != 1 || e.stat("tcp.drop.no_endpoint") != 1 {
				t.Errorf("counters: no_port_rsts %d out_rsts %d drop.no_endpoint %d",
					e.stat("tcp.no_port_rsts"), e.stat("tcp.out_rsts"), e.stat("tcp.drop.no_endpoint"))
			}
		})
	}
}

// rawSeg encodes a header by hand for malformed cases.
func rawSeg(flags wire.TCPFlags, doff int, opts []byte, payload []byte) []byte {
	b := make([]byte, 20+len(opts)+len(payload))
	t := wire.TCP(b)
	t.SetSrcPort(peerN(1).Port())
	t.SetDstPort(80)
	t.SetSeq(1)
	t.SetFlags(flags)
	t.SetWindow(1000)
	b[12] = byte(doff << 4)
	copy(b[20:], opts)
	copy(b[20+len(opts):], payload)
	return b
}

func checksummed(b []byte) []byte {
	t := wire.TCP(b)
	t.SetChecksum(0)
	t.SetChecksum(^wire.Checksum(b, wire.PseudoHeaderChecksum(wire.IPProtoTCP, peerN(1).Addr(), localIP, len(b))))
	return b
}

// TestMalformed: every malformed segment is dropped, counted under its
// reason and as an input error, and never answered — even on a port that
// listens.
func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      []byte
		reason string
	}{
		{"short", checksummed(rawSeg(fSYN, 5, nil, nil))[:19], "truncated"},
		{"data offset 0", checksummed(rawSeg(fSYN, 0, nil, nil)), "bad_header_len"},
		{"data offset 4", checksummed(rawSeg(fSYN, 4, nil, nil)), "bad_header_len"},
		{"data offset past the packet", checksummed(rawSeg(fSYN, 15, []byte{1, 1, 1, 1}, nil)), "bad_header_len"},
		{"option length 0", checksummed(rawSeg(fSYN, 6, []byte{2, 0, 5, 0xb4}, nil)), "bad_option"},
		{"option length 1", checksummed(rawSeg(fSYN, 6, []byte{2, 1, 5, 0xb4}, nil)), "bad_option"},
		{"truncated option", checksummed(rawSeg(fSYN, 6, []byte{1, 1, 8, 10}, nil)), "bad_option"},
		{"kind without length", checksummed(rawSeg(fSYN, 6, []byte{1, 1, 1, 3}, nil)), "bad_option"},
		{"wrong MSS length", checksummed(rawSeg(fSYN, 6, []byte{2, 3, 5, 1}, nil)), "bad_option"},
		{"SYN FIN", checksummed(rawSeg(fSYN|fFIN, 5, nil, nil)), "malformed"},
		{"SYN RST", checksummed(rawSeg(fSYN|fRST, 5, nil, nil)), "malformed"},
		{"no flags", checksummed(rawSeg(0, 5, nil, []byte("x"))), "malformed"},
		{"only ECE CWR", checksummed(rawSeg(wire.TCPFlagECE|wire.TCPFlagCWR, 5, nil, nil)), "malformed"},
		{"all flags", checksummed(rawSeg(0xff, 5, nil, nil)), "malformed"},
		{"bad checksum", func() []byte { b := checksummed(rawSeg(fSYN, 5, nil, nil)); b[16] ^= 1; return b }(), "bad_checksum"},
		{"bad checksum odd payload", func() []byte { b := checksummed(rawSeg(fACK, 5, nil, []byte("abc"))); b[22] ^= 0x10; return b }(), "bad_checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			mustListen(t, e, lport, 10, Options{})
			e.injectRaw(t, proto.PacketInfo{Src: peerN(1).Addr(), Dst: localIP, Proto: wire.IPProtoTCP}, tc.b)
			if s := e.net.take(); len(s) != 0 {
				t.Errorf("answered with %+v", s)
			}
			if got := e.stat("tcp.drop." + tc.reason); got != 1 {
				t.Errorf("drop.%s = %d, want 1", tc.reason, got)
			}
			if e.stat("tcp.in_errs") != 1 {
				t.Errorf("in_errs = %d", e.stat("tcp.in_errs"))
			}
			if e.stat("tcp.in.packets") != 1 {
				t.Errorf("in.packets = %d", e.stat("tcp.in.packets"))
			}
		})
	}
}

// TestValidOptionsAccepted: NOP padding, EOL and unknown options are fine.
func TestValidOptionsAccepted(t *testing.T) {
	e := newEnv(t)
	mustListen(t, e, lport, 10, Options{})
	b := checksummed(rawSeg(fSYN, 8, []byte{1, 1, 2, 4, 5, 0xb4, 99, 2, 0, 0, 0, 0}, nil))
	e.injectRaw(t, proto.PacketInfo{Src: peerN(1).Addr(), Dst: localIP}, b)
	if s := e.net.takeOne(t); s.flags != fSYN|fACK {
		t.Errorf("answered with %+v", s)
	}
}

// TestNotUnicast: broadcast and multicast segments and bogus sources are
// dropped without an answer.
func TestNotUnicast(t *testing.T) {
	for _, tc := range []struct {
		name   string
		info   proto.PacketInfo
		reason string
	}{
		{"broadcast", proto.PacketInfo{Src: peerIP, Dst: netip.MustParseAddr("10.0.0.255"), Broadcast: true}, "not_for_us"},
		{"multicast", proto.PacketInfo{Src: peerIP, Dst: netip.MustParseAddr("224.0.0.1"), Multicast: true}, "not_for_us"},
		{"multicast source", proto.PacketInfo{Src: netip.MustParseAddr("224.0.0.1"), Dst: localIP}, "bad_source"},
		{"broadcast source", proto.PacketInfo{Src: limitedBroadcast, Dst: localIP}, "bad_source"},
		{"unspecified source", proto.PacketInfo{Src: netip.IPv4Unspecified(), Dst: localIP}, "bad_source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := seg{src: netip.AddrPortFrom(tc.info.Src, 1), dst: netip.AddrPortFrom(tc.info.Dst, 9), flags: fSYN}
			e.p.HandlePacket(tc.info, s.packet())
			if len(e.net.take()) != 0 {
				t.Error("answered")
			}
			if e.stat("tcp.drop."+tc.reason) != 1 {
				t.Errorf("drop.%s not counted", tc.reason)
			}
		})
	}
}

// TestChecksumOffload: a checksum the link verified is not checked again;
// with a link that completes checksums, ours are left partial.
func TestChecksumOffload(t *testing.T) {
	e := newEnv(t)
	e.net.caps = link.CapTxChecksum
	b := checksummed(rawSeg(fSYN, 5, nil, nil))
	b[16] ^= 0xff
	pkt := buf.FromBytes(b)
	pkt.Offload.CsumValid = true
	e.p.HandlePacket(proto.PacketInfo{Src: peerN(1).Addr(), Dst: localIP}, pkt)
	s := e.net.takeOne(t)
	if s.flags != fRST|fACK || !s.partial {
		t.Errorf("answer %+v, want a RST with a partial checksum", s)
	}
}

func TestDialErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name         string
		laddr, raddr netip.AddrPort
		want         error
	}{
		{"no address", netip.AddrPort{}, netip.AddrPort{}, syscall.EINVAL},
		{"port 0", netip.AddrPort{}, netip.AddrPortFrom(peerIP, 0), syscall.ECONNREFUSED},
		{"multicast", netip.AddrPort{}, netip.MustParseAddrPort("224.0.0.1:80"), syscall.ENETUNREACH},
		{"broadcast", netip.AddrPort{}, netip.MustParseAddrPort("255.255.255.255:80"), syscall.ENETUNREACH},
		{"not local", netip.MustParseAddrPort("10.9.9.9:0"), peer80, syscall.EADDRNOTAVAIL},
	} {
		if _, err := e.p.Dial(tc.laddr, tc.raddr, Options{}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	e.net.noRoute = true
	if _, err := e.p.Dial(netip.AddrPort{}, peer80, Options{}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("no route: %v, want ENETUNREACH", err)
	}
	if e.p.conns.len() != 0 {
		t.Errorf("%d tuples left by failed dials", e.p.conns.len())
	}
}

// TestDialSYN: Dial from a chosen address sends a SYN with the RFC 6528
// ISN and hashes the connection.
func TestDialSYN(t *testing.T) {
	e := newEnv(t)
	c := mustDial(t, e, netip.AddrPortFrom(localIP2, 0), peer80, Options{})
	syn := e.net.takeOne(t)
	if syn.flags&fSYN == 0 || syn.src.Addr() != localIP2 || syn.seq != e.p.isn(c.id(), e.clk.Now()) {
		t.Errorf("SYN %+v", syn)
	}
	if got, _ := e.p.conns.lookup(keyOf(c.id())); got != c {
		t.Error("connection not hashed")
	}
	if e.stat("tcp.active_opens") != 1 {
		t.Errorf("active_opens = %d", e.stat("tcp.active_opens"))
	}
}

// TestDemuxToConnection: segments for a connection reach it, not the
// listener, and a tuple being created parks them.
func TestDemuxToConnection(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 10, Options{})
	peer := peerN(1)
	rcvNxt, sndNxt := e.handshake(t, l, peer, 100)
	c := mustAccept(t, l)
	e.inject(t, seg{src: peer, dst: lport, seq: rcvNxt, ack: sndNxt, flags: fACK | fPSH, payload: []byte("abc")})
	if got := readAll(t, c); got != "abc" {
		t.Errorf("read %q", got)
	}

	// Parking: reserve a tuple, send to it, publish.
	id := connID{lport, peerN(2)}
	k, ok := e.p.reserveAccepted(id, false)
	if !ok {
		t.Fatal("reserve failed")
	}
	e.net.take()
	e.inject(t, seg{src: id.remote, dst: lport, seq: 1, ack: 1, flags: fACK, payload: []byte("z")})
	if e.stat("tcp.parked") != 1 || len(e.net.take()) != 0 {
		t.Fatal("segment for a reserved tuple not parked")
	}
	e.p.unreserve(k)
	if e.p.conns.len() != 1 {
		t.Errorf("len %d after unreserve", e.p.conns.len())
	}
}

func TestSocketsAndStats(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 10, Options{})
	e.handshake(t, l, peerN(1), 100)
	e.inject(t, seg{src: peerN(2), dst: lport, seq: 1, flags: fSYN})
	mustListen(t, e, netip.AddrPortFrom(netip.Addr{}, 22), 5, Options{})
	var got []string
	e.p.Sockets(func(i proto.SocketInfo) {
		got = append(got, i.Proto+" "+i.Local.String()+" "+i.Remote.String()+" "+i.State)
	})
	want := []string{
		"tcp 0.0.0.0:22 invalid AddrPort LISTEN",
		"tcp 10.0.0.1:80 invalid AddrPort LISTEN",
		"tcp 10.0.0.1:80 10.1.0.1:30001 ESTAB",
		"tcp 10.0.0.1:80 10.1.0.2:30002 SYN-RECV",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Sockets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	names := map[string]bool{}
	e.p.VisitStats(func(n string, _ uint64) { names[n] = true })
	for _, n := range []string{"tcp.in.packets", "tcp.out.packets", "tcp.active_opens", "tcp.passive_opens",
		"tcp.attempt_fails", "tcp.in_rsts", "tcp.out_rsts", "tcp.retrans_segs", "tcp.in_csum_errors",
		"tcp.listen_overflows", "tcp.listen_drops", "tcp.syncookies_sent", "tcp.syncookies_recv",
		"tcp.syncookies_failed", "tcp.curr_estab", "tcp.conns"} {
		if !names[n] {
			t.Errorf("VisitStats lacks %s", n)
		}
	}
	// One connection established (the SYN-RECV one is still in the
	// listener's queue, not in the table).
	if e.stat("tcp.curr_estab") != 1 || e.stat("tcp.conns") != 1 || e.stat("tcp.in.packets") != 3 {
		t.Errorf("curr_estab %d conns %d in.packets %d", e.stat("tcp.curr_estab"), e.stat("tcp.conns"), e.stat("tcp.in.packets"))
	}
}

func TestTunables(t *testing.T) {
	e := newEnv(t)
	for name, want := range map[string]string{
		"net.inet.tcp.synack_retries": "5", "net.inet.tcp.syncookies": "1",
		"net.inet.tcp.max_syn_backlog": "1024", "net.inet.tcp.tw_reuse": "1",
		"net.inet.tcp.sack": "1", "net.inet.tcp.rto_min": "200ms", "net.inet.tcp.cc_algorithm": "cubic",
	} {
		if got, err := e.sys.Get(name); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if err := e.sys.Set("net.inet.tcp.syncookies", "3"); err == nil {
		t.Error("syncookies accepted 3")
	}
}

// TestHandleErrorShort: quotes too short to name a connection are
// ignored.
func TestHandleErrorShort(t *testing.T) {
	e := newEnv(t)
	e.p.HandleError(&proto.ICMPError{Kind: proto.ErrPortUnreachable, Src: localIP, Dst: peerIP, Quote: []byte{1, 2, 3}})
}

func BenchmarkHandlePacketToConn(b *testing.B) {
	e := newEnv(b)
	l, _ := e.p.Listen(lport, 10, Options{})
	peer := peerN(1)
	rcvNxt, sndNxt := e.handshake(b, l, peer, 100)
	l.Accept()
	s := seg{src: peer, dst: lport, seq: rcvNxt, ack: sndNxt, flags: fACK}
	raw := s.packet().ToBytes()
	info := s.info()
	b.ReportAllocs()
	for b.Loop() {
		e.p.HandlePacket(info, buf.FromBytes(raw))
	}
}

// TestProtocolClose: closing the protocol closes listeners and ends every
// connection, leaving no tuple and no port bound.
func TestProtocolClose(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 10, Options{})
	e.handshake(t, l, peerN(1), 100)
	c := mustAccept(t, l)
	mustDial(t, e, netip.AddrPort{}, peer80, Options{})
	e.p.Close()
	if n := e.p.conns.len(); n != 0 {
		t.Errorf("%d connections left", n)
	}
	if _, err := l.Accept(); err == nil {
		t.Error("listener still open")
	}
	if st := c.state(); st != StateClosed {
		t.Errorf("accepted connection in %v", st)
	}
	mustListen(t, e, lport, 10, Options{})
}

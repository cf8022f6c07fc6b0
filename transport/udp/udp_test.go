package udp_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"ustack/buf"
	"ustack/link"
	"ustack/proto"
	"ustack/transport/udp"
	"ustack/wire"
)

func TestSendRecv(t *testing.T) {
	f, p, _ := newFake(t)
	a := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	b := mustBind(t, p, "0.0.0.0:2000", udp.Options{})

	if n, err := a.WriteTo([]byte("hello"), netip.MustParseAddrPort("10.0.0.2:2000")); n != 5 || err != nil {
		t.Fatalf("WriteTo = %d, %v; want 5, nil", n, err)
	}
	s := f.last(t)
	u, err := wire.ParseUDP(s.data)
	if err != nil {
		t.Fatal(err)
	}
	if u.SrcPort() != 1000 || u.DstPort() != 2000 || u.Length() != 13 || string(u.Payload()) != "hello" {
		t.Errorf("sent header %x: want ports 1000->2000, length 13, payload hello", s.data)
	}
	pseudo := wire.PseudoHeaderChecksum(wire.IPProtoUDP, addrA, addrB, len(s.data))
	if wire.ChecksumCombine(pseudo, wire.Checksum(s.data, 0)) != 0xffff {
		t.Errorf("sent checksum %#04x does not verify", u.Checksum())
	}
	if s.offload.NeedsCsum {
		t.Error("NeedsCsum set on a link without tx-csum")
	}
	if got, from := recvString(t, b); got != "hello" || from != netip.MustParseAddrPort("10.0.0.1:1000") {
		t.Errorf("Recv = %q from %v; want hello from 10.0.0.1:1000", got, from)
	}
	expectEmpty(t, b)
	if got := p.Stats().Delivered.Load(); got != 1 {
		t.Errorf("delivered = %d, want 1", got)
	}
	if got := p.Stats().OutPackets.Load(); got != 1 {
		t.Errorf("out packets = %d, want 1", got)
	}
}

func TestEmptyDatagram(t *testing.T) {
	_, p, _ := newFake(t)
	a := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	if _, err := a.WriteTo(nil, netip.MustParseAddrPort("10.0.0.1:1000")); err != nil {
		t.Fatal(err)
	}
	if got, _ := recvString(t, a); got != "" {
		t.Errorf("got %q, want an empty datagram", got)
	}
}

func TestChecksumOffload(t *testing.T) {
	f, p, _ := newFake(t)
	f.caps = link.CapTxChecksum
	a := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	b := mustBind(t, p, "10.0.0.2:2000", udp.Options{})
	if _, err := a.WriteTo([]byte("abc"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	s := f.last(t)
	want := buf.Offload{NeedsCsum: true, CsumStart: 0, CsumOffset: 6}
	if s.offload != want {
		t.Errorf("offload = %+v, want %+v", s.offload, want)
	}
	if got, pseudo := wire.UDP(s.data).Checksum(), wire.PseudoHeaderChecksum(wire.IPProtoUDP, addrA, addrB, 11); got != pseudo {
		t.Errorf("partial checksum field = %#04x, want the pseudo-header sum %#04x", got, pseudo)
	}
	if got, _ := recvString(t, b); got != "abc" {
		t.Errorf("got %q", got)
	}
}

func TestChecksumSysctl(t *testing.T) {
	f, p, sys := newFake(t)
	if err := sys.Set("net.inet.udp.checksum", "0"); err != nil {
		t.Fatal(err)
	}
	a := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	if _, err := a.WriteTo([]byte("x"), a.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if c := wire.UDP(f.last(t).data).Checksum(); c != 0 {
		t.Errorf("checksum = %#04x with net.inet.udp.checksum=0, want 0", c)
	}
	// RFC 768: a zero checksum means none; the datagram is accepted.
	if got, _ := recvString(t, a); got != "x" {
		t.Errorf("got %q", got)
	}
	for name, want := range map[string]string{"net.inet.udp.recvspace": "212992",
		"net.inet.ip.portrange.first": "49152", "net.inet.ip.portrange.last": "65535"} {
		if v, err := sys.Get(name); err != nil || v != want {
			t.Errorf("sysctl %s = %q, %v; want %q", name, v, err, want)
		}
	}
}

func TestReceiveValidation(t *testing.T) {
	_, p, _ := newFake(t)
	e := mustBind(t, p, "10.0.0.2:53", udp.Options{})
	src, dst := netip.MustParseAddrPort("10.0.0.1:4000"), e.LocalAddr()
	good := datagram(src, dst, []byte("payload"))

	tests := []struct {
		name   string
		pkt    func() *buf.Packet
		reason proto.DropReason
		want   string // payload delivered, when reason is DropNone
	}{
		{"ok", func() *buf.Packet { return buf.FromBytes(good) }, proto.DropNone, "payload"},
		{"trailing bytes trimmed", func() *buf.Packet {
			return buf.FromBytes(append(append([]byte(nil), good...), 0xde, 0xad))
		}, proto.DropNone, "payload"},
		{"odd views", func() *buf.Packet {
			// Views of 9, 3 and 3 bytes: the checksum must fold across
			// views that start at odd offsets.
			pkt := buf.FromBytes(good[:9])
			pkt.Concat(buf.FromBytes(good[9:12]))
			pkt.Concat(buf.FromBytes(good[12:]))
			if pkt.NumViews() != 3 {
				t.Fatalf("built %d views, want 3", pkt.NumViews())
			}
			return pkt
		}, proto.DropNone, "payload"},
		{"zero checksum", func() *buf.Packet {
			b := append([]byte(nil), good...)
			wire.UDP(b).SetChecksum(0)
			return buf.FromBytes(b)
		}, proto.DropNone, "payload"},
		{"csum valid offload", func() *buf.Packet {
			b := append([]byte(nil), good...)
			wire.UDP(b).SetChecksum(0x1234)
			pkt := buf.FromBytes(b)
			pkt.Offload.CsumValid = true
			return pkt
		}, proto.DropNone, "payload"},
		{"bad checksum", func() *buf.Packet {
			b := append([]byte(nil), good...)
			b[len(b)-1] ^= 0x40
			return buf.FromBytes(b)
		}, proto.DropBadChecksum, ""},
		{"truncated header", func() *buf.Packet { return buf.FromBytes(good[:7]) }, proto.DropTruncated, ""},
		{"length past payload", func() *buf.Packet { return buf.FromBytes(good[:len(good)-1]) }, proto.DropBadLength, ""},
		{"length under header", func() *buf.Packet {
			b := append([]byte(nil), good...)
			wire.UDP(b).SetLength(7)
			return buf.FromBytes(b)
		}, proto.DropBadLength, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.Stats().Dropped(tt.reason)
			if v := p.HandlePacket(info(src, dst), tt.pkt()); v != proto.Consumed {
				t.Fatalf("verdict = %v, want Consumed", v)
			}
			if tt.reason == proto.DropNone {
				if got, from := recvString(t, e); got != tt.want || from != src {
					t.Errorf("got %q from %v, want %q from %v", got, from, tt.want, src)
				}
				return
			}
			if got := p.Stats().Dropped(tt.reason) - before; got != 1 {
				t.Errorf("drops for %v = %d, want 1", tt.reason, got)
			}
			expectEmpty(t, e)
		})
	}
}

func TestPortUnreachable(t *testing.T) {
	f, p, _ := newFake(t)
	a := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	if _, err := a.WriteTo([]byte("x"), netip.MustParseAddrPort("10.0.0.2:9")); err != nil {
		t.Fatal(err)
	}
	if v := f.last(t).verdict; v != proto.NoEndpoint {
		t.Errorf("verdict = %v, want NoEndpoint", v)
	}
	if got := p.Stats().Dropped(proto.DropNoEndpoint); got != 1 {
		t.Errorf("no_endpoint drops = %d, want 1", got)
	}
	// The caller keeps the packet untouched for its ICMP error.
	pkt := buf.FromBytes(datagram(netip.MustParseAddrPort("10.0.0.1:5"), netip.MustParseAddrPort("10.0.0.2:9"), []byte("quote")))
	defer pkt.Release()
	before := pkt.ToBytes()
	if v := p.HandlePacket(info(netip.MustParseAddrPort("10.0.0.1:5"), netip.MustParseAddrPort("10.0.0.2:9")), pkt); v != proto.NoEndpoint {
		t.Fatalf("verdict = %v", v)
	}
	if got := pkt.ToBytes(); string(got) != string(before) {
		t.Errorf("packet changed on NoEndpoint: %x, was %x", got, before)
	}
	// An unconnected sender does not learn of the error (RFC 1122 §4.1.3.3,
	// Linux without IP_RECVERR).
	if err := a.Err(); err != nil {
		t.Errorf("unconnected Err = %v, want nil", err)
	}
}

func TestConnect(t *testing.T) {
	_, p, _ := newFake(t)
	a := mustBind(t, p, "0.0.0.0:1000", udp.Options{})
	b := mustBind(t, p, "10.0.0.2:2000", udp.Options{})
	c := mustBind(t, p, "10.0.0.1:3000", udp.Options{})

	if err := a.Connect(b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	// Linux rebinds the wildcard to the route's source.
	if got, want := a.LocalAddr(), netip.MustParseAddrPort("10.0.0.1:1000"); got != want {
		t.Errorf("LocalAddr after Connect = %v, want %v", got, want)
	}
	if got := a.RemoteAddr(); got != b.LocalAddr() {
		t.Errorf("RemoteAddr = %v, want %v", got, b.LocalAddr())
	}
	if _, err := a.Write([]byte("to b")); err != nil {
		t.Fatal(err)
	}
	if got, from := recvString(t, b); got != "to b" || from != a.LocalAddr() {
		t.Errorf("b got %q from %v", got, from)
	}
	if _, err := b.WriteTo([]byte("from b"), a.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got, _ := recvString(t, a); got != "from b" {
		t.Errorf("a got %q", got)
	}
	// A third party is filtered out: the connected endpoint is not a
	// candidate for it.
	if _, err := c.WriteTo([]byte("from c"), a.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expectEmpty(t, a)
	if got := p.Stats().Dropped(proto.DropNoEndpoint); got != 1 {
		t.Errorf("no_endpoint = %d, want 1", got)
	}
	// An unconnected endpoint on the same port still gets the rest, when
	// both opted into sharing.
	_, p2, _ := newFake(t)
	conn := mustBind(t, p2, "10.0.0.1:53", udp.Options{ReuseAddr: true})
	wild := mustBind(t, p2, "10.0.0.1:53", udp.Options{ReuseAddr: true})
	if err := conn.Connect(netip.MustParseAddrPort("10.0.0.2:7")); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"10.0.0.2:7", "10.0.0.2:8"} {
		s := netip.MustParseAddrPort(src)
		p2.HandlePacket(info(s, conn.LocalAddr()), buf.FromBytes(datagram(s, conn.LocalAddr(), []byte(src))))
	}
	if got, _ := recvString(t, conn); got != "10.0.0.2:7" {
		t.Errorf("connected endpoint got %q", got)
	}
	if got, _ := recvString(t, wild); got != "10.0.0.2:8" {
		t.Errorf("unconnected endpoint got %q", got)
	}
	expectEmpty(t, conn)
	expectEmpty(t, wild)
}

func TestConnectErrors(t *testing.T) {
	_, p, _ := newFake(t)
	e := mustBind(t, p, "0.0.0.0:0", udp.Options{})
	if err := e.Connect(netip.MustParseAddrPort("192.0.2.1:53")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("Connect to unroutable = %v, want ENETUNREACH", err)
	}
	if err := e.Connect(netip.MustParseAddrPort("10.0.0.255:53")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("Connect to broadcast = %v, want EACCES", err)
	}
	if err := e.Connect(netip.AddrPort{}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Connect to nothing = %v, want EINVAL", err)
	}
	if got := e.LocalAddr().Addr(); !got.IsUnspecified() {
		t.Errorf("failed Connect changed the local address to %v", got)
	}
}

func TestWriteErrors(t *testing.T) {
	_, p, _ := newFake(t)
	e := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	dst := netip.MustParseAddrPort("10.0.0.2:2000")
	tests := []struct {
		name string
		b    []byte
		to   netip.AddrPort
		want error
	}{
		{"too big", make([]byte, 65508), dst, syscall.EMSGSIZE},
		{"no destination", nil, netip.AddrPort{}, syscall.EDESTADDRREQ},
		{"port zero", nil, netip.MustParseAddrPort("10.0.0.2:0"), syscall.EINVAL},
		{"no route", nil, netip.MustParseAddrPort("192.0.2.9:53"), syscall.ENETUNREACH},
		{"broadcast", nil, netip.MustParseAddrPort("10.0.0.255:53"), syscall.EACCES},
		{"limited broadcast", nil, netip.MustParseAddrPort("255.255.255.255:53"), syscall.EACCES},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := e.WriteTo(tt.b, tt.to); n != 0 || !errors.Is(err, tt.want) {
				t.Errorf("WriteTo = %d, %v; want 0, %v", n, err, tt.want)
			}
		})
	}
	if _, err := e.Write([]byte("x")); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Errorf("Write unconnected = %v, want EDESTADDRREQ", err)
	}
	if n, err := e.WriteTo(make([]byte, 65507), netip.MustParseAddrPort("10.0.0.1:1000")); n != 65507 || err != nil {
		t.Errorf("WriteTo 65507 bytes = %d, %v", n, err)
	}
	if pkt, _, ok := e.Recv(); !ok || pkt.Len() != 65507 {
		t.Errorf("largest datagram not received")
	} else {
		pkt.Release()
	}
	e.Close()
	if _, err := e.WriteTo([]byte("x"), dst); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close = %v, want net.ErrClosed", err)
	}
	if err := e.Connect(dst); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Connect after Close = %v, want net.ErrClosed", err)
	}
}

func TestWriteParams(t *testing.T) {
	f, p, _ := newFake(t)
	f.loop = false
	e := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	e.WriteTo([]byte("x"), netip.MustParseAddrPort("224.0.0.251:5353"))
	if got := f.last(t).wp.TTL; got != 1 {
		t.Errorf("multicast TTL = %d, want 1 (RFC 1112 §6.1)", got)
	}
	e.WriteTo([]byte("x"), netip.MustParseAddrPort("10.0.0.2:5353"))
	if got := f.last(t).wp.TTL; got != 0 {
		t.Errorf("unicast TTL = %d, want 0 (default)", got)
	}
	e.SetTTL(7)
	e.WriteTo([]byte("x"), netip.MustParseAddrPort("10.0.0.2:5353"))
	if got := f.last(t).wp.TTL; got != 7 {
		t.Errorf("TTL = %d after SetTTL(7)", got)
	}
}

func TestAddrInUse(t *testing.T) {
	reuse := udp.Options{ReuseAddr: true}
	tests := []struct {
		name      string
		first     string
		o1        udp.Options
		second    string
		o2        udp.Options
		wantInUse bool
	}{
		{"same address", "10.0.0.1:53", udp.Options{}, "10.0.0.1:53", udp.Options{}, true},
		{"wildcard then specific", "0.0.0.0:53", udp.Options{}, "10.0.0.1:53", udp.Options{}, true},
		{"specific then wildcard", "10.0.0.1:53", udp.Options{}, "0.0.0.0:53", udp.Options{}, true},
		{"different addresses", "10.0.0.1:53", udp.Options{}, "10.0.0.2:53", udp.Options{}, false},
		{"different ports", "10.0.0.1:53", udp.Options{}, "10.0.0.1:54", udp.Options{}, false},
		{"both reuse", "10.0.0.1:53", reuse, "10.0.0.1:53", reuse, false},
		{"both reuse, wildcard", "0.0.0.0:53", reuse, "10.0.0.1:53", reuse, false},
		{"only first reuses", "10.0.0.1:53", reuse, "10.0.0.1:53", udp.Options{}, true},
		{"only second reuses", "10.0.0.1:53", udp.Options{}, "10.0.0.1:53", reuse, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, _ := newFake(t)
			mustBind(t, p, tt.first, tt.o1)
			e, err := p.Bind(netip.MustParseAddrPort(tt.second), tt.o2)
			if tt.wantInUse {
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Errorf("second Bind = %v, want EADDRINUSE", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("second Bind = %v, want success", err)
			}
			e.Close()
		})
	}

	t.Run("free after close", func(t *testing.T) {
		_, p, _ := newFake(t)
		e := mustBind(t, p, "10.0.0.1:53", udp.Options{})
		e.Close()
		mustBind(t, p, "10.0.0.1:53", udp.Options{})
	})
	t.Run("latest reuser gets unicast", func(t *testing.T) {
		_, p, _ := newFake(t)
		first := mustBind(t, p, "10.0.0.1:53", reuse)
		second := mustBind(t, p, "10.0.0.1:53", reuse)
		if _, err := first.WriteTo([]byte("q"), first.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if got, _ := recvString(t, second); got != "q" {
			t.Errorf("got %q", got)
		}
		expectEmpty(t, first)
	})
}

func TestEphemeralPorts(t *testing.T) {
	_, p, sys := newFake(t)
	seen := make(map[uint16]bool)
	for i := range 3000 {
		e, err := p.Bind(netip.AddrPort{}, udp.Options{})
		if err != nil {
			t.Fatalf("bind %d: %v", i, err)
		}
		t.Cleanup(e.Close)
		port := e.LocalAddr().Port()
		if port < udp.DefaultPortFirst {
			t.Fatalf("ephemeral port %d below the range", port)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		if !e.LocalAddr().Addr().IsUnspecified() || !e.LocalAddr().Addr().Is4() {
			t.Fatalf("LocalAddr = %v, want 0.0.0.0:port", e.LocalAddr())
		}
	}

	// A small range fills up; a closed port is found again.
	_, p, sys = newFake(t)
	sys.Set("net.inet.ip.portrange.first", "40000")
	sys.Set("net.inet.ip.portrange.last", "40009")
	var eps []*udp.Endpoint
	for range 10 {
		e, err := p.Bind(netip.MustParseAddrPort("10.0.0.1:0"), udp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		if port := e.LocalAddr().Port(); port < 40000 || port > 40009 {
			t.Fatalf("port %d outside 40000-40009", port)
		}
		eps = append(eps, e)
	}
	if _, err := p.Bind(netip.MustParseAddrPort("10.0.0.2:0"), udp.Options{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind in a full range = %v, want EADDRINUSE", err)
	}
	freed := eps[3].LocalAddr().Port()
	eps[3].Close()
	e, err := p.Bind(netip.AddrPort{}, udp.Options{ReuseAddr: true})
	if err != nil || e.LocalAddr().Port() != freed {
		t.Fatalf("bind after close = %v, %v; want port %d", e.LocalAddr(), err, freed)
	}
	e.Close()

	// Two protocols (two stacks) do not walk the same sequence: the
	// offset is keyed by a random secret (RFC 6056 §3.3.4).
	_, p1, _ := newFake(t)
	_, p2, _ := newFake(t)
	same := 0
	for range 8 {
		e1, _ := p1.Bind(netip.AddrPort{}, udp.Options{})
		e2, _ := p2.Bind(netip.AddrPort{}, udp.Options{})
		if e1.LocalAddr().Port() == e2.LocalAddr().Port() {
			same++
		}
		e1.Close()
		e2.Close()
	}
	if same == 8 {
		t.Error("two stacks chose the same ephemeral ports")
	}
}

func TestBroadcast(t *testing.T) {
	_, p, _ := newFake(t)
	reuse := udp.Options{ReuseAddr: true}
	s := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	r1 := mustBind(t, p, "0.0.0.0:67", reuse)
	r2 := mustBind(t, p, "0.0.0.0:67", reuse)
	r3 := mustBind(t, p, "10.0.0.255:67", reuse)  // bound to the broadcast address
	other := mustBind(t, p, "10.0.0.2:67", reuse) // a unicast address: not a receiver
	conn := mustBind(t, p, "0.0.0.0:67", reuse)
	if err := conn.Connect(netip.MustParseAddrPort("10.0.0.2:99")); err != nil { // another peer
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort("10.0.0.255:67")

	if _, err := s.WriteTo([]byte("x"), dst); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("broadcast without SetBroadcast = %v, want EACCES", err)
	}
	s.SetBroadcast(true)
	if _, err := s.WriteTo([]byte("offer"), dst); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*udp.Endpoint{r1, r2, r3} {
		if got, from := recvString(t, e); got != "offer" || from != s.LocalAddr() {
			t.Errorf("%v got %q from %v", e.LocalAddr(), got, from)
		}
	}
	expectEmpty(t, other)
	expectEmpty(t, conn)
	if got := p.Stats().Delivered.Load(); got != 3 {
		t.Errorf("delivered = %d, want 3", got)
	}
	// A limited broadcast reaches the wildcard endpoints only.
	if _, err := s.WriteTo([]byte("all"), netip.MustParseAddrPort("255.255.255.255:67")); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*udp.Endpoint{r1, r2} {
		if got, _ := recvString(t, e); got != "all" {
			t.Errorf("%v got %q", e.LocalAddr(), got)
		}
	}
	expectEmpty(t, r3)
	// Nobody on the port: NoEndpoint, and no ICMP error (the fake sends
	// none for broadcasts either way).
	if _, err := s.WriteTo([]byte("x"), netip.MustParseAddrPort("10.0.0.255:68")); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().Dropped(proto.DropNoEndpoint); got != 1 {
		t.Errorf("no_endpoint = %d, want 1", got)
	}
}

func TestQueueFull(t *testing.T) {
	_, p, _ := newFake(t)
	s := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	r := mustBind(t, p, "10.0.0.2:2000", udp.Options{RecvBuffer: 100})
	for i := range 3 {
		if _, err := s.WriteTo(make([]byte, 60), r.LocalAddr()); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	// Accepted while under the limit: 0 < 100, 60 < 100, then 120 >= 100.
	if got := p.Stats().Dropped(proto.DropQueueFull); got != 1 {
		t.Errorf("queue_full drops = %d, want 1", got)
	}
	var infos []proto.SocketInfo
	p.Sockets(func(in proto.SocketInfo) { infos = append(infos, in) })
	if len(infos) != 2 || infos[1].Local != r.LocalAddr() || infos[1].RecvQ != 120 || infos[1].State != "UNCONN" {
		t.Errorf("Sockets = %+v; want the receiver with RecvQ 120", infos)
	}
	recvString(t, r)
	recvString(t, r)
	expectEmpty(t, r)
	// Room again after reading.
	r.SetRecvBuffer(10)
	s.WriteTo(make([]byte, 60), r.LocalAddr())
	s.WriteTo(make([]byte, 60), r.LocalAddr())
	if got := p.Stats().Dropped(proto.DropQueueFull); got != 2 {
		t.Errorf("queue_full drops = %d, want 2", got)
	}
}

func TestReadableWakesEveryReader(t *testing.T) {
	_, p, _ := newFake(t)
	e := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	for range 2 {
		e.WriteTo([]byte("x"), e.LocalAddr())
	}
	<-e.Readable() // one value for both datagrams
	recvString(t, e)
	select {
	case <-e.Readable(): // passed on: one more is queued
	default:
		t.Fatal("Readable not signalled with a datagram still queued")
	}
	recvString(t, e)
	select {
	case <-e.Readable():
		t.Fatal("Readable signalled with an empty queue")
	default:
	}
}

func TestICMPErrorConnected(t *testing.T) {
	_, p, _ := newFake(t)
	e := mustBind(t, p, "0.0.0.0:0", udp.Options{})
	if err := e.Connect(netip.MustParseAddrPort("10.0.0.2:9")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Readable():
	default:
		t.Fatal("the error did not signal Readable")
	}
	// Like Linux, the pending error fails the next send ...
	if _, err := e.Write([]byte("again")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Write after port unreachable = %v, want ECONNREFUSED", err)
	}
	// ... and is then cleared; this send draws a new one, read by Err.
	if _, err := e.Write([]byte("again")); err != nil {
		t.Fatalf("second Write = %v", err)
	}
	if err := e.Err(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Err = %v, want ECONNREFUSED", err)
	}
	if err := e.Err(); err != nil {
		t.Errorf("Err after read = %v, want nil", err)
	}

	// Soft errors (net unreachable and time exceeded, as Linux's
	// icmp_err_convert has them) and errors quoting other ports are not
	// reported.
	quote := make([]byte, 8)
	wire.UDP(quote).SetSrcPort(e.LocalAddr().Port())
	wire.UDP(quote).SetDstPort(9)
	for _, k := range []proto.ErrorKind{proto.ErrNetUnreachable, proto.ErrTimeExceeded, proto.ErrReassemblyTimeExceeded} {
		p.HandleError(&proto.ICMPError{Kind: k, Src: addrA, Dst: addrB, Proto: wire.IPProtoUDP, Quote: quote})
	}
	wire.UDP(quote).SetDstPort(10)
	p.HandleError(&proto.ICMPError{Kind: proto.ErrPortUnreachable, Src: addrA, Dst: addrB, Proto: wire.IPProtoUDP, Quote: quote})
	if err := e.Err(); err != nil {
		t.Errorf("Err = %v, want nil", err)
	}
	wire.UDP(quote).SetDstPort(9)
	p.HandleError(&proto.ICMPError{Kind: proto.ErrAdminProhibited, Src: addrA, Dst: addrB, Proto: wire.IPProtoUDP, Quote: quote})
	if err := e.Err(); !errors.Is(err, syscall.EACCES) {
		t.Errorf("admin prohibited: Err = %v, want EACCES", err)
	}
	// Host unreachable is hard (a neighbour that never answered ARP).
	p.HandleError(&proto.ICMPError{Kind: proto.ErrHostUnreachable, Src: addrA, Dst: addrB, Proto: wire.IPProtoUDP, Quote: quote})
	if err := e.Err(); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("host unreachable: Err = %v, want EHOSTUNREACH", err)
	}
}

func TestSockets(t *testing.T) {
	_, p, _ := newFake(t)
	mustBind(t, p, "0.0.0.0:53", udp.Options{})
	c := mustBind(t, p, "10.0.0.1:1000", udp.Options{})
	c.Connect(netip.MustParseAddrPort("10.0.0.2:53"))
	var got []string
	p.Sockets(func(in proto.SocketInfo) {
		got = append(got, fmt.Sprintf("%s %v %v %s", in.Proto, in.Local, in.Remote, in.State))
	})
	want := []string{"udp 0.0.0.0:53 invalid AddrPort UNCONN", "udp 10.0.0.1:1000 10.0.0.2:53 ESTAB"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Sockets:\n got %q\nwant %q", got, want)
	}
}

// TestConcurrent runs senders, receivers, binds and closes at once, for the
// race detector.
func TestConcurrent(t *testing.T) {
	_, p, _ := newFake(t)
	r := mustBind(t, p, "10.0.0.2:2000", udp.Options{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := p.Bind(netip.AddrPort{}, udp.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for range 200 {
				s.WriteTo([]byte("data"), r.LocalAddr())
				if e, err := p.Bind(netip.AddrPort{}, udp.Options{}); err == nil {
					e.Close()
				}
			}
		})
	}
	got := 0
	wg.Go(func() {
		for got < 800 {
			if pkt, _, ok := r.Recv(); ok {
				pkt.Release()
				got++
				continue
			}
			<-r.Readable()
		}
	})
	wg.Wait()
	if got != 800 {
		t.Errorf("received %d, want 800", got)
	}
}

func TestBindNonLocalAddress(t *testing.T) {
	_, p, _ := newFake(t)
	if _, err := p.Bind(netip.MustParseAddrPort("192.0.2.9:5000"), udp.Options{}); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("Bind to a foreign address: %v, want EADDRNOTAVAIL", err)
	}
	e, err := p.Bind(netip.MustParseAddrPort("10.0.0.1:5000"), udp.Options{})
	if err != nil {
		t.Fatalf("Bind to a local address: %v", err)
	}
	e.Close()
}

func TestJoinGroupLeftOnClose(t *testing.T) {
	f, p, _ := newFake(t)
	e, err := p.Bind(netip.MustParseAddrPort("0.0.0.0:5000"), udp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := netip.MustParseAddr("239.0.0.7")
	if err := e.JoinGroup(0, g); err != nil {
		t.Fatal(err)
	}
	if err := e.JoinGroup(0, g); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second join: %v, want EADDRINUSE", err)
	}
	if f.Members(g) != 1 {
		t.Fatalf("memberships = %d, want 1", f.Members(g))
	}
	e.Close()
	if f.Members(g) != 0 {
		t.Errorf("memberships after Close = %d, want 0", f.Members(g))
	}
	if err := e.LeaveGroup(0, g); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("leave after close: %v", err)
	}
}

package memlink_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"testing/synctest"

	"ustack/buf"
	"ustack/link"
	"ustack/link/internal/memlink"
	"ustack/wire"
)

// ipFrame builds an IPv4 or IPv6 packet from src to dst with protocol p,
// whose transport header starts with the two ports followed by a 4-byte
// sequence number, framed in Ethernet (behind vlans 802.1Q tags) when eth
// is set.
func ipFrame(eth bool, vlans int, p wire.IPProtocol, src, dst netip.AddrPort, seq uint32) []byte {
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4, src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint32(l4[4:], seq)
	var ip []byte
	if src.Addr().Is4() {
		ip = make([]byte, 20+len(l4))
		(&wire.IPv4Fields{TotalLen: len(ip), TTL: 64, Protocol: p, Src: src.Addr(), Dst: dst.Addr()}).Encode(ip)
		copy(ip[20:], l4)
	} else {
		ip = make([]byte, 40+len(l4))
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6], ip[7] = byte(p), 64
		s, d := src.Addr().As16(), dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		copy(ip[40:], l4)
	}
	if !eth {
		return ip
	}
	et := wire.EtherTypeIPv4
	if src.Addr().Is6() {
		et = wire.EtherTypeIPv6
	}
	f := make([]byte, wire.EthernetHeaderLen+vlans*wire.VLANTagLen, wire.EthernetHeaderLen+vlans*wire.VLANTagLen+len(ip))
	f[0] = 0x02
	f[6] = 0x02
	off := 12
	for range vlans {
		binary.BigEndian.PutUint16(f[off:], uint16(wire.EtherTypeVLAN))
		binary.BigEndian.PutUint16(f[off+2:], 7) // VLAN ID 7
		off += wire.VLANTagLen
	}
	binary.BigEndian.PutUint16(f[off:], uint16(et))
	return append(f, ip...)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// flowQueue is the queue a TCP flow's frames take on an Ethernet link of
// n queues.
func flowQueue(src, dst netip.AddrPort, n int) int {
	return memlink.QueueOf(ipFrame(true, 0, wire.IPProtoTCP, src, dst, 0), link.TypeEthernet, n)
}

// TestQueueOfNonIP: frames that are not IP, and frames too short to say,
// go to queue 0, whatever the number of queues.
func TestQueueOfNonIP(t *testing.T) {
	arp := make([]byte, 42)
	binary.BigEndian.PutUint16(arp[12:], uint16(wire.EtherTypeARP))
	unknown := make([]byte, 60)
	binary.BigEndian.PutUint16(unknown[12:], 0x88b5) // IEEE 802 local experimental
	for i := range unknown[14:] {
		unknown[14+i] = byte(i * 31)
	}
	tcp := ipFrame(true, 0, wire.IPProtoTCP, ap("10.0.0.1:40000"), ap("10.0.0.2:80"), 0)
	badVersion := append([]byte(nil), tcp...)
	badVersion[14] = 0x55
	shortIHL := append([]byte(nil), tcp...)
	shortIHL[14] = 0x44
	ipOnly := ipFrame(false, 0, wire.IPProtoTCP, ap("10.0.0.1:40000"), ap("10.0.0.2:80"), 0)
	cases := []struct {
		name  string
		frame []byte
		t     link.Type
	}{
		{"ARP", arp, link.TypeEthernet},
		{"unknown EtherType", unknown, link.TypeEthernet},
		{"runt", tcp[:13], link.TypeEthernet},
		{"Ethernet header only", tcp[:14], link.TypeEthernet},
		{"truncated IPv4 header", tcp[:14+19], link.TypeEthernet},
		{"IP version 5", badVersion, link.TypeEthernet},
		{"IHL 4", shortIHL, link.TypeEthernet},
		{"VLAN tag cut", append(append([]byte(nil), tcp[:12]...), 0x81, 0x00, 0, 7), link.TypeEthernet},
		{"IP packet read as Ethernet", ipOnly[:12], link.TypeEthernet},
		{"empty IP packet", nil, link.TypeIP},
		{"IP packet of version 0", make([]byte, 40), link.TypeIP},
	}
	for _, tc := range cases {
		for _, n := range []int{1, 2, 3, 4, 64} {
			if q := memlink.QueueOf(tc.frame, tc.t, n); q != 0 {
				t.Errorf("%s: queue %d of %d, want 0", tc.name, q, n)
			}
		}
	}
}

// TestQueueOfSpreadsFlows: flows that differ only in the client's port
// spread evenly over the queues, IPv4 and IPv6.
func TestQueueOfSpreadsFlows(t *testing.T) {
	for _, srv := range []netip.AddrPort{ap("10.0.0.2:80"), ap("[2001:db8::2]:80")} {
		for _, n := range []int{2, 3, 4, 8} {
			const flows = 4000
			count := make([]int, n)
			for p := range flows {
				cli := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(32768+p))
				if srv.Addr().Is6() {
					cli = netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(32768+p))
				}
				q := flowQueue(cli, srv, n)
				if q < 0 || q >= n {
					t.Fatalf("queue %d of %d", q, n)
				}
				count[q]++
			}
			for q, c := range count {
				// Within ±20% of an even share.
				if c < flows/n*8/10 || c > flows/n*12/10 {
					t.Errorf("%v, %d queues: queue %d has %d of %d flows: %v", srv, n, q, c, flows, count)
				}
			}
		}
	}
}

// TestQueueOfKeepsFlowTogether: everything that identifies a flow picks
// the queue — both directions alike (symmetric), behind VLAN tags and on
// IP links alike — and nothing else does (payload, length, TTL).
func TestQueueOfKeepsFlowTogether(t *testing.T) {
	const n = 16
	flows := [][2]netip.AddrPort{
		{ap("10.0.0.1:40000"), ap("10.0.0.2:80")},
		{ap("192.0.2.7:5353"), ap("198.51.100.9:53")},
		{ap("[2001:db8::1]:40000"), ap("[2001:db8::2]:443")},
		{ap("[fe80::1]:1"), ap("[fe80::2]:2")},
	}
	for _, f := range flows {
		for _, p := range []wire.IPProtocol{wire.IPProtoTCP, wire.IPProtoUDP} {
			want := memlink.QueueOf(ipFrame(true, 0, p, f[0], f[1], 0), link.TypeEthernet, n)
			for _, got := range []int{
				memlink.QueueOf(ipFrame(true, 0, p, f[1], f[0], 0), link.TypeEthernet, n),
				memlink.QueueOf(ipFrame(true, 0, p, f[0], f[1], 12345), link.TypeEthernet, n),
				memlink.QueueOf(ipFrame(true, 1, p, f[0], f[1], 0), link.TypeEthernet, n),
				memlink.QueueOf(ipFrame(true, 2, p, f[1], f[0], 0), link.TypeEthernet, n),
				memlink.QueueOf(ipFrame(false, 0, p, f[0], f[1], 0), link.TypeIP, n),
				memlink.QueueOf(ipFrame(false, 0, p, f[1], f[0], 9), link.TypeIP, n),
			} {
				if got != want {
					t.Errorf("%v %v: queue %d, want %d", f, p, got, want)
				}
			}
		}
	}
}

// TestQueueOfFragments: IPv4 fragments, and protocols without ports,
// hash by the addresses only, so every fragment of a datagram takes one
// queue whatever its offset.
func TestQueueOfFragments(t *testing.T) {
	const n = 64
	src, dst := ap("10.0.0.1:40000"), ap("10.0.0.2:80")
	want := memlink.QueueOf(ipFrame(true, 0, wire.IPProtoICMP, src, dst, 0), link.TypeEthernet, n)
	for _, frag := range []uint16{0x2000, 0x2001, 0x0009, 0x1fff} { // MF, MF+offset, last, offset only
		for _, sp := range []uint16{1, 40000, 65535} {
			f := ipFrame(true, 0, wire.IPProtoUDP, netip.AddrPortFrom(src.Addr(), sp), dst, 0)
			binary.BigEndian.PutUint16(f[14+6:], frag)
			if got := memlink.QueueOf(f, link.TypeEthernet, n); got != want {
				t.Errorf("fragment %#04x from port %d: queue %d, want %d (the addresses')", frag, sp, got, want)
			}
		}
	}
	// Two flows of the same hosts differ by port when not fragmented:
	// some pair of ports lands on different queues.
	q0 := flowQueue(src, dst, n)
	for p := uint16(1); ; p++ {
		if flowQueue(netip.AddrPortFrom(src.Addr(), p), dst, n) != q0 {
			break
		}
		if p == 1000 {
			t.Fatal("ports do not change the queue")
		}
	}
}

// TestQueueOfEveryPrefix: any prefix of a valid frame gives a queue in
// range, without panicking.
func TestQueueOfEveryPrefix(t *testing.T) {
	for _, f := range [][]byte{
		ipFrame(true, 2, wire.IPProtoTCP, ap("10.0.0.1:1"), ap("10.0.0.2:2"), 0),
		ipFrame(true, 1, wire.IPProtoUDP, ap("[2001:db8::1]:1"), ap("[2001:db8::2]:2"), 0),
	} {
		for i := range f {
			if q := memlink.QueueOf(f[:i], link.TypeEthernet, 5); q < 0 || q >= 5 {
				t.Fatalf("prefix %d: queue %d", i, q)
			}
			if q := memlink.QueueOf(f[i:], link.TypeIP, 5); q < 0 || q >= 5 {
				t.Fatalf("suffix %d: queue %d", i, q)
			}
		}
	}
}

// TestPushSplitHeaders: a packet whose headers span several views goes
// to the same queue as a contiguous one.
func TestPushSplitHeaders(t *testing.T) {
	const n = 8
	var want int
	var src netip.AddrPort
	// A flow that does not hash to queue 0, so that a wrong read shows.
	for p := uint16(1); ; p++ {
		src = netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), p)
		if want = flowQueue(src, ap("10.0.0.2:80"), n); want != 0 {
			break
		}
	}
	f := ipFrame(true, 0, wire.IPProtoTCP, src, ap("10.0.0.2:80"), 0)
	synctest.Test(t, func(t *testing.T) {
		var rx, tx link.Stats
		q := memlink.NewConfig(&stubEP{}, &rx, memlink.Config{Len: 16, Queues: n, Type: link.TypeEthernet}, func(*buf.Packet) {})
		defer q.Close()
		r := &recorder{}
		q.Attach(r)
		for _, cut := range []int{1, 13, 14, 20, 33, 34, 36, 37} {
			p := buf.FromBytes(f[:cut])
			p.Concat(buf.FromBytes(f[cut:]))
			if p.NumViews() < 2 {
				t.Fatalf("cut %d: %d views", cut, p.NumViews())
			}
			q.Push([]*buf.Packet{p}, func(*buf.Packet) bool { return true }, &tx)
		}
		synctest.Wait()
		if got := q.QueuePackets(want); got != 8 || rx.RxPackets.Load() != 8 {
			t.Errorf("queue %d delivered %d frames of %d, want all 8", want, got, rx.RxPackets.Load())
		}
	})
}

// FuzzQueueOf: any bytes give a queue in range, and the answer does not
// depend on how the bytes are split into views.
func FuzzQueueOf(f *testing.F) {
	f.Add(ipFrame(true, 0, wire.IPProtoTCP, ap("10.0.0.1:1"), ap("10.0.0.2:2"), 0), uint8(4), false)
	f.Add(ipFrame(true, 2, wire.IPProtoUDP, ap("[2001:db8::1]:1"), ap("[2001:db8::2]:2"), 0), uint8(3), false)
	f.Add(ipFrame(false, 0, wire.IPProtoTCP, ap("10.0.0.1:1"), ap("10.0.0.2:2"), 0), uint8(64), true)
	f.Fuzz(func(t *testing.T, b []byte, n uint8, ip bool) {
		typ := link.TypeEthernet
		if ip {
			typ = link.TypeIP
		}
		q := memlink.QueueOf(b, typ, int(n))
		if q < 0 || (n > 1 && q >= int(n)) || (n <= 1 && q != 0) {
			t.Fatalf("queue %d of %d", q, n)
		}
		if len(b) < 2 {
			return
		}
		cut := len(b) / 3
		p := buf.FromBytes(b[:cut])
		p.Concat(buf.FromBytes(b[cut:]))
		defer p.Release()
		if got := memlink.QueueOfPacket(p, typ, int(n)); got != q {
			t.Fatalf("split at %d: queue %d, contiguous %d", cut, got, q)
		}
	})
}

// Package linktest is test support for ustack's link drivers: a
// dispatcher that records what a driver delivers, and builders and
// checkers for the few frames driver tests exchange with a kernel peer
// (ARP, ICMP echo, UDP). It is not used outside tests.
package linktest

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ustack/buf"
	"ustack/internal/netns"
	"ustack/link"
	"ustack/link/offload"
	"ustack/wire"
)

// Timeout bounds every wait in driver tests: a failure guard, not a
// delay; a test waits only as long as the kernel takes.
const Timeout = 10 * time.Second

// Frame is a delivered packet, copied.
type Frame struct {
	Data    []byte
	Offload buf.Offload
	Views   int // how many pieces the packet's data was in
}

// Recorder is a link.Dispatcher that copies every delivered packet to a
// channel, releases it, and checks the batch contract (the same endpoint,
// non-empty batches).
type Recorder struct {
	C       chan Frame
	Batches atomic.Int64
	Dropped atomic.Int64 // frames that did not fit in C
	ep      atomic.Value
}

// NewRecorder returns a Recorder that buffers up to n frames.
func NewRecorder(n int) *Recorder { return &Recorder{C: make(chan Frame, n)} }

// DeliverBatch records pkts and releases them.
func (r *Recorder) DeliverBatch(ep link.Endpoint, pkts []*buf.Packet) {
	r.ep.CompareAndSwap(nil, ep)
	if len(pkts) == 0 || r.ep.Load() != ep {
		panic("linktest: empty batch or a batch from another endpoint")
	}
	r.Batches.Add(1)
	for _, p := range pkts {
		select {
		case r.C <- Frame{Data: p.ToBytes(), Offload: p.Offload, Views: p.NumViews()}:
		default:
			r.Dropped.Add(1)
		}
		p.Release()
	}
}

// Wait returns the next recorded frame for which match is true, skipping
// others; it fails the test after Timeout.
func (r *Recorder) Wait(t testing.TB, what string, match func(Frame) bool) Frame {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		select {
		case f := <-r.C:
			if match(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, Timeout)
		}
	}
}

// Ethernet returns an Ethernet II frame.
func Ethernet(dst, src wire.MAC, et wire.EtherType, payload []byte) []byte {
	b := make([]byte, wire.EthernetHeaderLen+len(payload))
	(&wire.EthernetFields{Dst: dst, Src: src, Type: et}).Encode(b)
	copy(b[wire.EthernetHeaderLen:], payload)
	return b
}

// ARP returns an ARP packet (not framed).
func ARP(op wire.ARPOp, senderMAC wire.MAC, senderIP netip.Addr, targetMAC wire.MAC, targetIP netip.Addr) []byte {
	b := make([]byte, wire.ARPLen)
	(&wire.ARPFields{Op: op, SenderMAC: senderMAC, SenderIP: senderIP, TargetMAC: targetMAC, TargetIP: targetIP}).Encode(b)
	return b
}

// IPv4 returns an IPv4 packet around payload.
func IPv4(proto wire.IPProtocol, src, dst netip.Addr, id uint16, payload []byte) []byte {
	f := wire.IPv4Fields{TotalLen: wire.IPv4MinHeaderLen + len(payload), ID: id, Flags: wire.IPv4FlagDF,
		TTL: 64, Protocol: proto, Src: src, Dst: dst}
	b := make([]byte, f.TotalLen)
	f.Encode(b)
	copy(b[wire.IPv4MinHeaderLen:], payload)
	return b
}

// UDP4 returns an IPv4 UDP datagram from src to dst. With partial, the
// checksum field holds only the pseudo-header sum, for a packet sent with
// Offload.NeedsCsum; PartialOffload gives the matching offsets. With bad,
// the checksum is wrong.
func UDP4(src, dst netip.AddrPort, payload []byte, partial, bad bool) []byte {
	u := make([]byte, wire.UDPHeaderLen+len(payload))
	(&wire.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: len(u)}).Encode(u)
	copy(u[wire.UDPHeaderLen:], payload)
	pseudo := wire.PseudoHeaderChecksum(wire.IPProtoUDP, src.Addr(), dst.Addr(), len(u))
	switch {
	case partial:
		wire.UDP(u).SetChecksum(pseudo)
	default:
		c := wire.UDPChecksum(pseudo, wire.Checksum(u, 0))
		if bad {
			c ^= 0x5555
		}
		wire.UDP(u).SetChecksum(c)
	}
	return IPv4(wire.IPProtoUDP, src.Addr(), dst.Addr(), 1, u)
}

// PartialOffload is the Offload of a UDP4 datagram with a partial checksum
// behind a link header of l2 bytes.
func PartialOffload(l2 int) buf.Offload {
	return buf.Offload{NeedsCsum: true, CsumStart: uint16(l2 + wire.IPv4MinHeaderLen), CsumOffset: 6}
}

// UDPInfo is what CheckUDP4 reads.
type UDPInfo struct {
	Src, Dst   netip.AddrPort
	Payload    []byte
	CsumOK     bool // the checksum verifies (RFC 768)
	IPHeaderOK bool
}

// ParseUDP4 reads an IPv4 UDP datagram; ok is false if ip is not one.
func ParseUDP4(ip []byte) (u UDPInfo, ok bool) {
	h, err := wire.ParseIPv4(ip)
	if err != nil || h.Protocol() != wire.IPProtoUDP {
		return u, false
	}
	d, err := wire.ParseUDP(h.Payload())
	if err != nil {
		return u, false
	}
	u.Src = netip.AddrPortFrom(h.Src(), d.SrcPort())
	u.Dst = netip.AddrPortFrom(h.Dst(), d.DstPort())
	u.Payload = d.Payload()
	u.IPHeaderOK = h.ChecksumValid()
	u.CsumOK = wire.ChecksumCombine(wire.PseudoHeaderChecksum(wire.IPProtoUDP, h.Src(), h.Dst(), len(d)), wire.Checksum(d, 0)) == 0xffff
	return u, true
}

// EchoReply turns an ICMPv4 echo request packet (IPv4 header first) into
// the echo reply to it (RFC 792), or returns nil if ip is not one.
func EchoReply(ip []byte) []byte {
	h, err := wire.ParseIPv4(ip)
	if err != nil || h.Protocol() != wire.IPProtoICMP {
		return nil
	}
	m := append([]byte{}, h.Payload()...)
	if len(m) < wire.ICMPv4HeaderLen || wire.ICMPv4Type(m[0]) != wire.ICMPv4Echo {
		return nil
	}
	m[0] = byte(wire.ICMPv4EchoReply)
	wire.ICMPv4(m).UpdateChecksum()
	return IPv4(wire.IPProtoICMP, h.Dst(), h.Src(), binary.BigEndian.Uint16(ip[4:])+1, m)
}

// IsEchoRequest reports whether ip is an ICMPv4 echo request to dst.
func IsEchoRequest(ip []byte, dst netip.Addr) bool {
	h, err := wire.ParseIPv4(ip)
	if err != nil || h.Protocol() != wire.IPProtoICMP || h.Dst() != dst {
		return false
	}
	p := h.Payload()
	return len(p) > 0 && wire.ICMPv4Type(p[0]) == wire.ICMPv4Echo
}

// Payload returns n bytes of a recognisable pattern.
func Payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// ListenUDP opens a UDP socket bound to addr inside ns, closed when the
// test ends.
func ListenUDP(t testing.TB, ns *netns.NS, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	ns.MustDo(t, func() (err error) {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// DialUDP opens a UDP socket inside ns from laddr to raddr, closed when the
// test ends.
func DialUDP(t testing.TB, ns *netns.NS, laddr, raddr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	ns.MustDo(t, func() (err error) {
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(laddr), net.UDPAddrFromAddrPort(raddr))
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// SetUDPSegment turns on UDP GSO (UDP_SEGMENT, Linux 4.18) on c: each
// write is sent as datagrams of size payload bytes, as one large packet
// where the device allows.
func SetUDPSegment(t testing.TB, c *net.UDPConn, size int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, size)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("setsockopt UDP_SEGMENT: %v", serr)
	}
}

// ReadUDP reads one datagram from c, failing the test after Timeout.
func ReadUDP(t testing.TB, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(Timeout))
	b := make([]byte, 65536)
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		t.Fatalf("read UDP on %v: %v", c.LocalAddr(), err)
	}
	return b[:n], from
}

// Write hands ep one frame, failing the test if it is not written.
func Write(t testing.TB, ep link.Endpoint, frame []byte, o buf.Offload) {
	t.Helper()
	p := buf.FromBytes(frame)
	p.Offload = o
	if n, err := ep.WriteBatch([]*buf.Packet{p}); n != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
}

// TCP flags (RFC 9293 §3.1).
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
)

// TCP4 returns an IPv4 TCP segment with a correct checksum. opts must be a
// multiple of 4 bytes long.
func TCP4(src, dst netip.AddrPort, seq, ack uint32, flags byte, window uint16, opts, payload []byte) []byte {
	hl := 20 + len(opts)
	s := make([]byte, hl+len(payload))
	binary.BigEndian.PutUint16(s[0:], src.Port())
	binary.BigEndian.PutUint16(s[2:], dst.Port())
	binary.BigEndian.PutUint32(s[4:], seq)
	binary.BigEndian.PutUint32(s[8:], ack)
	s[12] = byte(hl/4) << 4
	s[13] = flags
	binary.BigEndian.PutUint16(s[14:], window)
	copy(s[20:], opts)
	copy(s[hl:], payload)
	pseudo := wire.PseudoHeaderChecksum(wire.IPProtoTCP, src.Addr(), dst.Addr(), len(s))
	binary.BigEndian.PutUint16(s[16:], ^wire.ChecksumCombine(pseudo, wire.Checksum(s, 0)))
	return IPv4(wire.IPProtoTCP, src.Addr(), dst.Addr(), 1, s)
}

// TCPInfo is what ParseTCP4 reads.
type TCPInfo struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    byte
	Payload  []byte
	CsumOK   bool // the checksum verifies (RFC 9293 §3.1)
}

// ParseTCP4 reads an IPv4 TCP segment; ok is false if ip is not one.
func ParseTCP4(ip []byte) (s TCPInfo, ok bool) {
	h, err := wire.ParseIPv4(ip)
	if err != nil || h.Protocol() != wire.IPProtoTCP {
		return s, false
	}
	b := h.Payload()
	if len(b) < 20 || int(b[12]>>4)*4 < 20 || len(b) < int(b[12]>>4)*4 {
		return s, false
	}
	s.Src = netip.AddrPortFrom(h.Src(), binary.BigEndian.Uint16(b[0:]))
	s.Dst = netip.AddrPortFrom(h.Dst(), binary.BigEndian.Uint16(b[2:]))
	s.Seq, s.Ack = binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
	s.Flags = b[13]
	s.Payload = b[int(b[12]>>4)*4:]
	s.CsumOK = wire.ChecksumCombine(wire.PseudoHeaderChecksum(wire.IPProtoTCP, h.Src(), h.Dst(), len(b)), wire.Checksum(b, 0)) == 0xffff
	return s, true
}

// IPOf returns the IPv4 packet in a frame of a link of type lt, or nil if
// the frame does not hold one.
func IPOf(lt link.Type, frame []byte) []byte {
	if lt != link.TypeEthernet {
		return frame
	}
	e, err := wire.ParseEthernet(frame)
	if err != nil || e.Type() != wire.EtherTypeIPv4 {
		return nil
	}
	return e.Payload()
}

// linkHeaderLen is the length of the (untagged) link header on lt.
func linkHeaderLen(lt link.Type) int {
	if lt == link.TypeEthernet {
		return wire.EthernetHeaderLen
	}
	return 0
}

// CheckUDPBurst waits for the frames of two writes the kernel made on a
// UDP socket to `to`: the datagram "plain", then burst sent with
// UDP_SEGMENT of size bytes. The plain datagram must arrive with NeedsCsum
// as wantPartial says; the burst as one GSO frame if wantGSO, otherwise
// as complete datagrams of at most size bytes. Once completed (and
// segmented) every datagram's checksums must hold and the data must be
// what was sent.
func CheckUDPBurst(t testing.TB, rec *Recorder, lt link.Type, to netip.AddrPort, wantPartial, wantGSO bool, burst []byte, size int) {
	t.Helper()
	l2 := linkHeaderLen(lt)
	isOurs := func(f Frame) bool {
		u, ok := ParseUDP4(IPOf(lt, f.Data))
		return ok && u.Dst == to
	}
	// udp returns the datagram in f, completing a partial checksum first.
	udp := func(f Frame) UDPInfo {
		t.Helper()
		p := buf.FromBytes(f.Data)
		p.Offload = f.Offload
		if err := offload.Complete(p); err != nil {
			t.Fatal(err)
		}
		u, _ := ParseUDP4(p.ToBytes()[l2:])
		p.Release()
		if !u.CsumOK || !u.IPHeaderOK {
			t.Fatalf("bad checksum in %+v", u)
		}
		return u
	}
	f := rec.Wait(t, "plain datagram", isOurs)
	if f.Offload.NeedsCsum != wantPartial || f.Offload.GSO != buf.GSONone {
		t.Fatalf("plain datagram offload %+v, want NeedsCsum %v", f.Offload, wantPartial)
	}
	if u := udp(f); string(u.Payload) != "plain" {
		t.Fatalf("plain datagram carries %q", u.Payload)
	}
	var got []byte
	for len(got) < len(burst) {
		f := rec.Wait(t, "burst", isOurs)
		if wantGSO {
			if f.Offload.GSO != buf.GSOUDPL4 || int(f.Offload.GSOSize) != size {
				t.Fatalf("burst offload %+v, want one UDP GSO frame", f.Offload)
			}
			p := buf.FromBytes(f.Data)
			p.Offload = f.Offload
			segs, err := offload.SegmentFrame(p, lt, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range segs {
				u := udp(Frame{Data: s.ToBytes(), Offload: s.Offload})
				got = append(got, u.Payload...)
				s.Release()
			}
			continue
		}
		if f.Offload.GSO != buf.GSONone || f.Offload.NeedsCsum || len(f.Data) > l2+28+size {
			t.Fatalf("burst frame of %d bytes, offload %+v: want one segment, complete", len(f.Data), f.Offload)
		}
		got = append(got, udp(f).Payload...)
	}
	if !bytes.Equal(got, burst) {
		t.Fatalf("burst arrived as %d bytes that differ from the %d sent", len(got), len(burst))
	}
}

// TCPFlight has the kernel in ns open a TCP connection to server, a
// stack address reached over the Ethernet endpoint ep whose frames rec
// records (the kernel must have a neighbour entry for it). The test
// answers the handshake, never acknowledges data, and collects the
// kernel's initial window of data (10 segments, RFC 6928). With offloads
// the kernel sends TSO frames; the driver must deliver them whole if
// wantGSO, or else cut into MSS-sized segments, with partial checksums
// only if accept says so. The bytes must be the ones written.
func TCPFlight(t testing.TB, ns *netns.NS, ep link.Endpoint, rec *Recorder, server netip.AddrPort, accept offload.Accept, wantGSO bool) {
	t.Helper()
	data := Payload(256 << 10)
	dialed := make(chan net.Conn, 1)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		var c net.Conn
		err := ns.Do(func() (err error) {
			c, err = net.DialTimeout("tcp4", server.String(), Timeout)
			return err
		})
		dialed <- c
		if err == nil {
			c.Write(data) // blocks until the test closes c
		}
	}()
	isTCP := func(f Frame) bool {
		e, err := wire.ParseEthernet(f.Data)
		if err != nil || e.Type() != wire.EtherTypeIPv4 {
			return false
		}
		s, ok := ParseTCP4(e.Payload())
		return ok && s.Dst == server
	}
	f := rec.Wait(t, "SYN", isTCP)
	sp := buf.FromBytes(f.Data)
	sp.Offload = f.Offload
	if err := offload.Complete(sp); err != nil {
		t.Fatal(err)
	}
	syn, _ := ParseTCP4(sp.ToBytes()[wire.EthernetHeaderLen:])
	sp.Release()
	if syn.Flags != TCPSyn || !syn.CsumOK {
		t.Fatalf("first segment: flags %#x, checksum ok %v", syn.Flags, syn.CsumOK)
	}
	kernelMAC := wire.Ethernet(f.Data).Src()
	mss := []byte{2, 4, 0x05, 0xb4} // 1460
	Write(t, ep, Ethernet(kernelMAC, ep.HardwareAddr(), wire.EtherTypeIPv4,
		TCP4(server, syn.Src, 1000, syn.Seq+1, TCPSyn|TCPAck, 65535, mss, nil)), buf.Offload{})
	c := <-dialed
	if c == nil {
		t.Fatal("kernel did not connect")
	}
	t.Cleanup(func() { c.Close(); <-wrote })

	next := syn.Seq + 1
	var stream []byte
	sawGSO, sawCut := false, false
	add := func(b []byte) {
		s, _ := ParseTCP4(b[wire.EthernetHeaderLen:])
		if !s.CsumOK {
			t.Fatalf("segment seq %d: bad checksum", s.Seq)
		}
		if len(b) > wire.EthernetHeaderLen+ep.MTU() {
			t.Fatalf("segment of %d bytes on a %d-byte MTU", len(b), ep.MTU())
		}
		switch {
		case s.Seq == next:
			stream = append(stream, s.Payload...)
			next += uint32(len(s.Payload))
		case int32(s.Seq-next) > 0:
			t.Fatalf("gap: segment seq %d, expected %d", s.Seq, next)
		}
	}
	// The kernel's initial window is 10 segments (RFC 6928).
	for len(stream) < 10*1460 {
		f := rec.Wait(t, "data", isTCP)
		if f.Offload.GSO != buf.GSONone {
			if !wantGSO {
				t.Fatalf("GSO frame delivered to a stack that does not take them: %+v", f.Offload)
			}
			sawGSO = true
		}
		// A segment the driver cut is a header chunk in front of a
		// window onto the large frame's storage.
		sawCut = sawCut || f.Views > 1
		if f.Offload.NeedsCsum && !accept.PartialCsum {
			t.Fatalf("partial checksum delivered to a stack that does not take them")
		}
		p := buf.FromBytes(f.Data)
		p.Offload = f.Offload
		segs, err := offload.SegmentFrame(p, link.TypeEthernet, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			if err := offload.Complete(s); err != nil {
				t.Fatal(err)
			}
			add(s.ToBytes())
			s.Release()
		}
	}
	if sawGSO != wantGSO {
		t.Errorf("saw a GSO frame: %v, want %v", sawGSO, wantGSO)
	}
	if !wantGSO && !sawCut {
		t.Errorf("no segment cut by the driver: the kernel sent no TSO frames")
	}
	if !bytes.Equal(stream, data[:len(stream)]) {
		t.Fatalf("received stream differs from the data written")
	}
}

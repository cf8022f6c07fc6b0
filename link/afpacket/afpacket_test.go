package afpacket_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/netns"
	"ustack/link"
	"ustack/link/afpacket"
	"ustack/link/internal/linktest"
	"ustack/link/offload"
	"ustack/wire"
)

// A veth pair joins two namespaces: the endpoint is bound to stackDev in
// stackNS, the kernel peer has kernelIP on kernelDev in kernelNS. The test
// plays the stack at stackIP.
var (
	kernelIP = netip.MustParseAddr("10.200.3.1")
	stackIP  = netip.MustParseAddr("10.200.3.2")
)

const (
	stackDev  = "ust-s"
	kernelDev = "ust-k"
)

type env struct {
	stackNS, kernelNS *netns.NS
	ep                *afpacket.Endpoint
	rec               *linktest.Recorder
	stackMAC          wire.MAC // the interface's
	kernelMAC         wire.MAC
}

func macOf(t *testing.T, ns *netns.NS, dev string) wire.MAC {
	t.Helper()
	var m wire.MAC
	ns.MustDo(t, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		copy(m[:], ifi.HardwareAddr)
		return nil
	})
	return m
}

// waitOperUp polls until dev in ns is operationally up, failing after
// linktest.Timeout.
func waitOperUp(t *testing.T, ns *netns.NS, dev string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(linktest.Timeout)
	for {
		out := ns.Run(t, "ip", "-o", "link", "show", "dev", dev)
		if strings.Contains(out, "state UP") {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s not up: %s", dev, out)
		}
	}
}

// setup builds the pair and opens the endpoint with cfg. tweak, if not
// nil, runs on the kernel side before the endpoint opens.
func setup(t *testing.T, cfg *afpacket.Config, tweak func(*netns.NS)) *env {
	t.Helper()
	e := &env{stackNS: netns.New(t), kernelNS: netns.New(t)}
	netns.CreateVeth(t, stackDev, e.stackNS, kernelDev, e.kernelNS)
	e.kernelNS.Run(t, "ip", "addr", "add", kernelIP.String()+"/24", "dev", kernelDev)
	e.stackMAC = macOf(t, e.stackNS, stackDev)
	e.kernelMAC = macOf(t, e.kernelNS, kernelDev)
	e.kernelNS.Run(t, "ip", "neigh", "replace", stackIP.String(), "lladdr", e.stackMAC.String(), "dev", kernelDev)
	if tweak != nil {
		tweak(e.kernelNS)
	}
	// Until the kernel's link watcher has seen the carrier and given the
	// device its queueing discipline, frames sent are dropped silently.
	waitOperUp(t, e.stackNS, stackDev)
	waitOperUp(t, e.kernelNS, kernelDev)
	e.stackNS.MustDo(t, func() (err error) {
		e.ep, err = afpacket.Open(stackDev, cfg)
		return err
	})
	t.Cleanup(func() { e.ep.Close() })
	e.rec = linktest.NewRecorder(1024)
	e.ep.Attach(e.rec)
	return e
}

func TestOpen(t *testing.T) {
	e := setup(t, &afpacket.Config{Promisc: true, Accept: offload.Accept{LargeFrames: true}}, nil)
	ep := e.ep
	if ep.Name() != "afpacket:"+stackDev || ep.DeviceName() != stackDev || ep.Type() != link.TypeEthernet || ep.IfIndex() == 0 {
		t.Errorf("Name %q DeviceName %q Type %v IfIndex %d", ep.Name(), ep.DeviceName(), ep.Type(), ep.IfIndex())
	}
	if ep.MTU() != 1500 || ep.HardwareAddr() != e.stackMAC {
		t.Errorf("MTU %d MAC %v, want 1500 %v", ep.MTU(), ep.HardwareAddr(), e.stackMAC)
	}
	want := link.CapTxChecksum | link.CapTSO4 | link.CapTSO6 | link.CapUSO | link.CapRxChecksum | link.CapRxGSO
	if ep.Capabilities() != want {
		t.Errorf("Capabilities %v, want %v", ep.Capabilities(), want)
	}
	if out := e.stackNS.Run(t, "ip", "-d", "link", "show", stackDev); !strings.Contains(out, "promiscuity 1") {
		t.Errorf("not promiscuous while open: %s", out)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ep.Close(); !errors.Is(err, link.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if out := e.stackNS.Run(t, "ip", "-d", "link", "show", stackDev); !strings.Contains(out, "promiscuity 0") {
		t.Errorf("still promiscuous after Close: %s", out)
	}
	p := buf.FromBytes([]byte{1})
	if n, err := ep.WriteBatch([]*buf.Packet{p}); n != 0 || !errors.Is(err, link.ErrClosed) {
		t.Errorf("WriteBatch after Close = %d, %v", n, err)
	}
	e.stackNS.MustDo(t, func() error {
		if _, err := afpacket.Open("ust-none", nil); err == nil {
			t.Error("Open of a missing interface succeeded")
		}
		return nil
	})
}

// TestPing answers the kernel's ping across the veth.
func TestPing(t *testing.T) {
	e := setup(t, &afpacket.Config{MAC: wire.MAC{0x02, 0, 0x5e, 0xc8, 3, 2}}, nil)
	stackMAC := e.ep.HardwareAddr()
	e.kernelNS.Run(t, "ip", "neigh", "del", stackIP.String(), "dev", kernelDev)
	ping := e.kernelNS.Start(t, "ping", "-c", "1", "-W", "10", stackIP.String())
	f := e.rec.Wait(t, "ARP request", func(f linktest.Frame) bool {
		eth, err := wire.ParseEthernet(f.Data)
		if err != nil || eth.Type() != wire.EtherTypeARP {
			return false
		}
		a, err := wire.ParseARP(eth.Payload())
		return err == nil && a.Op() == wire.ARPRequest && a.TargetIP() == stackIP
	})
	if src := wire.Ethernet(f.Data).Src(); src != e.kernelMAC {
		t.Fatalf("ARP request from %v, want %v", src, e.kernelMAC)
	}
	linktest.Write(t, e.ep, linktest.Ethernet(e.kernelMAC, stackMAC, wire.EtherTypeARP,
		linktest.ARP(wire.ARPReply, stackMAC, stackIP, e.kernelMAC, kernelIP)), buf.Offload{})
	f = e.rec.Wait(t, "echo request", func(f linktest.Frame) bool {
		ip := linktest.IPOf(link.TypeEthernet, f.Data)
		return ip != nil && linktest.IsEchoRequest(ip, stackIP)
	})
	reply := linktest.EchoReply(f.Data[wire.EthernetHeaderLen:])
	linktest.Write(t, e.ep, linktest.Ethernet(e.kernelMAC, stackMAC, wire.EtherTypeIPv4, reply), buf.Offload{})
	if err := ping.Wait(); err != nil {
		t.Fatalf("ping: %v\n%s", err, ping.Output())
	}
}

// TestWriteUDP sends datagrams to a kernel socket across the veth with a
// full checksum, a partial one and as one UDP GSO frame, in one batch; one
// with a bad checksum shows the kernel checks.
func TestWriteUDP(t *testing.T) {
	e := setup(t, nil, nil)
	to := netip.AddrPortFrom(kernelIP, 9000)
	from := netip.AddrPortFrom(stackIP, 4000)
	c := linktest.ListenUDP(t, e.kernelNS, to)
	frame := func(ip []byte, o buf.Offload) *buf.Packet {
		p := buf.FromBytes(linktest.Ethernet(e.kernelMAC, e.stackMAC, wire.EtherTypeIPv4, ip))
		p.Offload = o
		return p
	}
	big := linktest.Payload(3000)
	gso := linktest.PartialOffload(wire.EthernetHeaderLen)
	gso.GSO, gso.GSOSize, gso.HdrLen = buf.GSOUDPL4, 1400, wire.EthernetHeaderLen+28
	batch := []*buf.Packet{
		frame(linktest.UDP4(from, to, []byte("bad"), false, true), buf.Offload{}),
		frame(linktest.UDP4(from, to, []byte("full"), false, false), buf.Offload{}),
		frame(linktest.UDP4(from, to, []byte("partial"), true, false), linktest.PartialOffload(wire.EthernetHeaderLen)),
		frame(linktest.UDP4(from, to, big, true, false), gso),
	}
	if n, err := e.ep.WriteBatch(batch); n != 4 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	for _, want := range [][]byte{[]byte("full"), []byte("partial"), big[:1400], big[1400:2800], big[2800:]} {
		got, src := linktest.ReadUDP(t, c)
		if !bytes.Equal(got, want) || src != from {
			t.Fatalf("kernel received %d bytes from %v, want %d from %v", len(got), src, len(want), from)
		}
	}
}

// TestWriteTooBig: a frame over the MTU without GSO is refused by the
// kernel, counted and skipped; the rest of the batch goes out.
func TestWriteTooBig(t *testing.T) {
	e := setup(t, nil, nil)
	to := netip.AddrPortFrom(kernelIP, 9000)
	from := netip.AddrPortFrom(stackIP, 4000)
	c := linktest.ListenUDP(t, e.kernelNS, to)
	eth := func(ip []byte) *buf.Packet {
		return buf.FromBytes(linktest.Ethernet(e.kernelMAC, e.stackMAC, wire.EtherTypeIPv4, ip))
	}
	batch := []*buf.Packet{
		eth(linktest.UDP4(from, to, linktest.Payload(3000), false, false)),
		eth(linktest.UDP4(from, to, []byte("after"), false, false)),
	}
	n, err := e.ep.WriteBatch(batch)
	if n != 1 || err == nil {
		t.Fatalf("WriteBatch = %d, %v; want 1 and EMSGSIZE", n, err)
	}
	if got, _ := linktest.ReadUDP(t, c); string(got) != "after" {
		t.Fatalf("kernel received %q", got)
	}
	if s := e.ep.LinkStats(); s.TxErrors.Load() != 1 || s.TxPackets.Load() != 1 {
		t.Errorf("TxErrors %d TxPackets %d, want 1 1", s.TxErrors.Load(), s.TxPackets.Load())
	}
}

// TestReceiveOffload: the kernel peer sends a datagram and a UDP GSO burst
// across the veth. With the veth's offloads on (the default) they arrive
// with partial checksums and as one large frame; the driver completes and
// segments them unless the stack takes them. With transmit offloads off
// the kernel finishes them itself.
func TestReceiveOffload(t *testing.T) {
	txOff := func(ns *netns.NS) { ns.Run(t, "ethtool", "-K", kernelDev, "tx", "off") }
	tests := []struct {
		name        string
		tweak       func(*netns.NS)
		accept      offload.Accept
		wantPartial bool
		wantGSO     bool
	}{
		{"driver completes and segments", nil, offload.Accept{}, false, false},
		{"stack takes partial", nil, offload.Accept{PartialCsum: true}, true, false},
		{"stack takes all", nil, offload.Accept{PartialCsum: true, LargeFrames: true}, true, true},
		{"peer tx offload off", txOff, offload.Accept{PartialCsum: true, LargeFrames: true}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, &afpacket.Config{Accept: tc.accept}, tc.tweak)
			to := netip.AddrPortFrom(stackIP, 7000)
			c := linktest.DialUDP(t, e.kernelNS, netip.AddrPortFrom(kernelIP, 5000), to)
			if _, err := c.Write([]byte("plain")); err != nil {
				t.Fatal(err)
			}
			linktest.SetUDPSegment(t, c, 1000)
			burst := linktest.Payload(5500)
			if _, err := c.Write(burst); err != nil {
				t.Fatal(err)
			}
			linktest.CheckUDPBurst(t, e.rec, link.TypeEthernet, to, tc.wantPartial, tc.wantGSO, burst, 1000)
		})
	}
}

// TestReceiveTSO: the kernel peer's TCP sends TSO frames across the veth.
func TestReceiveTSO(t *testing.T) {
	for _, tc := range []struct {
		name    string
		accept  offload.Accept
		wantGSO bool
	}{
		{"segmented by driver", offload.Accept{}, false},
		{"large frames", offload.Accept{PartialCsum: true, LargeFrames: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, &afpacket.Config{Accept: tc.accept}, nil)
			linktest.TCPFlight(t, e.kernelNS, e.ep, e.rec, netip.AddrPortFrom(stackIP, 8080), tc.accept, tc.wantGSO)
		})
	}
}

// TestIgnoresOutgoing: frames the host in the stack's namespace sends out
// of the interface are not delivered; frames that come in are.
func TestIgnoresOutgoing(t *testing.T) {
	e := setup(t, nil, nil)
	hostIP := netip.MustParseAddr("10.200.3.9")
	e.stackNS.Run(t, "ip", "addr", "add", hostIP.String()+"/24", "dev", stackDev)
	// The host ARPs for the peer (outgoing) and gets a reply (incoming).
	e.stackNS.Start(t, "ping", "-c", "1", "-W", "10", kernelIP.String())
	e.rec.Wait(t, "ARP reply to the host", func(f linktest.Frame) bool {
		eth, err := wire.ParseEthernet(f.Data)
		if err != nil {
			return false
		}
		if eth.Src() == e.stackMAC {
			t.Fatalf("outgoing frame delivered: % x", f.Data)
		}
		if eth.Type() != wire.EtherTypeARP {
			return false
		}
		a, err := wire.ParseARP(eth.Payload())
		return err == nil && a.Op() == wire.ARPReply && a.TargetIP() == hostIP
	})
}

// TestDetached: frames that arrive with no dispatcher are dropped and
// counted; re-attaching resumes delivery.
func TestDetached(t *testing.T) {
	// No IPv6 on the peer, so nothing but the test's datagrams arrives.
	quiet := func(ns *netns.NS) { ns.Run(t, "sysctl", "-qw", "net.ipv6.conf."+kernelDev+".disable_ipv6=1") }
	e := setup(t, nil, quiet)
	e.ep.Attach(nil)
	to := netip.AddrPortFrom(stackIP, 7000)
	c := linktest.DialUDP(t, e.kernelNS, netip.AddrPortFrom(kernelIP, 5000), to)
	if _, err := c.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	// Wait until the reader has dropped it: a spin bounded by the
	// kernel's delivery of one frame across the veth.
	deadline := time.Now().Add(linktest.Timeout)
	for e.ep.LinkStats().RxDrops.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("frame not dropped while detached")
		}
		runtime.Gosched()
	}
	e.ep.Attach(e.rec)
	if _, err := c.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	f := e.rec.Wait(t, "second", func(f linktest.Frame) bool {
		u, ok := linktest.ParseUDP4(linktest.IPOf(link.TypeEthernet, f.Data))
		return ok && u.Dst == to
	})
	if u, _ := linktest.ParseUDP4(f.Data[wire.EthernetHeaderLen:]); string(u.Payload) != "second" {
		t.Fatalf("first datagram after re-attach is %q", u.Payload)
	}
	if d := e.ep.LinkStats().RxDrops.Load(); d != 1 {
		t.Errorf("RxDrops = %d, want 1", d)
	}
}

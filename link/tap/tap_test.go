package tap_test

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
	"ustack/link/internal/linktest"
	"ustack/link/offload"
	"ustack/link/tap"
	"ustack/wire"
)

// The kernel side of the TAP has kernelIP; the test plays the stack at
// stackIP with stackMAC.
var (
	kernelIP = netip.MustParseAddr("10.200.1.1")
	stackIP  = netip.MustParseAddr("10.200.1.2")
	stackMAC = wire.MAC{0x02, 0x00, 0x5e, 0xc8, 0x01, 0x02}
)

const dev = "ust0"

// setup makes a namespace with a TAP device dev in it opened with cfg, the
// kernel's address on it, and a recorder attached.
func setup(t *testing.T, cfg *tap.Config) (*netns.NS, *tap.Endpoint, *linktest.Recorder, wire.MAC) {
	t.Helper()
	ns := netns.New(t)
	var ep *tap.Endpoint
	var kernelMAC wire.MAC
	ns.MustDo(t, func() (err error) {
		if ep, err = tap.Open(dev, cfg); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		copy(kernelMAC[:], ifi.HardwareAddr)
		return nil
	})
	t.Cleanup(func() { ep.Close() })
	ns.Run(t, "ip", "addr", "add", kernelIP.String()+"/24", "dev", dev)
	rec := linktest.NewRecorder(1024)
	ep.Attach(rec)
	return ns, ep, rec, kernelMAC
}

func TestOpen(t *testing.T) {
	ns, ep, _, kernelMAC := setup(t, &tap.Config{MTU: 1400, MAC: stackMAC, Up: true})
	if ep.Name() != "tap:"+dev || ep.DeviceName() != dev || ep.Type() != link.TypeEthernet {
		t.Errorf("Name %q DeviceName %q Type %v", ep.Name(), ep.DeviceName(), ep.Type())
	}
	if ep.MTU() != 1400 || ep.HardwareAddr() != stackMAC {
		t.Errorf("MTU %d MAC %v, want 1400 %v", ep.MTU(), ep.HardwareAddr(), stackMAC)
	}
	want := link.CapTxChecksum | link.CapTSO4 | link.CapTSO6 | link.CapUSO | link.CapRxChecksum
	if ep.Capabilities() != want {
		t.Errorf("Capabilities %v, want %v", ep.Capabilities(), want)
	}
	out := ns.Run(t, "ip", "-d", "link", "show", dev)
	for _, s := range []string{"mtu 1400", "state UNKNOWN", "tap", "vnet_hdr"} {
		if !strings.Contains(out, s) {
			t.Errorf("ip link show lacks %q:\n%s", s, out)
		}
	}
	if kernelMAC == stackMAC {
		t.Errorf("kernel's MAC is the stack's")
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ep.Close(); !errors.Is(err, link.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ns.Exec("ip", "link", "show", dev); err == nil {
		t.Errorf("device %s outlives the endpoint that created it", dev)
	}
	p := buf.FromBytes([]byte{1})
	if n, err := ep.WriteBatch([]*buf.Packet{p}); n != 0 || !errors.Is(err, link.ErrClosed) {
		t.Errorf("WriteBatch after Close = %d, %v", n, err)
	}
}

func TestOpenExistingAndDefaults(t *testing.T) {
	ns := netns.New(t)
	netns.CreateTuntap(t, ns, "ust1", "tap")
	var ep, anon *tap.Endpoint
	var devMAC wire.MAC
	ns.MustDo(t, func() (err error) {
		if ep, err = tap.Open("ust1", nil); err != nil {
			return err
		}
		if anon, err = tap.Open("", nil); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("ust1")
		if err != nil {
			return err
		}
		copy(devMAC[:], ifi.HardwareAddr)
		return nil
	})
	defer anon.Close()
	if ep.HardwareAddr() != devMAC || ep.MTU() != 1500 {
		t.Errorf("MAC %v MTU %d, want the device's %v 1500", ep.HardwareAddr(), ep.MTU(), devMAC)
	}
	if !strings.HasPrefix(anon.DeviceName(), "tap") {
		t.Errorf("kernel-named device %q", anon.DeviceName())
	}
	if out := ns.Run(t, "ip", "link", "show", "ust1"); strings.Contains(out, ",UP") {
		t.Errorf("device brought up without Config.Up: %s", out)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "ip", "link", "show", "ust1") // persistent: still there
}

// TestPing answers the kernel's ping: its ARP request and echo request
// reach the dispatcher, and the ARP and echo replies the test writes reach
// the kernel (ping exits 0 only if they do).
func TestPing(t *testing.T) {
	ns, ep, rec, _ := setup(t, &tap.Config{MAC: stackMAC, Up: true})
	ping := ns.Start(t, "ping", "-c", "1", "-W", "10", stackIP.String())

	f := rec.Wait(t, "ARP request", func(f linktest.Frame) bool {
		e, err := wire.ParseEthernet(f.Data)
		if err != nil || e.Type() != wire.EtherTypeARP {
			return false
		}
		a, err := wire.ParseARP(e.Payload())
		return err == nil && a.Op() == wire.ARPRequest && a.TargetIP() == stackIP
	})
	e := wire.Ethernet(f.Data)
	a := wire.ARP(e.Payload())
	kernelMAC := e.Src()
	if !e.Dst().IsBroadcast() || a.SenderMAC() != kernelMAC || a.SenderIP() != kernelIP {
		t.Fatalf("ARP request dst %v sender %v %v", e.Dst(), a.SenderMAC(), a.SenderIP())
	}
	linktest.Write(t, ep, linktest.Ethernet(kernelMAC, stackMAC, wire.EtherTypeARP,
		linktest.ARP(wire.ARPReply, stackMAC, stackIP, kernelMAC, kernelIP)), buf.Offload{})

	f = rec.Wait(t, "echo request", func(f linktest.Frame) bool {
		e, err := wire.ParseEthernet(f.Data)
		return err == nil && e.Type() == wire.EtherTypeIPv4 && linktest.IsEchoRequest(e.Payload(), stackIP)
	})
	if e := wire.Ethernet(f.Data); e.Dst() != stackMAC {
		t.Fatalf("echo request to %v, want %v", e.Dst(), stackMAC)
	}
	reply := linktest.EchoReply(f.Data[wire.EthernetHeaderLen:])
	linktest.Write(t, ep, linktest.Ethernet(kernelMAC, stackMAC, wire.EtherTypeIPv4, reply), buf.Offload{})
	if err := ping.Wait(); err != nil {
		t.Fatalf("ping: %v\n%s", err, ping.Output())
	}
}

// TestWriteUDP writes datagrams to a kernel socket with a full checksum, a
// partial one (NEEDS_CSUM in the virtio-net header) and as one UDP GSO
// frame; one with a bad checksum shows the kernel checks.
func TestWriteUDP(t *testing.T) {
	ns, ep, _, kernelMAC := setup(t, &tap.Config{MAC: stackMAC, Up: true})
	to := netip.AddrPortFrom(kernelIP, 9000)
	from := netip.AddrPortFrom(stackIP, 4000)
	c := linktest.ListenUDP(t, ns, to)
	frame := func(ip []byte) []byte { return linktest.Ethernet(kernelMAC, stackMAC, wire.EtherTypeIPv4, ip) }

	linktest.Write(t, ep, frame(linktest.UDP4(from, to, []byte("bad"), false, true)), buf.Offload{})
	linktest.Write(t, ep, frame(linktest.UDP4(from, to, []byte("full"), false, false)), buf.Offload{})
	linktest.Write(t, ep, frame(linktest.UDP4(from, to, []byte("partial"), true, false)), linktest.PartialOffload(wire.EthernetHeaderLen))
	big := linktest.Payload(250)
	gso := linktest.PartialOffload(wire.EthernetHeaderLen)
	gso.GSO, gso.GSOSize, gso.HdrLen = buf.GSOUDPL4, 100, wire.EthernetHeaderLen+28
	linktest.Write(t, ep, frame(linktest.UDP4(from, to, big, true, false)), gso)

	for _, want := range [][]byte{[]byte("full"), []byte("partial"), big[:100], big[100:200], big[200:]} {
		got, src := linktest.ReadUDP(t, c)
		if !bytes.Equal(got, want) || src != from {
			t.Fatalf("kernel received %q from %v, want %q from %v", got, src, want, from)
		}
	}
	if n := ep.LinkStats().TxPackets.Load(); n != 4 {
		t.Errorf("TxPackets = %d, want 4", n)
	}
}

// TestReceiveOffload has the kernel send a plain UDP datagram and a UDP GSO
// burst to the stack, with and without kernel offloads and for stacks that
// take partial checksums and large frames or not. Whatever reaches the
// dispatcher must be what the stack asked for, with valid checksums once
// completed, and carry the data sent.
func TestReceiveOffload(t *testing.T) {
	tests := []struct {
		name        string
		offload     bool
		accept      offload.Accept
		wantPartial bool // the plain datagram arrives with NeedsCsum
		wantGSO     bool // the burst arrives as one GSO frame
	}{
		{"no offload", false, offload.Accept{}, false, false},
		{"no offload, stack takes all", false, offload.Accept{PartialCsum: true, LargeFrames: true}, false, false},
		{"offload, driver completes and segments", true, offload.Accept{}, false, false},
		{"offload, stack takes partial", true, offload.Accept{PartialCsum: true}, true, false},
		{"offload, stack takes all", true, offload.Accept{PartialCsum: true, LargeFrames: true}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, ep, rec, _ := setup(t, &tap.Config{MAC: stackMAC, Up: true, Offload: tc.offload, Accept: tc.accept})
			if got := ep.Capabilities().Has(link.CapRxGSO); got != tc.wantGSO {
				t.Errorf("CapRxGSO = %v, want %v", got, tc.wantGSO)
			}
			ns.Run(t, "ip", "neigh", "replace", stackIP.String(), "lladdr", stackMAC.String(), "dev", dev)
			from := netip.AddrPortFrom(kernelIP, 5000)
			to := netip.AddrPortFrom(stackIP, 7000)
			c := linktest.DialUDP(t, ns, from, to)
			if _, err := c.Write([]byte("plain")); err != nil {
				t.Fatal(err)
			}
			linktest.SetUDPSegment(t, c, 200)
			burst := linktest.Payload(1000)
			if _, err := c.Write(burst); err != nil {
				t.Fatal(err)
			}
			linktest.CheckUDPBurst(t, rec, link.TypeEthernet, to, tc.wantPartial, tc.wantGSO, burst, 200)
		})
	}
}

// TestReceiveTSO has the kernel open a TCP connection to the stack (the
// test answers the handshake and never acknowledges data) and send more
// than its initial window. With offloads the kernel sends TSO frames; the
// driver delivers them whole or cut into MSS-sized segments, as the stack
// asked, and the bytes must be the ones written.
func TestReceiveTSO(t *testing.T) {
	tests := []struct {
		name    string
		accept  offload.Accept
		wantGSO bool
	}{
		{"segmented by driver", offload.Accept{}, false},
		{"large frames", offload.Accept{PartialCsum: true, LargeFrames: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, ep, rec, _ := setup(t, &tap.Config{MAC: stackMAC, Up: true, Offload: true, Accept: tc.accept})
			ns.Run(t, "ip", "neigh", "replace", stackIP.String(), "lladdr", stackMAC.String(), "dev", dev)
			linktest.TCPFlight(t, ns, ep, rec, netip.AddrPortFrom(stackIP, 8080), tc.accept, tc.wantGSO)
		})
	}
}

// TestDeviceDeleted: when the device is deleted under the endpoint the
// reader stops with an error instead of spinning, and Close still works.
func TestDeviceDeleted(t *testing.T) {
	ns, ep, _, _ := setup(t, &tap.Config{Up: true})
	ns.Run(t, "ip", "link", "del", dev)
	deadline := time.Now().Add(linktest.Timeout)
	for ep.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("reader did not notice the device is gone")
		}
		runtime.Gosched()
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
}

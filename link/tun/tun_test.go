package tun_test

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"ustack/buf"
	"ustack/internal/netns"
	"ustack/link"
	"ustack/link/internal/linktest"
	"ustack/link/offload"
	"ustack/link/tun"
)

// The kernel side of the TUN has kernelIP; the test plays the stack at
// stackIP.
var (
	kernelIP = netip.MustParseAddr("10.200.2.1")
	stackIP  = netip.MustParseAddr("10.200.2.2")
)

const dev = "ustun0"

func setup(t *testing.T, cfg *tun.Config) (*netns.NS, *tun.Endpoint, *linktest.Recorder) {
	t.Helper()
	ns := netns.New(t)
	var ep *tun.Endpoint
	ns.MustDo(t, func() (err error) {
		ep, err = tun.Open(dev, cfg)
		return err
	})
	t.Cleanup(func() { ep.Close() })
	ns.Run(t, "ip", "addr", "add", kernelIP.String()+"/24", "dev", dev)
	rec := linktest.NewRecorder(1024)
	ep.Attach(rec)
	return ns, ep, rec
}

func TestOpen(t *testing.T) {
	ns, ep, _ := setup(t, &tun.Config{MTU: 1300, Up: true, Offload: true, Accept: offload.Accept{LargeFrames: true}})
	if ep.Name() != "tun:"+dev || ep.DeviceName() != dev || ep.Type() != link.TypeIP || ep.MTU() != 1300 {
		t.Errorf("Name %q DeviceName %q Type %v MTU %d", ep.Name(), ep.DeviceName(), ep.Type(), ep.MTU())
	}
	if !ep.HardwareAddr().IsZero() {
		t.Errorf("HardwareAddr %v on an IP link", ep.HardwareAddr())
	}
	if !ep.Capabilities().Has(link.CapRxGSO | link.CapTSO4 | link.CapTxChecksum) {
		t.Errorf("Capabilities %v", ep.Capabilities())
	}
	out := ns.Run(t, "ip", "-d", "link", "show", dev)
	for _, s := range []string{"mtu 1300", "tun", "vnet_hdr", "UP"} {
		if !strings.Contains(out, s) {
			t.Errorf("ip link show lacks %q:\n%s", s, out)
		}
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Exec("ip", "link", "show", dev); err == nil {
		t.Errorf("device %s outlives the endpoint that created it", dev)
	}
	p := buf.FromBytes([]byte{0x45})
	if n, err := ep.WriteBatch([]*buf.Packet{p}); n != 0 || !errors.Is(err, link.ErrClosed) {
		t.Errorf("WriteBatch after Close = %d, %v", n, err)
	}
}

// TestPing answers the kernel's ping: the echo request reaches the
// dispatcher as a bare IP packet and the reply written reaches ping.
func TestPing(t *testing.T) {
	ns, ep, rec := setup(t, &tun.Config{Up: true})
	ping := ns.Start(t, "ping", "-c", "1", "-W", "10", stackIP.String())
	f := rec.Wait(t, "echo request", func(f linktest.Frame) bool {
		return linktest.IsEchoRequest(f.Data, stackIP)
	})
	linktest.Write(t, ep, linktest.EchoReply(f.Data), buf.Offload{})
	if err := ping.Wait(); err != nil {
		t.Fatalf("ping: %v\n%s", err, ping.Output())
	}
}

// TestWriteUDP writes datagrams with a full checksum, a partial one and as
// one UDP GSO packet; one with a bad checksum shows the kernel checks.
func TestWriteUDP(t *testing.T) {
	ns, ep, _ := setup(t, &tun.Config{Up: true})
	to := netip.AddrPortFrom(kernelIP, 9000)
	from := netip.AddrPortFrom(stackIP, 4000)
	c := linktest.ListenUDP(t, ns, to)
	linktest.Write(t, ep, linktest.UDP4(from, to, []byte("bad"), false, true), buf.Offload{})
	linktest.Write(t, ep, linktest.UDP4(from, to, []byte("full"), false, false), buf.Offload{})
	linktest.Write(t, ep, linktest.UDP4(from, to, []byte("partial"), true, false), linktest.PartialOffload(0))
	big := linktest.Payload(3000)
	gso := linktest.PartialOffload(0)
	gso.GSO, gso.GSOSize, gso.HdrLen = buf.GSOUDPL4, 1200, 28
	linktest.Write(t, ep, linktest.UDP4(from, to, big, true, false), gso)
	for _, want := range [][]byte{[]byte("full"), []byte("partial"), big[:1200], big[1200:2400], big[2400:]} {
		got, src := linktest.ReadUDP(t, c)
		if !bytes.Equal(got, want) || src != from {
			t.Fatalf("kernel received %d bytes from %v, want %d from %v", len(got), src, len(want), from)
		}
	}
	if s := ep.LinkStats(); s.TxPackets.Load() != 4 || s.TxErrors.Load() != 0 {
		t.Errorf("TxPackets %d TxErrors %d, want 4 0", s.TxPackets.Load(), s.TxErrors.Load())
	}
}

// TestWriteRejected: a packet the kernel refuses (a GSO request without
// its headers) is counted and skipped; the rest of the batch is written.
func TestWriteRejected(t *testing.T) {
	ns, ep, _ := setup(t, &tun.Config{Up: true})
	to := netip.AddrPortFrom(kernelIP, 9000)
	from := netip.AddrPortFrom(stackIP, 4000)
	c := linktest.ListenUDP(t, ns, to)
	bad := buf.FromBytes([]byte{0x45, 0})
	bad.Offload = buf.Offload{GSO: buf.GSOTCPv4, GSOSize: 100, NeedsCsum: true, CsumStart: 20, CsumOffset: 16}
	good := buf.FromBytes(linktest.UDP4(from, to, []byte("after"), false, false))
	n, err := ep.WriteBatch([]*buf.Packet{bad, good})
	if n != 1 || err == nil {
		t.Fatalf("WriteBatch = %d, %v; want 1 and the kernel's error", n, err)
	}
	if got, _ := linktest.ReadUDP(t, c); string(got) != "after" {
		t.Fatalf("kernel received %q", got)
	}
	if e := ep.LinkStats().TxErrors.Load(); e != 1 {
		t.Errorf("TxErrors = %d, want 1", e)
	}
}

// TestReceiveOffload: the kernel sends a datagram and a UDP GSO burst; the
// stack gets what it asked for.
func TestReceiveOffload(t *testing.T) {
	tests := []struct {
		name        string
		offload     bool
		accept      offload.Accept
		wantPartial bool
		wantGSO     bool
	}{
		{"no offload", false, offload.Accept{PartialCsum: true, LargeFrames: true}, false, false},
		{"offload, driver completes and segments", true, offload.Accept{}, false, false},
		{"offload, stack takes all", true, offload.Accept{PartialCsum: true, LargeFrames: true}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, _, rec := setup(t, &tun.Config{Up: true, Offload: tc.offload, Accept: tc.accept})
			to := netip.AddrPortFrom(stackIP, 7000)
			c := linktest.DialUDP(t, ns, netip.AddrPortFrom(kernelIP, 5000), to)
			if _, err := c.Write([]byte("plain")); err != nil {
				t.Fatal(err)
			}
			linktest.SetUDPSegment(t, c, 300)
			burst := linktest.Payload(1000)
			if _, err := c.Write(burst); err != nil {
				t.Fatal(err)
			}
			linktest.CheckUDPBurst(t, rec, link.TypeIP, to, tc.wantPartial, tc.wantGSO, burst, 300)
		})
	}
}

// TestConcurrentWrite: WriteBatch from several goroutines at once (run
// with -race); every datagram arrives.
func TestConcurrentWrite(t *testing.T) {
	ns, ep, _ := setup(t, &tun.Config{Up: true})
	to := netip.AddrPortFrom(kernelIP, 9000)
	c := linktest.ListenUDP(t, ns, to)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			from := netip.AddrPortFrom(stackIP, uint16(4000+w))
			for range each {
				batch := []*buf.Packet{
					buf.FromBytes(linktest.UDP4(from, to, []byte("x"), false, false)),
					buf.FromBytes(linktest.UDP4(from, to, []byte("y"), true, false)),
				}
				batch[1].Offload = linktest.PartialOffload(0)
				if n, err := ep.WriteBatch(batch); n != 2 || err != nil {
					t.Errorf("WriteBatch = %d, %v", n, err)
				}
			}
		})
	}
	wg.Wait()
	perWriter := map[netip.AddrPort]int{}
	for range 2 * writers * each {
		_, from := linktest.ReadUDP(t, c)
		perWriter[from]++
	}
	for from, n := range perWriter {
		if n != 2*each {
			t.Errorf("%d datagrams from %v, want %d", n, from, 2*each)
		}
	}
}

// TestCloseWhileBusy: Close while another goroutine writes and the kernel
// sends: the writer sees link.ErrClosed, the reader stops, nothing leaks
// or races.
func TestCloseWhileBusy(t *testing.T) {
	ns, ep, _ := setup(t, &tun.Config{Up: true})
	ns.Start(t, "ping", "-f", "-c", "1000", stackIP.String())
	from := netip.AddrPortFrom(stackIP, 4000)
	to := netip.AddrPortFrom(kernelIP, 9)
	done := make(chan error)
	go func() {
		for {
			p := buf.FromBytes(linktest.UDP4(from, to, []byte("z"), false, false))
			if _, err := ep.WriteBatch([]*buf.Packet{p}); err != nil {
				done <- err
				return
			}
		}
	}()
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, link.ErrClosed) {
		t.Fatalf("writer stopped with %v, want link.ErrClosed", err)
	}
}

// TestMultiQueueAndNoTxOffload: a TUN device with two queues, whose
// kernel flows land on both; with NoTxOffload the driver still takes
// large packets and partial checksums (it finishes them itself), and GRO
// announces large received packets.
func TestMultiQueueAndNoTxOffload(t *testing.T) {
	ns, ep, rec := setup(t, &tun.Config{Up: true, Queues: 2, NoTxOffload: true, Accept: offload.Accept{GRO: true}})
	if ep.Queues() != 2 {
		t.Fatalf("Queues = %d", ep.Queues())
	}
	want := link.CapTxChecksum | link.CapTSO4 | link.CapTSO6 | link.CapUSO | link.CapRxChecksum | link.CapRxGSO
	if c := ep.Capabilities(); c != want {
		t.Errorf("Capabilities %v, want %v", c, want)
	}
	if out := ns.Run(t, "ip", "-d", "link", "show", dev); !strings.Contains(out, "multi_queue") {
		t.Errorf("ip -d link show lacks multi_queue:\n%s", out)
	}
	to := netip.AddrPortFrom(stackIP, 7000)
	const flows = 32 // all on one queue with probability 2^-31
	for i := range flows {
		c := linktest.DialUDP(t, ns, netip.AddrPortFrom(kernelIP, uint16(5000+i)), to)
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range flows {
		rec.Wait(t, "datagram", func(f linktest.Frame) bool {
			u, ok := linktest.ParseUDP4(f.Data)
			return ok && u.Dst == to
		})
	}
	if q := ep.QueueRxFrames(); q[0] == 0 || q[1] == 0 {
		t.Errorf("frames read per queue %v, want some on both", q)
	}
}

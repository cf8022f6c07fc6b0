package tap_test

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/netns"
	"ustack/link/internal/linktest"
	"ustack/link/tap"
	"ustack/wire"
)

// flows is how many UDP flows the multi-queue tests send each way: with
// the kernel hashing each to one of two queues, all of them land on one
// with probability 2^-31.
const flows = 32

// TestMultiQueue opens a device with two queues. The kernel sends one
// datagram on each of many flows: every one reaches the dispatcher and
// both queues read some. The stack's datagrams on as many flows, written
// to the queue of their flow, all reach a kernel socket.
func TestMultiQueue(t *testing.T) {
	ns, ep, rec, kernelMAC := setup(t, &tap.Config{MAC: stackMAC, Up: true, Queues: 2})
	if ep.Queues() != 2 {
		t.Fatalf("Queues = %d, want 2", ep.Queues())
	}
	if out := ns.Run(t, "ip", "-d", "link", "show", dev); !strings.Contains(out, "multi_queue") {
		t.Errorf("ip -d link show lacks multi_queue:\n%s", out)
	}
	ns.Run(t, "ip", "neigh", "replace", stackIP.String(), "lladdr", stackMAC.String(), "dev", dev)

	to := netip.AddrPortFrom(stackIP, 7000)
	for i := range flows {
		c := linktest.DialUDP(t, ns, netip.AddrPortFrom(kernelIP, uint16(5000+i)), to)
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := make(map[uint16]bool)
	for len(got) < flows {
		f := rec.Wait(t, "datagram", func(f linktest.Frame) bool {
			e, err := wire.ParseEthernet(f.Data)
			if err != nil || e.Type() != wire.EtherTypeIPv4 {
				return false
			}
			u, ok := linktest.ParseUDP4(e.Payload())
			return ok && u.Dst == to
		})
		u, _ := linktest.ParseUDP4(f.Data[wire.EthernetHeaderLen:])
		got[u.Src.Port()] = true
	}
	q := ep.QueueRxFrames()
	t.Logf("frames read per queue: %v", q)
	if len(q) != 2 || q[0] == 0 || q[1] == 0 {
		t.Errorf("frames read per queue %v, want some on both", q)
	}

	// The other way.
	kaddr := netip.AddrPortFrom(kernelIP, 9000)
	c := linktest.ListenUDP(t, ns, kaddr)
	var pkts []*buf.Packet
	for i := range flows {
		from := netip.AddrPortFrom(stackIP, uint16(4000+i))
		pkts = append(pkts, buf.FromBytes(linktest.Ethernet(kernelMAC, stackMAC, wire.EtherTypeIPv4,
			linktest.UDP4(from, kaddr, []byte{byte(i)}, false, false))))
	}
	if n, err := ep.WriteBatch(pkts); n != flows || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	from := make(map[uint16]bool)
	for range flows {
		_, src := linktest.ReadUDP(t, c)
		from[src.Port()] = true
	}
	if len(from) != flows {
		t.Errorf("kernel received from %d flows, want %d", len(from), flows)
	}
}

// TestMultiQueueExisting attaches two queues to a device made
// multi-queue beforehand, and fails cleanly on one that is not.
func TestMultiQueueExisting(t *testing.T) {
	ns := netns.New(t)
	ns.Run(t, "ip", "tuntap", "add", "dev", "ustmq", "mode", "tap", "multi_queue")
	t.Cleanup(func() { ns.Exec("ip", "tuntap", "del", "dev", "ustmq", "mode", "tap", "multi_queue") })
	netns.CreateTuntap(t, ns, "ustsq", "tap")
	var ep *tap.Endpoint
	var errSingle error
	ns.MustDo(t, func() (err error) {
		_, errSingle = tap.Open("ustsq", &tap.Config{Queues: 2})
		ep, err = tap.Open("ustmq", &tap.Config{Queues: 3})
		return err
	})
	if !errors.Is(errSingle, syscall.EINVAL) {
		t.Errorf("two queues on a single-queue device: err = %v, want EINVAL", errSingle)
	}
	if ep.Queues() != 3 {
		t.Errorf("Queues = %d, want 3", ep.Queues())
	}
	done := make(chan error, 1)
	go func() { done <- ep.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(linktest.Timeout):
		t.Fatal("Close did not return: a reader is stuck")
	}
	ns.Run(t, "ip", "link", "show", "ustmq") // persistent: still there
}

// TestWriteSoftGSO: with NoTxOffload the kernel gets plain datagrams with
// complete checksums from a UDP GSO frame and a partial checksum.
func TestWriteSoftGSO(t *testing.T) {
	ns, ep, _, kernelMAC := setup(t, &tap.Config{MAC: stackMAC, Up: true, NoTxOffload: true})
	to := netip.AddrPortFrom(kernelIP, 9000)
	from := netip.AddrPortFrom(stackIP, 4000)
	c := linktest.ListenUDP(t, ns, to)
	frame := func(ip []byte) []byte { return linktest.Ethernet(kernelMAC, stackMAC, wire.EtherTypeIPv4, ip) }
	linktest.Write(t, ep, frame(linktest.UDP4(from, to, []byte("partial"), true, false)), linktest.PartialOffload(wire.EthernetHeaderLen))
	big := linktest.Payload(250)
	gso := linktest.PartialOffload(wire.EthernetHeaderLen)
	gso.GSO, gso.GSOSize, gso.HdrLen = buf.GSOUDPL4, 100, wire.EthernetHeaderLen+28
	linktest.Write(t, ep, frame(linktest.UDP4(from, to, big, true, false)), gso)
	for _, want := range [][]byte{[]byte("partial"), big[:100], big[100:200], big[200:]} {
		got, src := linktest.ReadUDP(t, c)
		if string(got) != string(want) || src != from {
			t.Fatalf("kernel received %q from %v, want %q from %v", got, src, want, from)
		}
	}
	o := ep.OffloadStats()
	if o.TxSegmented.Load() != 1 || o.TxGSOPackets.Load() != 0 || o.TxPartialCsum.Load() != 0 || ep.LinkStats().TxPackets.Load() != 4 {
		t.Errorf("segmented %d, GSO frames %d, partial checksums %d, frames %d; want 1, 0, 0, 4",
			o.TxSegmented.Load(), o.TxGSOPackets.Load(), o.TxPartialCsum.Load(), ep.LinkStats().TxPackets.Load())
	}
}

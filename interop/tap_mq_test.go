package interop

import (
	"net/netip"
	"testing"
	"time"

	"ustack/link/offload"
	"ustack/link/tap"
	"ustack/stack"
)

// TestTAPMultiQueue runs a stack on a two-queue TAP device (one reader
// per queue, both delivering into the stack at once) with offloads and
// GRO on, and moves several TCP streams each way at the same time
// between the kernel's socat and the stack. Every stream's sha256 must
// match, and the kernel must have spread its flows over both queues.
func TestTAPMultiQueue(t *testing.T) {
	const (
		nflows = 8 // all on one queue with probability 2^-7 per direction; both directions run
		size   = 8 * MB
	)
	tp := newKernelSide(t, topoConfig{kind: kindTAP})
	var ep *tap.Endpoint
	tp.k.MustDo(t, func() error {
		// The test's device is single-queue (netns.CreateTuntap): a
		// multi-queue one replaces it.
		tp.k.Run(t, "ip", "tuntap", "del", "dev", "ut0", "mode", "tap")
		tp.k.Run(t, "ip", "tuntap", "add", "dev", "ut0", "mode", "tap", "multi_queue")
		tp.k.Run(t, "ip", "addr", "add", netip.PrefixFrom(tp.kaddr, tp.prefix).String(), "dev", "ut0")
		tp.k.Run(t, "ip", "link", "set", "ut0", "up")
		var err error
		ep, err = tap.Open("ut0", &tap.Config{MAC: tapMAC, Up: true, Offload: true, Queues: 2,
			Accept: offload.Accept{PartialCsum: true, LargeFrames: true, GRO: true}})
		return err
	})
	t.Cleanup(func() { tp.k.Exec("ip", "tuntap", "del", "dev", "ut0", "mode", "tap", "multi_queue") })
	tp.obs = &observer{Endpoint: ep}
	tp.st = stack.New(stack.Options{Name: "interop-tap-mq"})
	t.Cleanup(func() { tp.st.Close() })
	ifc, err := tp.st.AddInterface("eth0", tp.obs)
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	tp.ifc = ifc
	if err := tp.st.AddAddress("eth0", netip.PrefixFrom(tp.saddr, tp.prefix)); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	var xs []*xfer
	for i := range nflows {
		xs = append(xs, kernelToStack(t, tp, uint16(6000+i), stream{seed: uint64(100 + i), n: size}, 120*time.Second))
		xs = append(xs, stackToKernel(t, tp, 7000+i, stream{seed: uint64(200 + i), n: size}, 120*time.Second))
	}
	for _, x := range xs {
		x.finish(t)
	}
	d := time.Since(start)
	q := ep.QueueRxFrames()
	t.Logf("%d streams of %d MB each way in %v (%s in all); frames read per queue %v; %v",
		nflows, size/MB, d.Round(time.Millisecond), rate(int64(2*nflows*size), d), q, snapOffload(ep))
	if q[0] == 0 || q[1] == 0 {
		t.Errorf("frames read per queue %v, want some on both", q)
	}
}

package interop

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"ustack/internal/netns"
	"ustack/link"
	"ustack/link/afpacket"
	"ustack/link/offload"
	"ustack/link/tap"
	"ustack/stack"
)

// offloadEP is a link endpoint that counts what its offloads did.
type offloadEP interface {
	link.Endpoint
	OffloadStats() *offload.Stats
}

// offloadSnap is a copy of a link's offload counters.
type offloadSnap struct {
	txGSO, txGSOBytes, txPartial, txSegmented uint64
	rxGSO, rxGSOBytes, rxSegmented            uint64
	rxCoalesced, rxGROPackets, txPkts, rxPkts uint64
}

func snapOffload(ep offloadEP) offloadSnap {
	o := ep.OffloadStats()
	var ls *link.Stats
	if c, ok := ep.(link.Counted); ok {
		ls = c.LinkStats()
	}
	return offloadSnap{
		txGSO: o.TxGSOPackets.Load(), txGSOBytes: o.TxGSOBytes.Load(), txPartial: o.TxPartialCsum.Load(), txSegmented: o.TxSegmented.Load(),
		rxGSO: o.RxGSOPackets.Load(), rxGSOBytes: o.RxGSOBytes.Load(), rxSegmented: o.RxSegmented.Load(),
		rxCoalesced: o.RxCoalesced.Load(), rxGROPackets: o.RxGROPackets.Load(),
		txPkts: ls.TxPackets.Load(), rxPkts: ls.RxPackets.Load(),
	}
}

func (a offloadSnap) sub(b offloadSnap) offloadSnap {
	return offloadSnap{
		a.txGSO - b.txGSO, a.txGSOBytes - b.txGSOBytes, a.txPartial - b.txPartial, a.txSegmented - b.txSegmented,
		a.rxGSO - b.rxGSO, a.rxGSOBytes - b.rxGSOBytes, a.rxSegmented - b.rxSegmented,
		a.rxCoalesced - b.rxCoalesced, a.rxGROPackets - b.rxGROPackets, a.txPkts - b.txPkts, a.rxPkts - b.rxPkts,
	}
}

func (a offloadSnap) String() string {
	return fmt.Sprintf("link tx %d frames (%d GSO, %d MB in GSO, %d partial csum, %d large cut in software), rx %d frames (%d GSO, %d MB in GSO, %d segmented in software), GRO merged %d segments into %d packets",
		a.txPkts, a.txGSO, a.txGSOBytes/MB, a.txPartial, a.txSegmented, a.rxPkts, a.rxGSO, a.rxGSOBytes/MB, a.rxSegmented, a.rxCoalesced, a.rxGROPackets)
}

// kernelLinkStats are a kernel device's packet and byte counters.
type kernelLinkStats struct{ rxPackets, rxBytes, txPackets, txBytes uint64 }

func kernelLink(t testing.TB, ns *netns.NS, dev string) kernelLinkStats {
	t.Helper()
	out := ns.Run(t, "ip", "-s", "-j", "link", "show", "dev", dev)
	var v []struct {
		Stats64 struct {
			RX struct{ Bytes, Packets uint64 } `json:"rx"`
			TX struct{ Bytes, Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
		t.Fatalf("ip -s -j link show %s: %v\n%s", dev, err, out)
	}
	s := v[0].Stats64
	return kernelLinkStats{s.RX.Packets, s.RX.Bytes, s.TX.Packets, s.TX.Bytes}
}

func (a kernelLinkStats) sub(b kernelLinkStats) kernelLinkStats {
	return kernelLinkStats{a.rxPackets - b.rxPackets, a.rxBytes - b.rxBytes, a.txPackets - b.txPackets, a.txBytes - b.txBytes}
}

// cpuTime is the CPU time this process has used (user and system): the
// stack, and the test's own hashing and stream generation, not socat.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// logCPU logs the CPU seconds per GB this process spent since c0 on a
// transfer of n bytes (a measure the machine's load disturbs less than
// the wall clock).
func logCPU(t testing.TB, what string, c0 time.Duration, n int64) {
	t.Helper()
	t.Logf("%s: %.2f CPU-s/GB in this process", what, (cpuTime()-c0).Seconds()/(float64(n)/(1<<30)))
}

// groOff turns GRO off for measurements (USTACK_INTEROP_NOGRO=1).
var groOff = os.Getenv("USTACK_INTEROP_NOGRO") != ""

// newOffloadTopo builds a topology of the kind with the kernel's and the
// stack's offloads on or off. On: the kernel's TSO and checksum offload
// are on, the stack takes large frames and partial checksums whole and
// sends them (TAP: TUNSETOFFLOAD; AF_PACKET: the veth's own offloads).
// Off: plain frames of at most the MTU with complete checksums both ways
// (TAP: no TUNSETOFFLOAD and Config.NoTxOffload; AF_PACKET: ethtool -K
// tx off on the kernel's veth and NoTxOffload): the stack still builds
// large segments, which its driver cuts in software (GSO), and merges
// what it receives (GRO, on either way).
func newOffloadTopo(t *testing.T, kind string, on bool) (*topo, offloadEP) {
	t.Helper()
	tp := newKernelSide(t, topoConfig{kind: kind, noOffload: !on})
	accept := offload.Accept{GRO: !groOff}
	if on {
		accept.PartialCsum, accept.LargeFrames = true, true
	}
	var ep offloadEP
	switch kind {
	case kindTAP:
		tp.k.MustDo(t, func() error {
			e, err := tap.Open("ut0", &tap.Config{MAC: tapMAC, Up: true, Offload: on, NoTxOffload: !on, Accept: accept})
			ep = e
			return err
		})
	case kindAFPacket:
		tp.s.MustDo(t, func() error {
			e, err := afpacket.Open("vB", &afpacket.Config{NoTxOffload: !on, Accept: accept})
			ep = e
			return err
		})
	}
	checkKernelTxCsum(t, tp.k, tp.kdev, on)
	tp.obs = &observer{Endpoint: ep}
	tp.st = stack.New(stack.Options{Name: "interop-offload-" + kind})
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
	return tp, ep
}

// TestOffloadBulk moves 100 MB each way between the kernel's socat and
// the stack over TAP and over a veth with AF_PACKET, with offloads on and
// off, and checks the sha256 sums and that the offloads were (or were
// not) used: with them on, the stack's link wrote large TCP frames that
// the kernel's device received whole (its byte count per packet is far
// above the MTU) and the kernel's large frames reached the stack whole
// (none cut in software); with them off, every frame either way is at
// most the MTU, the kernel gets no partial checksum, and the stack's large
// segments were cut in software. GRO must have merged segments whenever
// the kernel sent plain frames.
func TestOffloadBulk(t *testing.T) {
	for _, kind := range []string{kindTAP, kindAFPacket} {
		for _, on := range []bool{true, false} {
			name := kind + "/offloads-off"
			if on {
				name = kind + "/offloads-on"
			}
			t.Run(name, func(t *testing.T) {
				tp, ep := newOffloadTopo(t, kind, on)
				mtuFrame := uint64(tp.ifc.MTU() + 14)

				o0, k0, c0 := snapOffload(ep), kernelLink(t, tp.k, tp.kdev), cpuTime()
				x := kernelToStack(t, tp, 5001, stream{seed: 11, n: bulkSize}, 120*time.Second)
				x.finish(t)
				x.log(t, name)
				logCPU(t, name+" kernel → stack", c0, bulkSize)
				o1, k1 := snapOffload(ep), kernelLink(t, tp.k, tp.kdev)
				rx, krx := o1.sub(o0), k1.sub(k0)
				t.Logf("kernel → stack: %v; kernel %s sent %d packets, %d bytes", rx, tp.kdev, krx.txPackets, krx.txBytes)

				c1 := cpuTime()
				x = stackToKernel(t, tp, 5002, stream{seed: 12, n: bulkSize}, 120*time.Second)
				x.finish(t)
				x.log(t, name)
				logCPU(t, name+" stack → kernel", c1, bulkSize)
				o2, k2 := snapOffload(ep), kernelLink(t, tp.k, tp.kdev)
				tx, ktx := o2.sub(o1), k2.sub(k1)
				t.Logf("stack → kernel: %v; kernel %s received %d packets, %d bytes (%d per packet)",
					tx, tp.kdev, ktx.rxPackets, ktx.rxBytes, ktx.rxBytes/max(ktx.rxPackets, 1))

				if on {
					// Sending: most of the data left in large frames, and
					// the kernel's device took them whole.
					if tx.txGSOBytes < bulkSize/2 {
						t.Errorf("stack → kernel: only %d bytes in large frames", tx.txGSOBytes)
					}
					if per := ktx.rxBytes / max(ktx.rxPackets, 1); per < 4*mtuFrame {
						t.Errorf("stack → kernel: the kernel's %s received %d bytes per packet, want large frames", tp.kdev, per)
					}
					// Receiving: the kernel's large frames came whole.
					if rx.rxGSOBytes < bulkSize/2 || rx.rxSegmented != 0 {
						t.Errorf("kernel → stack: %d bytes in large frames, %d cut in software; want most, none", rx.rxGSOBytes, rx.rxSegmented)
					}
				} else {
					if tx.txGSO != 0 || tx.txPartial != 0 || rx.rxGSO != 0 {
						t.Errorf("offloads off, yet %d large frames and %d partial checksums sent, %d large frames received", tx.txGSO, tx.txPartial, rx.rxGSO)
					}
					if tx.txSegmented == 0 {
						t.Errorf("offloads off: no large segment was cut in software")
					}
					if per := ktx.rxBytes / max(ktx.rxPackets, 1); per > mtuFrame {
						t.Errorf("stack → kernel: the kernel's %s received %d bytes per packet, more than a frame", tp.kdev, per)
					}
					if !groOff && rx.rxCoalesced == 0 {
						t.Errorf("kernel → stack: GRO merged nothing of %d plain frames", rx.rxPkts)
					}
				}
			})
		}
	}
}

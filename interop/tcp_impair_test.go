package interop

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"ustack/internal/netns"
	"ustack/link"
	"ustack/link/offload"
	"ustack/link/tap"
	"ustack/stack"
)

// newImpairedTopo builds a topology with `ustack impair` in the middle of
// the cable, in a namespace M of its own:
//
//	afpacket: K vA 10.200.3.1 ── mA ⟨M: impair⟩ mB ── vB (S, the stack's AF_PACKET) 10.200.3.2
//	tap:      K vA 10.200.4.1 ── mA ⟨M: impair⟩ ut0 (TAP in M, the stack's) 10.200.4.2
//
// impair bridges mA and mB (or the TAP device's kernel end ut0) with
// AF_PACKET sockets, applying args (its flags) both ways. It returns the
// topology and the impair process, stopped (SIGTERM) when the test ends
// after it has printed its counters to the log.
func newImpairedTopo(t *testing.T, kind string, args ...string) *topo {
	t.Helper()
	ustack, _ := buildCommands(t)
	tp := &topo{kind: kind, prefix: 24, kdev: "vA"}
	tp.k, tp.s = newNS(t), newNS(t)
	m := newNS(t)
	netns.CreateVeth(t, "vA", tp.k, "mA", m)
	var ep link.Endpoint
	accept := offload.Accept{PartialCsum: true}
	far := "mB"
	switch kind {
	case kindAFPacket:
		tp.kaddr, tp.saddr = netip.MustParseAddr("10.200.3.1"), netip.MustParseAddr("10.200.3.2")
		netns.CreateVeth(t, "mB", m, "vB", tp.s)
		ep = openAFPacket(t, tp.s, "vB", accept)
	case kindTAP:
		tp.kaddr, tp.saddr = netip.MustParseAddr("10.200.4.1"), netip.MustParseAddr("10.200.4.2")
		tp.s = m
		far = "ut0"
		netns.CreateTuntap(t, m, "ut0", "tap")
		m.MustDo(t, func() error {
			var err error
			ep, err = tap.Open("ut0", &tap.Config{MAC: tapMAC, Up: true, Offload: true, Accept: accept})
			return err
		})
	default:
		t.Fatalf("unknown topology %q", kind)
	}
	tp.k.Run(t, "ip", "addr", "add", netip.PrefixFrom(tp.kaddr, tp.prefix).String(), "dev", "vA")
	tp.k.Run(t, "ip", "link", "set", "vA", "up")
	checkKernelTxCsum(t, tp.k, "vA", true)

	tp.obs = &observer{Endpoint: ep}
	tp.st = stack.New(stack.Options{Name: "interop-impair-" + kind})
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

	im := m.Start(t, ustack, append([]string{"impair", "--a", "mA", "--b", far}, args...)...)
	eventually(t, 10*time.Second, "impair to bridge", func() (bool, string) {
		select {
		case <-im.Done():
			t.Fatalf("impair exited: %v\n%s", im.Wait(), im.Output())
		default:
		}
		return strings.Contains(im.Output(), "impair: bridging"), im.Output()
	})
	t.Cleanup(func() {
		im.Cmd.Process.Signal(syscall.SIGTERM)
		if err := waitProcess(t, im, 10*time.Second); err != nil {
			t.Errorf("impair: %v\n%s", err, im.Output())
		}
		t.Logf("impair:\n%s", im.Output())
	})
	return tp
}

// impairSize is what TestTCPImpaired moves each way.
const impairSize = 20 * MB

// TestTCPImpaired moves 20 MB each way at once (kernel to stack on one
// connection, stack to kernel on another) through `ustack impair` at 50
// ms RTT (25 ms each way), with 1% loss, and with 5% reordering plus 1%
// duplication, on both topologies; every byte must arrive intact.
func TestTCPImpaired(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"loss1", []string{"--delay", "25ms", "--loss", "1%", "--seed", "3"}},
		{"reorder5-dup1", []string{"--delay", "25ms", "--reorder", "5%", "--dup", "1%", "--seed", "4"}},
	} {
		for _, kind := range kinds {
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				tp := newImpairedTopo(t, kind, c.args...)
				s0, k0 := tp.st.Stats(), snmp(t, tp.k)
				up := kernelToStack(t, tp, 5001, stream{seed: 11, n: impairSize}, 150*time.Second)
				down := stackToKernel(t, tp, 5002, stream{seed: 12, n: impairSize}, 150*time.Second)
				up.finish(t)
				down.finish(t)
				up.log(t, c.name+" "+kind)
				down.log(t, c.name+" "+kind)
				logTCPCounters(t, s0, tp.st.Stats(), k0, snmp(t, tp.k))
			})
		}
	}
}

// logTCPCounters logs how the stack's tcp.* counters and the kernel's
// Tcp and TcpExt counters moved (those that did).
func logTCPCounters(t *testing.T, s0, s1 map[string]uint64, k0, k1 map[string]int64) {
	t.Helper()
	var b strings.Builder
	b.WriteString("stack:")
	for _, name := range sortedKeys(s1) {
		if d := counterDelta(s0, s1, name); d != 0 && strings.HasPrefix(name, "tcp.") {
			fmt.Fprintf(&b, " %s=%d", strings.TrimPrefix(name, "tcp."), d)
		}
	}
	if k1 == nil {
		t.Log(b.String())
		return
	}
	b.WriteString("\nkernel:")
	for _, name := range sortedKeys(k1) {
		if d := k1[name] - k0[name]; d != 0 && (strings.HasPrefix(name, "Tcp.") || strings.HasPrefix(name, "TcpExt.")) {
			fmt.Fprintf(&b, " %s=%d", name[strings.IndexByte(name, '.')+1:], d)
		}
	}
	t.Log(b.String())
}

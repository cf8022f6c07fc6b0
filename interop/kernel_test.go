package interop

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"ustack/socket"
)

// TestPing: the kernel pings the stack (100 of 100 answered), then holds
// a REACHABLE neighbour entry with the stack's MAC, and the stack pings
// the kernel back.
func TestPing(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo(t, topoConfig{kind: kind})
			kernelPing(t, tp.k, tp.saddr, 100)

			mac := tp.ifc.HardwareAddr().String()
			eventually(t, 8*time.Second, "kernel neighbour entry REACHABLE", func() (bool, string) {
				ll, state, raw := kernelNeigh(tp.k, tp.kdev, tp.saddr)
				return ll == mac && state == "REACHABLE", fmt.Sprintf("%q (want lladdr %s REACHABLE)", raw, mac)
			})

			before := tp.st.Stats()
			if got := stackPing(t, tp.st, tp.kaddr, 3); got != 3 {
				t.Errorf("stack ping %v: %d of 3 replies", tp.kaddr, got)
			}
			after := tp.st.Stats()
			if d := counterDelta(before, after, "icmp.in.echo-reply"); d != 3 {
				t.Errorf("icmp.in.echo-reply moved by %d, want 3", d)
			}
			t.Logf("stack: icmp.in.echo=%d icmp.out.echo-reply=%d", after["icmp.in.echo"], after["icmp.out.echo-reply"])
			if n := after["icmp.out.echo-reply"]; n < 100 {
				t.Errorf("icmp.out.echo-reply = %d, want at least 100", n)
			}
		})
	}
}

// udpFragments is how many fragments a UDP datagram of n payload bytes
// makes on a 1500-byte MTU (1480 bytes of IP payload per fragment).
func udpFragments(n int) int { return (n + 8 + 1479) / 1480 }

// TestUDP: kernel socat talks to the stack's echo service, with small
// datagrams and with 20 KB ones that are fragmented both ways, with the
// kernel's checksum offload on and off.
func TestUDP(t *testing.T) {
	for _, kind := range kinds {
		for _, off := range []bool{false, true} {
			name := kind + "/offload-on"
			if off {
				name = kind + "/offload-off"
			}
			t.Run(name, func(t *testing.T) { testUDP(t, newTopo(t, topoConfig{kind: kind, noOffload: off}), off) })
		}
	}
}

func testUDP(t *testing.T, tp *topo, noOffload bool) {
	echo := startEcho(t, tp.st, 7)
	to := netip.AddrPortFrom(tp.saddr, 7).String()

	// A small datagram.
	small, f := randomFile(t, 64)
	out := run(t, tp.k, f, 10*time.Second, "socat", "-t", "1", "-", "UDP:"+to)
	if !bytes.Equal([]byte(out), small) {
		t.Errorf("small echo: got %d bytes %q, want %d bytes %q", len(out), out, len(small), small)
	}
	if got := echo.received(); !slices.Equal(got, []int{64}) {
		t.Errorf("small echo: the service got datagrams of %v bytes, want [64]", got)
	}

	// Kernel -> stack -> kernel, 20 KB: the kernel fragments, the stack
	// reassembles, echoes, fragments; the kernel reassembles.
	const big = 20000
	frags := udpFragments(big)
	data, f := randomFile(t, big)
	s0, k0 := tp.st.Stats(), snmp(t, tp.k)
	out = run(t, tp.k, f, 10*time.Second, "socat", "-b", "65536", "-t", "2", "-", "UDP:"+to)
	s1, k1 := tp.st.Stats(), snmp(t, tp.k)
	if len(out) != big || sum([]byte(out)) != sum(data) {
		t.Errorf("20 KB echo: got %d bytes sha256 %s, want %d bytes sha256 %s", len(out), sum([]byte(out)), big, sum(data))
	}
	if got := echo.received(); !slices.Equal(got, []int{big}) {
		t.Errorf("20 KB echo: the service got datagrams of %v bytes, want one of %d", got, big)
	}
	checkDelta(t, "stack", s0, s1, map[string]int64{
		"ipv4.frag.in": int64(frags), "ipv4.reasm.ok": 1, "ipv4.frag.out": int64(frags),
		"ipv4.reasm.pending": 0, "ipv4.reasm.bytes": 0,
	})
	checkKernelDelta(t, k0, k1, map[string]int64{
		"Ip.FragCreates": int64(frags), "Ip.FragOKs": 1, "Ip.ReasmReqds": int64(frags), "Ip.ReasmOKs": 1,
		"Ip.ReasmFails": 0, "Udp.InDatagrams": 1, "Udp.InErrors": 0, "Udp.InCsumErrors": 0,
	})

	// Stack -> kernel, 20 KB, to a kernel socket that prints what it
	// receives.
	rx := tp.k.Start(t, "socat", "-u", "-b", "65536", "UDP-RECV:9000,bind="+tp.kaddr.String(), "-")
	eventually(t, 5*time.Second, "socat bound to UDP port 9000", func() (bool, string) { return udpBound(tp.k, 9000) })
	c, err := socket.ListenUDP(tp.st, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data2, _ := randomFile(t, big)
	s0, k0 = tp.st.Stats(), snmp(t, tp.k)
	if _, err := c.WriteToUDPAddrPort(data2, netip.AddrPortFrom(tp.kaddr, 9000)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "kernel socat to print 20000 bytes", func() (bool, string) {
		n := len(rx.Output())
		return n >= big, strconv.Itoa(n) + " bytes so far"
	})
	got := []byte(rx.Output())
	if len(got) != big || sum(got) != sum(data2) {
		t.Errorf("stack -> kernel 20 KB: kernel got %d bytes sha256 %s, want %d bytes sha256 %s", len(got), sum(got), big, sum(data2))
	}
	s1, k1 = tp.st.Stats(), snmp(t, tp.k)
	checkDelta(t, "stack", s0, s1, map[string]int64{"ipv4.frag.out": int64(frags)})
	checkKernelDelta(t, k0, k1, map[string]int64{
		"Ip.ReasmReqds": int64(frags), "Ip.ReasmOKs": 1, "Udp.InDatagrams": 1, "Udp.InCsumErrors": 0,
	})

	// The offload mode was what we meant: partial checksums reach the
	// stack only with the kernel's offload on.
	partial, total := tp.obs.partial.Load(), tp.obs.total.Load()
	t.Logf("%d of %d received frames had a partial checksum", partial, total)
	if noOffload && partial != 0 {
		t.Errorf("offload off, yet %d frames came with a partial checksum", partial)
	}
	if !noOffload && partial == 0 {
		t.Errorf("offload on, yet no frame came with a partial checksum (of %d)", total)
	}
}

// checkDelta checks how the stack's counters moved.
func checkDelta(t *testing.T, who string, before, after map[string]uint64, want map[string]int64) {
	t.Helper()
	for _, name := range sortedKeys(want) {
		if name == "ipv4.reasm.pending" || name == "ipv4.reasm.bytes" {
			if after[name] != uint64(want[name]) {
				t.Errorf("%s %s = %d, want %d", who, name, after[name], want[name])
			}
			continue
		}
		if d := counterDelta(before, after, name); d != want[name] {
			t.Errorf("%s %s moved by %d, want %d", who, name, d, want[name])
		}
	}
}

// checkKernelDelta checks how the kernel's MIB counters moved.
func checkKernelDelta(t *testing.T, before, after map[string]int64, want map[string]int64) {
	t.Helper()
	for _, name := range sortedKeys(want) {
		if _, ok := after[name]; !ok {
			t.Errorf("kernel counter %s not in /proc/net/snmp", name)
			continue
		}
		if d := after[name] - before[name]; d != want[name] {
			t.Errorf("kernel %s moved by %d, want %d", name, d, want[name])
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

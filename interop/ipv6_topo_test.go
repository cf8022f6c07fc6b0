package interop

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// The IPv6 addresses of the IPv6 topologies (RFC 3849 documentation
// prefix): the kernel is ::1 and the stack ::2 on 2001:db8:200::/64.
var (
	kaddr6 = netip.MustParseAddr("2001:db8:200::1")
	saddr6 = netip.MustParseAddr("2001:db8:200::2")
)

// topo6 is a topology (see newTopo) with IPv6 on: the kernel's device
// has its link-local address and kaddr6, the stack its link-local
// address and saddr6, both past duplicate address detection.
type topo6 struct {
	*topo
	kll, sll netip.Addr // link-local addresses, zoned (kernel: kdev, stack: eth0)
}

// enableIPv6 turns IPv6 on for dev in ns (newNS turned it off), without
// duplicate address detection on the kernel's side so its addresses are
// usable at once.
func enableIPv6(t *testing.T, tp *topo, dev string) {
	t.Helper()
	var args []string
	for _, d := range []string{"all", "default", dev} {
		args = append(args, "net.ipv6.conf."+d+".accept_dad=0")
	}
	for _, d := range []string{"all", "default", dev} {
		args = append(args, "net.ipv6.conf."+d+".disable_ipv6=0")
	}
	tp.k.Run(t, "sysctl", append([]string{"-qw"}, args...)...)
}

// newTopo6 builds a topology of kind with IPv6 on the kernel's side and
// on the stack. In the AF_PACKET topology IPv6 stays off in the stack's
// namespace S: the kernel there would otherwise take the stack's own
// link-local address (vB's MAC is the stack's) and speak for it.
func newTopo6(t *testing.T, kind string) *topo6 {
	t.Helper()
	tp := newTopo(t, topoConfig{kind: kind})
	enableIPv6(t, tp, tp.kdev)
	tp.k.Run(t, "ip", "-6", "addr", "add", kaddr6.String()+"/64", "dev", tp.kdev, "nodad")
	if err := tp.st.AddAddress("eth0", netip.PrefixFrom(saddr6, 64)); err != nil {
		t.Fatal(err)
	}
	t6 := &topo6{topo: tp, sll: wire.LinkLocalFromMAC(tp.ifc.HardwareAddr()).WithZone("eth0")}
	eventually(t, 10*time.Second, "the stack's IPv6 addresses past DAD", func() (bool, string) {
		return hasAddr6(tp.st, saddr6) && hasAddr6(tp.st, t6.sll), fmt.Sprint(tp.st.Interface("eth0").Addrs())
	})
	eventually(t, 10*time.Second, "the kernel's link-local address", func() (bool, string) {
		out, _ := tp.k.Exec("ip", "-6", "-o", "addr", "show", "dev", tp.kdev, "scope", "link")
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
				t6.kll = p.Addr().WithZone("eth0")
				return !strings.Contains(out, "tentative"), out
			}
		}
		return false, out
	})
	return t6
}

// hasAddr6 reports whether the stack's eth0 has a (assigned) address.
func hasAddr6(st *stack.Stack, a netip.Addr) bool {
	for _, p := range st.Interface("eth0").Addrs() {
		if p.Addr() == a.WithZone("") {
			return true
		}
	}
	return false
}

// kernelPing6 runs the kernel's ping -6 from tp's kernel side to dst (a
// link-local dst is zoned with the kernel's device) and checks all count
// came back.
func kernelPing6(t *testing.T, tp *topo6, dst netip.Addr, count int) {
	t.Helper()
	d := dst.String()
	if dst.IsLinkLocalUnicast() {
		d = dst.WithZone(tp.kdev).String()
	}
	out, err := tp.k.Exec("ping", "-6", "-n", "-c", fmt.Sprint(count), "-i", "0.01", "-W", "1", "-w", "20", d)
	sent, got, ok := parsePing(out)
	if !ok || sent != count || got != count {
		t.Fatalf("kernel ping -6 %s: %d sent, %d received, want %d/%d (err %v):\n%s", d, sent, got, count, count, err, out)
	}
	t.Logf("kernel ping -6 %s: %d/%d", d, got, sent)
}

// stackPing6 sends count ICMPv6 echo requests from the stack to dst
// (zoned "eth0" if link-local) and returns how many replies came back,
// each waited for at most a second.
func stackPing6(t *testing.T, st *stack.Stack, dst netip.Addr, count int) int {
	t.Helper()
	c, err := socket.ListenPing(st, netip.IPv6Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := 0
	b := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		msg := make([]byte, wire.ICMPv6HeaderLen+32)
		(&wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.EchoRest(0, uint16(seq))}).Encode(msg)
		copy(msg[wire.ICMPv6HeaderLen:], fmt.Sprintf("ustack interop ping6 %04d.......", seq))
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}); err != nil {
			t.Fatalf("ping %v: %v", dst, err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFrom(b)
			if err != nil {
				t.Logf("ping %v seq %d: %v", dst, seq, err)
				break
			}
			m := wire.ICMPv6(b[:n])
			if n >= wire.ICMPv6HeaderLen && m.Type() == wire.ICMPv6EchoReply && int(m.Seq()) == seq &&
				bytes.Equal(m.Payload(), msg[wire.ICMPv6HeaderLen:]) && from.(*net.IPAddr).IP.Equal(dst.AsSlice()) {
				got++
				break
			}
		}
	}
	return got
}

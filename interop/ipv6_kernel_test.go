package interop

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIPv6Ping: the kernel's ping -6 gets 20 of 20 answers from the
// stack's link-local and global addresses, the stack gets answers from
// the kernel's, and the kernel's ndisc6 resolves both of the stack's
// addresses to its MAC (RFC 4861 §7.2: solicited neighbour
// advertisements).
func TestIPv6Ping(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo6(t, kind)
			s0 := tp.st.Stats()
			kernelPing6(t, tp, tp.sll, 20)
			kernelPing6(t, tp, saddr6, 20)
			s1 := tp.st.Stats()
			if d := counterDelta(s0, s1, "icmp6.out.echo-reply"); d < 40 {
				t.Errorf("icmp6.out.echo-reply moved by %d, want at least 40", d)
			}

			for _, dst := range []netip.Addr{tp.kll, kaddr6} {
				if got := stackPing6(t, tp.st, dst, 5); got != 5 {
					t.Errorf("stack ping %v: %d of 5 replies", dst, got)
				} else {
					t.Logf("stack ping %v: 5/5", dst)
				}
			}

			mac := tp.ifc.HardwareAddr().String()
			for _, a := range []netip.Addr{tp.sll.WithZone(""), saddr6} {
				out, err := tp.k.Exec("ndisc6", "-q", "-n", "-r", "3", "-w", "1000", a.String(), tp.kdev)
				if got := strings.TrimSpace(out); err != nil || !strings.EqualFold(got, mac) {
					t.Errorf("ndisc6 %v %s: %q (err %v), want %s", a, tp.kdev, got, err, mac)
				} else {
					t.Logf("ndisc6 %v: %s", a, got)
				}
			}
		})
	}
}

// TestIPv6SLAAC: radvd in the kernel's namespace advertises
// 2001:db8:201::/64; the stack forms an address in it (RFC 4862 §5.5.3)
// and the kernel pings that address.
func TestIPv6SLAAC(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo6(t, kind)
			// radvd refuses to run on a host that does not forward.
			tp.k.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
			// The router is on the prefix it advertises, so the kernel
			// has a route to the stack's new address.
			tp.k.Run(t, "ip", "-6", "addr", "add", "2001:db8:201::1/64", "dev", tp.kdev, "nodad")
			dir := t.TempDir()
			conf := filepath.Join(dir, "radvd.conf")
			err := os.WriteFile(conf, []byte(fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	prefix 2001:db8:201::/64 {
		AdvOnLink on;
		AdvAutonomous on;
	};
};
`, tp.kdev)), 0o600)
			if err != nil {
				t.Fatal(err)
			}
			rd := tp.k.Start(t, "radvd", "-n", "-C", conf, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr")
			slaac := netip.MustParsePrefix("2001:db8:201::/64")
			var got netip.Addr
			eventually(t, 20*time.Second, "a SLAAC address in "+slaac.String(), func() (bool, string) {
				select {
				case <-rd.Done():
					return false, "radvd exited: " + rd.Output()
				default:
				}
				for _, p := range tp.st.Interface("eth0").Addrs() {
					if slaac.Contains(p.Addr()) {
						got = p.Addr()
						return true, ""
					}
				}
				return false, fmt.Sprint(tp.st.Interface("eth0").Addrs())
			})
			t.Logf("SLAAC address %v; ndp.in.router-advertisement=%d", got, tp.st.Stats()["ndp.in.router-advertisement"])
			kernelPing6(t, tp, got, 20)
		})
	}
}

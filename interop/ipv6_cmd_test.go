package interop

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ipv6KernelSide is the AF_PACKET kernel side (vA in K, 10.200.1.1/24)
// with IPv6 on in K only: vA has its link-local address and kaddr6, both
// usable at once (no DAD). It returns vA's link-local address.
func ipv6KernelSide(t *testing.T) (*topo, netip.Addr) {
	t.Helper()
	tp := newKernelSide(t, topoConfig{kind: kindAFPacket})
	enableIPv6(t, tp, tp.kdev)
	tp.k.Run(t, "ip", "-6", "addr", "add", kaddr6.String()+"/64", "dev", tp.kdev, "nodad")
	var kll netip.Addr
	eventually(t, 10*time.Second, "the kernel's link-local address", func() (bool, string) {
		out, _ := tp.k.Exec("ip", "-6", "-o", "addr", "show", "dev", tp.kdev, "scope", "link")
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
				kll = p.Addr()
				return !strings.Contains(out, "tentative"), out
			}
		}
		return false, out
	})
	return tp, kll
}

// TestIPv6CommandPing: the ustack binary's ping, from a stack of its own
// on vB, gets every reply from the kernel's global and link-local IPv6
// addresses; the link-local one is given with the zone of the link's
// device (%vB), and the replies are shown with it.
func TestIPv6CommandPing(t *testing.T) {
	ustack, _ := buildCommands(t)
	tp, kll := ipv6KernelSide(t)
	for _, dst := range []string{kaddr6.String(), kll.String() + "%vB"} {
		out := run(t, tp.s, nil, 20*time.Second, ustack, "ping", "-c", "3", "-i", "0.2",
			"--link", "afpacket:vB", "--addr", saddr6.String()+"/64", dst)
		sent, got, ok := parsePing(out)
		if !ok || sent != 3 || got != 3 {
			t.Errorf("ustack ping %s: want 3 packets transmitted, 3 received; got:\n%s", dst, out)
			continue
		}
		// iputils' ping -6 prints the hop limit as ttl: the kernel's
		// default, 64.
		re := regexp.MustCompile(`(?m)^64 bytes from ` + regexp.QuoteMeta(dst) + `: icmp_seq=\d ttl=64 time=`)
		if n := len(re.FindAllString(out, -1)); n != 3 {
			t.Errorf("ustack ping %s: %d reply lines from %s, want 3:\n%s", dst, n, dst, out)
		}
		t.Logf("ustack ping %s: 3/3", dst)
	}
}

// TestIPv6CommandServices: ustackd's services without a listen address
// are dual-stack: the kernel reaches UDP and TCP echo with socat and the
// http service with curl, over IPv4 and over IPv6 alike; an echo service
// listening on 0.0.0.0 answers IPv4 only.
func TestIPv6CommandServices(t *testing.T) {
	_, ustackd := buildCommands(t)
	tp, _ := ipv6KernelSide(t)
	root := t.TempDir()
	file, _ := randomFile(t, 1<<20)
	if err := os.WriteFile(filepath.Join(root, "file.bin"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "cfg.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`interfaces:
  - name: eth0
    link: afpacket:vB
    addresses: [%s/24, "%s/64"]
services:
  - {type: echo}
  - {type: echo, listen: "tcp:7"}
  - {type: http, root: %q}
  - {type: echo, listen: "udp:0.0.0.0:1007"}
`, tp.saddr, saddr6, root)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	d := tp.s.Start(t, ustackd, "-c", cfg)
	eventually(t, 10*time.Second, "ustackd to say it is ready", func() (bool, string) {
		select {
		case <-d.Done():
			t.Fatalf("ustackd exited early: %v\n%s", d.Wait(), d.Output())
		default:
		}
		return strings.Contains(d.Output(), "msg=ready"), d.Output()
	})
	// The IPv6 address answers once the stack's DAD has passed.
	eventually(t, 10*time.Second, saddr6.String()+" to answer ping", func() (bool, string) {
		out, err := tp.k.Exec("ping", "-6", "-n", "-c", "1", "-W", "1", saddr6.String())
		return err == nil, out
	})

	for _, x := range []struct{ family, addr, host string }{
		{"4", tp.saddr.String(), tp.saddr.String()},
		{"6", saddr6.String(), "[" + saddr6.String() + "]"},
	} {
		for _, proto := range []string{"UDP", "TCP"} {
			payload, f := randomFile(t, 1000)
			to := fmt.Sprintf("%s%s:%s:7", proto, x.family, x.host)
			// -t: after stdin's end socat waits this long for the rest
			// of the echo (the TCP service closes once it has sent it).
			out := run(t, tp.k, f, 10*time.Second, "socat", "-t", "2", "-", to)
			if out != string(payload) {
				t.Errorf("socat %s: got %d bytes back, want the %d sent", to, len(out), len(payload))
			} else {
				t.Logf("socat %s: echoed %d bytes", to, len(out))
			}
		}
		url := fmt.Sprintf("http://%s/file.bin", x.host)
		out := run(t, tp.k, nil, 30*time.Second, "curl", "-"+x.family, "-sS", "--fail", "--max-time", "20", url)
		if got, want := sha256.Sum256([]byte(out)), sha256.Sum256(file); got != want {
			t.Errorf("curl -%s %s: %d bytes, sha256 %x; want %d bytes, %x", x.family, url, len(out), got[:8], len(file), want[:8])
		} else {
			t.Logf("curl -%s %s: %d bytes, sha256 equal", x.family, url, len(out))
		}
	}

	// udp:0.0.0.0:1007 takes IPv4 only: over IPv6 the stack answers port
	// unreachable, and socat sees the connection refused.
	payload, f := randomFile(t, 100)
	if out := run(t, tp.k, f, 10*time.Second, "socat", "-t", "1", "-", "UDP4:"+tp.saddr.String()+":1007"); out != string(payload) {
		t.Errorf("socat to udp:0.0.0.0:1007 over IPv4: got %d bytes back, want %d", len(out), len(payload))
	}
	cmd := tp.k.Command("socat", "-t", "1", "-", "UDP6:["+saddr6.String()+"]:1007")
	cmd.Stdin = bytes.NewReader([]byte("hello?\n"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err == nil || stdout.Len() != 0 || !strings.Contains(stderr.String(), "Connection refused") {
		t.Errorf("socat to udp:0.0.0.0:1007 over IPv6: %v, stdout %q, stderr %q; want connection refused", err, stdout.String(), stderr.String())
	}

	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitProcess(t, d, 10*time.Second); err != nil {
		t.Errorf("ustackd after SIGTERM: %v, want exit status 0\n%s", err, d.Output())
	}
}

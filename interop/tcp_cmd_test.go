package interop

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ustack/internal/netns"
)

// linkSpec is how the programs open the stack's side of tp.
func (tp *topo) linkSpec() string {
	if tp.kind == kindTAP {
		return "tap:" + tp.kdev
	}
	return "afpacket:vB"
}

// waitStackUp waits until a program's stack answers the kernel's ping.
func waitStackUp(t *testing.T, tp *topo, p *kproc) {
	t.Helper()
	eventually(t, 10*time.Second, "the program's stack to answer ping", func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.cmd, p.err, p.stderr.String())
		default:
		}
		out, err := tp.k.Exec("ping", "-n", "-c", "1", "-W", "1", tp.saddr.String())
		return err == nil, out
	})
}

// TestTCPCommands runs the programs against the kernel's TCP on both
// topologies: `ustack nc` moves 100 MB each way with kernel socat (nc -l
// receiving from socat; nc sending to socat listening), and ustackd
// serves TCP echo (socat) and http (curl: a 100 MB file and a range).
func TestTCPCommands(t *testing.T) {
	ustack, ustackd := buildCommands(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Run("nc-listen", func(t *testing.T) {
				tp := newKernelSide(t, topoConfig{kind: kind})
				s := stream{seed: 31, n: bulkSize}
				s.sum()
				h := newHashWriter()
				// stdin /dev/null: nc half-closes at once and exits when
				// socat has sent everything and closed.
				nc := startK(t, tp.s, nil, h, ustack, "nc", "-l", "--link", tp.linkSpec(),
					"--addr", netip.PrefixFrom(tp.saddr, tp.prefix).String(), tp.saddr.String(), "5001")
				waitStackUp(t, tp, nc)
				start := time.Now()
				// The stack answers ping a moment before nc listens: socat
				// tries again on a RST, for at most 5 s.
				sc := startK(t, tp.k, s.reader(), nil, "socat", "-u", "-b", "262144", "-",
					fmt.Sprintf("TCP:%s:5001,retry=100,interval=0.05", tp.saddr))
				sc.wait(t, 120*time.Second)
				nc.wait(t, 120*time.Second)
				d := time.Since(start)
				h.check(t, "socat → ustack nc -l", s)
				t.Logf("%s socat → ustack nc -l: %d MB in %v: %s", kind, s.n/MB, d.Round(time.Millisecond), rate(s.n, d))
			})
			t.Run("nc-connect", func(t *testing.T) {
				tp := newKernelSide(t, topoConfig{kind: kind})
				s := stream{seed: 32, n: bulkSize}
				s.sum()
				sc, h := kernelListen(t, tp.k, 5002)
				start := time.Now()
				nc := startK(t, tp.s, s.reader(), io.Discard, ustack, "nc", "-w", "30", "--link", tp.linkSpec(),
					"--addr", netip.PrefixFrom(tp.saddr, tp.prefix).String(), tp.kaddr.String(), "5002")
				sc.wait(t, 120*time.Second)
				nc.wait(t, 30*time.Second)
				d := time.Since(start)
				h.check(t, "ustack nc → socat", s)
				t.Logf("%s ustack nc → socat: %d MB in %v: %s (stack start-up included)", kind, s.n/MB, d.Round(time.Millisecond), rate(s.n, d))
			})
			t.Run("ustackd", func(t *testing.T) {
				tp := newKernelSide(t, topoConfig{kind: kind})
				testUstackd(t, tp, ustackd)
			})
		})
	}
}

func testUstackd(t *testing.T, tp *topo, ustackd string) {
	s := stream{seed: 33, n: httpSize}
	root := t.TempDir()
	writeStream(t, filepath.Join(root, "big.bin"), s)
	cfg := filepath.Join(t.TempDir(), "cfg.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`interfaces:
  - name: eth0
    link: %s
    addresses: [%s]
services:
  - {type: echo, listen: "tcp:7"}
  - {type: http, listen: "tcp:80", root: %q}
`, tp.linkSpec(), netip.PrefixFrom(tp.saddr, tp.prefix), root)), 0o600)
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

	// Echo: 4 MB there and back.
	e := stream{seed: 34, n: 4 * MB}
	h := newHashWriter()
	startK(t, tp.k, e.reader(), h, "socat", "-b", "65536", "-t", "30", "-", fmt.Sprintf("TCP:%s:7", tp.saddr)).wait(t, 30*time.Second)
	h.check(t, "ustackd echo", e)

	// http: the whole file, and a range of it.
	url := fmt.Sprintf("http://%s/big.bin", tp.saddr)
	h = newHashWriter()
	start := time.Now()
	startK(t, tp.k, nil, h, "curl", "-sS", "--fail", "--max-time", "120", url).wait(t, 130*time.Second)
	el := time.Since(start)
	h.check(t, "curl GET from ustackd", s)
	t.Logf("%s: curl GET of %d MB from ustackd in %v: %s", tp.kind, s.n/MB, el.Round(time.Millisecond), rate(s.n, el))
	checkRange(t, tp.k, url, s, 1000, 1999)

	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitProcess(t, d, 10*time.Second); err != nil {
		t.Errorf("ustackd after SIGTERM: %v, want exit status 0\n%s", err, d.Output())
	}
}

// writeStream writes s to a file.
func writeStream(t *testing.T, name string, s stream) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, s.reader()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkRange fetches bytes from..to of url with curl -r and checks that
// they are those bytes of s, with status 206 (RFC 9110 §14).
func checkRange(t *testing.T, ns *netns.NS, url string, s stream, from, to int64) {
	t.Helper()
	var want bytes.Buffer
	r := s.reader()
	io.CopyN(io.Discard, r, from)
	io.CopyN(&want, r, to-from+1)
	out := filepath.Join(t.TempDir(), "range")
	code := ns.Run(t, "curl", "-sS", "--fail", "--max-time", "10", "-r", fmt.Sprintf("%d-%d", from, to),
		"-o", out, "-w", "%{http_code}", url)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(code) != "206" || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("curl -r %d-%d: status %s, %d bytes (equal to bytes %d-%d: %v); want 206 and those %d bytes",
			from, to, code, len(got), from, to, bytes.Equal(got, want.Bytes()), want.Len())
	}
}

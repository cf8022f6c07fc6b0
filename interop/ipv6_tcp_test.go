package interop

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"ustack/service"
	"ustack/socket"
)

// httpSize6 is what TestIPv6HTTP fetches.
const httpSize6 = 100 * MB

// TestIPv6HTTP: the kernel's curl -6 fetches 100 MB from the stack's
// http service listening on [::]:80, with equal sha256.
func TestIPv6HTTP(t *testing.T) {
	s := stream{seed: 86, n: httpSize6}
	root := t.TempDir()
	writeStream(t, filepath.Join(root, "big.bin"), s)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo6(t, kind)
			ln, err := socket.Listen(tp.st, "tcp6", "[::]:80")
			if err != nil {
				t.Fatal(err)
			}
			serveListener(t, ln, service.HTTP, service.Options{Root: root})
			url := fmt.Sprintf("http://[%s]/big.bin", saddr6)
			h := newHashWriter()
			start := time.Now()
			startK(t, tp.k, nil, h, "curl", "-6", "-sS", "--fail", "--max-time", "120", url).wait(t, 130*time.Second)
			d := time.Since(start)
			h.check(t, "curl -6 GET", s)
			t.Logf("%s: curl -6 GET of %d MB in %v: %s", kind, s.n/MB, d.Round(time.Millisecond), rate(s.n, d))
		})
	}
}

// serveListener runs the built-in service kind on ln until the test
// ends.
func serveListener(t *testing.T, ln net.Listener, kind string, o service.Options) {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- service.ServeListener(ctx, kind, ln, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("service %s: %v", kind, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("service %s still running 10 s after its context ended", kind)
		}
	})
}

// socatSize6 is what TestIPv6Socat moves each way over TCP.
const socatSize6 = 10 * MB

// TestIPv6Socat: socat over IPv6 both ways — 10 MB from the kernel's
// socat to a stack listener on [2001:db8:200::2]:5001, 10 MB from the
// stack to the kernel's socat listening on TCP6 port 5002 — and a UDP
// echo from the kernel's socat through the stack's echo service on
// [::]:7.
func TestIPv6Socat(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo6(t, kind)

			// Kernel → stack.
			s := stream{seed: 61, n: socatSize6}
			ln := listenTCP(t, tp.st, netip.AddrPortFrom(saddr6, 5001))
			start := time.Now()
			p := startK(t, tp.k, s.reader(), nil, "socat", "-u", "-b", "262144", "-",
				fmt.Sprintf("TCP6:[%s]:5001", saddr6))
			c := accept(t, ln, 10*time.Second)
			if ra := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); ra != kaddr6 {
				t.Errorf("accepted from %v, want %v", ra, kaddr6)
			}
			h, err := recv(c, 60*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			p.wait(t, 10*time.Second)
			h.check(t, "kernel → stack", s)
			t.Logf("%s: kernel → stack %d MB in %v (mss %d)", kind, s.n/MB, time.Since(start).Round(time.Millisecond), c.Info().MSS)
			if mss := c.Info().MSS; mss > 1500-40-20 {
				t.Errorf("kernel → stack: MSS %d, more than an IPv6 1500-byte MTU allows (1440)", mss)
			}

			// Stack → kernel.
			s = stream{seed: 62, n: socatSize6}
			kp, kh := startKernelListen6(t, tp, 5002)
			start = time.Now()
			c2, err := dial(tp.st, netip.AddrPortFrom(kaddr6, 5002))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c2.Close() })
			if err := send(c2, s, 60*time.Second); err != nil {
				t.Fatal(err)
			}
			kp.wait(t, 60*time.Second)
			kh.check(t, "stack → kernel", s)
			t.Logf("%s: stack → kernel %d MB in %v (mss %d)", kind, s.n/MB, time.Since(start).Round(time.Millisecond), c2.Info().MSS)

			// UDP echo.
			pc, err := socket.ListenUDP(tp.st, netip.AddrPortFrom(netip.IPv6Unspecified(), 7))
			if err != nil {
				t.Fatal(err)
			}
			e := serveEcho6(t, pc)
			data, f := randomFile(t, 1000)
			out := run(t, tp.k, f, 10*time.Second, "socat", "-t", "1", "-", fmt.Sprintf("UDP6:[%s]:7", saddr6))
			if out != string(data) {
				t.Errorf("UDP echo over IPv6: got %d bytes sha256 %s, want %d bytes sha256 %s", len(out), sum([]byte(out)), len(data), sum(data))
			}
			if got := e.received(); !slices.Equal(got, []int{1000}) {
				t.Errorf("UDP echo over IPv6: the service got datagrams of %v bytes, want [1000]", got)
			}
		})
	}
}

// startKernelListen6 starts `socat -u TCP6-LISTEN:port -` in tp's kernel
// side with its output hashed, and waits until it listens.
func startKernelListen6(t *testing.T, tp *topo6, port int) (*kproc, *hashWriter) {
	t.Helper()
	h := newHashWriter()
	p := startK(t, tp.k, nil, h, "socat", "-u", "-b", "262144", fmt.Sprintf("TCP6-LISTEN:%d,reuseaddr", port), "-")
	eventually(t, 5*time.Second, "socat to listen", func() (bool, string) { return tcpListening(tp.k, port) })
	return p, h
}

// serveEcho6 runs a UDP echo service (RFC 862) on pc until the test
// ends.
func serveEcho6(t *testing.T, pc *socket.UDPConn) *echoServer {
	e := &echoServer{pc: pc, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		b := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.sizes = append(e.sizes, n)
			e.mu.Unlock()
			pc.WriteToUDPAddrPort(b[:n], from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-e.done
	})
	return e
}

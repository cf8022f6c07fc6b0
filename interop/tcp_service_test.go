package interop

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"ustack/service"
	"ustack/socket"
)

// serveTCP runs the built-in service kind on the stack's listener at ap
// until the test ends.
func serveTCP(t *testing.T, tp *topo, kind string, ap netip.AddrPort, o service.Options) {
	t.Helper()
	ln, err := socket.ListenTCP(tp.st, ap)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
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

// TestTCPEcho: kernel clients (socat) talk to the stack's TCP echo
// service (RFC 862): one sends 8 MB, half-closes, and must get the same
// 8 MB back before the service closes; sixteen more do the same at once
// with 64 KB each.
func TestTCPEcho(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo(t, topoConfig{kind: kind})
			serveTCP(t, tp, service.Echo, netip.AddrPortFrom(netip.IPv4Unspecified(), 7), service.Options{})
			to := fmt.Sprintf("TCP:%s:7", tp.saddr)

			s := stream{seed: 7, n: 8 * MB}
			h := newHashWriter()
			start := time.Now()
			// -t: after stdin's end socat waits this long for the echo
			// to end; the service ends it by closing.
			startK(t, tp.k, s.reader(), h, "socat", "-b", "65536", "-t", "60", "-", to).wait(t, 60*time.Second)
			d := time.Since(start)
			h.check(t, "8 MB echo", s)
			t.Logf("8 MB echoed in %v: %s each way", d.Round(time.Millisecond), rate(s.n, d))

			const clients = 16
			hs := make([]*hashWriter, clients)
			ps := make([]*kproc, clients)
			for i := range clients {
				hs[i] = newHashWriter()
				ps[i] = startK(t, tp.k, stream{seed: 100 + uint64(i), n: 64 << 10}.reader(), hs[i],
					"socat", "-t", "30", "-", to)
			}
			deadline := time.Now().Add(30 * time.Second)
			for i := range clients {
				ps[i].wait(t, time.Until(deadline))
				hs[i].check(t, fmt.Sprintf("client %d: 64 KB echo", i), stream{seed: 100 + uint64(i), n: 64 << 10})
			}
		})
	}
}

// httpSize is the file TestTCPHTTP serves.
const httpSize = 100 * MB

// TestTCPHTTP: the kernel's curl fetches a 100 MB file from the stack's
// http service (net/http's file server on the stack's listener) and a
// range of it (RFC 9110 §14: 206 and exactly those bytes).
func TestTCPHTTP(t *testing.T) {
	s := stream{seed: 80, n: httpSize}
	root := t.TempDir()
	writeStream(t, filepath.Join(root, "big.bin"), s)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo(t, topoConfig{kind: kind})
			serveTCP(t, tp, service.HTTP, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), service.Options{Root: root})
			url := fmt.Sprintf("http://%s/big.bin", tp.saddr)

			h := newHashWriter()
			start := time.Now()
			startK(t, tp.k, nil, h, "curl", "-sS", "--fail", "--max-time", "120", url).wait(t, 130*time.Second)
			d := time.Since(start)
			h.check(t, "curl GET", s)
			t.Logf("%s: curl GET of %d MB in %v: %s", kind, s.n/MB, d.Round(time.Millisecond), rate(s.n, d))
			checkRange(t, tp.k, url, s, 1000, 1999)
		})
	}
}

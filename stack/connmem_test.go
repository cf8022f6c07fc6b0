//go:build !race

package stack_test

import (
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"ustack/socket"
)

// Idle connection memory: the live heap an established, idle TCP
// connection costs, per endpoint (both ends of each connection live in
// the test's two stacks, as bench/'s idle workload holds them). Every
// part counts: the engine's Conn, its congestion controller, timers,
// demultiplexing and port table entries, and the socket layer's TCPConn.
//
//	go test -run TestIdleConnMemory -v ./stack/
//	USTACK_CONNMEM_PROFILE=/tmp/idle.pprof go test -run TestIdleConnMemory -memprofilerate 1 ./stack/
//	go tool pprof -sample_index inuse_space /tmp/idle.pprof

// idleConnBudget is the most heap one idle endpoint may hold, in bytes.
// Issue 5 asks for half of gVisor's figure (about 5.6 KB here) or less;
// about 1.85 KB is measured (November 2026): the tcp.Conn (1280 B size
// class), the socket's TCPConn (192), the keep-alive timer (~170),
// demultiplexing and port table entries (~180), CUBIC before it has work
// (24). The margin is for map growth steps.
const idleConnBudget = 2048

// usedConnBudget is the same for a connection that has sent and received
// data and waited in Read: it also holds the sender's flight state and
// CUBIC's (made on first send, kept for the connection's life so that
// busy periods allocate nothing), its retransmission timer and the
// channels Read waited on (about 4.0 KB measured).
const usedConnBudget = 4608

// heapInUse is the live heap after two full collections.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// idleConnBytes opens n connections between two stacks over a pipe,
// leaves them idle and returns the heap they add per endpoint. With used,
// each connection first carries a one-byte request and its one-byte
// answer, so both ends have sent, received and blocked in Read once.
func idleConnBytes(t *testing.T, n int, used bool) float64 {
	a, b := tcpStacks(t, 1500, 0)
	// One connection first, closed again: ARP resolved, pools and
	// tables at their steady size.
	c0, s0 := tcpConnect(t, a, b, "10.0.0.2")
	c0.Close()
	s0.Close()
	ln, err := socket.Listen(b, "tcp", "10.0.0.2:5002")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	clients := make([]net.Conn, 0, n)
	servers := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
		for _, c := range servers {
			c.Close()
		}
	}()
	accepted := make(chan error, 1)
	h0 := heapInUse()
	go func() {
		for len(servers) < n {
			c, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			servers = append(servers, c)
		}
		accepted <- nil
	}()
	for range n {
		c, err := socket.Dial(a, "tcp", "10.0.0.2:5002")
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if used {
		// Server goroutines answer while the client waits for the
		// answer: both ends write, read and block once.
		errs := make(chan error, 1)
		go func() {
			p := make([]byte, 1)
			for _, c := range servers {
				if _, err := io.ReadFull(c, p); err != nil {
					errs <- err
					return
				}
				if _, err := c.Write(p); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		p := []byte{'x'}
		for _, c := range clients {
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	h1 := heapInUse()
	if path := os.Getenv("USTACK_CONNMEM_PROFILE"); path != "" {
		// A heap profile with the connections open (run with
		// -memprofilerate 1 for every allocation).
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	runtime.KeepAlive(clients)
	runtime.KeepAlive(servers)
	return (float64(h1) - float64(h0)) / float64(2*n)
}

// TestIdleConnMemory: an idle established connection costs at most
// idleConnBudget bytes of heap per endpoint, measured over 5000
// connections; one that has carried a request and its answer, at most
// usedConnBudget.
func TestIdleConnMemory(t *testing.T) {
	const n = 5000
	for _, tc := range []struct {
		name   string
		used   bool
		budget float64
	}{
		{"fresh", false, idleConnBudget},
		{"used", true, usedConnBudget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			per := idleConnBytes(t, n, tc.used)
			t.Logf("%d connections: %.0f B of heap per endpoint", n, per)
			if per > tc.budget {
				t.Errorf("%.0f B of heap per idle endpoint, want at most %.0f", per, tc.budget)
			}
		})
	}
}

//go:build !race

package stack_test

import (
	"io"
	"net"
	"runtime/debug"
	"testing"
	"time"

	"ustack/link"
	"ustack/socket"
)

// TCP allocation guards: steady-state bulk transfer and request/response
// between two stacks over a pipe make no heap allocation, in either
// stack, on either path (Write → TCP → IPv4 → Ethernet → pipe → Ethernet
// → IPv4 → TCP → receive queue → Read, ACKs and timer re-arming
// included). testing.AllocsPerRun counts every allocation in the process
// and divides by the runs, so an allocation per packet or per round trip
// shows while a few one-off ones (a queue growing once) do not. The
// garbage collector is off while measuring, so sync.Pool keeps what it
// holds (see measure in alloc_test.go).

// tcpBulkAllocs streams 64 KiB writes from a to b and returns the
// allocations per write in steady state.
func tcpBulkAllocs(t *testing.T, mtu int, caps link.Capabilities, dst string) float64 {
	a, b := tcpStacks(t, mtu, caps)
	client, server := tcpConnect(t, a, b, dst)
	// Fixed buffers bound what is in flight (held by the receive queue,
	// the send queue and the pipe), so the pools reach the most they will
	// ever hand out within the warm-up. With auto-tuning the bound is the
	// same kind but far larger (rmem_max), and a scheduling hiccup that
	// first fills it shows as a burst of pool misses long after start:
	// growth, not a per-packet cost.
	for _, c := range []net.Conn{client, server} {
		tc := c.(*socket.TCPConn)
		if err := tc.SetReadBuffer(256 << 10); err != nil {
			t.Fatal(err)
		}
		if err := tc.SetWriteBuffer(256 << 10); err != nil {
			t.Fatal(err)
		}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const chunk = 64 << 10
	const warm, runs = 512, 512 // 32 MiB each
	done := make(chan error, 1)
	go func() {
		// The reader drains everything: warm-up, AllocsPerRun's own
		// warm-up run, and the measured runs.
		_, err := io.CopyN(io.Discard, server, int64(warm+1+runs)*chunk)
		done <- err
	}()
	wbuf := make([]byte, chunk)
	write := func() {
		if _, err := client.Write(wbuf); err != nil {
			t.Fatal(err)
		}
	}
	for range warm {
		write()
	}
	n := testing.AllocsPerRun(runs, write)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTCPBulkAllocs: 64 KiB writes streamed at MTU 1500 (45 segments and
// about 22 ACKs each), at MTU 65535 and with segmentation offload
// allocate nothing in steady state.
func TestTCPBulkAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		mtu  int
		caps link.Capabilities
		dst  string
	}{
		{"mtu1500", 1500, 0, "10.0.0.2"},
		{"mtu65535", 65535, 0, "10.0.0.2"},
		{"mtu1500-tso", 1500, link.CapTxChecksum | link.CapRxChecksum | link.CapTSO4 | link.CapRxGSO, "10.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := tcpBulkAllocs(t, tc.mtu, tc.caps, tc.dst); n != 0 {
				t.Errorf("%v allocations per 64 KiB written, want 0", n)
			}
		})
	}
}

// TestTCPRequestResponseAllocs: a one-byte request and a one-byte answer,
// with read and write deadlines set on every call as net/http does,
// allocate nothing per round trip.
func TestTCPRequestResponseAllocs(t *testing.T) {
	client, server := tcpPair(t, 1500, 0)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const warm, runs = 500, 2000
	done := make(chan error, 1)
	go func() {
		p := make([]byte, 1)
		for range warm + 1 + runs {
			server.SetReadDeadline(time.Now().Add(time.Minute))
			if _, err := io.ReadFull(server, p); err != nil {
				done <- err
				return
			}
			server.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := server.Write(p); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	p := make([]byte, 1)
	rt := func() {
		client.SetDeadline(time.Now().Add(time.Minute))
		if _, err := client.Write(p); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, p); err != nil {
			t.Fatal(err)
		}
	}
	for range warm {
		rt()
	}
	if n := testing.AllocsPerRun(runs, rt); n != 0 {
		t.Errorf("%v allocations per round trip, want 0", n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

package stack_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"ustack/buf"
	"ustack/link"
	"ustack/link/pipe"
	"ustack/socket"
	"ustack/stack"
)

// In-process TCP benchmarks: two stacks joined by a pipe link, as bench/
// measures them, here to profile and to keep the data path honest.
//
//	go test -run '^$' -bench TCP -benchmem ./stack/
//
// allocs/MB and allocs/rt count every heap allocation in the process
// during the timed loop (both stacks, the pipe's reader goroutines and
// the test's own goroutines), per megabyte moved or per round trip.

// tcpStacks returns two stacks, a (10.0.0.1) and b (10.0.0.2), joined by
// a pipe of the given MTU and offloads. (IPv6 would need DAD to finish
// first, a second of real time: the IPv6 path is left to e2e6_test.go.)
func tcpStacks(tb testing.TB, mtu int, caps link.Capabilities) (a, b *stack.Stack) {
	tb.Helper()
	a = stack.New(stack.Options{Name: "a"})
	b = stack.New(stack.Options{Name: "b"})
	tb.Cleanup(func() { a.Close(); b.Close() })
	// A queue that holds a whole window: with the default (512 frames) a
	// reader goroutine starved for a few milliseconds on a loaded machine
	// overflows it, and the run measures loss recovery instead of the
	// data path.
	ea, eb := pipe.New(pipe.Config{MTU: mtu, Offloads: caps, QueueLen: 8192})
	for _, x := range []struct {
		s    *stack.Stack
		ep   link.Endpoint
		addr string
	}{{a, ea, "10.0.0.1/24"}, {b, eb, "10.0.0.2/24"}} {
		if _, err := x.s.AddInterface("eth0", x.ep); err != nil {
			tb.Fatal(err)
		}
		if err := x.s.AddAddress("eth0", netip.MustParsePrefix(x.addr)); err != nil {
			tb.Fatal(err)
		}
	}
	return a, b
}

// tcpPair returns a connected pair over IPv4: client on a, server on b.
func tcpPair(tb testing.TB, mtu int, caps link.Capabilities) (client, server net.Conn) {
	tb.Helper()
	a, b := tcpStacks(tb, mtu, caps)
	return tcpConnect(tb, a, b, "10.0.0.2")
}

// tcpConnect returns a connection from a to a listener on b's address dst.
func tcpConnect(tb testing.TB, a, b *stack.Stack, dst string) (client, server net.Conn) {
	tb.Helper()
	ln, err := socket.Listen(b, "tcp", net.JoinHostPort(dst, "5001"))
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = socket.Dial(a, "tcp", net.JoinHostPort(dst, "5001"))
	if err != nil {
		tb.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		tb.Fatal(r.err)
	}
	tb.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

// procCPU is the process's user and system CPU time so far.
func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// benchBulk streams b.N writes of 64 KiB from a to b and reads them on b.
func benchBulk(b *testing.B, mtu int, caps link.Capabilities) {
	client, server := tcpPair(b, mtu, caps)
	const chunk = 64 << 10
	wbuf := make([]byte, chunk)
	for i := range wbuf {
		wbuf[i] = byte(i)
	}
	// Warm up: grow windows, buffers and pools before measuring.
	warm := 64 << 20
	var wg sync.WaitGroup
	total := int64(warm) + int64(b.N)*chunk
	var got int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		rbuf := make([]byte, chunk)
		for got < total {
			n, err := server.Read(rbuf)
			got += int64(n)
			if err != nil {
				if err != io.EOF {
					b.Error(err)
				}
				return
			}
		}
	}()
	for sent := 0; sent < warm; sent += chunk {
		if _, err := client.Write(wbuf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(chunk)
	b.ReportAllocs()
	m0, cpu0 := mallocs(), procCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := client.Write(wbuf); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	m, cpu := mallocs()-m0, procCPU()-cpu0
	b.ReportMetric(float64(m)/(float64(b.N)*chunk/1e6), "allocs/MB")
	// CPU time per GB moved, both stacks together: less sensitive than
	// MB/s to other load on the machine.
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*chunk/1e9), "cpu-s/GB")
	// Retransmissions show when the pipe's queue overflowed (a starved
	// reader goroutine): such runs measure loss recovery, not the path.
	b.ReportMetric(float64(client.(*socket.TCPConn).Info().TotalRetrans), "retrans")
}

func BenchmarkTCPBulk1500(b *testing.B)  { benchBulk(b, 1500, 0) }
func BenchmarkTCPBulk65535(b *testing.B) { benchBulk(b, 65535, 0) }

// BenchmarkTCPBulk1500TSO: MTU 1500 with checksum and segmentation
// offload on the pipe (large segments cross it whole).
func BenchmarkTCPBulk1500TSO(b *testing.B) {
	benchBulk(b, 1500, link.CapTxChecksum|link.CapRxChecksum|link.CapTSO4|link.CapTSO6|link.CapRxGSO)
}

// BenchmarkTCPRequestResponse: one byte each way per round trip.
func BenchmarkTCPRequestResponse(b *testing.B) {
	client, server := tcpPair(b, 1500, 0)
	go func() {
		p := make([]byte, 1)
		for {
			if _, err := io.ReadFull(server, p); err != nil {
				return
			}
			if _, err := server.Write(p); err != nil {
				return
			}
		}
	}()
	p := make([]byte, 1)
	rt := func() {
		if _, err := client.Write(p); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, p); err != nil {
			b.Fatal(err)
		}
	}
	for range 1000 {
		rt()
	}
	b.ReportAllocs()
	m0 := mallocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt()
	}
	b.StopTimer()
	b.ReportMetric(float64(mallocs()-m0)/float64(b.N), "allocs/rt")
}

// BenchmarkTCPConnectClose: dial, accept, one byte, close both ends. The
// server closes first, as an HTTP server does, so TIME-WAIT is on its
// side and the client's ports free up at once.
func BenchmarkTCPConnectClose(b *testing.B) {
	a, s := tcpStacks(b, 1500, 0)
	ln, err := socket.Listen(s, "tcp", ":5002")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.ReadFull(c, make([]byte, 1))
				c.Close()
			}()
		}
	}()
	one := []byte{1}
	b.ReportAllocs()
	for b.Loop() {
		c, err := socket.Dial(a, "tcp", "10.0.0.2:5002")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(one); err != io.EOF {
			b.Fatalf("read after the server's close: %v", err)
		}
		c.Close()
	}
}

// TestTCPPayloadCopies: between one stack's Write and the other's Read,
// in-process, each payload byte is copied twice: into the send queue by
// Write (transport/tcp sendQueue.write, by construction) and out of the
// receive queue by Read. Everything between (segmenting, retransmission
// copies, headers, IP, Ethernet, the pipe, demultiplexing, queueing) only
// shares views, so buf, which counts every copy it makes, sees exactly
// the bytes Read copies out and no more.
func TestTCPPayloadCopies(t *testing.T) {
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
			sa, sb := tcpStacks(t, tc.mtu, tc.caps)
			client, server := tcpConnect(t, sa, sb, tc.dst)
			const total = 16 << 20
			data := make([]byte, 64<<10)
			for i := range data {
				data[i] = byte(i*7 + i>>9)
			}
			buf.CountCopies(true)
			defer buf.CountCopies(false)
			before := buf.CopiedBytes()
			done := make(chan error, 1)
			go func() {
				rbuf := make([]byte, 48<<10) // not a multiple of anything
				got := 0
				for got < total {
					n, err := server.Read(rbuf)
					for i := range n {
						if rbuf[i] != data[(got+i)%len(data)] {
							done <- fmt.Errorf("byte %d differs", got+i)
							return
						}
					}
					got += n
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for sent := 0; sent < total; sent += len(data) {
				if _, err := client.Write(data); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := buf.CopiedBytes() - before; got != total {
				t.Errorf("buf copied %d bytes moving %d: want exactly the %d Read copies out", got, total, total)
			}
			// The pipe neither drops (its queue holds a window) nor
			// reorders, so the receiver never sees a timestamp go
			// backwards (RFC 7323 §5: PAWS would drop the segment):
			// timestamps are taken under the connection's mutex.
			if n := sb.Stats()["tcp.paws_drops"]; n != 0 {
				t.Errorf("%d segments dropped by PAWS on an in-order pipe", n)
			}
		})
	}
}

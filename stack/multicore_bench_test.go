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

	"ustack/link"
	"ustack/link/pipe"
	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// Multi-core scaling: bulk TCP between two stacks over a pipe whose
// receive sides have one or two queues (RSS-like flow hashing), one flow
// against two:
//
//	go test -run '^$' -bench 'BulkFlows' -cpu 1,2 -count 5 ./stack/
//
// BenchmarkBulkFlows/q=Q/flows=F moves 4 MiB per flow per iteration (MB/s
// is the aggregate) at the GOMAXPROCS -cpu sets. BenchmarkBulkFlowsRatio
// runs one and two flows at one and two procs inside each iteration, so
// that all four share the machine's load, and reports the ratios. Both
// report cores (CPU time of the process over wall time), cpu-ns/B and
// MB/cpu-s: when two flows do not scale, these tell a lack of cores
// (cores below GOMAXPROCS: other processes hold the CPUs) from contention
// (cpu-ns/B rising with the second flow).

const bulkChunk = 4 << 20 // bytes per flow per iteration

// bulkBufMax bounds the TCP buffers (net.inet.tcp.rmem_max, wmem_max) of
// the two stacks; 0 keeps the defaults. The pipe's round trip is a few
// microseconds, so 256 KiB is many times the bandwidth-delay product; with
// the defaults (6 MiB receive buffers, auto-tuned) a flow keeps megabytes
// queued in the pipe (which has no backpressure, unlike a kernel's TSQ),
// and the per-byte cost measured is mostly cache misses on that backlog
// (about 1.6× the CPU per byte of one flow on one core).
var bulkBufMax = 256 << 10

// bulkRig is two stacks joined by a multi-queue pipe, with flows from a
// to b, each on the receive queue of its index (modulo the queues).
type bulkRig struct {
	a, b  *stack.Stack
	ea    *pipe.Endpoint // a's side
	eb    *pipe.Endpoint // b's side
	flows []bulkFlow
}

type bulkFlow struct {
	w, r net.Conn // w on a, r on b
	wbuf []byte
	rbuf []byte
}

func newBulkRig(tb testing.TB, mtu, queues, flows int) *bulkRig {
	tb.Helper()
	g := &bulkRig{a: stack.New(stack.Options{Name: "a"}), b: stack.New(stack.Options{Name: "b"})}
	tb.Cleanup(func() { g.a.Close(); g.b.Close() })
	if bulkBufMax > 0 {
		for _, s := range []*stack.Stack{g.a, g.b} {
			for _, name := range []string{"net.inet.tcp.rmem_max", "net.inet.tcp.wmem_max"} {
				if err := s.Sysctl().Set(name, fmt.Sprint(bulkBufMax)); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	g.ea, g.eb = pipe.New(pipe.Config{MTU: mtu, Queues: queues, QueueLen: 1024})
	for _, x := range []struct {
		s    *stack.Stack
		ep   link.Endpoint
		addr string
	}{{g.a, g.ea, "10.0.0.1/24"}, {g.b, g.eb, "10.0.0.2/24"}} {
		if _, err := x.s.AddInterface("eth0", x.ep); err != nil {
			tb.Fatal(err)
		}
		if err := x.s.AddAddress("eth0", netip.MustParsePrefix(x.addr)); err != nil {
			tb.Fatal(err)
		}
	}
	srv := netip.MustParseAddrPort("10.0.0.2:5001")
	ln, err := socket.Listen(g.b, "tcp", srv.String())
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	port := uint16(40000)
	for i := range flows {
		// A local port whose flow hashes to queue i (mod queues), so
		// that flows meet on one queue only when there are fewer queues.
		var laddr netip.AddrPort
		for ; ; port++ {
			laddr = netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port)
			if pipe.QueueOf(tcpFrameHeader(laddr, srv), link.TypeEthernet, queues) == i%queues {
				port++
				break
			}
		}
		w, err := socket.DialTCP(g.a, laddr, srv)
		if err != nil {
			tb.Fatal(err)
		}
		r, err := ln.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { w.Close(); r.Close() })
		g.flows = append(g.flows, bulkFlow{w: w, r: r, wbuf: make([]byte, 64<<10), rbuf: make([]byte, 64<<10)})
	}
	return g
}

// tcpFrameHeader is the front of an Ethernet/IPv4/TCP frame from src to
// dst: what the flow hash reads.
func tcpFrameHeader(src, dst netip.AddrPort) []byte {
	b := make([]byte, wire.EthernetHeaderLen+20+wire.TCPMinHeaderLen)
	(&wire.EthernetFields{Type: wire.EtherTypeIPv4}).Encode(b)
	(&wire.IPv4Fields{TotalLen: 40, TTL: 64, Protocol: wire.IPProtoTCP, Src: src.Addr(), Dst: dst.Addr()}).Encode(b[wire.EthernetHeaderLen:])
	(&wire.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), Flags: wire.TCPFlagACK}).Encode(b[wire.EthernetHeaderLen+20:])
	return b
}

// transfer moves n bytes on each of the first k flows at once and
// returns when all have arrived.
func (g *bulkRig) transfer(tb testing.TB, k, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, 2*k)
	for i := range g.flows[:k] {
		f := &g.flows[i]
		wg.Add(2)
		go func() {
			defer wg.Done()
			for left := n; left > 0; {
				m, err := f.w.Write(f.wbuf[:min(left, len(f.wbuf))])
				if err != nil {
					errs <- err
					return
				}
				left -= m
			}
		}()
		go func() {
			defer wg.Done()
			for left := n; left > 0; {
				m, err := f.r.Read(f.rbuf[:min(left, len(f.rbuf))])
				if err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					errs <- err
					return
				}
				left -= m
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkBulkFlows(b *testing.B) {
	for _, q := range []int{1, 2} {
		for _, flows := range []int{1, 2} {
			b.Run(fmt.Sprintf("q=%d/flows=%d", q, flows), func(b *testing.B) {
				g := newBulkRig(b, 1500, q, flows)
				g.transfer(b, flows, bulkChunk) // warm up: windows open, pools filled
				b.SetBytes(int64(flows * bulkChunk))
				b.ReportAllocs()
				cpu0, t0 := cpuTime(), time.Now()
				for b.Loop() {
					g.transfer(b, flows, bulkChunk)
				}
				cpu, wall := cpuTime()-cpu0, time.Since(t0)
				b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
				b.ReportMetric(float64(b.N*flows*bulkChunk)/1e6/cpu.Seconds(), "MB/cpu-s")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*flows*bulkChunk), "cpu-ns/B")
			})
		}
	}
}

// BenchmarkBulkFlowsRatio runs, in each iteration, one flow and two flows
// over a pipe with one (q=1) or two (q=2) receive queues per side, each at
// GOMAXPROCS 1 and 2 (set here, whatever -cpu says), so that all four see
// the same machine load.
// It reports the MB/s of each ("MB/s-F@P": F flows, P procs) and the
// ratios "x2@2/1@1" (two flows on two cores over one flow on one core:
// receive-side scaling's promise, the target ≥ 1.6) and
// "x2@2/1@2" (a second flow at two cores; one flow alone already spreads
// over more than one goroutine: its sender, both stacks' receive queues,
// its reader). cores-F@P is the CPU the process got (CPU time over wall
// time): below P while the runtime had work for P cores, other processes
// held the CPUs.
func BenchmarkBulkFlowsRatio(b *testing.B) {
	for _, q := range []int{1, 2} {
		b.Run(fmt.Sprintf("q=%d", q), func(b *testing.B) { bulkFlowsRatio(b, q) })
	}
}

func bulkFlowsRatio(b *testing.B, queues int) {
	g := newBulkRig(b, 1500, queues, 2)
	g.transfer(b, 2, bulkChunk)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	type phase struct {
		flows, procs int
		wall, cpu    time.Duration
	}
	phases := []*phase{{flows: 1, procs: 1}, {flows: 2, procs: 2}, {flows: 1, procs: 2}, {flows: 2, procs: 1}}
	run := func(p *phase) {
		runtime.GOMAXPROCS(p.procs)
		cpu0, t0 := cpuTime(), time.Now()
		g.transfer(b, p.flows, bulkChunk)
		p.wall += time.Since(t0)
		p.cpu += cpuTime() - cpu0
	}
	i := 0
	for b.Loop() {
		// Rotate the order, so that drift in the machine's load is
		// shared out evenly.
		for j := range phases {
			run(phases[(i+j)%len(phases)])
		}
		i++
	}
	mbs := func(p *phase) float64 { return float64(b.N*p.flows*bulkChunk) / 1e6 / p.wall.Seconds() }
	for _, p := range phases {
		b.ReportMetric(mbs(p), fmt.Sprintf("MB/s-%d@%d", p.flows, p.procs))
		b.ReportMetric(p.cpu.Seconds()/p.wall.Seconds(), fmt.Sprintf("cores-%d@%d", p.flows, p.procs))
	}
	b.ReportMetric(mbs(phases[1])/mbs(phases[0]), "x2@2/1@1")
	b.ReportMetric(mbs(phases[1])/mbs(phases[2]), "x2@2/1@2")
	b.ReportMetric(0, "ns/op")
}

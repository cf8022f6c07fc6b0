package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The in-process workloads (issue 5, item 1): two stacks of one system in
// this process, joined by an in-memory Ethernet link (pair.go). Each
// repetition builds a fresh pair and tears it down. CPU time is the whole
// process's (both stacks and the harness), allocations are the whole
// process's heap objects (runtime.MemStats.Mallocs), and MB and GB are
// 10^6 and 10^9 bytes.

var inprocSystems = []string{"ustack", "gvisor"}

// inprocWorkloads names the workloads registered here (main_test.go runs
// them all).
var inprocWorkloads []string

// registerInproc registers an in-process workload on both systems (and
// any extra ones).
func registerInproc(name string, maxReps int, run func(Config, string) (Result, error), extra ...string) {
	inprocWorkloads = append(inprocWorkloads, name)
	register(Workload{Name: name, Systems: append(slices.Clip(inprocSystems), extra...), Run: run, MaxReps: maxReps})
}

func init() {
	registerInproc("bulk/mtu1500", 0, func(cfg Config, sys string) (Result, error) { return runBulk(cfg, sys, 1500, 1) })
	registerInproc("bulk/mtu65535", 0, func(cfg Config, sys string) (Result, error) { return runBulk(cfg, sys, 65535, 1) })
	registerInproc("bulk2/mtu1500", 0, func(cfg Config, sys string) (Result, error) { return runBulk(cfg, sys, 1500, 2) })
	registerInproc("rr", 0, runRR)
	registerInproc("connect", 0, runConnect)
	registerInproc("idle/10k", 0, func(cfg Config, sys string) (Result, error) { return runIdle(cfg, sys, 10_000) })
	registerInproc("idle/100k", 0, func(cfg Config, sys string) (Result, error) { return runIdle(cfg, sys, 100_000) })
	// A million connections take longer to set up than the 15 s after
	// which ustack's sockets (like Go's net) start keep-alive probes; the
	// variant without keep-alive shows what the endpoints themselves cost.
	registerInproc("idle/1M", 1, func(cfg Config, sys string) (Result, error) { return runIdle(cfg, sys, 1_000_000) },
		"ustack/nokeepalive")
}

// closer closes a pair once, from whichever of the workload or its
// watchdog gets there first.
type closer struct {
	once sync.Once
	p    pair
}

func (c *closer) close() { c.once.Do(c.p.close) }

// runBulk sends 1 GiB (8 MiB with Quick) from the client to the server
// over flows connections at once, each carrying an equal share, and
// reports the aggregate throughput. The clock runs from the first Write
// (connections already established) to the last byte read by the server.
func runBulk(cfg Config, system string, mtu, flows int) (Result, error) {
	total := int64(1 << 30)
	if cfg.Quick {
		total = 8 << 20
	}
	per := total / int64(flows)
	total = per * int64(flows)
	p, err := newPair(system, mtu)
	if err != nil {
		return Result{}, err
	}
	pc := &closer{p: p}
	defer pc.close()
	ln, err := p.listen(serverPort)
	if err != nil {
		return Result{}, err
	}
	var got atomic.Int64
	// Steady state: allocations after the first quarter of the transfer,
	// when windows, buffers and pools have grown to what the flow needs
	// (the whole-run figure counts that growth too).
	var warm atomic.Bool
	var warmAllocs atomic.Uint64
	var warmAt atomic.Int64
	markWarm := func(n int64) {
		if n >= total/4 && warm.CompareAndSwap(false, true) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			warmAllocs.Store(ms.Mallocs)
			warmAt.Store(n)
		}
	}
	errs := make(chan error, 2*flows+1)
	go func() {
		for range flows {
			c, err := ln.Accept()
			if err != nil {
				errs <- fmt.Errorf("accept: %w", err)
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, ioChunkSize)
				var n int64
				for {
					k, err := c.Read(b)
					n += int64(k)
					if all := got.Add(int64(k)); !warm.Load() {
						markWarm(all)
					}
					if err == io.EOF {
						if n != per {
							errs <- fmt.Errorf("server read %d bytes, want %d", n, per)
						} else {
							errs <- nil
						}
						return
					}
					if err != nil {
						errs <- fmt.Errorf("server read after %d bytes: %w", n, err)
						return
					}
				}
			}()
		}
	}()
	conns := make([]net.Conn, flows)
	for i := range conns {
		if conns[i], err = p.dial(netip.AddrPort{}, netip.AddrPortFrom(serverAddr, serverPort)); err != nil {
			return Result{}, fmt.Errorf("dial: %w", err)
		}
	}
	data := make([]byte, ioChunkSize)
	for i := range data {
		data[i] = byte(i * 7)
	}
	wd := watch(fmt.Sprintf("%s bulk mtu %d, %d flows", system, mtu, flows), &got, 20*time.Second, pc.close)
	rx0 := p.retransmits()
	s0 := take()
	for _, c := range conns {
		go func() {
			for left := per; left > 0; {
				k, err := c.Write(data[:min(left, int64(len(data)))])
				left -= int64(k)
				if err != nil {
					errs <- fmt.Errorf("client write with %d bytes left: %w", left, err)
					return
				}
			}
			if err := c.Close(); err != nil {
				errs <- fmt.Errorf("client close: %w", err)
				return
			}
			errs <- nil
		}()
	}
	var first error
	for range 2 * flows {
		if err := <-errs; err != nil && first == nil {
			first = err
			break
		}
	}
	d := since(s0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	steadyMB := float64(total-warmAt.Load()) / 1e6
	rx := p.retransmits() - rx0
	if err := wd.stop(); err != nil {
		return Result{}, fmt.Errorf("%w (received %d of %d bytes)", err, got.Load(), total)
	}
	if first != nil {
		return Result{}, first
	}
	bytes := float64(total)
	return Result{
		Metric: "throughput", Unit: "MB/s", HigherIsBetter: true,
		Value: bytes / 1e6 / d.wall.Seconds(),
		Extra: map[string]float64{
			"cpu_s_per_GB":  d.cpu.Seconds() / (bytes / 1e9),
			"allocs_per_MB": float64(d.allocs) / (bytes / 1e6),
			// After the first quarter: what each further MB costs.
			"allocs_per_MB_steady": float64(ms.Mallocs-warmAllocs.Load()) / steadyMB,
			"cores_busy":           d.cpu.Seconds() / d.wall.Seconds(),
			"retrans_per_MB":       float64(rx) / (bytes / 1e6),
		},
	}, nil
}

// runRR bounces one byte between client and server for 5 s (200 ms with
// Quick) on one connection, one round trip at a time, and reports round
// trips per second and the latency of each round trip as the client sees
// it (Write to the end of the Read).
func runRR(cfg Config, system string) (Result, error) {
	dur := 5 * time.Second
	if cfg.Quick {
		dur = 200 * time.Millisecond
	}
	p, err := newPair(system, 1500)
	if err != nil {
		return Result{}, err
	}
	pc := &closer{p: p}
	defer pc.close()
	ln, err := p.listen(serverPort)
	if err != nil {
		return Result{}, err
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}()
	c, err := p.dial(netip.AddrPort{}, netip.AddrPortFrom(serverAddr, serverPort))
	if err != nil {
		return Result{}, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	b := []byte{1}
	rt := func() error {
		if _, err := c.Write(b); err != nil {
			return err
		}
		_, err := io.ReadFull(c, b)
		return err
	}
	for range 100 { // warm up: ARP, windows, code paths
		if err := rt(); err != nil {
			return Result{}, fmt.Errorf("warm-up round trip: %w", err)
		}
	}
	lat := make([]time.Duration, 0, 1<<21)
	var n atomic.Int64
	wd := watch(system+" rr", &n, 10*time.Second, pc.close)
	s0 := take()
	end := s0.t.Add(dur)
	for t0 := time.Now(); ; {
		if err := rt(); err != nil {
			wd.stop()
			return Result{}, fmt.Errorf("round trip %d: %w", n.Load(), err)
		}
		t1 := time.Now()
		lat = append(lat, t1.Sub(t0))
		n.Add(1)
		if t1.After(end) {
			break
		}
		t0 = t1
	}
	d := since(s0)
	if err := wd.stop(); err != nil {
		return Result{}, err
	}
	slices.Sort(lat)
	k := float64(len(lat))
	return Result{
		Metric: "round trips", Unit: "1/s", HigherIsBetter: true,
		Value: k / d.wall.Seconds(),
		Extra: map[string]float64{
			"p50_us":        percentileUS(lat, 0.50),
			"p99_us":        percentileUS(lat, 0.99),
			"allocs_per_rt": float64(d.allocs) / k,
			"cpu_us_per_rt": float64(d.cpu.Microseconds()) / k,
		},
	}, nil
}

// runConnect opens and closes connections one after another for 3 s
// (200 ms with Quick), at most 150 000 (100): the client dials from an
// explicit address and port (no tuple reused in the run), the server
// accepts and closes at once, the client reads the end of the stream and
// closes. It reports connections per second and CPU per connection.
func runConnect(cfg Config, system string) (Result, error) {
	dur, maxN := 3*time.Second, 150_000
	if cfg.Quick {
		dur, maxN = 200*time.Millisecond, 100
	}
	p, err := newPair(system, 1500)
	if err != nil {
		return Result{}, err
	}
	pc := &closer{p: p}
	defer pc.close()
	addrs, err := p.clientAddrs(addrsFor(maxN))
	if err != nil {
		return Result{}, err
	}
	ln, err := p.listen(serverPort)
	if err != nil {
		return Result{}, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	raddr := netip.AddrPortFrom(serverAddr, serverPort)
	var n atomic.Int64
	wd := watch(system+" connect", &n, 10*time.Second, pc.close)
	b := make([]byte, 1)
	s0 := take()
	for i := 0; i < maxN; i++ {
		c, err := p.dial(tuple(addrs, i), raddr)
		if err != nil {
			wd.stop()
			return Result{}, fmt.Errorf("dial %d from %v: %w", i, tuple(addrs, i), err)
		}
		if _, err := c.Read(b); err != io.EOF {
			c.Close()
			wd.stop()
			return Result{}, fmt.Errorf("connection %d: read %v, want EOF", i, err)
		}
		c.Close()
		n.Add(1)
		if time.Since(s0.t) >= dur {
			break
		}
	}
	d := since(s0)
	if err := wd.stop(); err != nil {
		return Result{}, err
	}
	k := float64(n.Load())
	return Result{
		Metric: "connections", Unit: "1/s", HigherIsBetter: true,
		Value: k / d.wall.Seconds(),
		Extra: map[string]float64{
			"cpu_us_per_conn": float64(d.cpu.Microseconds()) / k,
			"allocs_per_conn": float64(d.allocs) / k,
		},
	}, nil
}

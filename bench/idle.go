package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// idlePerEndpoint remembers the last idle figure per system (heap bytes per
// endpoint), so that a larger count can be refused before it runs when it
// cannot fit.
var idlePerEndpoint sync.Map // system -> float64

// memAvailable is /proc/meminfo's MemAvailable in bytes, 0 if unknown.
func memAvailable() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// heapAfterGC is the heap in use after one collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// heapObjects is the heap bytes in objects, live or not yet swept; cheap
// to read (no stop-the-world), for the budget check.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// runIdle establishes n connections (100 with Quick) between the pair's
// two stacks, keeps every endpoint of both ends open, and reports the
// live heap they add per endpoint: (heap after - heap before) / (2 n),
// each after two full collections. Dialing runs from eight goroutines,
// each dialing from explicit addresses and ports. The live heap may grow
// to a budget of half the memory available at the start: when an earlier
// run of the same system gives its per-endpoint cost and n would not fit
// in 80% of it, n is lowered up front to what fits; a run
// that reaches the budget anyway stops there. Either way Extra "conns" is the count reached and Extra
// "capped" is 1.
func runIdle(cfg Config, system string, n int) (Result, error) {
	if cfg.Quick {
		n = 100
	}
	// Give back what earlier runs left mapped, so that MemAvailable
	// counts it.
	debug.FreeOSMemory()
	avail := memAvailable()
	budget := avail / 2
	cappedAt := 0
	if v, ok := idlePerEndpoint.Load(system); ok && budget > 0 {
		per := v.(float64)
		// The estimate must fit in 80% of the budget: the
		// collector needs room below the memory limit, or it runs
		// back to back and the handshakes time out.
		if need := per * 2 * float64(n); need > 0.8*float64(budget) {
			// Cap the count at what fits, in steps of 10 000.
			fit := int(0.8*float64(budget)/(2*per)) / 10_000 * 10_000
			if fit < 10_000 {
				return Result{}, fmt.Errorf("not run: %d connections need ≈%.1f GiB of heap at %.0f B per endpoint, over the budget of %.1f GiB (half of MemAvailable)",
					n, need/(1<<30), per, float64(budget)/(1<<30))
			}
			if cfg.Verbose {
				fmt.Fprintf(os.Stderr, "[capped at %d connections: %d need ≈%.1f GiB at %.0f B per endpoint, budget %.1f GiB] ",
					fit, n, need/(1<<30), per, float64(budget)/(1<<30))
			}
			n, cappedAt = fit, fit
		}
	}
	if avail > 0 {
		// Keep the collector from letting the heap double past what the
		// machine has: a soft limit at 60% of what is available.
		old := debug.SetMemoryLimit(int64(avail / 100 * 60))
		defer debug.SetMemoryLimit(old)
	}
	p, err := newPair(system, 1500)
	if err != nil {
		return Result{}, err
	}
	pc := &closer{p: p}
	defer pc.close()
	addrs, err := p.clientAddrs(addrsFor(n))
	if err != nil {
		return Result{}, err
	}
	ln, err := p.listen(serverPort)
	if err != nil {
		return Result{}, err
	}
	clients := make([]net.Conn, n)
	servers := make([]net.Conn, 0, n)
	// Reach a steady state before the baseline: one connection through
	// the path (ARP resolved, pools warm), closed again.
	if err := warmIdle(p, ln, addrs[0]); err != nil {
		return Result{}, err
	}
	g0 := runtime.NumGoroutine()
	h0 := heapLive()

	var accepted, dialed atomic.Int64
	var capped atomic.Bool
	acceptErr := make(chan error, 1)
	go func() {
		for len(servers) < n {
			c, err := ln.Accept()
			if err != nil {
				if capped.Load() {
					acceptErr <- nil
				} else {
					acceptErr <- fmt.Errorf("accept %d: %w", len(servers), err)
				}
				return
			}
			servers = append(servers, c)
			if accepted.Add(1)%16384 == 0 && budget > 0 && heapObjects() > budget && heapAfterGC() > budget {
				capped.Store(true)
			}
		}
		acceptErr <- nil
	}()
	// A lost SYN or SYN-ACK costs a backed-off retransmission (1 s, 2 s,
	// 4 s, ...), and a collection of a large heap stops the count too:
	// give up only after a minute without a new connection.
	wd := watch(fmt.Sprintf("%s idle %d", system, n), &accepted, time.Minute, pc.close)
	start := time.Now()
	const dialers = 8
	var wg sync.WaitGroup
	dialErr := make(chan error, dialers)
	raddr := netip.AddrPortFrom(serverAddr, serverPort)
	for k := range dialers {
		wg.Go(func() {
			for i := k; i < n; i += dialers {
				if capped.Load() {
					return
				}
				c, err := p.dial(tuple(addrs, i), raddr)
				if err != nil {
					dialErr <- fmt.Errorf("dial %d from %v: %w", i, tuple(addrs, i), err)
					return
				}
				clients[i] = c
				dialed.Add(1)
			}
		})
	}
	wg.Wait()
	close(dialErr)
	if err := <-dialErr; err != nil {
		wd.stop()
		return Result{}, err
	}
	if capped.Load() {
		// Every dialed connection completes its handshake; wait until the
		// acceptor has them all, then stop it.
		tick := time.NewTicker(10 * time.Millisecond)
		for accepted.Load() < dialed.Load() && wd.fired() == nil {
			<-tick.C
		}
		tick.Stop()
		ln.Close()
	}
	if err := <-acceptErr; err != nil {
		wd.stop()
		return Result{}, err
	}
	setup := time.Since(start)
	if err := wd.stop(); err != nil {
		return Result{}, err
	}
	h1 := heapLive()
	g1 := runtime.NumGoroutine()
	reached := int(accepted.Load())
	per := (float64(h1) - float64(h0)) / float64(2*reached)
	res := Result{
		Metric: "heap per endpoint", Unit: "B", HigherIsBetter: false,
		Value: per,
		Extra: map[string]float64{
			"goroutines_per_conn": float64(g1-g0) / float64(reached),
			"conns":               float64(reached),
			"setup_conns_per_s":   float64(reached) / setup.Seconds(),
			"heap_total_MB":       (float64(h1) - float64(h0)) / 1e6,
		},
	}
	if capped.Load() || cappedAt > 0 {
		res.Extra["capped"] = 1
	}
	idlePerEndpoint.Store(system, per)
	runtime.KeepAlive(clients)
	runtime.KeepAlive(servers)
	return res, nil
}

// warmIdle makes one connection from a port outside the tuple range and
// closes both ends.
func warmIdle(p pair, ln net.Listener, from netip.Addr) error {
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(got)
			return
		}
		got <- c
	}()
	c, err := p.dial(netip.AddrPortFrom(from, portHi+1), netip.AddrPortFrom(serverAddr, serverPort))
	if err != nil {
		return fmt.Errorf("warm-up dial: %w", err)
	}
	s, ok := <-got
	if !ok {
		c.Close()
		return fmt.Errorf("warm-up accept failed")
	}
	c.Close()
	s.Close()
	return nil
}

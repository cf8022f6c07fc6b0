package main

// Device workloads (issue 5, item 1, second half): ustack over real
// devices with the Linux kernel as the peer, beside gVisor on the same
// TAP and kernel↔kernel over veth, in the same run.
//
// Topology, made by each workload's Setup and deleted by its cleanup:
//
//	namespace K (the kernel peer)          namespace S (the clients)
//	 ubt0  TAP     10.201.3.1/24  ◀─fd──  ustack / gVisor (this process,
//	                                        device opened from inside K)
//	 ubvA  veth    10.201.1.1/24  ═══════ ubvB (no address): ustack or
//	                                        gVisor on AF_PACKET
//	 ubkA  veth    10.201.2.1/24  ═══════ ubkB 10.201.2.2/24: kernel
//	                                        sockets of this process,
//	                                        iperf3 -c
//	 peer: this binary re-executed (devices_peer.go) on :5201,
//	       iperf3 -s on :5202
//
// Every row talks to the same peer program with the same client loop
// (devices_load.go); only the stack under the client's net.Conn changes.
// CPU-seconds per GB are this process's (the stack's side; the kernel
// peer runs in its own process), and for kernel/veth the client's
// system calls and what the kernel does in them (softirq work done on
// the way out of a system call is charged to the caller, so part of the
// peer's receive path lands there too); for iperf3, its client
// process's. Bulk rows also report kernel_retrans, the segments the
// kernel peer retransmitted during the transfer (in the receive rows,
// frames lost on the way into the client's stack), and receive rows
// acks_per_MB, the segments the kernel received from the client per MB
// it sent (each one a write into the TAP or packet socket).
//
// Workloads: tap/{send,recv}/{plain,offload} and tap/rr (ustack/tap,
// gvisor/tap, and kernel/veth as the ceiling in the offload and rr rows),
// veth/{send,recv,rr} (ustack/afpacket, gvisor/afpacket, kernel/veth,
// and iperf3 as a cross-check of the Go client in the bulk rows).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"ustack/bench/internal/ns"
	"ustack/wire"
)

// Systems of the device rows.
const (
	sysUstackTap  = "ustack/tap"
	sysGvisorTap  = "gvisor/tap"
	sysUstackAF   = "ustack/afpacket"
	sysGvisorAF   = "gvisor/afpacket"
	sysKernelVeth = "kernel/veth"
	sysIperf3     = "kernel/veth/iperf3"
)

// Addresses and names in the topology.
var (
	tapDev                   = "ubt0"
	tapKernel                = netip.MustParseAddr("10.201.3.1")
	tapStack                 = netip.MustParsePrefix("10.201.3.2/24")
	vethKDev, vethSDev       = "ubvA", "ubvB"
	vethKernel               = netip.MustParseAddr("10.201.1.1")
	vethStack                = netip.MustParsePrefix("10.201.1.2/24")
	kvethKDev, kvethSDev     = "ubkA", "ubkB"
	kvethServer, kvethClient = "10.201.2.1/24", "10.201.2.2/24"
	kvethKernel              = netip.MustParseAddr("10.201.2.1")
	// stackMAC is ustack's and gVisor's address on the TAP (the kernel's
	// end keeps its own); the same for both so the kernel's ARP entry
	// stays right between runs.
	stackMAC = wire.MAC{0x02, 0x00, 0x0a, 0xc9, 0x03, 0x02}
)

const (
	peerPort  = 5201
	iperfPort = 5202
)

func init() {
	tapRows := []string{sysUstackTap, sysGvisorTap}
	withKernel := []string{sysUstackTap, sysGvisorTap, sysKernelVeth}
	vethBulk := []string{sysUstackAF, sysGvisorAF, sysKernelVeth, sysIperf3}
	for _, w := range []struct {
		name    string
		op      byte
		mode    devMode
		systems []string
	}{
		{"tap/send/plain", opSink, modePlain, tapRows},
		{"tap/recv/plain", opSource, modePlain, tapRows},
		{"tap/send/offload", opSink, modeOffload, withKernel},
		{"tap/recv/offload", opSource, modeOffload, withKernel},
		{"tap/rr", opEcho, modePlain, withKernel},
		{"veth/send", opSink, modeOffload, vethBulk},
		{"veth/recv", opSource, modeOffload, vethBulk},
		{"veth/rr", opEcho, modeOffload, []string{sysUstackAF, sysGvisorAF, sysKernelVeth}},
	} {
		iperf := false
		for _, s := range w.systems {
			iperf = iperf || s == sysIperf3
		}
		register(Workload{
			Name:    w.name,
			Systems: w.systems,
			Setup:   func(cfg Config) (func(), error) { return devSetup(iperf) },
			Run: func(cfg Config, system string) (Result, error) {
				return devRun(cfg, w.op, w.mode, system)
			},
		})
	}
}

// devMode says how the stacks use the TAP.
type devMode int

const (
	// modePlain: no offloads, 1500-byte frames with complete checksums
	// both ways.
	modePlain devMode = iota
	// modeOffload: virtio-net header, TSO/GSO to the kernel, the
	// kernel's large frames and partial checksums taken.
	modeOffload
)

// devEnv is the topology of one workload's run.
type devEnv struct {
	k, s  *ns.NS
	peer  *ns.Process
	iperf *ns.Process
}

var (
	devMu  sync.Mutex
	devCur *devEnv
)

// devSetup builds the topology and starts the peers; the cleanup it
// returns tears everything down.
func devSetup(iperf bool) (func(), error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("device workloads need root (network namespaces, TAP, veth)")
	}
	ns.Sweep()
	e, err := newDevEnv(iperf)
	if err != nil {
		return nil, err
	}
	devMu.Lock()
	devCur = e
	devMu.Unlock()
	return func() {
		devMu.Lock()
		devCur = nil
		devMu.Unlock()
		e.close()
	}, nil
}

func newDevEnv(iperf bool) (e *devEnv, err error) {
	e = &devEnv{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.k, err = ns.New(); err != nil {
		return nil, err
	}
	if e.s, err = ns.New(); err != nil {
		return nil, err
	}
	if err = e.k.Tuntap(tapDev, "tap"); err != nil {
		return nil, err
	}
	if err = ns.Veth(vethKDev, e.k, vethSDev, e.s); err != nil {
		return nil, err
	}
	if err = ns.Veth(kvethKDev, e.k, kvethSDev, e.s); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		n    *ns.NS
		args []string
	}{
		{e.k, []string{"addr", "add", netip.PrefixFrom(tapKernel, 24).String(), "dev", tapDev}},
		{e.k, []string{"link", "set", tapDev, "up"}},
		{e.k, []string{"addr", "add", netip.PrefixFrom(vethKernel, 24).String(), "dev", vethKDev}},
		{e.k, []string{"addr", "add", kvethServer, "dev", kvethKDev}},
		{e.s, []string{"addr", "add", kvethClient, "dev", kvethSDev}},
	} {
		if _, err = c.n.Exec("ip", c.args...); err != nil {
			return nil, err
		}
	}
	if e.peer, err = startPeer(e.k); err != nil {
		return nil, err
	}
	if iperf {
		cmd := e.k.Command("iperf3", "-s", "-p", strconv.Itoa(iperfPort))
		if e.iperf, err = e.k.Start(cmd); err != nil {
			return nil, err
		}
		if err = waitListening(e.k, iperfPort, e.iperf); err != nil {
			return nil, fmt.Errorf("iperf3 -s: %w", err)
		}
	}
	return e, nil
}

func (e *devEnv) close() {
	if e.s != nil {
		e.s.Close()
	}
	if e.k != nil {
		e.k.Close() // kills the peers first
	}
}

// startPeer re-executes this binary as the kernel peer in n and waits
// for it to listen.
func startPeer(n *ns.NS) (*ns.Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := n.Command(exe, peerFlag, fmt.Sprintf("0.0.0.0:%d", peerPort))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	p, err := n.Start(cmd)
	if err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = errors.New("not ready after 10 s")
	}
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("kernel peer: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return p, nil
}

// waitListening waits until something listens on TCP port in n, or p
// exits.
func waitListening(n *ns.NS, port int, p *ns.Process) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := n.Exec("ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if strings.TrimSpace(out) != "" {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("exited: %v", p.Wait())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("not listening after 10 s")
}

// devSizes are a run's bulk size and request/response duration.
func devSizes(cfg Config) (int64, time.Duration) {
	if cfg.Quick {
		return 16 << 20, 300 * time.Millisecond
	}
	return 1 << 30, 5 * time.Second
}

// client is one system's side of a run: how to connect to the peer, and
// how to take the system down afterwards.
type client struct {
	dial     func(netip.AddrPort) (net.Conn, error)
	peer     netip.Addr
	shutdown func()
}

func (e *devEnv) client(system string, mode devMode) (*client, error) {
	switch system {
	case sysUstackTap:
		u, err := ustackTap(e.k.Do, tapDev, stackMAC, tapStack, mode == modeOffload)
		if err != nil {
			return nil, err
		}
		return &client{u.dial, tapKernel, u.shutdown}, nil
	case sysGvisorTap:
		g, err := gvisorTap(e.k.Do, tapDev, net.HardwareAddr(stackMAC[:]), tapStack, mode == modeOffload)
		if err != nil {
			return nil, err
		}
		return &client{g.dial, tapKernel, g.shutdown}, nil
	case sysUstackAF:
		u, err := ustackAFPacket(e.s.Do, vethSDev, vethStack)
		if err != nil {
			return nil, err
		}
		return &client{u.dial, vethKernel, u.shutdown}, nil
	case sysGvisorAF:
		g, err := gvisorAFPacket(e.s.Do, vethSDev, vethStack)
		if err != nil {
			return nil, err
		}
		return &client{g.dial, vethKernel, g.shutdown}, nil
	case sysKernelVeth:
		dial := func(ap netip.AddrPort) (c net.Conn, err error) {
			err = e.s.Do(func() error {
				c, err = net.DialTimeout("tcp4", ap.String(), 10*time.Second)
				return err
			})
			return c, err
		}
		return &client{dial, kvethKernel, func() {}}, nil
	}
	return nil, fmt.Errorf("unknown system %q", system)
}

// devRun runs one repetition of a device workload on system.
func devRun(cfg Config, op byte, mode devMode, system string) (Result, error) {
	devMu.Lock()
	e := devCur
	devMu.Unlock()
	if e == nil {
		return Result{}, errors.New("device topology not set up")
	}
	n, d := devSizes(cfg)
	if system == sysIperf3 {
		return e.iperf3(op, n)
	}
	cl, err := e.client(system, mode)
	if err != nil {
		return Result{}, err
	}
	defer cl.shutdown()
	c, err := cl.dial(netip.AddrPortFrom(cl.peer, peerPort))
	if err != nil {
		return Result{}, err
	}
	switch op {
	case opSink, opSource:
		k0, kerr := e.kernelTCP()
		var b bulk
		if op == opSink {
			b, err = measureSend(c, n)
		} else {
			b, err = measureRecv(c, n)
		}
		if err != nil {
			return Result{}, err
		}
		r := bulkResult(b)
		if k1, err := e.kernelTCP(); err == nil && kerr == nil {
			r.Extra["kernel_retrans"] = float64(k1.retrans - k0.retrans)
			if op == opSource {
				// What the kernel received while sending: the
				// client's ACKs (and window updates).
				r.Extra["acks_per_MB"] = float64(k1.inSegs-k0.inSegs) / (float64(b.bytes) / 1e6)
			}
		}
		return r, nil
	default:
		r, err := measureRR(c, d)
		if err != nil {
			return Result{}, err
		}
		return Result{
			Metric: "round trips", Unit: "1/s", Value: r.perSec(), HigherIsBetter: true,
			Extra: map[string]float64{
				"p50_us":        r.p50us,
				"p99_us":        r.p99us,
				"cpu_us_per_rt": r.cpu.Seconds() * 1e6 / float64(r.count),
			},
		}, nil
	}
}

func bulkResult(b bulk) Result {
	return Result{
		Metric: "throughput", Unit: "Gbit/s", Value: b.gbps(), HigherIsBetter: true,
		Extra: map[string]float64{
			"cpu_s_per_GB": b.cpuPerGB(),
			"MB_per_s":     float64(b.bytes) / b.wall.Seconds() / 1e6,
		},
	}
}

// iperf3 runs `iperf3 -c` in S against the server in K (-R for the
// kernel→client direction), n bytes, and reads its JSON report. CPU is
// the iperf3 client process's.
func (e *devEnv) iperf3(op byte, n int64) (Result, error) {
	if op != opSink && op != opSource {
		return Result{}, errors.New("iperf3 measures bulk transfers only")
	}
	if e.iperf == nil {
		return Result{}, errors.New("iperf3 server not started")
	}
	args := []string{"-c", kvethKernel.String(), "-p", strconv.Itoa(iperfPort), "-n", strconv.FormatInt(n, 10), "-J"}
	if op == opSource {
		args = append(args, "-R")
	}
	cmd := e.s.Command("iperf3", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return Result{}, fmt.Errorf("iperf3 %s: %v: %.300s", strings.Join(args, " "), err, out.String())
		}
	case <-time.After(120 * time.Second):
		cmd.Process.Kill()
		<-done
		return Result{}, errors.New("iperf3: no result after 120 s")
	}
	var rep struct {
		End struct {
			SumReceived struct {
				Bytes   float64 `json:"bytes"`
				Seconds float64 `json:"seconds"`
				BPS     float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		return Result{}, fmt.Errorf("iperf3: %v: %.300s", err, out.String())
	}
	if rep.Error != "" {
		return Result{}, fmt.Errorf("iperf3: %s", rep.Error)
	}
	s := rep.End.SumReceived
	if s.BPS <= 0 || s.Seconds <= 0 {
		return Result{}, fmt.Errorf("iperf3: no throughput in report: %.300s", out.String())
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	b := bulk{bytes: int64(s.Bytes), wall: time.Duration(s.Seconds * float64(time.Second)), cpu: cpu}
	r := bulkResult(b)
	r.Value = s.BPS / 1e9
	return r, nil
}

// tcpCounters are the kernel peer's TCP counters (K's /proc/net/snmp).
type tcpCounters struct {
	// retrans is RetransSegs: segments the kernel retransmitted; in the
	// receive rows, frames lost on the way into the client's stack.
	retrans int64
	// inSegs is InSegs: segments the kernel received.
	inSegs int64
}

func (e *devEnv) kernelTCP() (tcpCounters, error) {
	var b []byte
	err := e.k.Do(func() (err error) {
		// thread-self: /proc/net follows the process's namespace, not
		// this thread's.
		b, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	})
	if err != nil {
		return tcpCounters{}, err
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		var c tcpCounters
		found := 0
		for i, name := range names {
			if i >= len(f) {
				break
			}
			switch name {
			case "RetransSegs":
				c.retrans, err = strconv.ParseInt(f[i], 10, 64)
				found++
			case "InSegs":
				c.inSegs, err = strconv.ParseInt(f[i], 10, 64)
				found++
			}
			if err != nil {
				return tcpCounters{}, err
			}
		}
		if found == 2 {
			return c, nil
		}
	}
	return tcpCounters{}, errors.New("no Tcp RetransSegs/InSegs in /proc/net/snmp")
}

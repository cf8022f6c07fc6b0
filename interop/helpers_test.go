package interop

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/netns"
	"ustack/link"
	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// eventually polls cond every 20 ms until it returns true or timeout
// passes, then fails the test with what cond last said. Kernel events
// (neighbour states, a daemon's socket appearing) are waited for only
// this way.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("after %v still waiting for %s: %s", timeout, what, last)
		}
	}
}

// waitProcess waits at most timeout for p to exit and returns its error.
func waitProcess(t testing.TB, p *netns.Process, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.Done():
		return p.Wait()
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v; output so far:\n%s", p.Cmd, timeout, p.Output())
		return nil
	}
}

// run runs a command in ns with stdin from in (nil: none) and returns its
// stdout; stderr goes into the error when the command fails. It gives up
// (killing the command) after timeout.
func run(t testing.TB, ns *netns.NS, stdin *os.File, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	cmd := ns.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", cmd, err, out.String(), errb.String())
		}
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s: still running after %v\nstdout: %s\nstderr: %s", cmd, timeout, out.String(), errb.String())
	}
	return out.String()
}

// randomFile writes n random bytes to a file in a test directory and
// returns them with the file opened for reading (closed by the test's
// cleanup). A file rather than a pipe as stdin makes socat read it in one
// read(2), so it sends one datagram.
func randomFile(t testing.TB, n int) ([]byte, *os.File) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	name := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return b, f
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// parsePing returns the transmitted and received counts of a ping
// summary line ("100 packets transmitted, 100 received, 0% packet loss").
func parsePing(out string) (sent, got int, ok bool) {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	sent, _ = strconv.Atoi(m[1])
	got, _ = strconv.Atoi(m[2])
	return sent, got, true
}

// kernelPing runs the kernel's ping from ns to dst and checks that all
// count echoes came back.
func kernelPing(t testing.TB, ns *netns.NS, dst netip.Addr, count int) {
	t.Helper()
	out, err := ns.Exec("ping", "-n", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "1", "-w", "20", dst.String())
	sent, got, ok := parsePing(out)
	if !ok {
		t.Fatalf("kernel ping %v: no summary (err %v):\n%s", dst, err, out)
	}
	if sent != count || got != count {
		t.Fatalf("kernel ping %v: %d sent, %d received, want %d/%d (err %v):\n%s", dst, sent, got, count, count, err, out)
	}
}

// kernelNeigh returns the kernel's neighbour entry for a on dev in ns:
// its link address and state ("REACHABLE"), or empty strings.
func kernelNeigh(ns *netns.NS, dev string, a netip.Addr) (lladdr, state, raw string) {
	out, err := ns.Exec("ip", "neigh", "show", a.String(), "dev", dev)
	if err != nil {
		return "", "", out
	}
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			lladdr = f[i+1]
		}
	}
	if len(f) > 0 {
		state = f[len(f)-1]
	}
	return lladdr, state, strings.TrimSpace(out)
}

// snmp reads the kernel's MIB counters in ns, from /proc/net/snmp
// ("Ip.ReasmOKs", "Udp.InDatagrams", "Tcp.RetransSegs", ...) and
// /proc/net/netstat ("TcpExt.TCPSACKRecovery", ...).
func snmp(t testing.TB, ns *netns.NS) map[string]int64 {
	t.Helper()
	out := ns.Run(t, "cat", "/proc/net/snmp", "/proc/net/netstat")
	m := make(map[string]int64)
	var names []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		proto, rest, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if _, err := strconv.ParseInt(f[0], 10, 64); err != nil {
			names = f
			continue
		}
		for i, v := range f {
			if i < len(names) {
				n, _ := strconv.ParseInt(v, 10, 64)
				m[proto+"."+names[i]] = n
			}
		}
	}
	return m
}

// udpBound reports whether a UDP socket is bound to port in ns.
func udpBound(ns *netns.NS, port int) (bool, string) {
	out, err := ns.Exec("ss", "-Hlun", fmt.Sprintf("sport = :%d", port))
	if err != nil {
		return false, out
	}
	return strings.TrimSpace(out) != "", "no UDP socket on port " + strconv.Itoa(port)
}

// echoServer is a UDP echo service (RFC 862) on a stack's socket that
// remembers the size of every datagram it got.
type echoServer struct {
	pc    *socket.UDPConn
	done  chan struct{}
	mu    sync.Mutex
	sizes []int
}

func startEcho(t testing.TB, st *stack.Stack, port uint16) *echoServer {
	t.Helper()
	pc, err := socket.ListenUDP(st, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	if err != nil {
		t.Fatal(err)
	}
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

// received returns the sizes of the datagrams echoed so far and forgets
// them.
func (e *echoServer) received() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sizes
	e.sizes = nil
	return s
}

// stackPing sends count echo requests from st to dst with a ping socket
// and returns how many replies came back, each waited for at most a
// second.
func stackPing(t testing.TB, st *stack.Stack, dst netip.Addr, count int) int {
	t.Helper()
	c, err := socket.ListenPing(st, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := 0
	b := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		msg := make([]byte, wire.ICMPv4HeaderLen+32)
		msg[0] = byte(wire.ICMPv4Echo)
		msg[6], msg[7] = byte(seq>>8), byte(seq)
		copy(msg[wire.ICMPv4HeaderLen:], fmt.Sprintf("ustack interop ping %04d........", seq))
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			t.Fatalf("ping %v: %v", dst, err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFrom(b)
			if err != nil {
				t.Logf("ping %v seq %d: %v", dst, seq, err)
				break
			}
			m := wire.ICMPv4(b[:n])
			if n >= wire.ICMPv4HeaderLen && m.Type() == wire.ICMPv4EchoReply && int(m.Seq()) == seq &&
				bytes.Equal(m.Payload(), msg[wire.ICMPv4HeaderLen:]) && from.String() == dst.String() {
				got++
				break
			}
		}
	}
	return got
}

// counterDelta tells how much the named counters moved between two
// snapshots of Stats.
func counterDelta(before, after map[string]uint64, name string) int64 {
	return int64(after[name]) - int64(before[name])
}

// observer wraps a link endpoint and counts the received frames that
// carry a partial checksum, to tell which offload mode the kernel is in.
type observer struct {
	link.Endpoint
	partial, total atomic.Int64
}

func (o *observer) Attach(d link.Dispatcher) {
	if d == nil {
		o.Endpoint.Attach(nil)
		return
	}
	o.Endpoint.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
		for _, p := range pkts {
			o.total.Add(1)
			if p.Offload.NeedsCsum {
				o.partial.Add(1)
			}
		}
		d.DeliverBatch(o, pkts)
	}))
}

// LinkStats passes the driver's counters through.
func (o *observer) LinkStats() *link.Stats {
	if c, ok := o.Endpoint.(link.Counted); ok {
		return c.LinkStats()
	}
	return &link.Stats{}
}

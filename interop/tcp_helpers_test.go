package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ustack/internal/netns"
	"ustack/socket"
	"ustack/stack"
	"ustack/transport/tcp"
)

// MB is the unit the TCP tests size transfers and report throughput in.
const MB = 1 << 20

// stream is a deterministic byte stream: n bytes of a ChaCha8 generator
// seeded by seed. Both ends of a transfer make it from these two values,
// so nothing is stored; its sha256 is computed once per (seed, n).
type stream struct {
	seed uint64
	n    int64
}

func (s stream) reader() io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], s.seed)
	return io.LimitReader(rand.NewChaCha8(key), s.n)
}

var streamSums sync.Map // stream → string

// sum is the hex sha256 of the whole stream.
func (s stream) sum() string {
	if v, ok := streamSums.Load(s); ok {
		return v.(string)
	}
	h := newHashWriter()
	io.Copy(h, s.reader())
	v := h.sum()
	streamSums.Store(s, v)
	return v
}

// hashWriter counts and hashes what is written to it.
type hashWriter struct {
	mu sync.Mutex
	h  hash.Hash
	n  int64
}

func newHashWriter() *hashWriter { return &hashWriter{h: sha256.New()} }

func (w *hashWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.h.Write(b)
	w.n += int64(len(b))
	return len(b), nil
}

func (w *hashWriter) count() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *hashWriter) sum() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return hex.EncodeToString(w.h.Sum(nil))
}

// verify tells whether w got exactly s.
func (w *hashWriter) verify(s stream) error {
	if n, got, want := w.count(), w.sum(), s.sum(); n != s.n || got != want {
		return fmt.Errorf("got %d bytes sha256 %.16s…, want %d bytes sha256 %.16s…", n, got, s.n, want)
	}
	return nil
}

// check fails the test unless w got exactly s.
func (w *hashWriter) check(t testing.TB, what string, s stream) {
	t.Helper()
	if err := w.verify(s); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// brief is the part of a connection's Info that explains a stall.
func brief(i tcp.Info) string {
	return fmt.Sprintf("state %v ca %s cwnd %d ssthresh %d srtt %v rto %v backoff %d unacked %d inflight %d notsent %d sndwnd %d rcvwnd %d recvq %d oooq %d retrans %d",
		i.State, i.CAState, i.CWnd, i.SSThresh, i.SRTT, i.RTO, i.Backoff, i.Unacked, i.InFlight, i.NotSent,
		i.SndWnd, i.RcvWnd, i.RecvQ, i.OOOQ, i.TotalRetrans)
}

// rate formats a throughput in MB/s.
func rate(n int64, d time.Duration) string {
	return fmt.Sprintf("%.1f MB/s", float64(n)/MB/d.Seconds())
}

// kproc is a kernel-side command whose standard streams the test wires
// to Go readers and writers (netns.Start keeps all output in memory,
// which 100 MB should not go through).
type kproc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // only read after done
	done   chan struct{}
	err    error
}

// startK starts name in ns with stdin from in and stdout to out (nil:
// none). The process is killed, by its PID, and waited for when the test
// ends if it is still running.
func startK(t testing.TB, ns *netns.NS, in io.Reader, out io.Writer, name string, args ...string) *kproc {
	t.Helper()
	p := &kproc{cmd: ns.Command(name, args...), done: make(chan struct{})}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = in, out, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", p.cmd, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// wait waits at most timeout for the command to exit and fails the test
// unless it exited with status 0.
func (p *kproc) wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := p.waitErr(timeout); err != nil {
		t.Fatal(err)
	}
}

// waitErr waits at most timeout for the command to exit (killing it
// then) and returns an error unless it exited with status 0. It may be
// called from any goroutine.
func (p *kproc) waitErr(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s: still running after %v; stderr: %s", p.cmd, timeout, p.stderr.String())
	}
	if p.err != nil {
		return fmt.Errorf("%s: %v; stderr: %s", p.cmd, p.err, p.stderr.String())
	}
	return nil
}

// kill kills the command, by its PID, unless it has exited, and waits
// for it.
func (p *kproc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tcpListening reports whether a kernel TCP socket listens on port in ns.
func tcpListening(ns *netns.NS, port int) (bool, string) {
	out, err := ns.Exec("ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
	if err != nil {
		return false, out
	}
	return strings.TrimSpace(out) != "", "no TCP listener on port " + strconv.Itoa(port)
}

// kernelListen starts `socat -u TCP-LISTEN:port -` in ns with its output
// hashed, and waits until it listens.
func kernelListen(t testing.TB, ns *netns.NS, port int) (*kproc, *hashWriter) {
	t.Helper()
	h := newHashWriter()
	p := startK(t, ns, nil, h, "socat", "-u", "-b", "262144", fmt.Sprintf("TCP-LISTEN:%d,reuseaddr", port), "-")
	eventually(t, 5*time.Second, "socat to listen", func() (bool, string) { return tcpListening(ns, port) })
	return p, h
}

// listenTCP listens on the stack, closed when the test ends.
func listenTCP(t testing.TB, st *stack.Stack, ap netip.AddrPort) *socket.TCPListener {
	t.Helper()
	ln, err := socket.ListenTCP(st, ap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// accept accepts one connection within timeout, closed when the test
// ends.
func accept(t testing.TB, ln *socket.TCPListener, timeout time.Duration) *socket.TCPConn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(timeout))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept on %v: %v", ln.Addr(), err)
	}
	ln.SetDeadline(time.Time{})
	t.Cleanup(func() { c.Close() })
	return c
}

// dial connects from the stack within 10 s.
func dial(st *stack.Stack, to netip.AddrPort) (*socket.TCPConn, error) {
	d := socket.Dialer{Stack: st, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		return nil, fmt.Errorf("dial %v: %w", to, err)
	}
	return c.(*socket.TCPConn), nil
}

// send writes s to c and half-closes it, within timeout.
func send(c *socket.TCPConn, s stream, timeout time.Duration) error {
	c.SetWriteDeadline(time.Now().Add(timeout))
	if n, err := io.Copy(c, s.reader()); err != nil {
		return fmt.Errorf("write to %v: %v after %d bytes (%s)", c.RemoteAddr(), err, n, brief(c.Info()))
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("CloseWrite: %v", err)
	}
	return nil
}

// recv reads c to its end into a hash, within timeout.
func recv(c *socket.TCPConn, timeout time.Duration) (*hashWriter, error) {
	h := newHashWriter()
	c.SetReadDeadline(time.Now().Add(timeout))
	if n, err := io.CopyBuffer(h, c, make([]byte, 256<<10)); err != nil {
		return h, fmt.Errorf("read from %v: %v after %d bytes (%s)", c.RemoteAddr(), err, n, brief(c.Info()))
	}
	return h, nil
}

// xfer is a bulk transfer between the kernel's socat and a stack's
// socket, running in its own goroutine.
type xfer struct {
	name  string
	s     stream
	start time.Time
	done  chan struct{}
	// Set when done is closed.
	d    time.Duration
	err  error
	info tcp.Info // the stack's end, at the end
}

// finish waits for the transfer and fails the test if it failed; it
// returns how long the transfer took.
func (x *xfer) finish(t testing.TB) time.Duration {
	t.Helper()
	<-x.done
	if x.err != nil {
		t.Errorf("%s: %v", x.name, x.err)
	}
	return x.d
}

// log logs the transfer's throughput and what the stack's end says.
func (x *xfer) log(t testing.TB, what string) {
	t.Helper()
	i := x.info
	t.Logf("%s %s: %d MB in %v: %s (stack: mss %d cwnd %d srtt %v retrans %d segs out %d in %d rcvbuf %d)",
		what, x.name, x.s.n/MB, x.d.Round(time.Millisecond), rate(x.s.n, x.d),
		i.MSS, i.CWnd, i.SRTT.Round(time.Microsecond), i.TotalRetrans, i.SegsOut, i.SegsIn, i.RcvBuf)
}

// run runs f in a goroutine; the test's cleanup stops it (with stop)
// and waits for it if it is still running then.
func (x *xfer) run(t testing.TB, f func() error, stop func()) {
	x.start, x.done = time.Now(), make(chan struct{})
	go func() {
		defer close(x.done)
		x.err = f()
		x.d = time.Since(x.start)
	}()
	t.Cleanup(func() {
		stop()
		<-x.done
	})
}

// kernelToStack starts a transfer of s from kernel socat, connecting to
// the stack's listener at port, to the stack, which reads it to the end.
func kernelToStack(t testing.TB, tp *topo, port uint16, s stream, timeout time.Duration) *xfer {
	t.Helper()
	s.sum()
	x := &xfer{name: "kernel → stack", s: s}
	ln := listenTCP(t, tp.st, netip.AddrPortFrom(tp.saddr, port))
	p := startK(t, tp.k, s.reader(), nil, "socat", "-u", "-b", "262144", "-",
		fmt.Sprintf("TCP:%s:%d", tp.saddr, port))
	var mu sync.Mutex
	var conn *socket.TCPConn
	x.run(t, func() error {
		ln.SetDeadline(time.Now().Add(10 * time.Second))
		c, err := ln.AcceptTCP()
		if err != nil {
			return fmt.Errorf("accept: %v", err)
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		defer c.Close()
		h, err := recv(c, timeout)
		x.info = c.Info()
		if err != nil {
			return err
		}
		if err := p.waitErr(10 * time.Second); err != nil {
			return err
		}
		return h.verify(s)
	}, func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		p.kill()
	})
	return x
}

// stackToKernel starts a transfer of s from the stack, connecting to
// kernel socat listening on port, to socat, which writes what it gets
// into a hash.
func stackToKernel(t testing.TB, tp *topo, port int, s stream, timeout time.Duration) *xfer {
	t.Helper()
	s.sum()
	x := &xfer{name: "stack → kernel", s: s}
	p, h := kernelListen(t, tp.k, port)
	var mu sync.Mutex
	var conn *socket.TCPConn
	x.run(t, func() error {
		c, err := dial(tp.st, netip.AddrPortFrom(tp.kaddr, uint16(port)))
		if err != nil {
			return err
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		defer c.Close()
		err = send(c, s, timeout)
		if err == nil {
			err = p.waitErr(timeout)
		}
		x.info = c.Info()
		if err != nil {
			return err
		}
		return h.verify(s)
	}, func() {
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		p.kill()
	})
	return x
}

package stack_test

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"ustack/link/fault"
	"ustack/link/pipe"
	"ustack/socket"
	"ustack/stack"
)

// transferSize is the bytes each way of TestTCPThroughFault: 100 MB as the
// TCP issue asks, or USTACK_TRANSFER_MB.
func transferSize(t *testing.T) int {
	if s := os.Getenv("USTACK_TRANSFER_MB"); s != "" {
		mb, err := strconv.Atoi(s)
		if err != nil || mb <= 0 {
			t.Fatalf("USTACK_TRANSFER_MB=%q: want a positive number of megabytes", s)
		}
		return mb << 20
	}
	return 100 << 20
}

// stream is a deterministic byte stream (a seeded PRNG) that hashes what it
// hands out.
type stream struct {
	rng  *rand.ChaCha8
	left int
}

func newStream(seed byte, n int) *stream {
	var s [32]byte
	s[0] = seed
	return &stream{rng: rand.NewChaCha8(s), left: n}
}

func (s *stream) Read(b []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(len(b), s.left)]
	s.rng.Read(b)
	s.left -= len(b)
	return len(b), nil
}

// TestTCPThroughFault sends transferSize bytes each way at once between two
// whole stacks joined by a pipe behind the fault decorator, under each
// impairment of the TCP issue, and compares SHA-256 on both sides.
func TestTCPThroughFault(t *testing.T) {
	size := transferSize(t)
	for _, tc := range []struct {
		name string
		imp  fault.Impairment
	}{
		{"loss1", fault.Impairment{Loss: 0.01}},
		{"loss5", fault.Impairment{Loss: 0.05}},
		{"loss10", fault.Impairment{Loss: 0.10}},
		{"reorder5", fault.Impairment{Reorder: 0.05}},
		{"dup1", fault.Impairment{Duplicate: 0.01}},
		{"corrupt1", fault.Impairment{Corrupt: 0.01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				imp := tc.imp
				imp.Delay = time.Millisecond // a 2 ms RTT
				pa, pb := pipe.New(pipe.Config{})
				fa := fault.New(pa, fault.Config{Tx: imp, Rx: imp, Seed: uint64(len(tc.name))})
				n := &netw{t: t}
				a, b := n.stack("a"), n.stack("b")
				n.attach(a, "eth0", "10.0.0.1/24", fa)
				n.attach(b, "eth0", "10.0.0.2/24", pb)
				tcpBothWays(t, a, b, size)
				in := fa.Counters(fault.Tx)
				// The pipe under the fault link is a bounded queue: a window
				// released in one burst overflows it, and those drops are
				// real loss too (link.tx.drops).
				sa, sb := a.Stats(), b.Stats()
				t.Logf("%s: a→b frames %d, lost %d, duplicated %d, reordered %d, corrupted %d; queue drops a %d, b %d; tcp retransmitted a %d, b %d",
					tc.name, in.In.Load(), in.DroppedLoss.Load(), in.Duplicated.Load(), in.Reordered.Load(),
					in.Corrupted.Load(), sa["if.eth0.link.tx.drops"], sb["if.eth0.link.tx.drops"],
					sa["tcp.retrans_segs"], sb["tcp.retrans_segs"])
			})
		})
	}
}

// side is what one end of tcpBothWays saw: the hash of what it sent and of
// what it received.
type side struct {
	sent, got [32]byte
	n         int64
	err       error
}

// exchange sends size bytes of the seeded stream on c while reading the
// peer's until EOF.
func exchange(c *socket.TCPConn, seed byte, size int) side {
	werr := make(chan error, 1)
	var s side
	go func() {
		h := sha256.New()
		_, err := io.Copy(c, io.TeeReader(newStream(seed, size), h))
		if err == nil {
			err = c.CloseWrite()
		}
		copy(s.sent[:], h.Sum(nil))
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	copy(s.got[:], h.Sum(nil))
	s.n = n
	s.err = <-werr
	if s.err == nil {
		s.err = rerr
	}
	return s
}

// tcpBothWays connects a to b and sends size bytes each way at the same
// time, checking both SHA-256s.
func tcpBothWays(t *testing.T, a, b *stack.Stack, size int) {
	t.Helper()
	ln, err := socket.ListenTCP(b, netip.MustParseAddrPort("10.0.0.2:5001"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	server := make(chan side, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			server <- side{err: err}
			return
		}
		defer c.Close()
		server <- exchange(c, 2, size)
	}()
	c, err := socket.DialTCP(a, netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:5001"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sa := exchange(c, 1, size)
	sb := <-server
	if sa.err != nil || sb.err != nil {
		t.Fatalf("transfer: a: %v, b: %v", sa.err, sb.err)
	}
	if sa.n != int64(size) || sb.n != int64(size) {
		t.Fatalf("received %d (a) and %d (b) bytes, want %d each", sa.n, sb.n, size)
	}
	if sa.sent != sb.got || sb.sent != sa.got {
		t.Fatalf("SHA-256 differs: a→b %x/%x, b→a %x/%x", sa.sent[:4], sb.got[:4], sb.sent[:4], sa.got[:4])
	}
}

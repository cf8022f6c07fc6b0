package main

// The client side of the device workloads: bulk send, bulk receive and
// 1-byte request/response against the kernel peer (devices_peer.go), over
// any net.Conn — ustack's, gVisor's or a kernel socket's — so that every
// row runs the same loop.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"
)

// bulk is one bulk transfer's figures.
type bulk struct {
	bytes int64
	wall  time.Duration
	cpu   time.Duration // of this process
}

func (b bulk) gbps() float64 { return float64(b.bytes) * 8 / b.wall.Seconds() / 1e9 }

func (b bulk) cpuPerGB() float64 { return b.cpu.Seconds() / (float64(b.bytes) / 1e9) }

// devStall is how long a device workload may go without moving a byte
// before it is failed (its connection closed and its error set). A
// variable for the test.
var devStall = 10 * time.Second

// guard watches progress on c: if it stops for devStall, c is closed and
// finish reports the stall instead of err (the error the closed
// connection produced).
type guard struct {
	progress atomic.Int64
	w        *stallWatch
}

func newGuard(what string, c net.Conn) *guard {
	g := &guard{}
	g.w = watch(what, &g.progress, devStall, func() { c.Close() })
	return g
}

// finish stops the watch; a stall wins over err.
func (g *guard) finish(err error) error {
	if serr := g.w.stop(); serr != nil {
		if err != nil {
			return fmt.Errorf("%w (then: %v)", serr, err)
		}
		return serr
	}
	return err
}

// startOp sends the peer the operation header.
func startOp(c net.Conn, op byte, n int64) error {
	var hdr [9]byte
	hdr[0] = op
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	_, err := c.Write(hdr[:])
	return err
}

// measureSend writes n bytes to the peer's sink on c and waits for its
// count: the transfer is over when the kernel's application has read the
// last byte.
func measureSend(c net.Conn, n int64) (r bulk, err error) {
	defer c.Close()
	g := newGuard("send", c)
	defer func() { err = g.finish(err) }()
	if err := startOp(c, opSink, n); err != nil {
		return bulk{}, fmt.Errorf("send: header: %w", err)
	}
	b := make([]byte, peerBuf)
	cpu0, t0 := procCPU(), time.Now()
	var sent int64
	for sent < n {
		k, err := c.Write(b[:min(int64(len(b)), n-sent)])
		sent += int64(k)
		g.progress.Store(sent)
		if err != nil {
			return bulk{}, fmt.Errorf("send: write after %d of %d bytes: %w", sent, n, err)
		}
	}
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return bulk{}, errors.New("send: connection cannot half-close")
	}
	if err := cw.CloseWrite(); err != nil {
		return bulk{}, fmt.Errorf("send: CloseWrite: %w", err)
	}
	var ans [8]byte
	if _, err := io.ReadFull(c, ans[:]); err != nil {
		return bulk{}, fmt.Errorf("send: waiting for the peer's count after %d bytes: %w", sent, err)
	}
	r = bulk{bytes: n, wall: time.Since(t0), cpu: procCPU() - cpu0}
	if got := int64(binary.BigEndian.Uint64(ans[:])); got != n {
		return r, fmt.Errorf("send: peer received %d of %d bytes", got, n)
	}
	// Wait for the peer's FIN, so the connection is closed both ways
	// before the stack goes away.
	if k, err := drain(c, ans[:]); err != nil || k != 0 {
		return r, fmt.Errorf("send: after the count: %d more bytes, %v", k, err)
	}
	return r, nil
}

// measureRecv asks the peer's source on c for n bytes and reads them to
// EOF.
func measureRecv(c net.Conn, n int64) (r bulk, err error) {
	defer c.Close()
	g := newGuard("recv", c)
	defer func() { err = g.finish(err) }()
	cpu0, t0 := procCPU(), time.Now()
	if err := startOp(c, opSource, n); err != nil {
		return bulk{}, fmt.Errorf("recv: header: %w", err)
	}
	got, err := drainCount(c, make([]byte, peerBuf), &g.progress)
	if err != nil {
		return bulk{}, fmt.Errorf("recv: read after %d of %d bytes: %w", got, n, err)
	}
	r = bulk{bytes: got, wall: time.Since(t0), cpu: procCPU() - cpu0}
	if got != n {
		return r, fmt.Errorf("recv: got %d of %d bytes", got, n)
	}
	return r, nil
}

// rr is one request/response run's figures.
type rr struct {
	count int
	wall  time.Duration
	p50us float64
	p99us float64
	cpu   time.Duration
}

func (r rr) perSec() float64 { return float64(r.count) / r.wall.Seconds() }

// measureRR sends 1-byte requests to the peer's echo on c, one at a time,
// for d, and times each round trip.
func measureRR(c net.Conn, d time.Duration) (r rr, err error) {
	defer c.Close()
	g := newGuard("rr", c)
	defer func() { err = g.finish(err) }()
	if err := startOp(c, opEcho, 0); err != nil {
		return rr{}, fmt.Errorf("rr: header: %w", err)
	}
	lat := make([]time.Duration, 0, 1<<16)
	b := []byte{'x'}
	// One round trip first, outside the clock: ARP and the first
	// segments' slow paths are not what is measured.
	if err := roundTrip(c, b); err != nil {
		return rr{}, err
	}
	cpu0, t0 := procCPU(), time.Now()
	end := t0.Add(d)
	for {
		s := time.Now()
		if !s.Before(end) {
			break
		}
		if err := roundTrip(c, b); err != nil {
			return rr{}, fmt.Errorf("%w after %d round trips", err, len(lat))
		}
		lat = append(lat, time.Since(s))
		g.progress.Add(1)
	}
	r = rr{count: len(lat), wall: time.Since(t0), cpu: procCPU() - cpu0}
	if len(lat) == 0 {
		return r, errors.New("rr: no round trips")
	}
	slices.Sort(lat)
	r.p50us, r.p99us = percentileUS(lat, 0.50), percentileUS(lat, 0.99)
	return r, nil
}

// drainCount is drain that publishes its count in progress.
func drainCount(r io.Reader, b []byte, progress *atomic.Int64) (int64, error) {
	var n int64
	for {
		k, err := r.Read(b)
		n += int64(k)
		progress.Store(n)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func roundTrip(c net.Conn, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("rr: write: %w", err)
	}
	if _, err := io.ReadFull(c, b); err != nil {
		return fmt.Errorf("rr: read: %w", err)
	}
	return nil
}

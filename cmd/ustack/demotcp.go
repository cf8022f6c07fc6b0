package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"ustack/service"
	"ustack/socket"
	"ustack/transport/tcp"
	"ustack/transport/tcp/cc"
	"ustack/wire"
)

// The demo's TCP steps: B runs a "hash sink" on TCP port 5001 (it reads a
// connection to its end and answers with the SHA-256 of what it read) and
// the http service on port 80; A connects through R.
const (
	sinkPort   = 5001
	demoLPort  = 40000 // A's port for the narrated handshake
	bulkSize   = 4 << 20
	httpSize   = 1 << 20
	demoSeed   = "ustack demo"
	sinkDigest = 2 * sha256.Size
)

// demoPayload is n bytes of a fixed pseudo-random stream.
func demoPayload(n int) []byte {
	var seed [32]byte
	copy(seed[:], demoSeed)
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// startSink runs the hash sink on B until the network closes.
func (n *demoNet) startSink() error {
	ln, err := socket.Listen(n.b, "tcp", fmt.Sprintf(":%d", sinkPort))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				h := sha256.New()
				if _, err := io.Copy(h, c); err == nil {
					io.WriteString(c, hex.EncodeToString(h.Sum(nil)))
				}
			})
		}
	})
	n.cleanup = append(n.cleanup, func() { ln.Close(); wg.Wait() })
	return nil
}

// sinkExchange sends data to B's sink over conn, half-closes, and checks
// the digest B sends back.
func sinkExchange(conn *socket.TCPConn, data []byte) error {
	if _, err := conn.Write(data); err != nil {
		return err
	}
	if err := conn.CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	want := sha256.Sum256(data)
	if string(got) != hex.EncodeToString(want[:]) {
		return fmt.Errorf("B's SHA-256 %q differs from A's %x", got, want)
	}
	return nil
}

func demoHandshake(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("A opens a TCP connection to port %d on B (RFC 9293 §3.5). What A's link", sinkPort)
	nr.say("carries, as tcpdump shows it (sequence numbers relative to each ISN):")
	if err := n.startSink(); err != nil {
		return err
	}
	n.trace.watch(sinkPort)
	d := socket.Dialer{Stack: n.a, LocalAddr: &net.TCPAddr{IP: demoA.Addr().AsSlice(), Port: demoLPort}}
	c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", demoB.Addr(), sinkPort))
	if err != nil {
		n.trace.stop()
		return err
	}
	conn := c.(*socket.TCPConn)
	defer conn.Close()
	info := conn.Info()
	msg := []byte("hello, B")
	err = sinkExchange(conn, msg)
	segs := n.trace.stop()
	if err != nil {
		return err
	}
	if len(segs) < 3 {
		return fmt.Errorf("saw %d segments, want at least the 3 of the handshake", len(segs))
	}
	w := nr.indented()
	for i, line := range formatTrace(segs[:3]) {
		fmt.Fprintf(w, "%-7s %s\n", []string{"SYN", "SYN-ACK", "ACK"}[i], line)
	}
	want := []wire.TCPFlags{wire.TCPFlagSYN, wire.TCPFlagSYN | wire.TCPFlagACK, wire.TCPFlagACK}
	for i, f := range want {
		if segs[i].flags != f {
			return fmt.Errorf("segment %d has flags %v, want %v", i+1, segs[i].flags, f)
		}
	}
	nr.say("The options agree on the MSS, window scaling, SACK and timestamps (RFC 7323,")
	nr.say("RFC 2018). Then A sends %q, half-closes, and B answers with its SHA-256.", msg)
	fmt.Fprintf(w, "connected: %s, mss %d\n", info.State, info.MSS)
	nr.ok("three-way handshake done; %d bytes crossed, and B's digest matches", len(msg))
	return nil
}

func demoBulk(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("A sends %d MB to B's sink as fast as TCP allows: slow start, then the", bulkSize>>20)
	nr.say("congestion window (CUBIC, RFC 9438) grows until the links are full.")
	data := demoPayload(bulkSize)
	c, err := (&socket.Dialer{Stack: n.a}).DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", demoB.Addr(), sinkPort))
	if err != nil {
		return err
	}
	conn := c.(*socket.TCPConn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	start := time.Now()
	if err := sinkExchange(conn, data); err != nil {
		return err
	}
	took := time.Since(start)
	info := conn.Info()
	w := nr.indented()
	fmt.Fprintf(w, "%d bytes in %.0f ms: %.0f Mbit/s\n", bulkSize, float64(took.Microseconds())/1000,
		float64(bulkSize)*8/took.Seconds()/1e6)
	printInfo(w, info)
	if info.BytesAcked < bulkSize {
		return fmt.Errorf("Info says %d bytes acknowledged, want at least %d", info.BytesAcked, bulkSize)
	}
	nr.ok("B's SHA-256 of the %d MB matches A's", bulkSize>>20)
	return nil
}

func demoHTTP(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("B runs the http service (a static file server) on TCP port 80; A fetches a")
	nr.say("%d MB file with Go's net/http client, dialling through A's stack.", httpSize>>20)
	root, err := os.MkdirTemp("", "ustack-demo-")
	if err != nil {
		return err
	}
	n.cleanup = append(n.cleanup, func() { os.RemoveAll(root) })
	file := demoPayload(httpSize)
	if err := os.WriteFile(filepath.Join(root, "demo.bin"), file, 0o644); err != nil {
		return err
	}
	ln, err := socket.Listen(n.b, "tcp", ":80")
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.ServeListener(sctx, service.HTTP, ln, service.Options{Root: root}) }()
	n.cleanup = append(n.cleanup, func() { cancel(); <-done })

	tr := &http.Transport{DialContext: (&socket.Dialer{Stack: n.a}).DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := fmt.Sprintf("http://%s/demo.bin", demoB.Addr())
	w := nr.indented()

	get := func(rng string) (*http.Response, []byte, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return nil, nil, 0, err
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, time.Since(start), err
	}
	resp, body, took, err := get("")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "GET %s\n", url)
	fmt.Fprintf(w, "%s %s, Content-Length %s, Content-Type %s (%.0f ms)\n", resp.Proto, resp.Status,
		resp.Header.Get("Content-Length"), resp.Header.Get("Content-Type"), float64(took.Microseconds())/1000)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, file) {
		return fmt.Errorf("GET: %s, %d bytes that do not match the file", resp.Status, len(body))
	}
	sum := sha256.Sum256(body)
	fmt.Fprintf(w, "sha256 %x\n", sum[:8])

	resp, body, _, err = get("bytes=1000-1015")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "GET with Range: bytes=1000-1015 → %s, Content-Range %s\n", resp.Status, resp.Header.Get("Content-Range"))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, file[1000:1016]) {
		return errors.New("the range request did not return the 16 bytes asked for")
	}
	nr.ok("the file arrived intact (SHA-256 equal), and ranges work")
	return nil
}

// printInfo prints the parts of a connection's TCP_INFO the demo shows.
func printInfo(w io.Writer, in tcp.Info) {
	ssthresh := "-"
	if in.SSThresh < cc.MaxSSThresh {
		ssthresh = fmt.Sprintf("%d KB", in.SSThresh>>10)
	}
	fmt.Fprintf(w, "info: cc %s, mss %d, cwnd %d KB (%d segments), ssthresh %s\n",
		in.CongestionControl, in.MSS, in.CWnd>>10, in.CWnd/max(in.MSS, 1), ssthresh)
	fmt.Fprintf(w, "      srtt %s ms, rttvar %s ms, rto %s ms, min rtt %s ms\n",
		rttText(in.SRTT), rttText(in.RTTVar), rttText(in.RTO), rttText(in.MinRTT))
	fmt.Fprintf(w, "      %d data segments out, %d retransmitted, %d bytes acked\n",
		in.DataSegsOut, in.TotalRetrans, in.BytesAcked)
}

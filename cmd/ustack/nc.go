package main

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"ustack/socket"
)

// nc is netcat over a standalone stack, with OpenBSD nc's semantics. Over
// TCP (the default) it connects to HOST PORT, or with -l listens there and
// accepts one connection, then copies stdin to the connection and the
// connection to stdout (see ncTCP). With -u, each read from stdin is sent
// as one datagram and each datagram received is written to stdout; with
// -l it binds HOST PORT and talks to the first peer that sends to it,
// ignoring others. It runs until interrupted, the TCP peer closes, or -w
// seconds pass without data from the peer.
func (c *cli) nc(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("nc", stderr)
	var nf netFlags
	nf.register(fs)
	udp := fs.Bool("u", false, "use UDP")
	listen := fs.Bool("l", false, "listen on HOST PORT (or just PORT) for a peer instead of sending to one")
	idle := fs.String("w", "", "quit after `timeout` without data from the peer (seconds or a duration)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	var host, port string
	switch {
	case len(pos) == 2:
		host, port = pos[0], pos[1]
	case len(pos) == 1 && *listen:
		host, port = "0.0.0.0", pos[0]
	default:
		fs.Usage()
		return 2
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Is4In6() {
		return failf(stderr, "nc", 2, "%s: not an IP address (ustack does not resolve names)", host)
	}
	if a, err = nf.scoped(a); err != nil {
		return failf(stderr, "nc", 2, "%v", err)
	}
	if *listen && a == netip.IPv4Unspecified() && strings.Contains(nf.addr, ":") {
		a = netip.IPv6Unspecified() // listen on the stack's family
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (p == 0 && !*listen) {
		return failf(stderr, "nc", 2, "%s: not a port number", port)
	}
	ap := netip.AddrPortFrom(a, uint16(p))
	var timeout time.Duration
	if *idle != "" {
		if timeout, err = parseSeconds(*idle); err != nil {
			return failf(stderr, "nc", 2, "-w: %v", err)
		}
	}
	sa, err := c.bringUp(&nf)
	if err != nil {
		return failf(stderr, "nc", 2, "%v", err)
	}
	defer sa.Close()
	if a.Zone() != "" {
		if err := sa.waitLinkLocal(); err != nil {
			return failf(stderr, "nc", 2, "link-local address %v", err)
		}
	}
	if !*udp {
		return ncTCP(ctx, sa, ap, *listen, timeout, stdin, stdout, stderr)
	}

	var conn *socket.UDPConn
	if *listen {
		conn, err = socket.ListenUDP(sa.st, ap)
	} else {
		conn, err = socket.DialUDP(sa.st, netip.AddrPort{}, ap)
	}
	if err != nil {
		return failf(stderr, "nc", 1, "%v", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	// The peer: known at once when sending, learnt from the first
	// datagram when listening. stdin waits for it.
	peer := make(chan netip.AddrPort, 1)
	if !*listen {
		peer <- ap
	}
	stderr = &syncWriter{w: stderr}
	go copyStdin(ctx, stdin, conn, peer, !*listen, stderr)

	b := make([]byte, 65536)
	var from netip.AddrPort
	for {
		if timeout > 0 {
			conn.SetReadDeadline(time.Now().Add(timeout))
		}
		n, src, err := conn.ReadFromUDPAddrPort(b)
		switch {
		case ctx.Err() != nil:
			return 0
		case errors.Is(err, os.ErrDeadlineExceeded):
			return 0
		case err != nil:
			return failf(stderr, "nc", 1, "%v", err)
		}
		if !from.IsValid() {
			from = src
			if *listen {
				peer <- src
			}
		} else if *listen && src != from {
			continue // not our peer (OpenBSD nc -u -l connects to the first)
		}
		if _, err := stdout.Write(b[:n]); err != nil {
			return failf(stderr, "nc", 1, "stdout: %v", err)
		}
	}
}

// copyStdin sends each read from stdin as a datagram to the peer, once it
// is known.
func copyStdin(ctx context.Context, stdin io.Reader, conn *socket.UDPConn, peer <-chan netip.AddrPort, connected bool, stderr io.Writer) {
	var to netip.AddrPort
	select {
	case to = <-peer:
	case <-ctx.Done():
		return
	}
	b := make([]byte, 16384)
	for {
		n, err := stdin.Read(b)
		if n > 0 {
			var werr error
			if connected {
				_, werr = conn.Write(b[:n])
			} else {
				_, werr = conn.WriteToUDPAddrPort(b[:n], to)
			}
			if werr != nil && ctx.Err() == nil {
				// As nc: a failed send (no route, refused) is
				// reported and the copy goes on.
				failf(stderr, "nc", 1, "%v", werr)
			}
		}
		if err != nil {
			return
		}
	}
}

// syncWriter serializes writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

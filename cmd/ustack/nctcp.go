package main

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"time"

	"ustack/socket"
)

// ncTCP is nc over TCP, as OpenBSD nc: it connects to ap (or, listening,
// accepts one connection on ap and stops listening), then copies stdin to
// the connection and the connection to stdout. At the end of stdin it
// half-closes the connection (sends a FIN) and keeps reading; it exits
// when the peer closes its side, so "ustack nc HOST PORT < file" ends
// once the peer has answered and closed. timeout, when non-zero, bounds
// the connection attempt and the time without data from the peer.
func ncTCP(ctx context.Context, sa *standalone, ap netip.AddrPort, listen bool, timeout time.Duration,
	stdin io.Reader, stdout, stderr io.Writer) int {
	var conn *socket.TCPConn
	if listen {
		ln, err := socket.ListenTCP(sa.st, ap)
		if err != nil {
			return failf(stderr, "nc", 1, "%v", err)
		}
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		conn, err = ln.AcceptTCP()
		stop()
		ln.Close() // one connection only
		switch {
		case ctx.Err() != nil:
			return 0
		case err != nil:
			return failf(stderr, "nc", 1, "%v", err)
		}
	} else {
		d := socket.Dialer{Stack: sa.st, Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", ap.String())
		switch {
		case ctx.Err() != nil:
			return 0
		case err != nil:
			return failf(stderr, "nc", 1, "%v", err)
		}
		conn = c.(*socket.TCPConn)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	stderr = &syncWriter{w: stderr}
	go func() {
		// stdin to the connection; its end is the end of our stream.
		// A failed write (the peer reset, say) ends the copy; the
		// read side reports it.
		if _, err := io.Copy(conn, stdin); err == nil {
			conn.CloseWrite()
		}
	}()

	b := make([]byte, 32<<10)
	for {
		if timeout > 0 {
			conn.SetReadDeadline(time.Now().Add(timeout))
		}
		n, err := conn.Read(b)
		if n > 0 {
			if _, werr := stdout.Write(b[:n]); werr != nil {
				return failf(stderr, "nc", 1, "stdout: %v", werr)
			}
		}
		switch {
		case err == nil:
		case ctx.Err() != nil, err == io.EOF, errors.Is(err, os.ErrDeadlineExceeded):
			return 0
		default:
			return failf(stderr, "nc", 1, "%v", err)
		}
	}
}

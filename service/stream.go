package service

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
)

// ServeListener runs the service kind over the connections ln accepts until
// ctx is done, one goroutine per connection. It owns ln and closes it, and
// every connection, before it returns. It returns nil once ctx is done, or
// the error that stopped accepting. The http kind serves o.Root, which
// must be a directory.
func ServeListener(ctx context.Context, kind string, ln net.Listener, o Options) error {
	o = o.withDefaults()
	if !Known(kind) {
		ln.Close()
		return fmt.Errorf("%w %q (want one of %v)", ErrUnknown, kind, Kinds())
	}
	if kind == HTTP {
		return serveHTTP(ctx, ln, o)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer func() {
		if stop() {
			ln.Close()
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
		}
		wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("service %s: %w", kind, err)
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			return nil
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			if err := serveConn(kind, c, o); err != nil {
				o.Logger.Debug("connection ended", "service", kind, "peer", c.RemoteAddr(), "err", err)
			}
			c.Close()
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
}

// serveConn runs one connection of a stream service.
func serveConn(kind string, c net.Conn, o Options) error {
	switch kind {
	case Echo:
		// RFC 862: "any data received is sent back", until the
		// calling user terminates the connection.
		_, err := io.Copy(c, c)
		return err
	case Discard:
		// RFC 863: "any data received is thrown away".
		_, err := io.Copy(io.Discard, c)
		return err
	case Chargen:
		// RFC 864: "a stream of data is sent out the connection (and
		// any data received is thrown away)" until the user closes it.
		go io.Copy(io.Discard, c)
		w := bufio.NewWriterSize(c, 16*chargenLineLen)
		g := &chargen{}
		line := make([]byte, 0, chargenLineLen)
		for {
			if _, err := w.Write(g.appendLine(line[:0])); err != nil {
				return err
			}
		}
	case Daytime:
		// RFC 867: "the current date and time is sent out the
		// connection as a ASCII character string ... the service
		// closes the connection after sending the quote."
		_, err := io.WriteString(c, DaytimeString(o.Clock.Now(), o.Location))
		return err
	}
	return nil
}

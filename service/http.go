package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// serveHTTP runs a static file server for the files under o.Root over
// the connections ln accepts, until ctx is done. net/http does the
// protocol: conditional and range requests (RFC 9110 §13, §14) and
// directory listings come from http.FileServer. It owns ln.
func serveHTTP(ctx context.Context, ln net.Listener, o Options) error {
	if err := CheckRoot(o.Root); err != nil {
		ln.Close()
		return fmt.Errorf("service %s: %w", HTTP, err)
	}
	srv := &http.Server{
		Handler: http.FileServer(http.Dir(o.Root)),
		// Bounds on slow or idle clients, so they cannot hold
		// connections open for ever.
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve(ln) // closes ln when it returns
	if ctx.Err() != nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	srv.Close()
	return fmt.Errorf("service %s: %w", HTTP, err)
}

// CheckRoot checks that dir names a directory the http service can
// serve. Its errors are one line.
func CheckRoot(dir string) error {
	if dir == "" {
		return errors.New("no root directory to serve")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("root %q: %v", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("root %q is not a directory", dir)
	}
	return nil
}

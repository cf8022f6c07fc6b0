package main

import (
	"context"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"ustack/service"
	"ustack/socket"
)

// startTCPEcho runs the echo service on the peer's TCP port 7.
func (p *peer) startTCPEcho(t *testing.T) {
	ln, err := socket.Listen(p.st, "tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- service.ServeListener(ctx, service.Echo, ln, service.Options{}) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestNCTCPClient: stdin goes to the echo service, its end half-closes
// the connection, the service closes its side, and nc exits by itself
// with everything echoed.
func TestNCTCPClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		p.startTCPEcho(t)
		in := strings.Repeat("a line of text for the echo service\n", 5000)
		code, out, errOut := p.cli.runArgs(context.Background(), strings.NewReader(in),
			"nc", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.1", "7")
		if code != 0 || errOut != "" {
			t.Errorf("status %d, stderr %q", code, errOut)
		}
		if out != in {
			t.Errorf("stdout: %d bytes, want the %d sent", len(out), len(in))
		}
	})
}

// TestNCTCPListen: nc -l accepts one connection, copies both ways, and
// exits when the peer closes.
func TestNCTCPListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		stdin, w := io.Pipe()
		defer w.Close()
		var stdout, stderr buffer
		done := make(chan int)
		go func() {
			done <- p.cli.run(context.Background(), []string{"nc", "-l", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.2", "9000"},
				stdin, &stdout, &stderr)
		}()
		synctest.Wait()
		c, err := socket.Dial(p.st, "tcp", "10.200.1.2:9000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("hi\n"))
		w.Write([]byte("back\n"))
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "back\n" {
			t.Errorf("peer read %q, %v", b, err)
		}
		synctest.Wait()
		// One connection only: the listener is gone.
		if _, err := socket.Dial(p.st, "tcp", "10.200.1.2:9000"); err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("second connection: %v, want refused", err)
		}
		c.Close()
		if code := <-done; code != 0 || stderr.String() != "" {
			t.Errorf("status %d, stderr %q", code, stderr.String())
		}
		if got := stdout.String(); got != "hi\n" {
			t.Errorf("stdout %q", got)
		}
	})
}

func TestNCTCPInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		stdin, w := io.Pipe()
		defer w.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		go func() {
			done <- p.cli.run(ctx, []string{"nc", "-l", "--link", "pipe:x", "--addr", "10.200.1.2/24", "9000"},
				stdin, io.Discard, io.Discard)
		}()
		synctest.Wait()
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("status %d after interrupt while listening", code)
		}
	})
}

func TestNCTCPErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		code, _, errOut := p.cli.runArgs(context.Background(), strings.NewReader("x"),
			"nc", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.1", "9999")
		if code != 1 || errOut != "ustack nc: dial tcp 10.200.1.1:9999: connect: connection refused\n" {
			t.Errorf("refused: status %d, stderr %q", code, errOut)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		code, _, errOut := p.cli.runArgs(context.Background(), strings.NewReader("x"),
			"nc", "-w", "1", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.77", "80")
		if code != 1 || errOut != "ustack nc: dial tcp 10.200.1.77:80: i/o timeout\n" {
			t.Errorf("timeout: status %d, stderr %q", code, errOut)
		}
	})
}

// TestNC6: nc over IPv6 TCP to the peer's echo service.
func TestNC6(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		if err := p.st.AddAddress("eth0", netip.MustParsePrefix("fd00:200::1/64")); err != nil {
			t.Fatal(err)
		}
		<-time.After(3 * time.Second) // the peer's duplicate address detection
		ln, err := socket.Listen(p.st, "tcp6", ":7")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- service.ServeListener(ctx, service.Echo, ln, service.Options{}) }()
		t.Cleanup(func() { cancel(); <-done })
		in := strings.Repeat("a line over IPv6\n", 2000)
		code, out, errOut := p.cli.runArgs(context.Background(), strings.NewReader(in),
			"nc", "--link", "pipe:x", "--addr", "fd00:200::2/64", "fd00:200::1", "7")
		if code != 0 || errOut != "" {
			t.Errorf("status %d, stderr %q", code, errOut)
		}
		if out != in {
			t.Errorf("stdout: %d bytes, want the %d sent", len(out), len(in))
		}
	})
}

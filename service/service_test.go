package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"ustack/internal/clock"
	"ustack/link/pipe"
	"ustack/socket"
	"ustack/stack"
)

var (
	clientAddr = netip.MustParsePrefix("10.0.0.1/24")
	serverAddr = netip.MustParsePrefix("10.0.0.2/24")
)

// pair returns two stacks joined by a pipe, client (10.0.0.1) and server
// (10.0.0.2), closed when the test ends.
func pair(t *testing.T) (client, server *stack.Stack) {
	t.Helper()
	a, b := pipe.New(pipe.Config{Seed: 1})
	client = stack.New(stack.Options{Name: "client"})
	server = stack.New(stack.Options{Name: "server"})
	t.Cleanup(func() { client.Close(); server.Close() })
	for _, x := range []struct {
		s  *stack.Stack
		ep *pipe.Endpoint
		p  netip.Prefix
	}{{client, a, clientAddr}, {server, b, serverAddr}} {
		if _, err := x.s.AddInterface("eth0", x.ep); err != nil {
			t.Fatal(err)
		}
		if err := x.s.AddAddress("eth0", x.p); err != nil {
			t.Fatal(err)
		}
	}
	return client, server
}

// start runs kind on the server's UDP port 7 and returns the client's
// socket and the service's address; the service stops with the test.
func start(t *testing.T, kind string, o Options) (*socket.UDPConn, net.Addr) {
	t.Helper()
	client, server := pair(t)
	pc, err := socket.ListenPacket(server, "udp", "0.0.0.0:7")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, kind, pc, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c, err := socket.ListenUDP(client, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, net.UDPAddrFromAddrPort(netip.AddrPortFrom(serverAddr.Addr(), 7))
}

// exchange sends req to the service and returns its reply, or nil when
// none comes within a (virtual) second.
func exchange(t *testing.T, c *socket.UDPConn, to net.Addr, req []byte) []byte {
	t.Helper()
	if _, err := c.WriteTo(req, to); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	b := make([]byte, 65535)
	n, _, err := c.ReadFrom(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func TestEcho(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, to := start(t, Echo, Options{})
		for _, req := range [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{0xa5}, 1400)} {
			if got := exchange(t, c, to, req); !bytes.Equal(got, req) {
				t.Errorf("echo of %d bytes: got %d bytes %q", len(req), len(got), got)
			}
		}
	})
}

func TestDiscard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, to := start(t, Discard, Options{})
		if got := exchange(t, c, to, []byte("into the void")); got != nil {
			t.Errorf("discard answered %q", got)
		}
	})
}

func TestChargen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, to := start(t, Chargen, Options{Rand: rand.New(rand.NewPCG(1, 2))})
		lengths := rand.New(rand.NewPCG(1, 2))
		want := &chargen{}
		for i := range 20 {
			got := exchange(t, c, to, []byte("x"))
			n := lengths.IntN(maxChargenDatagram + 1)
			if exp := want.datagram(nil, n); !bytes.Equal(got, exp) {
				t.Fatalf("datagram %d: got %q, want %q", i, got, exp)
			}
		}
	})
}

func TestChargenPattern(t *testing.T) {
	g := &chargen{}
	b := g.datagram(nil, 3*chargenLineLen)
	lines := strings.Split(string(b), "\r\n")
	want := []string{
		` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`abcdefg",
		`!"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`abcdefgh",
		`"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_` + "`abcdefghi",
		"",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines: %q", len(lines), b)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], want[i])
		}
	}
	// The ring wraps after 95 lines, and a short datagram is cut.
	g = &chargen{line: 94}
	if got := string(g.datagram(nil, 3)); got != "~ !" {
		t.Errorf("wrapped line starts %q, want %q", got, "~ !")
	}
	if g.line != 0 {
		t.Errorf("next line %d, want 0", g.line)
	}
	if got := g.datagram(nil, 0); len(got) != 0 {
		t.Errorf("empty datagram: %q", got)
	}
}

func TestDaytime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(time.Date(1982, 2, 22, 17, 37, 43, 0, time.UTC))
		c, to := start(t, Daytime, Options{Clock: clk, Location: time.UTC})
		want := "Monday, February 22, 1982 17:37:43-UTC\r\n"
		if got := exchange(t, c, to, nil); string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
		clk.Advance(time.Hour)
		want = "Monday, February 22, 1982 18:37:43-UTC\r\n"
		if got := exchange(t, c, to, []byte("ignored")); string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestServeUnknown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = Serve(context.Background(), "qotd", pc, Options{})
	if !errors.Is(err, ErrUnknown) {
		t.Fatalf("Serve(qotd) = %v, want ErrUnknown", err)
	}
	if _, _, err := pc.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("pc not closed: %v", err)
	}
}

// TestStream runs the stream services over the host's TCP on loopback.
func TestStream(t *testing.T) {
	for _, kind := range Kinds() {
		if !Datagram(kind) {
			continue // http: TestHTTP
		}
		t.Run(kind, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			checkStream(t, kind, ln, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) })
		})
	}
}

// TestStreamOverStack runs the stream services over ustack's TCP.
func TestStreamOverStack(t *testing.T) {
	for _, kind := range Kinds() {
		if !Datagram(kind) {
			continue
		}
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, server := pair(t)
				ln, err := socket.Listen(server, "tcp", ":7")
				if err != nil {
					t.Fatal(err)
				}
				checkStream(t, kind, ln, func() (net.Conn, error) { return socket.Dial(client, "tcp", "10.0.0.2:7") })
			})
		})
	}
}

// checkStream serves kind on ln, talks to it over a connection dial
// makes, and stops it.
func checkStream(t *testing.T, kind string, ln net.Listener, dial func() (net.Conn, error)) {
	t.Helper()
	clk := clock.NewFake(time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, kind, ln, Options{Clock: clk, Location: time.UTC}) }()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	switch kind {
	case Echo:
		c.Write([]byte("ping\n"))
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping\n" {
			t.Errorf("echo: %q, %v", b, err)
		}
	case Discard:
		c.Write([]byte("gone"))
		c.(interface{ CloseWrite() error }).CloseWrite()
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Errorf("discard: %q, %v", b, err)
		}
	case Chargen:
		b := make([]byte, 2*chargenLineLen)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		if want := (&chargen{}).datagram(nil, len(b)); !bytes.Equal(b, want) {
			t.Errorf("chargen: got %q, want %q", b, want)
		}
	case Daytime:
		b, err := io.ReadAll(c)
		if want := "Monday, July 1, 2024 12:00:00-UTC\r\n"; err != nil || string(b) != want {
			t.Errorf("daytime: %q, %v; want %q", b, err, want)
		}
	}
	// Cancelling stops the service and closes the connection.
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeListener: %v", err)
	}
	if kind != Daytime && kind != Discard {
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("connection after stop: %v", err)
		}
	}
}

// TestHTTP serves a directory over ustack's TCP and fetches a file whole
// and in ranges.
func TestHTTP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		file := []byte(strings.Repeat("0123456789abcdef", 4096))
		if err := os.WriteFile(root+"/f.txt", file, 0o644); err != nil {
			t.Fatal(err)
		}
		client, server := pair(t)
		ln, err := socket.Listen(server, "tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ServeListener(ctx, HTTP, ln, Options{Root: root}) }()
		tr := &http.Transport{DialContext: (&socket.Dialer{Stack: client}).DialContext}
		hc := &http.Client{Transport: tr}
		get := func(rng string) (*http.Response, []byte) {
			t.Helper()
			req, _ := http.NewRequest("GET", "http://10.0.0.2/f.txt", nil)
			if rng != "" {
				req.Header.Set("Range", rng)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, b
		}
		if resp, b := get(""); resp.StatusCode != 200 || !bytes.Equal(b, file) {
			t.Errorf("GET: %d, %d bytes", resp.StatusCode, len(b))
		}
		if resp, b := get("bytes=16-31"); resp.StatusCode != 206 || string(b) != "0123456789abcdef" ||
			resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 16-31/%d", len(file)) {
			t.Errorf("range GET: %d %q %q", resp.StatusCode, b, resp.Header.Get("Content-Range"))
		}
		if resp, b := get("bytes=-4"); resp.StatusCode != 206 || string(b) != "cdef" {
			t.Errorf("suffix range GET: %d %q", resp.StatusCode, b)
		}
		if resp, _ := get(fmt.Sprintf("bytes=%d-", len(file)+10)); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("unsatisfiable range: %d", resp.StatusCode)
		}
		tr.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
}

func TestHTTPBadRoot(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = ServeListener(context.Background(), HTTP, ln, Options{Root: "/nonexistent/ustack"})
	if err == nil || err.Error() != `service http: root "/nonexistent/ustack": no such file or directory` {
		t.Errorf("ServeListener: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener not closed: %v", err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(context.Background(), HTTP, pc, Options{}); !errors.Is(err, ErrStreamOnly) {
		t.Errorf("Serve(http) = %v, want ErrStreamOnly", err)
	}
}

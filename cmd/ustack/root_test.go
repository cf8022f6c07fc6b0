package main

// Tests with Linux as the peer: each makes its own network namespaces and
// veth pairs (internal/netns), runs the tool in-process with its links
// opened inside a namespace, and removes everything at the end. They need
// root.

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"ustack/daemon"
	"ustack/internal/netns"
	"ustack/link"
	"ustack/wire"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces and veth pairs)")
	}
}

// cliIn is the tool with its links opened inside ns.
func cliIn(ns *netns.NS) *cli {
	return &cli{
		openLink: func(spec string, mtu int, mac wire.MAC) (ep link.Endpoint, err error) {
			if derr := ns.Do(func() error { ep, err = daemon.OpenLink(spec, mtu, mac); return nil }); derr != nil {
				return nil, derr
			}
			return ep, err
		},
		openPromisc: func(ifname string) (ep link.Endpoint, err error) {
			if derr := ns.Do(func() error { ep, err = daemon.OpenPromiscuous(ifname); return nil }); derr != nil {
				return nil, derr
			}
			return ep, err
		},
	}
}

// vethNS makes a namespace with a veth pair: the kernel's end vK with
// 10.200.1.1/24, and vU for ustack.
func vethNS(t *testing.T) *netns.NS {
	ns := netns.New(t)
	netns.CreateVeth(t, "vK", ns, "vU", ns)
	ns.Run(t, "ip", "addr", "add", "10.200.1.1/24", "dev", "vK")
	return ns
}

func TestRootPing(t *testing.T) {
	needRoot(t)
	ns := vethNS(t)
	c := cliIn(ns)
	code, out, errOut := c.runArgs(context.Background(), nil, "ping", "-c", "3", "-i", "0.2", "-W", "2",
		"--link", "afpacket:vU", "--addr", "10.200.1.2/24", "10.200.1.1")
	if code != 0 {
		t.Fatalf("status %d, stderr %q:\n%s", code, errOut, out)
	}
	matchLines(t, out, []string{
		`PING 10\.200\.1\.1 \(10\.200\.1\.1\) 56\(84\) bytes of data\.`,
		`64 bytes from 10\.200\.1\.1: icmp_seq=1 ttl=64 time=[0-9.]+ ms`,
		`64 bytes from 10\.200\.1\.1: icmp_seq=2 ttl=64 time=[0-9.]+ ms`,
		`64 bytes from 10\.200\.1\.1: icmp_seq=3 ttl=64 time=[0-9.]+ ms`,
		``,
		`--- 10\.200\.1\.1 ping statistics ---`,
		`3 packets transmitted, 3 received, 0% packet loss, time [0-9]+ms`,
		`rtt min/avg/max/mdev = [0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+ ms`,
	})
	// No answer: status 1.
	code, out, _ = c.runArgs(context.Background(), nil, "ping", "-c", "1", "-W", "0.5",
		"--link", "afpacket:vU", "--addr", "10.200.1.2/24", "10.200.1.77")
	if code != 1 || !strings.Contains(out, "1 packets transmitted, 0 received") {
		t.Errorf("ping of a silent address: status %d\n%s", code, out)
	}
}

func TestRootNC(t *testing.T) {
	needRoot(t)
	ns := vethNS(t)
	// The kernel's side: socat echoes each datagram back.
	ns.Start(t, "socat", "UDP4-RECVFROM:7777,fork", "EXEC:cat")
	// socat may not be bound yet when the first datagram arrives (nc then
	// fails with connection refused): try again.
	var out, errOut string
	for range 20 {
		var code int
		code, out, errOut = cliIn(ns).runArgs(context.Background(), strings.NewReader("over the veth\n"),
			"nc", "-u", "-w", "0.5", "--link", "afpacket:vU", "--addr", "10.200.1.2/24", "10.200.1.1", "7777")
		if code == 0 {
			break
		}
	}
	if out != "over the veth\n" {
		t.Errorf("nc through socat's echo: stdout %q, stderr %q", out, errOut)
	}
}

// TestRootImpair bridges two veth pairs through impair with 30ms of delay
// each way and pings across it from namespace to namespace.
func TestRootImpair(t *testing.T) {
	needRoot(t)
	left, mid, right := netns.New(t), netns.New(t), netns.New(t)
	netns.CreateVeth(t, "l0", left, "l1", mid)
	netns.CreateVeth(t, "r0", right, "r1", mid)
	left.Run(t, "ip", "addr", "add", "10.200.2.1/24", "dev", "l0")
	right.Run(t, "ip", "addr", "add", "10.200.2.2/24", "dev", "r0")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, w := io.Pipe()
	var stderr buffer
	done := make(chan int, 1)
	go func() {
		done <- cliIn(mid).run(ctx, []string{"impair", "--a", "l1", "--b", "r1", "--delay", "30ms"}, nil, w, &stderr)
		w.Close()
	}()
	banner := make([]byte, 200)
	n, _ := stdout.Read(banner)
	if !strings.HasPrefix(string(banner[:n]), "impair: bridging l1 <-> r1 (delay 30ms±0s)") {
		t.Fatalf("banner %q, stderr %q", banner[:n], stderr.String())
	}
	out := left.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.200.2.2")
	m := regexp.MustCompile(`rtt min/avg/max/mdev = ([0-9.]+)/`).FindStringSubmatch(out)
	if !strings.Contains(out, "3 received") || m == nil {
		t.Fatalf("ping across impair:\n%s", out)
	}
	if rtt, _ := strconv.ParseFloat(m[1], 64); rtt < 60 {
		t.Errorf("min rtt %.3f ms, want at least 60 (30ms each way)", rtt)
	}
	cancel()
	rest, _ := io.ReadAll(stdout)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("impair: status %d, stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("impair did not stop")
	}
	if !regexp.MustCompile(`(?m)^delayed +[1-9][0-9]* +[1-9][0-9]*$`).MatchString(string(rest)) {
		t.Errorf("counters at exit:\n%s", rest)
	}
}

// TestRootNCTCP runs nc over TCP against the kernel's TCP, both ways: as
// a client of an echo server, and listening for socat.
func TestRootNCTCP(t *testing.T) {
	needRoot(t)
	ns := vethNS(t)
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}

	// Client: the kernel echoes one connection (a socket made inside the
	// namespace, so it is listening before nc starts); at the end of
	// stdin nc half-closes, the echo ends and closes, nc exits.
	var ln net.Listener
	ns.MustDo(t, func() (err error) { ln, err = net.Listen("tcp4", "10.200.1.1:7778"); return err })
	defer ln.Close()
	echoed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			echoed <- err
			return
		}
		defer c.Close()
		if _, err = io.Copy(c, c); err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		echoed <- err
	}()
	code, out, errOut := cliIn(ns).runArgs(context.Background(), bytes.NewReader(data),
		"nc", "--link", "afpacket:vU", "--addr", "10.200.1.2/24", "10.200.1.1", "7778")
	if code != 0 || out != string(data) {
		t.Errorf("nc to the kernel's echo: status %d, %d bytes back of %d, stderr %q", code, len(out), len(data), errOut)
	}
	if err := <-echoed; err != nil {
		t.Errorf("kernel echo: %v", err)
	}

	// Listening: socat connects, receives what nc reads from stdin, and
	// closes at its end; nc then exits.
	file := filepath.Join(t.TempDir(), "received")
	done := make(chan int, 1)
	var stderr buffer
	go func() {
		done <- cliIn(ns).run(context.Background(), []string{"nc", "-l", "--link", "afpacket:vU", "--addr", "10.200.1.2/24", "10.200.1.2", "7779"},
			bytes.NewReader(data), io.Discard, &stderr)
	}()
	ns.Run(t, "socat", "-u", "TCP4:10.200.1.2:7779,retry=50,interval=0.1", "CREATE:"+file)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("nc -l: status %d, stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nc -l did not exit after the peer closed")
	}
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, data) {
		t.Errorf("socat received %d bytes of %d, %v", len(got), len(data), err)
	}
}

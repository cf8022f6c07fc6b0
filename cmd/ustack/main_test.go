package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"ustack/link"
	"ustack/link/pipe"
	"ustack/service"
	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// buffer is a bytes.Buffer safe for a writer and a reader goroutine.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// peer is a stack at 10.200.1.1/24 on the far side of the pipe that the
// tool under test opens as "pipe:x".
type peer struct {
	st  *stack.Stack
	cli *cli
}

var peerAddr = netip.MustParsePrefix("10.200.1.1/24")

func newPeer(t *testing.T) *peer {
	t.Helper()
	a, b := pipe.New(pipe.Config{Seed: 7})
	p := &peer{st: stack.New(stack.Options{Name: "peer"})}
	t.Cleanup(func() { p.st.Close(); a.Close() })
	if _, err := p.st.AddInterface("eth0", b); err != nil {
		t.Fatal(err)
	}
	if err := p.st.AddAddress("eth0", peerAddr); err != nil {
		t.Fatal(err)
	}
	opened := false
	p.cli = &cli{openLink: func(spec string, mtu int, mac wire.MAC) (link.Endpoint, error) {
		if spec != "pipe:x" || opened {
			return nil, fmt.Errorf("unexpected link %q", spec)
		}
		opened = true
		return a, nil
	}}
	return p
}

// run runs the tool with args and returns its status and output.
func (c *cli) runArgs(ctx context.Context, stdin io.Reader, args ...string) (int, string, string) {
	var stdout, stderr buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := c.run(ctx, args, stdin, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		code, out, errOut := p.cli.runArgs(context.Background(), nil, "ping", "-c", "3", "-i", "0.2",
			"--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.1")
		if code != 0 || errOut != "" {
			t.Fatalf("status %d, stderr %q, stdout:\n%s", code, errOut, out)
		}
		want := []string{
			`PING 10\.200\.1\.1 \(10\.200\.1\.1\) 56\(84\) bytes of data\.`,
			`64 bytes from 10\.200\.1\.1: icmp_seq=1 ttl=64 time=0\.000 ms`,
			`64 bytes from 10\.200\.1\.1: icmp_seq=2 ttl=64 time=0\.000 ms`,
			`64 bytes from 10\.200\.1\.1: icmp_seq=3 ttl=64 time=0\.000 ms`,
			``,
			`--- 10\.200\.1\.1 ping statistics ---`,
			`3 packets transmitted, 3 received, 0% packet loss, time 400ms`,
			`rtt min/avg/max/mdev = 0\.000/0\.000/0\.000/0\.000 ms`,
		}
		matchLines(t, out, want)
	})
}

func TestPing6(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		if err := p.st.AddAddress("eth0", netip.MustParsePrefix("fd00:200::1/64")); err != nil {
			t.Fatal(err)
		}
		<-time.After(3 * time.Second) // the peer's duplicate address detection
		code, out, errOut := p.cli.runArgs(context.Background(), nil, "ping", "-c", "2", "-i", "0.2",
			"--link", "pipe:x", "--addr", "fd00:200::2/64", "fd00:200::1")
		if code != 0 || errOut != "" {
			t.Fatalf("status %d, stderr %q, stdout:\n%s", code, errOut, out)
		}
		want := []string{
			`PING fd00:200::1 \(fd00:200::1\) 56\(104\) bytes of data\.`,
			`64 bytes from fd00:200::1: icmp_seq=1 ttl=64 time=0\.000 ms`,
			`64 bytes from fd00:200::1: icmp_seq=2 ttl=64 time=0\.000 ms`,
			``,
			`--- fd00:200::1 ping statistics ---`,
			`2 packets transmitted, 2 received, 0% packet loss, time 200ms`,
			`rtt min/avg/max/mdev = 0\.000/0\.000/0\.000/0\.000 ms`,
		}
		matchLines(t, out, want)
	})
}

// TestPing6LinkLocal: a link-local destination takes the link's device
// name (or eth0, or nothing) as its zone, and replies show it as given.
func TestPing6LinkLocal(t *testing.T) {
	for _, zone := range []string{"%x", "%eth0", ""} {
		t.Run(zone, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPeer(t)
				<-time.After(3 * time.Second) // the peer's duplicate address detection
				ll := wire.LinkLocalFromMAC(p.st.Interface("eth0").HardwareAddr()).String()
				code, out, errOut := p.cli.runArgs(context.Background(), nil, "ping", "-c", "2", "-i", "0.2",
					"--link", "pipe:x", "--addr", "fd00:200::2/64", ll+zone)
				if code != 0 || errOut != "" {
					t.Fatalf("status %d, stderr %q, stdout:\n%s", code, errOut, out)
				}
				shown := regexp.QuoteMeta(ll + zone)
				if zone == "" {
					shown = regexp.QuoteMeta(ll + "%eth0")
				}
				want := []string{
					`PING ` + regexp.QuoteMeta(ll+zone) + ` \(` + shown + `\) 56\(104\) bytes of data\.`,
					`64 bytes from ` + shown + `: icmp_seq=1 ttl=64 time=0\.000 ms`,
					`64 bytes from ` + shown + `: icmp_seq=2 ttl=64 time=0\.000 ms`,
					``,
					`--- ` + regexp.QuoteMeta(ll+zone) + ` ping statistics ---`,
					`2 packets transmitted, 2 received, 0% packet loss, time 200ms`,
					`rtt min/avg/max/mdev = 0\.000/0\.000/0\.000/0\.000 ms`,
				}
				matchLines(t, out, want)
			})
		})
	}
}

func TestPingOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		code, out, _ := p.cli.runArgs(context.Background(), nil, "ping", "10.200.1.1", "-c", "1", "-s", "1000", "-t", "1",
			"--link", "pipe:x", "--addr", "10.200.1.2/24")
		if code != 0 {
			t.Fatalf("status %d:\n%s", code, out)
		}
		if !strings.Contains(out, "1008 bytes from 10.200.1.1: icmp_seq=1 ttl=64") || !strings.Contains(out, "1000(1028) bytes") {
			t.Errorf("output:\n%s", out)
		}
	})
}

func TestPingNoReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		// Nobody has 10.200.1.9: ARP gives up, and the stack reports
		// host unreachable for each request (both were waiting for
		// the neighbour, and both fail at once).
		code, out, _ := p.cli.runArgs(context.Background(), nil, "ping", "-c", "2", "-W", "5",
			"--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.9")
		if code != 1 {
			t.Errorf("status %d, want 1", code)
		}
		for _, s := range []string{
			"Destination Host Unreachable",
			"2 packets transmitted, 0 received, +2 errors, 100% packet loss",
		} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q:\n%s", s, out)
			}
		}
		if strings.Contains(out, "rtt min") {
			t.Errorf("rtt line without replies:\n%s", out)
		}
	})
}

func TestPingInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(2500*time.Millisecond, cancel)
		code, out, _ := p.cli.runArgs(ctx, nil, "ping", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.1")
		if code != 0 || !strings.Contains(out, "3 packets transmitted, 3 received, 0% packet loss, time 2500ms") {
			t.Errorf("status %d:\n%s", code, out)
		}
	})
}

func TestPingUnreachableNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		code, out, _ := p.cli.runArgs(context.Background(), nil, "ping", "-c", "1", "-W", "1",
			"--link", "pipe:x", "--addr", "10.200.1.2/24", "192.0.2.1")
		if code != 1 || !strings.Contains(out, "ping: sendmsg: Network is unreachable") {
			t.Errorf("status %d:\n%s", code, out)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	c := &cli{openLink: func(string, int, wire.MAC) (link.Endpoint, error) { return nil, fmt.Errorf("no links here") }}
	tests := []struct {
		args     []string
		code     int
		stderrRE string
	}{
		{[]string{}, 2, `^usage: ustack COMMAND`},
		{[]string{"frob"}, 2, `^ustack: unknown command "frob"\nusage: ustack COMMAND`},
		{[]string{"ping", "--link", "pipe:x", "--addr", "10.0.0.2/24"}, 2, `^usage: ustack ping`},
		{[]string{"ping", "--addr", "10.0.0.2/24", "10.0.0.1"}, 2, `^ustack ping: --link is required`},
		{[]string{"ping", "--link", "x:y", "10.0.0.1"}, 2, `^ustack ping: --addr is required`},
		{[]string{"ping", "--link", "x:y", "--addr", "10.0.0.2", "10.0.0.1"}, 2, `^ustack ping: --addr "10.0.0.2" is not a CIDR prefix`},
		{[]string{"ping", "--link", "x:y", "--addr", "10.0.0.2/24", "--gw", "10.1.0.1", "10.0.0.1"}, 2, `^ustack ping: --gw 10.1.0.1 is not on 10.0.0.0/24\n$`},
		{[]string{"ping", "--link", "x:y", "--addr", "10.0.0.2/24", "10.0.0.1"}, 2, `^ustack ping: no links here\n$`},
		{[]string{"ping", "-c", "x", "10.0.0.1"}, 2, `invalid value "x" for flag -c`},
		{[]string{"ping", "example.com"}, 2, `^ustack ping: example.com: not an IP address`},
		{[]string{"ping", "--link", "x:y", "--addr", "fd00::2/64", "--gw", "10.0.0.1", "fd00::1"}, 2, `^ustack ping: --gw "10.0.0.1" is not an address of --addr's family`},
		{[]string{"ping", "--link", "afpacket:v0", "--addr", "fd00::2/64", "fe80::1%v1"}, 2, `^ustack ping: fe80::1%v1: zone "v1" is not the link's device \(v0\)\n$`},
		{[]string{"ping", "--link", "afpacket:v0", "--addr", "fd00::2/64", "fd00::1%v0"}, 2, `^ustack ping: fd00::1%v0: only link-local addresses take a zone\n$`},
		{[]string{"nc", "fe80::1%v1", "7", "--link", "afpacket:v0", "--addr", "fd00::2/64"}, 2, `^ustack nc: fe80::1%v1: zone "v1" is not the link's device \(v0\)\n$`},
		{[]string{"nc", "10.0.0.1", "x"}, 2, `^ustack nc: x: not a port number\n$`},
		{[]string{"nc", "10.0.0.1"}, 2, `^usage: ustack nc \[-u\]`},
		{[]string{"nc", "-u", "10.0.0.1", "x"}, 2, `^ustack nc: x: not a port number\n$`},
		{[]string{"impair", "--a", "v0"}, 2, `^ustack impair: --a and --b are required`},
		{[]string{"impair", "--a", "v0", "--b", "v1", "--loss", "150%"}, 2, `^ustack impair: --loss: "150%" is not a probability between 0 and 1`},
		{[]string{"impair", "--a", "v0", "--b", "v1", "--rate", "fast"}, 2, `^ustack impair: --rate: "fast" is not a rate`},
		{[]string{"demo", "extra"}, 2, `^ustack demo: unexpected argument "extra"`},
	}
	for _, tc := range tests {
		code, _, errOut := c.runArgs(context.Background(), nil, tc.args...)
		if code != tc.code || !regexp.MustCompile(tc.stderrRE).MatchString(errOut) {
			t.Errorf("ustack %s: status %d, stderr %q; want %d, %s", strings.Join(tc.args, " "), code, errOut, tc.code, tc.stderrRE)
		}
	}
}

func TestHelp(t *testing.T) {
	c := &cli{}
	code, out, _ := c.runArgs(context.Background(), nil, "help")
	if code != 0 {
		t.Errorf("help: status %d", code)
	}
	for _, cmd := range commands {
		if !strings.Contains(out, "  "+cmd.name+" ") {
			t.Errorf("help lacks %s:\n%s", cmd.name, out)
		}
	}
	code, out, _ = c.runArgs(context.Background(), nil, "help", "ping")
	if code != 0 || !strings.HasPrefix(out, "usage: ustack ping [-c N]") {
		t.Errorf("help ping: %d %q", code, out)
	}
}

// startEcho runs the echo service on the peer's UDP port 7.
func (p *peer) startEcho(t *testing.T) {
	pc, err := socket.ListenPacket(p.st, "udp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- service.Serve(ctx, service.Echo, pc, service.Options{}) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestNCClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		p.startEcho(t)
		stdin, w := io.Pipe()
		var stdout, stderr buffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		go func() {
			done <- p.cli.run(ctx, []string{"nc", "-u", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.1", "7"},
				stdin, &stdout, &stderr)
		}()
		for _, line := range []string{"hello\n", "again\n"} {
			w.Write([]byte(line))
			synctest.Wait()
		}
		if got := stdout.String(); got != "hello\nagain\n" {
			t.Errorf("stdout %q", got)
		}
		w.Close()
		cancel()
		if code := <-done; code != 0 || stderr.String() != "" {
			t.Errorf("status %d, stderr %q", code, stderr.String())
		}
	})
}

func TestNCIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		p.startEcho(t)
		start := time.Now()
		code, out, errOut := p.cli.runArgs(context.Background(), strings.NewReader("ping\n"),
			"nc", "-u", "-w", "2", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.1", "7")
		if code != 0 || out != "ping\n" || errOut != "" {
			t.Errorf("status %d, stdout %q, stderr %q", code, out, errOut)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("ran %v, want 2s", d)
		}
	})
}

func TestNCRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		code, _, errOut := p.cli.runArgs(context.Background(), strings.NewReader("x"),
			"nc", "-u", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.1", "9999")
		if code != 1 || !strings.Contains(errOut, "connection refused") {
			t.Errorf("status %d, stderr %q", code, errOut)
		}
	})
}

func TestNCListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPeer(t)
		stdin, w := io.Pipe()
		var stdout, stderr buffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		go func() {
			done <- p.cli.run(ctx, []string{"nc", "-u", "-l", "--link", "pipe:x", "--addr", "10.200.1.2/24", "10.200.1.2", "9000"},
				stdin, &stdout, &stderr)
		}()
		synctest.Wait()
		to := netip.MustParseAddrPort("10.200.1.2:9000")
		first, err := socket.ListenUDP(p.st, netip.MustParseAddrPort("10.200.1.1:5555"))
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		other, err := socket.ListenUDP(p.st, netip.MustParseAddrPort("10.200.1.1:6666"))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		first.WriteToUDPAddrPort([]byte("hi\n"), to)
		synctest.Wait()
		other.WriteToUDPAddrPort([]byte("intruder\n"), to)
		synctest.Wait()
		w.Write([]byte("back\n"))
		synctest.Wait()
		if got := stdout.String(); got != "hi\n" {
			t.Errorf("stdout %q, want only the first peer's data", got)
		}
		first.SetReadDeadline(time.Now().Add(time.Second))
		b := make([]byte, 100)
		n, from, err := first.ReadFromUDPAddrPort(b)
		if err != nil || string(b[:n]) != "back\n" || from != to {
			t.Errorf("first peer got %q from %v, %v", b[:n], from, err)
		}
		w.Close()
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("status %d, stderr %q", code, stderr.String())
		}
	})
}

func TestImpair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// hostA ==pipe== vA [impair] vB ==pipe== hostB
		ha, va := pipe.New(pipe.Config{Seed: 21})
		hb, vb := pipe.New(pipe.Config{Seed: 22})
		ends := map[string]link.Endpoint{"vA": va, "vB": vb}
		c := &cli{openPromisc: func(name string) (link.Endpoint, error) {
			if ep, ok := ends[name]; ok {
				delete(ends, name)
				return ep, nil
			}
			return nil, fmt.Errorf("no device %s", name)
		}}
		var stacks []*stack.Stack
		for i, ep := range []link.Endpoint{ha, hb} {
			s := stack.New(stack.Options{})
			stacks = append(stacks, s)
			defer s.Close()
			s.AddInterface("eth0", ep)
			s.AddAddress("eth0", netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i + 1)}), 24))
		}
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr buffer
		done := make(chan int)
		go func() {
			done <- c.run(ctx, []string{"impair", "--a", "vA", "--b", "vB", "--delay", "20ms", "--dup", "100%"}, nil, &stdout, &stderr)
		}()
		synctest.Wait()
		st, err := runPing(context.Background(), stacks[0], netip.MustParseAddr("10.9.0.2"),
			pingConfig{count: 2, interval: time.Second, wait: time.Second, size: 8}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if st.received != 2 || st.dups == 0 {
			t.Errorf("ping through impair: %+v", st)
		}
		for _, rtt := range st.rtts {
			// ARP's first exchange takes longer; the rest cross
			// twice with 20ms each way.
			if rtt < 40*time.Millisecond {
				t.Errorf("rtt %v, want at least 40ms", rtt)
			}
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("status %d, stderr %q", code, stderr.String())
		}
		out := stdout.String()
		if !strings.HasPrefix(out, "impair: bridging vA <-> vB (delay 20ms±0s, dup 100%); interrupt to stop\n") {
			t.Errorf("banner:\n%s", out)
		}
		if !regexp.MustCompile(`(?m)^duplicated +[1-9][0-9]* +[1-9][0-9]*$`).MatchString(out) {
			t.Errorf("counters:\n%s", out)
		}
	})
}

func TestParsers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
	}{{"1%", 0.01}, {"0.01", 0.01}, {"100%", 1}, {"0", 0}, {"12.5%", 0.125}} {
		var got float64
		if err := parseProbability(tc.in, &got); err != nil || got != tc.want {
			t.Errorf("parseProbability(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"2", "-1%", "x", "101%"} {
		var got float64
		if err := parseProbability(bad, &got); err == nil {
			t.Errorf("parseProbability(%q) = %v, want an error", bad, got)
		}
	}
	for _, tc := range []struct {
		in   string
		want uint64
	}{{"100mbit", 100e6}, {"10kbit", 10e3}, {"1gbit", 1e9}, {"1.5Mbit", 1.5e6}, {"500kbps", 4e6}, {"64bit", 64}} {
		var got uint64
		if err := parseRate(tc.in, &got); err != nil || got != tc.want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"100", "mbit", "-1mbit", "0kbit", "10 furlongs"} {
		var got uint64
		if err := parseRate(bad, &got); err == nil {
			t.Errorf("parseRate(%q) = %v, want an error", bad, got)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"20ms", 20 * time.Millisecond}, {"20", 20 * time.Millisecond}, {"1.5s", 1500 * time.Millisecond}, {"0.5", 500 * time.Microsecond}} {
		var got time.Duration
		if err := parseDelay(tc.in, &got); err != nil || got != tc.want {
			t.Errorf("parseDelay(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{321 * time.Microsecond, "0.321"}, {4321 * time.Microsecond, "4.32"}, {54321 * time.Microsecond, "54.3"}, {654321 * time.Microsecond, "654"}} {
		if got := rttText(tc.d); got != tc.want {
			t.Errorf("rttText(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestDemo(t *testing.T) {
	start := time.Now()
	code, out, errOut := (&cli{}).runArgs(context.Background(), nil, "demo")
	if code != 0 || errOut != "" {
		t.Fatalf("status %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	for _, s := range []string{
		"1/14  ARP resolution", "2/14  ping A → B through R", "3/14  traceroute-style TTL probes",
		"4/14  UDP echo service", "5/14  a 20 KB UDP datagram, fragmented and reassembled",
		"6/14  TCP: a connection A → B through R", "7/14  TCP: a 4 MB bulk transfer",
		"8/14  HTTP: GET a file from B's http service",
		"9/14  IPv6: link-local addresses and neighbour discovery", "10/14  IPv6: SLAAC from R's router advertisements",
		"11/14  IPv6: ping6 A → B through R", "12/14  IPv6: UDP echo, and a 20 KB datagram in fragments",
		"13/14  IPv6: TCP and HTTP from A to B", "14/14  counters",
		"icmp_seq=3 ttl=63", " 1  10.0.1.1", "(time exceeded)",
		"SYN     10.0.1.2.40000 > 10.0.2.2.5001: Flags [S], seq 0, win 65535, options [mss 1460,sackOK,TS,wscale 7], length 0\n",
		"SYN-ACK 10.0.2.2.5001 > 10.0.1.2.40000: Flags [S.], seq 0, ack 1, win 65535, options [mss 1460,sackOK,TS,wscale 7], length 0\n",
		"ACK     10.0.1.2.40000 > 10.0.2.2.5001: Flags [.], seq 1, ack 1, win ",
		"info: cc cubic, mss 1448",
		"HTTP/1.1 200 OK, Content-Length 1048576", "206 Partial Content, Content-Range bytes 1000-1015/1048576",
		// IPv6: link-local addresses from the pipes' MACs, and ND.
		"A eth0  fe80::aff:fe01:10a ", "R eth0  fe80::aff:fe01:10b ", "R eth1  fe80::bff:fe02:20a ", "B eth0  fe80::bff:fe02:20b ",
		"fe80::aff:fe01:10a > ff02::1:ff01:10b: ICMP6, neighbor solicitation, who has fe80::aff:fe01:10b, length 32\n",
		"fe80::aff:fe01:10b > fe80::aff:fe01:10a: ICMP6, neighbor advertisement, tgt is fe80::aff:fe01:10b, length 32\n",
		"fe80::aff:fe01:10a > fe80::aff:fe01:10b: ICMP6, echo request, seq 1, length 64\n",
		"eth0  fe80::aff:fe01:10b  02:00:0a:01:01:0b  REACHABLE\n",
		// SLAAC.
		"fe80::aff:fe01:10b > ff02::1: ICMP6, router advertisement, prefix 2001:db8:1::/64, length 56\n",
		":: > ff02::1:ff01:10a: ICMP6, neighbor solicitation, who has 2001:db8:1::aff:fe01:10a, length 24\n",
		"A eth0  2001:db8:1::aff:fe01:10a/64, default via fe80::aff:fe01:10b\n",
		"B eth0  2001:db8:2::bff:fe02:20b/64, default via fe80::bff:fe02:20a\n",
		// ping6, UDP, TCP and HTTP over IPv6 through R.
		"PING 2001:db8:2::bff:fe02:20b 56(104) bytes of data.",
		"64 bytes from 2001:db8:2::bff:fe02:20b: icmp_seq=3 ttl=63 ",
		`A ← [2001:db8:2::bff:fe02:20b]:7  "hello from A over IPv6"`,
		"20000 bytes in 14 fragments each way",
		"SYN     2001:db8:1::aff:fe01:10a.40000 > 2001:db8:2::bff:fe02:20b.5001: Flags [S], seq 0, win 65535, options [mss 1440,sackOK,TS,wscale 7], length 0\n",
		"SYN-ACK 2001:db8:2::bff:fe02:20b.5001 > 2001:db8:1::aff:fe01:10a.40000: Flags [S.], seq 0, ack 1, win 65535, options [mss 1440,sackOK,TS,wscale 7], length 0\n",
		"mss 1428; B's SHA-256 matches",
		"GET http://[2001:db8:2::bff:fe02:20b]/demo.bin, Range: bytes=0-65535\n",
		"HTTP/1.1 206 Partial Content, Content-Range bytes 0-65535/1048576 (",
		"✓ TCP over IPv6: the sink's digest and the file's bytes both match",
		"IPv6 packets\n",
		"all 14 steps passed ✓",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("demo output lacks %q", s)
		}
	}
	if strings.Contains(out, "✗") {
		t.Errorf("a step failed:\n%s", out)
	}
	// About 0.3 s; more with -race on a busy machine.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("demo took %v, want under 5s", d)
	}
}

// matchLines checks out line by line against regular expressions.
func matchLines(t *testing.T, out string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, re := range want {
		if !regexp.MustCompile("^" + re + "$").MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %q", i+1, lines[i], re)
		}
	}
}

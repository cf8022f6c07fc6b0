package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"ustack/link/pipe"
	"ustack/network/route"
	"ustack/service"
	"ustack/socket"
	"ustack/stack"
	"ustack/transport/icmp"
	"ustack/wire"
)

// The demo network: host A — router R — host B, over two pipes, dual
// stack (the IPv6 side is in demo6.go).
//
//	A eth0 10.0.1.2/24 ─── 10.0.1.1/24 eth0  R  eth1 10.0.2.1/24 ─── 10.0.2.2/24 eth0 B
//	                     2001:db8:1::1/64        2001:db8:2::1/64
var (
	demoA   = netip.MustParsePrefix("10.0.1.2/24")
	demoRA  = netip.MustParsePrefix("10.0.1.1/24")
	demoRB  = netip.MustParsePrefix("10.0.2.1/24")
	demoB   = netip.MustParsePrefix("10.0.2.2/24")
	anyDest = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
)

// demoNet is the running demo network.
type demoNet struct {
	a, r, b *stack.Stack
	// clk is the stacks' clock, fast-forwarded through IPv6's waits.
	clk *ffClock
	// trace records the TCP segments on A's link.
	trace *tracer
	// stopEcho stops the echo service B runs from the echo step on.
	stopEcho func() error
	// cleanup stops what later steps started, last first.
	cleanup []func()
}

func (n *demoNet) stacks() []*stack.Stack { return []*stack.Stack{n.a, n.r, n.b} }

func (n *demoNet) Close() {
	for i := len(n.cleanup) - 1; i >= 0; i-- {
		n.cleanup[i]()
	}
	if n.stopEcho != nil {
		n.stopEcho()
	}
	for _, s := range n.stacks() {
		s.Close()
	}
}

// buildDemoNet makes the three stacks and wires them. The pipes have fixed
// seeds, so the MACs are the same on every run.
func buildDemoNet() (*demoNet, error) {
	p1a, p1r := pipe.New(pipe.Config{Name: "ar", Seed: 0x0a0101})
	p2r, p2b := pipe.New(pipe.Config{Name: "rb", Seed: 0x0b0202})
	clk := newFFClock()
	n := &demoNet{
		a:     stack.New(stack.Options{Name: "A", Clock: clk}),
		r:     stack.New(stack.Options{Name: "R", Clock: clk}),
		b:     stack.New(stack.Options{Name: "B", Clock: clk}),
		clk:   clk,
		trace: newTracer(p1a),
	}
	steps := []func() error{
		// R forwards IPv6 before its interfaces come up, so that it
		// never solicits routers itself (RFC 4861 §6.2.7).
		func() error { return n.r.SetSysctl("net.inet6.ip6.forwarding", "1") },
		func() error { _, err := n.a.AddInterface("eth0", n.trace); return err },
		func() error { _, err := n.r.AddInterface("eth0", p1r); return err },
		func() error { _, err := n.r.AddInterface("eth1", p2r); return err },
		func() error { _, err := n.b.AddInterface("eth0", p2b); return err },
		// The router first, so the hosts' announcements find it ready.
		func() error { return n.r.SetSysctl("net.inet.ip.forwarding", "1") },
		func() error { return n.r.AddAddress("eth0", demoRA) },
		func() error { return n.r.AddAddress("eth1", demoRB) },
		func() error { return n.r.AddAddress("eth0", demoRA6) },
		func() error { return n.r.AddAddress("eth1", demoRB6) },
		func() error { return n.a.AddAddress("eth0", demoA) },
		func() error { return n.b.AddAddress("eth0", demoB) },
		func() error { return n.a.AddRoute(route.Route{Dst: anyDest, Gateway: demoRA.Addr()}) },
		func() error { return n.b.AddRoute(route.Route{Dst: anyDest, Gateway: demoRB.Addr()}) },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// narrator prints the demo.
type narrator struct {
	w     io.Writer
	step  int
	steps int
}

func (n *narrator) section(title string) {
	n.step++
	fmt.Fprintf(n.w, "\n── %d/%d  %s %s\n", n.step, n.steps, title, strings.Repeat("─", max(3, 64-utf8.RuneCountInString(title))))
}

func (n *narrator) say(format string, args ...any) {
	fmt.Fprintf(n.w, "   "+format+"\n", args...)
}

func (n *narrator) ok(format string, args ...any) {
	fmt.Fprintf(n.w, "   ✓ "+format+"\n", args...)
}

// indented returns a writer that indents every line.
func (n *narrator) indented() io.Writer { return &indenter{w: n.w, prefix: "     "} }

type indenter struct {
	w      io.Writer
	prefix string
	mid    bool
}

func (in *indenter) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !in.mid {
			out = append(out, in.prefix...)
			in.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			in.mid = false
		}
	}
	_, err := in.w.Write(out)
	return len(b), err
}

// demo runs the in-process network and narrates each step.
func (c *cli) demo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	if len(pos) != 0 {
		return failf(stderr, "demo", 2, "unexpected argument %q", pos[0])
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	n, err := buildDemoNet()
	if err != nil {
		return failf(stderr, "demo", 1, "building the network: %v", err)
	}
	defer n.Close()

	nr := &narrator{w: stdout}
	fmt.Fprintln(stdout, "ustack demo: three stacks in one process, joined by in-memory pipes")
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "   A  eth0 10.0.1.2 ─── 10.0.1.1 eth0  R  eth1 10.0.2.1 ─── 10.0.2.2 eth0  B")
	fmt.Fprintln(stdout, "   (all /24; A and B route via R, which forwards)")
	fmt.Fprintln(stdout, "   IPv6: link-local addresses on every link; R has 2001:db8:1::1 and 2001:db8:2::1")
	fmt.Fprintln(stdout, "   and advertises those /64s, from which A and B configure their own addresses")

	steps := []struct {
		title string
		run   func(ctx context.Context, n *demoNet, nr *narrator) error
	}{
		{"ARP resolution", demoARP},
		{"ping A → B through R", demoPing},
		{"traceroute-style TTL probes", demoTrace},
		{"UDP echo service", demoEcho},
		{"a 20 KB UDP datagram, fragmented and reassembled", demoFragments},
		{"TCP: a connection A → B through R", demoHandshake},
		{"TCP: a 4 MB bulk transfer", demoBulk},
		{"HTTP: GET a file from B's http service", demoHTTP},
		{"IPv6: link-local addresses and neighbour discovery", demoLinkLocal6},
		{"IPv6: SLAAC from R's router advertisements", demoSLAAC},
		{"IPv6: ping6 A → B through R", demoPing6},
		{"IPv6: UDP echo, and a 20 KB datagram in fragments", demoUDP6},
		{"IPv6: TCP and HTTP from A to B", demoTCP6},
		{"counters", demoCounters},
	}
	nr.steps = len(steps)
	for _, s := range steps {
		nr.section(s.title)
		if err := s.run(ctx, n, nr); err != nil {
			fmt.Fprintf(stdout, "   ✗ %v\n", err)
			return failf(stderr, "demo", 1, "step %q failed: %v", s.title, err)
		}
	}
	fmt.Fprintf(stdout, "\nall %d steps passed ✓ (%.0f ms)\n", len(steps), float64(time.Since(start).Microseconds())/1000)
	return 0
}

func demoARP(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("A pings its gateway R once: before the request can leave, A broadcasts")
	nr.say("\"who has 10.0.1.1?\" and R answers with its MAC.")
	st, err := runPing(ctx, n.a, demoRA.Addr(), pingConfig{count: 1, size: 56, wait: 2 * time.Second}, nr.indented())
	if err != nil {
		return err
	}
	if st.received != 1 {
		return fmt.Errorf("no echo reply from 10.0.1.1")
	}
	for _, s := range []*stack.Stack{n.a, n.r} {
		nr.say("neighbour table of %s:", s.Name())
		printNeighbors(nr.indented(), s)
	}
	rmac := n.r.Interface("eth0").HardwareAddr()
	if !hasNeighbor(n.a, "eth0", demoRA.Addr(), rmac) {
		return fmt.Errorf("A has no usable entry 10.0.1.1 -> %s", rmac)
	}
	nr.ok("A resolved 10.0.1.1 to %s", rmac)
	return nil
}

func hasNeighbor(s *stack.Stack, ifname string, a netip.Addr, mac wire.MAC) bool {
	for _, e := range s.Interface(ifname).Neighbors() {
		if e.Addr == a && e.MAC == mac && e.State.Usable() {
			return true
		}
	}
	return false
}

func printNeighbors(w io.Writer, s *stack.Stack) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IF\tADDRESS\tMAC\tSTATE")
	rows := 0
	for _, ifc := range s.Interfaces() {
		es := ifc.Neighbors()
		sort.Slice(es, func(i, j int) bool { return es[i].Addr.Less(es[j].Addr) })
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ifc.Name(), e.Addr, e.MAC, e.State)
			rows++
		}
	}
	if rows == 0 {
		fmt.Fprintln(tw, "-\t-\t-\t(empty)")
	}
	tw.Flush()
}

func demoPing(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("A sends three echo requests to B; R forwards them, so the replies")
	nr.say("arrive with B's TTL of 64 less R's hop: 63.")
	return pingThroughR(ctx, n, nr, demoB.Addr(), "56(84)", "TTL")
}

// pingThroughR pings dst from A three times and checks that every reply
// crossed one router: TTL (or hop limit, as what names) 63. hdr is ping's
// "56(84)" size note.
func pingThroughR(ctx context.Context, n *demoNet, nr *narrator, dst netip.Addr, hdr, what string) error {
	w := nr.indented()
	fmt.Fprintf(w, "PING %s %s bytes of data.\n", dst, hdr)
	st, err := runPing(ctx, n.a, dst, pingConfig{count: 3, size: 56, interval: 10 * time.Millisecond, wait: 2 * time.Second}, w)
	if err != nil {
		return err
	}
	st.summary(w, dst.String())
	if st.received != 3 {
		return fmt.Errorf("%d of 3 replies", st.received)
	}
	for _, ttl := range st.ttls {
		if ttl != 63 {
			return fmt.Errorf("reply with %s %d, want 63", what, ttl)
		}
	}
	nr.ok("3/3 replies, %s 63: one router on the path", what)
	return nil
}

func demoTrace(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("A sends echo requests to B with TTL 1, then 2 (as traceroute does):")
	nr.say("R may not forward a packet whose TTL runs out, and says so (RFC 792).")
	pc, err := socket.ListenPing(n.a, netip.Addr{})
	if err != nil {
		return err
	}
	defer pc.Close()
	w := nr.indented()
	fmt.Fprintf(w, "traceroute to %s, 2 hops max\n", demoB.Addr())
	want := []struct {
		from netip.Addr
		what string
	}{{demoRA.Addr(), "time exceeded"}, {demoB.Addr(), "echo reply"}}
	for ttl := 1; ttl <= 2; ttl++ {
		from, what, rtt, err := probe(ctx, pc, demoB.Addr(), ttl)
		if err != nil {
			return fmt.Errorf("probe with TTL %d: %v", ttl, err)
		}
		fmt.Fprintf(w, "%2d  %-9s %8s ms  (%s)\n", ttl, from, rttText(rtt), what)
		if from != want[ttl-1].from || what != want[ttl-1].what {
			return fmt.Errorf("TTL %d: %s from %s, want %s from %s", ttl, what, from, want[ttl-1].what, want[ttl-1].from)
		}
	}
	nr.ok("TTL 1 expired at R (10.0.1.1); TTL 2 reached B")
	return nil
}

// probe sends one echo request with the given TTL through a ping socket
// and reports who answered and how.
func probe(ctx context.Context, pc *socket.PingConn, dst netip.Addr, ttl int) (netip.Addr, string, time.Duration, error) {
	if err := pc.SetTTL(ttl); err != nil {
		return netip.Addr{}, "", 0, err
	}
	msg := make([]byte, wire.ICMPv4HeaderLen+32)
	f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Rest: wire.EchoRest(0, uint16(ttl))}
	f.Encode(msg)
	sent := time.Now()
	if _, err := pc.WriteTo(msg, ipAddrOf(dst)); err != nil {
		return netip.Addr{}, "", 0, err
	}
	pc.SetReadDeadline(readDeadline(ctx, sent))
	b := make([]byte, 1500)
	_, from, err := pc.ReadFrom(b)
	rtt := time.Since(sent)
	var ie *icmp.Error
	switch {
	case errors.As(err, &ie):
		return ie.From, icmpErrorKind(ie), rtt, nil
	case err != nil:
		return netip.Addr{}, "", 0, err
	}
	a, _ := netip.ParseAddr(from.String())
	return a, "echo reply", rtt, nil
}

func ipAddrOf(a netip.Addr) net.Addr { return &net.IPAddr{IP: a.AsSlice()} }

func icmpErrorKind(ie *icmp.Error) string {
	if wire.ICMPv4Type(ie.Type) == wire.ICMPv4TimeExceeded {
		return "time exceeded"
	}
	return ie.Kind.String()
}

func demoEcho(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("B runs the echo service (RFC 862) on UDP port 7; A sends it a datagram.")
	// ":7" on "udp" is a dual-stack socket, as in Go's net: the IPv6
	// steps use it too.
	pc, err := socket.ListenPacket(n.b, "udp", ":7")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- service.Serve(sctx, service.Echo, pc, service.Options{}) }()
	// The service keeps running for the next step.
	n.stopEcho = func() error { stop(); return <-done }

	msg := []byte("hello from A")
	got, rtt, err := udpExchange(ctx, n.a, demoB.Addr(), msg)
	if err != nil {
		return err
	}
	w := nr.indented()
	fmt.Fprintf(w, "A → %s:7  %q\n", demoB.Addr(), msg)
	fmt.Fprintf(w, "A ← %s:7  %q  (%s ms)\n", demoB.Addr(), got, rttText(rtt))
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo returned %q", got)
	}
	nr.ok("B echoed the datagram back")
	return nil
}

// udpExchange sends msg from A to port 7 of dst and returns the answer.
func udpExchange(ctx context.Context, a *stack.Stack, dst netip.Addr, msg []byte) ([]byte, time.Duration, error) {
	conn, err := socket.DialUDP(a, netip.AddrPort{}, netip.AddrPortFrom(dst, 7))
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	sent := time.Now()
	if _, err := conn.Write(msg); err != nil {
		return nil, 0, err
	}
	conn.SetReadDeadline(readDeadline(ctx, sent))
	b := make([]byte, 65536)
	k, err := conn.Read(b)
	if err != nil {
		return nil, 0, err
	}
	return b[:k], time.Since(sent), nil
}

func demoFragments(ctx context.Context, n *demoNet, nr *narrator) error {
	const size = 20000
	nr.say("A sends %d bytes in one datagram to B's echo service. The links carry", size)
	nr.say("1500 bytes, so A cuts it into fragments (RFC 791), R forwards them,")
	nr.say("B reassembles the datagram, echoes it, and the same happens back.")
	counters := []string{"ipv4.frag.out", "ipv4.frag.in", "ipv4.reasm.ok", "ipv4.forwarded"}
	before := snapshot(n, counters)
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	got, rtt, err := udpExchange(ctx, n.a, demoB.Addr(), msg)
	if err != nil {
		return err
	}
	after := snapshot(n, counters)
	rows := make([]counterRow, len(counters))
	for j, name := range counters {
		rows[j].name = name
		for i := range rows[j].v {
			rows[j].v[i] = after[i][name] - before[i][name]
		}
	}
	printCounters(nr.indented(), "counter (change)", rows)
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo returned %d bytes, not the %d sent", len(got), len(msg))
	}
	// 20008 bytes of UDP over 1480-byte fragment payloads: 14 fragments.
	const frags = (size + 8 + 1479) / 1480
	d := func(i int, name string) uint64 { return after[i][name] - before[i][name] }
	if d(0, "ipv4.frag.out") != frags || d(2, "ipv4.frag.in") != frags || d(2, "ipv4.reasm.ok") != 1 ||
		d(2, "ipv4.frag.out") != frags || d(0, "ipv4.frag.in") != frags || d(0, "ipv4.reasm.ok") != 1 {
		return fmt.Errorf("unexpected fragment counts (want %d fragments each way, 1 reassembly each end)", frags)
	}
	nr.ok("%d bytes came back intact in %s ms: %d fragments each way, 1 reassembly at each end", size, rttText(rtt), frags)
	return nil
}

func snapshot(n *demoNet, names []string) []map[string]uint64 {
	var out []map[string]uint64
	for _, s := range n.stacks() {
		all := s.Stats()
		m := map[string]uint64{}
		for _, name := range names {
			m[name] = all[name]
		}
		out = append(out, m)
	}
	return out
}

func demoCounters(_ context.Context, n *demoNet, nr *narrator) error {
	nr.say("What each stack counted (non-zero counters of the protocols):")
	rows := []string{}
	stats := make([]map[string]uint64, 0, 3)
	seen := map[string]bool{}
	for _, s := range n.stacks() {
		m := s.Stats()
		stats = append(stats, m)
		for name, v := range m {
			if v != 0 && !seen[name] && demoCounter(name) {
				seen[name] = true
				rows = append(rows, name)
			}
		}
	}
	sort.Strings(rows)
	table := make([]counterRow, len(rows))
	for j, name := range rows {
		table[j] = counterRow{name, [3]uint64{stats[0][name], stats[1][name], stats[2][name]}}
	}
	printCounters(nr.indented(), "counter", table)
	if stats[1]["ipv4.forwarded"] == 0 || stats[1]["ipv6.forwarded"] == 0 {
		return fmt.Errorf("R forwarded %d IPv4 and %d IPv6 packets, want some of each",
			stats[1]["ipv4.forwarded"], stats[1]["ipv6.forwarded"])
	}
	nr.ok("R forwarded %d IPv4 and %d IPv6 packets", stats[1]["ipv4.forwarded"], stats[1]["ipv6.forwarded"])
	return nil
}

// demoCounter picks the counters the final table shows: the protocols',
// not the per-interface link and framing ones or gauges.
func demoCounter(name string) bool {
	if strings.HasPrefix(name, "if.") {
		return false
	}
	return !strings.HasSuffix(name, ".pending") && !strings.HasSuffix(name, ".bytes")
}

// readDeadline is two seconds after sent, or ctx's deadline if sooner.
func readDeadline(ctx context.Context, sent time.Time) time.Time {
	t := sent.Add(2 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(t) {
		t = d
	}
	return t
}

// counterRow is a counter's value in A, R and B.
type counterRow struct {
	name string
	v    [3]uint64
}

// printCounters prints rows with the names left-aligned and the values in
// right-aligned columns.
func printCounters(w io.Writer, head string, rows []counterRow) {
	nw, vw := len(head), 3
	for _, r := range rows {
		nw = max(nw, len(r.name))
		for _, v := range r.v {
			vw = max(vw, len(fmt.Sprint(v)))
		}
	}
	fmt.Fprintf(w, "%-*s  %*s %*s %*s\n", nw, head, vw, "A", vw, "R", vw, "B")
	for _, r := range rows {
		fmt.Fprintf(w, "%-*s  %*d %*d %*d\n", nw, r.name, vw, r.v[0], vw, r.v[1], vw, r.v[2])
	}
}

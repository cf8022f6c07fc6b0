package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"ustack/network/ndp"
	"ustack/network/route"
	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// The demo's IPv6 side, on the same three stacks and pipes: every
// interface makes a link-local address; R has a static address on each
// link and advertises the link's /64; A and B configure their global
// addresses from those advertisements (SLAAC) and route via R's
// link-local address.
var (
	demoRA6  = netip.MustParsePrefix("2001:db8:1::1/64")
	demoRB6  = netip.MustParsePrefix("2001:db8:2::1/64")
	anyDest6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
)

// ffRate is how many times faster than real time the stacks' clock runs
// while the demo waits for IPv6 address configuration.
const ffRate = 200

// fastForward runs the clock ffRate times faster until waiting reports
// nothing more to wait for, and returns the protocol time that passed.
// It gives up after limit of real time: on a busy machine the clock runs
// on while the stacks wait for a CPU, so protocol time says little about
// whether they had the chance to finish.
func (n *demoNet) fastForward(ctx context.Context, limit time.Duration, waiting func() string) (time.Duration, error) {
	start, realStart := n.clk.Now(), time.Now()
	n.clk.setRate(ffRate)
	defer n.clk.setRate(1)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		w := waiting()
		if w == "" {
			break
		}
		if time.Since(realStart) > limit {
			return 0, fmt.Errorf("after %.1f s of protocol time, still waiting for %s", n.clk.Now().Sub(start).Seconds(), w)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
	return n.clk.Now().Sub(start), nil
}

// demoIf is one of the demo's Ethernet interfaces.
type demoIf struct {
	s      *stack.Stack
	ifname string
}

func (n *demoNet) ethernets() []demoIf {
	return []demoIf{{n.a, "eth0"}, {n.r, "eth0"}, {n.r, "eth1"}, {n.b, "eth0"}}
}

// linkLocalOf is the link-local address neighbour discovery makes from
// the interface's MAC (RFC 4291 §2.5.1, RFC 4862 §5.3).
func linkLocalOf(s *stack.Stack, ifname string) netip.Addr {
	return wire.LinkLocalFromMAC(s.Interface(ifname).HardwareAddr())
}

// slaacAddr is the address SLAAC forms from an advertised /64 and the
// interface's MAC (RFC 4862 §5.5.3 d).
func slaacAddr(s *stack.Stack, ifname string, pfx netip.Prefix) netip.Addr {
	b := pfx.Addr().As16()
	id := wire.EUI64(s.Interface(ifname).HardwareAddr())
	copy(b[8:], id[:])
	return netip.AddrFrom16(b)
}

// assigned reports whether a is assigned to the interface (for IPv6: its
// duplicate address detection passed).
func assigned(s *stack.Stack, ifname string, a netip.Addr) bool {
	for _, p := range s.Interface(ifname).Addrs() {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// unassigned describes the addresses of want that are not assigned yet
// (with neighbour discovery's view of them), or returns "".
func unassigned(want []demoAddr) string {
	var out []string
	for _, w := range want {
		if assigned(w.s, w.ifname, w.addr) {
			continue
		}
		state := "not configured"
		for _, ai := range w.s.NDP().Addresses(w.s.Interface(w.ifname).Index()) {
			if ai.Prefix.Addr() == w.addr {
				state = fmt.Sprintf("tentative %v, duplicate %v", ai.Tentative, ai.Duplicate)
			}
		}
		out = append(out, fmt.Sprintf("%s %s %s (%s)", w.s.Name(), w.ifname, w.addr, state))
	}
	return strings.Join(out, "; ")
}

// demoAddr is an address the demo waits for.
type demoAddr struct {
	s      *stack.Stack
	ifname string
	addr   netip.Addr
}

// demoA6 and demoB6 are A's and B's addresses from SLAAC.
func (n *demoNet) demoA6() netip.Addr { return slaacAddr(n.a, "eth0", demoRA6.Masked()) }
func (n *demoNet) demoB6() netip.Addr { return slaacAddr(n.b, "eth0", demoRB6.Masked()) }

func demoLinkLocal6(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("Each Ethernet interface makes a link-local address from its MAC (fe80::/64")
	nr.say("and the modified EUI-64, RFC 4291 §2.5.1), once duplicate address detection")
	nr.say("has found no one else using it (RFC 4862 §5.4): a neighbour solicitation")
	nr.say("from :: and a second of silence. The stacks' clock runs %d× faster meanwhile.", ffRate)
	want := []demoAddr{{n.r, "eth0", demoRA6.Addr()}, {n.r, "eth1", demoRB6.Addr()}}
	for _, e := range n.ethernets() {
		want = append(want, demoAddr{e.s, e.ifname, linkLocalOf(e.s, e.ifname)})
	}
	took, err := n.fastForward(ctx, 2*time.Second, func() string { return unassigned(want) })
	if err != nil {
		return err
	}
	w := nr.indented()
	for _, e := range n.ethernets() {
		fmt.Fprintf(w, "%s %s  %-26s (from %s)\n", e.s.Name(), e.ifname, linkLocalOf(e.s, e.ifname), e.s.Interface(e.ifname).HardwareAddr())
	}
	fmt.Fprintf(w, "(%.1f s of protocol time)\n", took.Seconds())

	llR := linkLocalOf(n.r, "eth0")
	nr.say("A pings R's link-local address, with a zone naming A's own interface")
	nr.say("(RFC 4007 §11). To learn R's MAC, A multicasts a neighbour solicitation to")
	nr.say("R's solicited-node group, and R answers (RFC 4861 §7.2). On A's link:")
	n.trace.watchICMPv6()
	st, err := runPing(ctx, n.a, llR.WithZone("eth0"), pingConfig{count: 1, size: 56, wait: 2 * time.Second}, io.Discard)
	msgs := n.trace.stopICMPv6()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		fmt.Fprintln(w, m)
	}
	if st.received != 1 {
		return fmt.Errorf("no echo reply from %s%%eth0", llR)
	}
	llA := linkLocalOf(n.a, "eth0")
	for _, want := range []string{
		fmt.Sprintf("%s > %s: ICMP6, neighbor solicitation, who has %s,", llA, wire.SolicitedNodeMulticast(llR), llR),
		fmt.Sprintf("%s > %s: ICMP6, neighbor advertisement, tgt is %s,", llR, llA, llR),
	} {
		if !hasLine(msgs, want) {
			return fmt.Errorf("A's link did not carry %q", want)
		}
	}
	nr.say("neighbour table of A (IPv4 and IPv6 share it):")
	printNeighbors(nr.indented(), n.a)
	rmac := n.r.Interface("eth0").HardwareAddr()
	if !hasNeighbor(n.a, "eth0", llR, rmac) {
		return fmt.Errorf("A has no usable entry %s -> %s", llR, rmac)
	}
	nr.ok("every interface has its link-local address; A resolved %s to %s", llR, rmac)
	return nil
}

// hasLine reports whether a line of lines starts with prefix.
func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func demoSLAAC(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("R starts sending router advertisements on both links, each with the link's")
	nr.say("/64 (RFC 4861 §6.2). A and B add their interface identifier to the prefix")
	nr.say("(SLAAC, RFC 4862 §5.5.3), check the address with DAD, and take R as their")
	nr.say("default router. Router discovery and DAD on A's link:")
	for _, x := range []struct {
		ifname string
		pfx    netip.Prefix
	}{{"eth0", demoRA6.Masked()}, {"eth1", demoRB6.Masked()}} {
		err := n.r.SetRouterAdvert(x.ifname, &ndp.AdvertConfig{
			// The shortest intervals RFC 4861 §6.2.1 allows.
			MaxInterval: 4 * time.Second, MinInterval: 3 * time.Second,
			RouterLifetime: 30 * time.Minute,
			Prefixes: []wire.NDPPrefixInfo{{Prefix: x.pfx, OnLink: true, Autonomous: true,
				ValidLifetime: 24 * time.Hour, PreferredLifetime: 4 * time.Hour}},
		})
		if err != nil {
			return err
		}
	}
	a6, b6 := n.demoA6(), n.demoB6()
	n.trace.watchICMPv6()
	took, err := n.fastForward(ctx, 2*time.Second, func() string {
		return unassigned([]demoAddr{{n.a, "eth0", a6}, {n.b, "eth0", b6}})
	})
	var msgs []string
	for _, m := range n.trace.stopICMPv6() {
		// Leave out neighbour unreachability probes and their answers.
		if strings.Contains(m, "router") || strings.HasPrefix(m, ":: >") {
			msgs = append(msgs, m)
		}
	}
	w := nr.indented()
	for _, m := range msgs {
		fmt.Fprintln(w, m)
	}
	if err != nil {
		return err
	}
	llR := linkLocalOf(n.r, "eth0")
	for _, want := range []string{
		fmt.Sprintf("%s > ff02::1: ICMP6, router advertisement, prefix 2001:db8:1::/64,", llR),
		fmt.Sprintf(":: > %s: ICMP6, neighbor solicitation, who has %s,", wire.SolicitedNodeMulticast(a6), a6),
	} {
		if !hasLine(msgs, want) {
			return fmt.Errorf("A's link did not carry %q", want)
		}
	}
	for _, x := range []struct {
		s    *stack.Stack
		addr netip.Addr
		gw   netip.Addr
	}{{n.a, a6, llR}, {n.b, b6, linkLocalOf(n.r, "eth1")}} {
		r, ok := defaultRoute6(x.s)
		fmt.Fprintf(w, "%s eth0  %s/64, default via %s\n", x.s.Name(), x.addr, r.Gateway)
		if !ok || r.Gateway.WithZone("") != x.gw {
			return fmt.Errorf("%s's default route is %v, want one via %s", x.s.Name(), r, x.gw)
		}
	}
	fmt.Fprintf(w, "(%.1f s of protocol time)\n", took.Seconds())
	nr.ok("A is %s and B %s, both routing via R", a6, b6)
	return nil
}

// defaultRoute6 returns s's IPv6 default route.
func defaultRoute6(s *stack.Stack) (route.Route, bool) {
	for _, r := range s.Routes().Routes() {
		if r.Dst == anyDest6 {
			return r, true
		}
	}
	return route.Route{}, false
}

func demoPing6(ctx context.Context, n *demoNet, nr *narrator) error {
	nr.say("A sends three ICMPv6 echo requests (RFC 4443 §4) to B's global address;")
	nr.say("R forwards them, so the replies arrive with a hop limit of 64 - 1 = 63.")
	return pingThroughR(ctx, n, nr, n.demoB6(), "56(104)", "hop limit")
}

func demoUDP6(ctx context.Context, n *demoNet, nr *narrator) error {
	b6 := n.demoB6()
	nr.say("B's echo socket from step 4 listens on [::]:7: one dual-stack socket that took")
	nr.say("A's IPv4 datagram (as ::ffff:10.0.1.2) and now takes IPv6 too.")
	msg := []byte("hello from A over IPv6")
	got, rtt, err := udpExchange(ctx, n.a, b6, msg)
	if err != nil {
		return err
	}
	w := nr.indented()
	fmt.Fprintf(w, "A → [%s]:7  %q\n", b6, msg)
	fmt.Fprintf(w, "A ← [%s]:7  %q  (%s ms)\n", b6, got, rttText(rtt))
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo returned %q", got)
	}
	const size = 20000
	nr.say("Then %d bytes in one datagram. Only the source fragments IPv6 (RFC 8200", size)
	nr.say("§4.5): A and B cut it into fragments, R forwards them as they are.")
	counters := []string{"ipv6.frag.out", "ipv6.frag.in", "ipv6.reasm.ok", "ipv6.forwarded"}
	before := snapshot(n, counters)
	big := make([]byte, size)
	for i := range big {
		big[i] = byte(i * 11)
	}
	got, rtt, err = udpExchange(ctx, n.a, b6, big)
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
	printCounters(w, "counter (change)", rows)
	if !bytes.Equal(got, big) {
		return fmt.Errorf("echo returned %d bytes, not the %d sent", len(got), len(big))
	}
	// 20008 bytes of UDP over fragments of 1448 bytes of payload (1500
	// less the IPv6 and fragment headers, a multiple of 8): 14 each way.
	const frags = (size + 8 + 1447) / 1448
	d := func(i int, name string) uint64 { return after[i][name] - before[i][name] }
	if d(0, "ipv6.frag.out") != frags || d(2, "ipv6.frag.in") != frags || d(2, "ipv6.reasm.ok") != 1 ||
		d(2, "ipv6.frag.out") != frags || d(0, "ipv6.frag.in") != frags || d(0, "ipv6.reasm.ok") != 1 ||
		d(1, "ipv6.frag.out") != 0 || d(1, "ipv6.forwarded") < 2*frags {
		return fmt.Errorf("unexpected fragment counts (want %d fragments each way, forwarded by R, 1 reassembly each end)", frags)
	}
	nr.ok("both came back intact; %d bytes in %d fragments each way (%s ms)", size, frags, rttText(rtt))
	return nil
}

func demoTCP6(ctx context.Context, n *demoNet, nr *narrator) error {
	a6, b6 := n.demoA6(), n.demoB6()
	nr.say("A connects to B's sink on port %d over IPv6 (\"tcp6\"): the MSS is 20 bytes", sinkPort)
	nr.say("smaller than over IPv4, for the larger IPv6 header. The handshake on A's link:")
	n.trace.watch(sinkPort)
	d := socket.Dialer{Stack: n.a, LocalAddr: &net.TCPAddr{IP: a6.AsSlice(), Port: demoLPort}}
	c, err := d.DialContext(ctx, "tcp6", netip.AddrPortFrom(b6, sinkPort).String())
	if err != nil {
		n.trace.stop()
		return err
	}
	conn := c.(*socket.TCPConn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	data := demoPayload(256 << 10)
	start := time.Now()
	err = sinkExchange(conn, data)
	took := time.Since(start)
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
	for i, f := range []wire.TCPFlags{wire.TCPFlagSYN, wire.TCPFlagSYN | wire.TCPFlagACK, wire.TCPFlagACK} {
		if segs[i].flags != f {
			return fmt.Errorf("segment %d has flags %v, want %v", i+1, segs[i].flags, f)
		}
	}
	info := conn.Info()
	fmt.Fprintf(w, "%d KB to the sink in %.0f ms, mss %d; B's SHA-256 matches\n", len(data)>>10, float64(took.Microseconds())/1000, info.MSS)
	if info.MSS != 1428 {
		return fmt.Errorf("mss %d, want 1428 (1500 - 40 - 20 - 12 for timestamps)", info.MSS)
	}

	nr.say("And Go's net/http fetches the first 64 KB of step 8's file from B's http")
	nr.say("service, whose listener (\":80\") is dual-stack too:")
	tr := &http.Transport{DialContext: (&socket.Dialer{Stack: n.a}).DialContext}
	defer tr.CloseIdleConnections()
	url := fmt.Sprintf("http://[%s]/demo.bin", b6)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Range", "bytes=0-65535")
	start = time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "GET %s, Range: bytes=0-65535\n", url)
	fmt.Fprintf(w, "%s %s, Content-Range %s (%.0f ms)\n", resp.Proto, resp.Status, resp.Header.Get("Content-Range"),
		float64(time.Since(start).Microseconds())/1000)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, demoPayload(httpSize)[:65536]) {
		return fmt.Errorf("GET: %s, %d bytes that do not match the file", resp.Status, len(body))
	}
	nr.ok("TCP over IPv6: the sink's digest and the file's bytes both match")
	return nil
}

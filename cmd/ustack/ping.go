package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"ustack/stack"
	"ustack/transport/icmp"
	"ustack/wire"
)

// pingConfig is what a ping run does.
type pingConfig struct {
	count    int           // requests to send; 0: until ctx is done
	interval time.Duration // between requests
	size     int           // data bytes per request
	wait     time.Duration // how long to wait for replies after the last request
	ttl      int           // 0: the stack's default
	zone     string        // shown as the zone of link-local senders
}

// zoneOf returns the zone of an address as typed ("fe80::1%veth0").
func zoneOf(host string) string {
	_, z, _ := strings.Cut(host, "%")
	return z
}

// pingStats is the outcome of a ping run.
type pingStats struct {
	sent, received, dups, errs int
	rtts                       []time.Duration
	ttls                       []int // of the replies
	elapsed                    time.Duration
}

func (c *cli) ping(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("ping", stderr)
	var nf netFlags
	nf.register(fs)
	count := fs.Int("c", 0, "stop after sending `N` requests (default: until interrupted)")
	interval := fs.String("i", "1", "wait `interval` between requests (seconds, or a duration such as 200ms)")
	size := fs.Int("s", 56, "data bytes per request")
	wait := fs.String("W", "10", "wait `timeout` for replies after the last request (seconds or a duration)")
	ttl := fs.Int("t", 0, "IP time to live of the requests (default: the stack's)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	host := pos[0]
	dst, err := netip.ParseAddr(host)
	if err != nil || dst.Is4In6() {
		return failf(stderr, "ping", 2, "%s: not an IP address (ustack does not resolve names)", host)
	}
	if dst, err = nf.scoped(dst); err != nil {
		return failf(stderr, "ping", 2, "%v", err)
	}
	cfg := pingConfig{count: *count, size: *size, ttl: *ttl, zone: dst.Zone()}
	if z := zoneOf(host); z != "" {
		cfg.zone = z // replies show the zone as given
	}
	if cfg.interval, err = parseSeconds(*interval); err != nil {
		return failf(stderr, "ping", 2, "-i: %v", err)
	}
	if cfg.wait, err = parseSeconds(*wait); err != nil {
		return failf(stderr, "ping", 2, "-W: %v", err)
	}
	switch {
	case cfg.count < 0:
		return failf(stderr, "ping", 2, "-c %d: want a count of at least 1", cfg.count)
	case cfg.size < 0 || cfg.size > 65507:
		return failf(stderr, "ping", 2, "-s %d: want a size in [0, 65507]", cfg.size)
	case cfg.ttl < 0 || cfg.ttl > 255:
		return failf(stderr, "ping", 2, "-t %d: want a TTL in [1, 255]", cfg.ttl)
	}
	sa, err := c.bringUp(&nf)
	if err != nil {
		return failf(stderr, "ping", 2, "%v", err)
	}
	defer sa.Close()
	if dst.Zone() != "" {
		if err := sa.waitLinkLocal(); err != nil {
			return failf(stderr, "ping", 2, "link-local address %v", err)
		}
	}
	hdrs := wire.ICMPv4HeaderLen + wire.IPv4MinHeaderLen
	if dst.Is6() {
		hdrs = wire.ICMPv6HeaderLen + wire.IPv6HeaderLen
	}
	fmt.Fprintf(stdout, "PING %s (%s) %d(%d) bytes of data.\n", host, dst.WithZone(cfg.zone), cfg.size, cfg.size+hdrs)
	st, err := runPing(ctx, sa.st, dst, cfg, stdout)
	if err != nil {
		return failf(stderr, "ping", 2, "%v", err)
	}
	fmt.Fprintln(stdout)
	st.summary(stdout, host)
	if st.received == 0 {
		return 1
	}
	return 0
}

// parseSeconds reads a time in seconds ("1", "0.2") or a Go duration
// ("200ms").
func parseSeconds(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > 1e6 {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a time in seconds or a duration such as 200ms", s)
	}
	return d, nil
}

// runPing sends echo requests to dst as cfg says and prints a line per
// reply or ICMP error to out, as iputils ping does.
func runPing(ctx context.Context, s *stack.Stack, dst netip.Addr, cfg pingConfig, out io.Writer) (pingStats, error) {
	var st pingStats
	v6 := dst.Is6()
	echoProto, wild := s.ICMP(), netip.IPv4Unspecified()
	if v6 {
		echoProto, wild = s.ICMP6(), netip.IPv6Unspecified()
	}
	ep, err := echoProto.Open(wild, 0)
	if err != nil {
		return st, err
	}
	defer ep.Close()
	if cfg.ttl > 0 {
		ep.SetTTL(uint8(cfg.ttl))
	}
	if cfg.interval <= 0 {
		cfg.interval = time.Millisecond
	}
	// The data: a counting pattern, checked in every reply.
	data := make([]byte, cfg.size)
	for i := range data {
		data[i] = byte(i)
	}
	msg := make([]byte, wire.ICMPv4HeaderLen+cfg.size)
	copy(msg[wire.ICMPv4HeaderLen:], data)
	sentAt := map[uint16]time.Time{}
	seen := map[uint16]bool{}
	start := time.Now()
	next := time.NewTimer(0)
	defer next.Stop()
	var linger <-chan time.Time
	rbuf := make([]byte, 65536)

	send := func() {
		st.sent++
		seq := uint16(st.sent)
		if v6 {
			f := wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.EchoRest(ep.ID(), seq)}
			f.Encode(msg)
		} else {
			f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Rest: wire.EchoRest(ep.ID(), seq)}
			f.Encode(msg)
		}
		sentAt[seq] = time.Now()
		if _, err := ep.WriteTo(msg, dst); err != nil {
			fmt.Fprintf(out, "ping: sendmsg: %v\n", errnoText(err))
			st.errs++
		}
	}
	receive := func() {
		for {
			if err := ep.Err(); err != nil {
				var ie *icmp.Error
				if errors.As(err, &ie) {
					st.errs++
					fmt.Fprintf(out, "From %s icmp_seq=%d %s\n", ie.From, ie.Seq, icmpErrorText(ie))
				}
				continue
			}
			pkt, from, ok := ep.Recv()
			if !ok {
				return
			}
			now := time.Now()
			ttl := -1
			if h := wire.IPv4(pkt.NetworkHeader); !v6 && len(h) >= wire.IPv4MinHeaderLen {
				ttl = int(h.TTL())
			} else if h := wire.IPv6(pkt.NetworkHeader); v6 && len(h) >= wire.IPv6HeaderLen {
				ttl = int(h.HopLimit())
			}
			n := pkt.CopyTo(rbuf)
			pkt.Release()
			// ICMPv4 and ICMPv6 echo messages share their layout (RFC
			// 792, RFC 4443 §4): sequence at 6, data from 8.
			m := wire.ICMPv4(rbuf[:n])
			if n < wire.ICMPv4HeaderLen {
				continue
			}
			seq := m.Seq()
			at, ok := sentAt[seq]
			if !ok {
				continue // a reply to an earlier run's request
			}
			rtt := now.Sub(at)
			if from.Zone() != "" && cfg.zone != "" {
				from = from.WithZone(cfg.zone)
			}
			line := fmt.Sprintf("%d bytes from %s: icmp_seq=%d ttl=%d time=%s ms", n, from, seq, ttl, rttText(rtt))
			if seen[seq] {
				st.dups++
				line += " (DUP!)"
			} else {
				seen[seq] = true
				st.received++
				st.rtts = append(st.rtts, rtt)
				st.ttls = append(st.ttls, ttl)
			}
			if !bytes.Equal(m.Payload(), data) {
				line += " (wrong data)"
			}
			fmt.Fprintln(out, line)
		}
	}
	done := func() bool {
		return cfg.count > 0 && st.sent >= cfg.count && st.received+st.errs >= cfg.count
	}
loop:
	for !done() {
		select {
		case <-ctx.Done():
			break loop
		case <-next.C:
			send()
			if cfg.count == 0 || st.sent < cfg.count {
				next.Reset(cfg.interval)
			} else {
				linger = time.After(cfg.wait)
			}
		case <-ep.Readable():
			receive()
		case <-linger:
			break loop
		}
	}
	st.elapsed = time.Since(start)
	return st, nil
}

// summary prints the statistics as iputils ping does.
func (st *pingStats) summary(w io.Writer, host string) {
	fmt.Fprintf(w, "--- %s ping statistics ---\n", host)
	line := fmt.Sprintf("%d packets transmitted, %d received", st.sent, st.received)
	if st.dups > 0 {
		line += fmt.Sprintf(", +%d duplicates", st.dups)
	}
	if st.errs > 0 {
		line += fmt.Sprintf(", +%d errors", st.errs)
	}
	loss := 0.0
	if st.sent > 0 {
		loss = float64(st.sent-st.received) * 100 / float64(st.sent)
	}
	line += fmt.Sprintf(", %g%% packet loss, time %dms", math.Round(loss*10000)/10000, st.elapsed.Milliseconds())
	fmt.Fprintln(w, line)
	if st.received > 0 {
		mn, avg, mx, mdev := st.rttSummary()
		fmt.Fprintf(w, "rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", mn, avg, mx, mdev)
	}
}

// rttSummary returns min, mean, max and mean deviation of the round-trip
// times, in milliseconds (mdev as iputils computes it: the standard
// deviation).
func (st *pingStats) rttSummary() (mn, avg, mx, mdev float64) {
	var sum, sum2 float64
	mn = math.Inf(1)
	for _, d := range st.rtts {
		ms := float64(d) / float64(time.Millisecond)
		mn, mx = min(mn, ms), max(mx, ms)
		sum += ms
		sum2 += ms * ms
	}
	n := float64(len(st.rtts))
	avg = sum / n
	mdev = math.Sqrt(max(0, sum2/n-avg*avg))
	return mn, avg, mx, mdev
}

// rttText formats a round-trip time with iputils' precision.
func rttText(d time.Duration) string {
	us := d.Microseconds()
	switch {
	case us >= 100000-50:
		return strconv.FormatInt((us+500)/1000, 10)
	case us >= 10000-5:
		return fmt.Sprintf("%d.%01d", (us+50)/1000, ((us+50)%1000)/100)
	case us >= 1000:
		return fmt.Sprintf("%d.%02d", (us+5)/1000, ((us+5)%1000)/10)
	}
	return fmt.Sprintf("%d.%03d", us/1000, us%1000)
}

// icmpErrorText describes an ICMP error as iputils ping does.
func icmpErrorText(e *icmp.Error) string {
	switch wire.ICMPv4Type(e.Type) {
	case wire.ICMPv4DstUnreachable:
		switch e.Code {
		case 0:
			return "Destination Net Unreachable"
		case 1:
			return "Destination Host Unreachable"
		case 2:
			return "Destination Protocol Unreachable"
		case 3:
			return "Destination Port Unreachable"
		case 4:
			return fmt.Sprintf("Frag needed and DF set (mtu = %d)", e.MTU)
		case 5:
			return "Source Route Failed"
		case 9, 10, 13:
			return "Communication administratively prohibited"
		}
		return fmt.Sprintf("Dest Unreachable, Bad Code: %d", e.Code)
	case wire.ICMPv4TimeExceeded:
		if e.Code == 1 {
			return "Frag reassembly time exceeded"
		}
		return "Time to live exceeded"
	case wire.ICMPv4ParamProblem:
		return "Parameter problem"
	}
	return e.Kind.String()
}

// errnoText is the text of an errno error with a capital first letter, as
// ping prints them ("Network is unreachable").
func errnoText(err error) string {
	s := err.Error()
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

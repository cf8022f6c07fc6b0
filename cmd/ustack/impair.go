package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"ustack/link/fault"
)

// impair bridges two host interfaces (opened with AF_PACKET, promiscuous)
// through link/fault, like a netem box in the middle of a cable.
func (c *cli) impair(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("impair", stderr)
	ifA := fs.String("a", "", "first host interface")
	ifB := fs.String("b", "", "second host interface")
	delay := fs.String("delay", "0", "added delay (duration, or milliseconds)")
	jitter := fs.String("jitter", "0", "random variation of the delay, ± (duration, or milliseconds)")
	loss := fs.String("loss", "0", "probability of loss (1% or 0.01)")
	reorder := fs.String("reorder", "0", "probability that a frame is held back behind the next")
	dup := fs.String("dup", "0", "probability of duplication")
	corrupt := fs.String("corrupt", "0", "probability of a flipped bit")
	rate := fs.String("rate", "", "rate limit, e.g. 100mbit, 10kbit, 1gbit, 500kbps")
	seed := fs.Uint64("seed", 1, "seed of the random decisions")
	dir := fs.String("dir", "both", "which way to impair: both, ab (a to b) or ba (b to a)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	if len(pos) != 0 {
		return failf(stderr, "impair", 2, "unexpected argument %q", pos[0])
	}
	if *ifA == "" || *ifB == "" {
		return failf(stderr, "impair", 2, "--a and --b are required (the two interfaces to bridge)")
	}
	if *ifA == *ifB {
		return failf(stderr, "impair", 2, "--a and --b are both %q", *ifA)
	}
	var im fault.Impairment
	parsers := []struct {
		flag string
		err  error
	}{
		{"delay", parseDelay(*delay, &im.Delay)},
		{"jitter", parseDelay(*jitter, &im.Jitter)},
		{"loss", parseProbability(*loss, &im.Loss)},
		{"reorder", parseProbability(*reorder, &im.Reorder)},
		{"dup", parseProbability(*dup, &im.Duplicate)},
		{"corrupt", parseProbability(*corrupt, &im.Corrupt)},
		{"rate", parseRate(*rate, &im.Rate)},
	}
	for _, p := range parsers {
		if p.err != nil {
			return failf(stderr, "impair", 2, "--%s: %v", p.flag, p.err)
		}
	}
	cfg := fault.Config{Seed: *seed}
	switch *dir {
	case "both":
		cfg.Tx, cfg.Rx = im, im
	case "ab":
		cfg.Tx = im
	case "ba":
		cfg.Rx = im
	default:
		return failf(stderr, "impair", 2, "--dir %q: want both, ab or ba", *dir)
	}
	a, err := c.openPromisc(*ifA)
	if err != nil {
		return failf(stderr, "impair", 1, "%s: %v", *ifA, err)
	}
	defer a.Close()
	b, err := c.openPromisc(*ifB)
	if err != nil {
		return failf(stderr, "impair", 1, "%s: %v", *ifB, err)
	}
	defer b.Close()
	if a.Type() != b.Type() {
		return failf(stderr, "impair", 1, "%s is an %s link and %s an %s link", *ifA, a.Type(), *ifB, b.Type())
	}
	// The bridge's Tx impairs a→b, its Rx b→a.
	br := fault.NewBridge(a, b, cfg)
	fmt.Fprintf(stdout, "impair: bridging %s <-> %s (%s); interrupt to stop\n", *ifA, *ifB, describeImpairment(cfg, *dir))
	<-ctx.Done()
	br.Stop()
	printFaultCounters(stdout, *ifA, *ifB, br)
	return 0
}

func printFaultCounters(w io.Writer, ifA, ifB string, f *fault.Bridge) {
	type row struct {
		name string
		get  func(*fault.Counters) uint64
	}
	rows := []row{
		{"in", func(c *fault.Counters) uint64 { return c.In.Load() }},
		{"out", func(c *fault.Counters) uint64 { return c.Out.Load() }},
		{"lost", func(c *fault.Counters) uint64 { return c.DroppedLoss.Load() }},
		{"over rate", func(c *fault.Counters) uint64 { return c.DroppedRate.Load() }},
		{"duplicated", func(c *fault.Counters) uint64 { return c.Duplicated.Load() }},
		{"corrupted", func(c *fault.Counters) uint64 { return c.Corrupted.Load() }},
		{"reordered", func(c *fault.Counters) uint64 { return c.Reordered.Load() }},
		{"delayed", func(c *fault.Counters) uint64 { return c.Delayed.Load() }},
	}
	ab, ba := ifA+" -> "+ifB, ifB+" -> "+ifA
	wid := max(len(ab), len(ba), 8)
	fmt.Fprintf(w, "%-12s %*s %*s\n", "frames", wid, ab, wid, ba)
	for _, r := range rows {
		fmt.Fprintf(w, "%-12s %*d %*d\n", r.name, wid, r.get(f.Counters(fault.Tx)), wid, r.get(f.Counters(fault.Rx)))
	}
}

func describeImpairment(cfg fault.Config, dir string) string {
	im := cfg.Tx
	if dir == "ba" {
		im = cfg.Rx
	}
	var parts []string
	if im.Delay > 0 || im.Jitter > 0 {
		parts = append(parts, fmt.Sprintf("delay %v±%v", im.Delay, im.Jitter))
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", im.Loss}, {"reorder", im.Reorder}, {"dup", im.Duplicate}, {"corrupt", im.Corrupt}} {
		if p.v > 0 {
			parts = append(parts, fmt.Sprintf("%s %g%%", p.name, p.v*100))
		}
	}
	if im.Rate > 0 {
		parts = append(parts, "rate "+formatRate(im.Rate))
	}
	if len(parts) == 0 {
		return "no impairment"
	}
	s := strings.Join(parts, ", ")
	if dir != "both" {
		s += " on " + dir
	}
	return s
}

// parseProbability reads "1%", "0.5%" or "0.01".
func parseProbability(s string, p *float64) error {
	t := strings.TrimSuffix(s, "%")
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return fmt.Errorf("%q is not a probability (want e.g. 1%% or 0.01)", s)
	}
	if t != s {
		v /= 100
	}
	if v < 0 || v > 1 {
		return fmt.Errorf("%q is not a probability between 0 and 1 (or 0%% and 100%%)", s)
	}
	*p = v
	return nil
}

// parseDelay reads a Go duration ("20ms") or a number of milliseconds.
func parseDelay(s string, d *time.Duration) error {
	if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 {
		*d = time.Duration(v * float64(time.Millisecond))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a delay (want e.g. 20ms or 1.5s)", s)
	}
	*d = v
	return nil
}

// rateUnits are tc's: "bit" units count bits, "bps" units bytes, both in
// powers of 1000.
var rateUnits = []struct {
	suffix string
	mult   uint64
}{
	{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
	{"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8},
}

// parseRate reads a rate such as 100mbit into bits per second; "" is no
// limit.
func parseRate(s string, r *uint64) error {
	if s == "" {
		return nil
	}
	l := strings.ToLower(s)
	for _, u := range rateUnits {
		if num, ok := strings.CutSuffix(l, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v <= 0 || v*float64(u.mult) >= 1<<63 {
				break
			}
			*r = uint64(v * float64(u.mult))
			return nil
		}
	}
	return fmt.Errorf("%q is not a rate (want e.g. 100mbit, 10kbit, 1gbit or 500kbps)", s)
}

func formatRate(bps uint64) string {
	switch {
	case bps >= 1e9 && bps%1e9 == 0:
		return fmt.Sprintf("%dgbit", bps/1e9)
	case bps >= 1e6 && bps%1e6 == 0:
		return fmt.Sprintf("%dmbit", bps/1e6)
	case bps >= 1e3 && bps%1e3 == 0:
		return fmt.Sprintf("%dkbit", bps/1e3)
	}
	return fmt.Sprintf("%dbit", bps)
}

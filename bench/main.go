// Command bench runs the same workloads against ustack, gVisor's netstack
// and (where a workload has one) the Linux kernel in one run, and prints
// a table of medians and ratios, writes every figure as JSON and draws
// the ratios as a chart (issue 5, item 1).
//
//	cd bench && go run . [-reps 5] [-quick] [-only bulk,rr] [-systems ustack,gvisor]
//	        [-json ../docs/bench.json] [-chart ../docs/bench.svg] [-v]
//
// Workloads register themselves (registry.go); the in-process ones are in
// inproc.go and idle.go. Within a workload the systems alternate in every
// repetition (ustack 1, gvisor 1, ustack 2, ...) so that noise on this
// shared machine hits each alike; ratios are of medians from the same run.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

func main() {
	var (
		cfg   Config
		only  string
		jsonP string
		chart string
		syss  string
	)
	flag.IntVar(&cfg.Reps, "reps", 5, "repetitions of each workload per system (median reported)")
	flag.BoolVar(&cfg.Quick, "quick", false, "shrink every workload (smoke run)")
	flag.StringVar(&only, "only", "", "comma-separated workload name prefixes to run (default all)")
	flag.StringVar(&jsonP, "json", "../docs/bench.json", "write results as JSON here (empty: don't)")
	flag.StringVar(&chart, "chart", "../docs/bench.svg", "draw the ratio chart here, .svg or .png (empty: don't)")
	flag.BoolVar(&cfg.Verbose, "v", false, "log progress to stderr")
	flag.StringVar(&syss, "systems", "", "comma-separated system name prefixes to run (default all)")
	flag.Parse()
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	if cfg.Reps < 1 {
		cfg.Reps = 1
	}
	ws := registered()
	if syss != "" {
		ws = filterSystems(ws, strings.Split(syss, ","))
	}
	results := runAll(cfg, ws)
	printTable(os.Stdout, results)
	rep := newReport(cfg, results)
	if jsonP != "" {
		if err := rep.writeJSON(jsonP); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if chart != "" {
		switch err := drawChart(chart, results); {
		case errors.Is(err, errNoRatios):
			fmt.Fprintln(os.Stderr, "bench:", err)
		case err != nil:
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

// selected reports whether cfg.Only lets name run.
func selected(cfg Config, name string) bool {
	if len(cfg.Only) == 0 {
		return true
	}
	for _, p := range cfg.Only {
		if p = strings.TrimSpace(p); p != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// filterSystems keeps, in each workload, the systems with one of the
// given name prefixes, and drops workloads left with none.
func filterSystems(ws []Workload, prefixes []string) []Workload {
	var out []Workload
	for _, w := range ws {
		var keep []string
		for _, s := range w.Systems {
			if selected(Config{Only: prefixes}, s) {
				keep = append(keep, s)
			}
		}
		if len(keep) > 0 {
			w.Systems = keep
			out = append(out, w)
		}
	}
	return out
}

// runAll runs every selected workload and returns one Result per workload
// and system, in registry order.
func runAll(cfg Config, ws []Workload) []Result {
	var out []Result
	for _, w := range ws {
		if !selected(cfg, w.Name) {
			continue
		}
		out = append(out, runWorkload(cfg, w)...)
	}
	derive(out)
	return out
}

// runWorkload runs w's repetitions, alternating its systems in each.
func runWorkload(cfg Config, w Workload) []Result {
	res := make([]Result, len(w.Systems))
	extras := make([]map[string][]float64, len(w.Systems))
	for i, s := range w.Systems {
		res[i] = Result{Workload: w.Name, System: s}
		extras[i] = map[string][]float64{}
	}
	if w.Setup != nil {
		cleanup, err := w.Setup(cfg)
		if err != nil {
			for i := range res {
				res[i].Err = "setup: " + err.Error()
			}
			return res
		}
		if cleanup != nil {
			defer cleanup()
		}
	}
	reps := cfg.Reps
	if w.MaxReps > 0 && reps > w.MaxReps {
		reps = w.MaxReps
	}
	for rep := 1; rep <= reps; rep++ {
		for i, s := range w.Systems {
			if res[i].Err != "" {
				continue
			}
			if cfg.Verbose {
				fmt.Fprintf(os.Stderr, "%s  %-16s %-14s rep %d/%d ... ", time.Now().Format("15:04:05"), w.Name, s, rep, reps)
			}
			r, err := runOne(cfg, w, s)
			if err != nil {
				res[i].Err = err.Error()
				if cfg.Verbose {
					fmt.Fprintf(os.Stderr, "error: %v\n", err)
					dumpCounters()
				}
				continue
			}
			if cfg.Verbose {
				fmt.Fprintf(os.Stderr, "%.4g %s %s\n", r.Value, r.Unit, fmtExtra(r.Extra))
				dumpCounters("drop", "retrans", "fail", "keepalive", "timeout", "tlp", "spurious", "recovery", "undo")
			}
			res[i].Metric, res[i].Unit, res[i].HigherIsBetter = r.Metric, r.Unit, r.HigherIsBetter
			res[i].Runs = append(res[i].Runs, r.Value)
			for k, v := range r.Extra {
				extras[i][k] = append(extras[i][k], v)
			}
		}
	}
	for i := range res {
		res[i].Value = median(res[i].Runs)
		if len(extras[i]) > 0 {
			res[i].Extra = map[string]float64{}
			for k, vs := range extras[i] {
				res[i].Extra[k] = median(vs)
			}
		}
	}
	return res
}

// runOne runs one repetition from a clean heap, turning a panic into an
// error so that one broken workload does not end the run.
func runOne(cfg Config, w Workload, system string) (r Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	runtime.GC()
	lastPair = nil
	return w.Run(cfg, system)
}

// dumpCounters prints the counters of the last in-process pair, if it
// keeps any, to stderr: those whose names contain one of the given
// strings, or all.
func dumpCounters(only ...string) {
	c, ok := lastPair.(counted)
	if !ok {
		return
	}
	m := c.counters()
	keys := make([]string, 0, len(m))
	for k := range m {
		if len(only) == 0 || slices.ContainsFunc(only, func(s string) bool { return strings.Contains(k, s) }) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(os.Stderr, "    %s %d\n", k, m[k])
	}
}

// derive adds figures computed across workloads: for bulk2/mtu1500, the
// aggregate's ratio to one flow (bulk/mtu1500) of the same system, in
// Extra "x_one_flow" (issue target: ≥ 1.6 on two cores).
func derive(rs []Result) {
	for i := range rs {
		if rs[i].Workload != "bulk2/mtu1500" || rs[i].Err != "" {
			continue
		}
		if one := find(rs, "bulk/mtu1500", rs[i].System); one != nil && one.Value > 0 {
			rs[i].Extra["x_one_flow"] = rs[i].Value / one.Value
		}
	}
}

// find returns the result of workload on a system with the given name
// prefix ("gvisor" matches "gvisor/tap"), or nil.
func find(rs []Result, workload, systemPrefix string) *Result {
	for i := range rs {
		if rs[i].Workload == workload && strings.HasPrefix(rs[i].System, systemPrefix) && rs[i].Err == "" && len(rs[i].Runs) > 0 {
			return &rs[i]
		}
	}
	return nil
}

// ratio is a ustack result's value over a reference system's in the same
// workload; ok is false when there is no such reference.
func ratio(rs []Result, r Result, refPrefix string) (float64, bool) {
	if !strings.HasPrefix(r.System, "ustack") || r.Err != "" || len(r.Runs) == 0 {
		return 0, false
	}
	ref := find(rs, r.Workload, refPrefix)
	if ref == nil || ref.Value == 0 {
		return 0, false
	}
	return r.Value / ref.Value, true
}

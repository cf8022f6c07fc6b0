package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestInprocQuick runs every in-process workload once on every system in
// Quick mode, so the harness cannot rot: each must produce a positive
// figure and no error, and the table, JSON and chart must be written.
func TestInprocQuick(t *testing.T) {
	if len(inprocWorkloads) == 0 {
		t.Fatal("no in-process workloads registered")
	}
	cfg := Config{Reps: 1, Quick: true}
	var ws []Workload
	for _, w := range registered() {
		if slices.Contains(inprocWorkloads, w.Name) {
			ws = append(ws, w)
		}
	}
	rs := runAll(cfg, ws)
	if len(rs) < len(inprocWorkloads)*len(inprocSystems) {
		t.Fatalf("%d results, want at least %d", len(rs), len(inprocWorkloads)*len(inprocSystems))
	}
	for _, r := range rs {
		if r.Err != "" {
			t.Errorf("%s on %s: %s", r.Workload, r.System, r.Err)
			continue
		}
		if r.Value <= 0 || len(r.Runs) != 1 || r.Metric == "" || r.Unit == "" {
			t.Errorf("%s on %s: value %v, %d runs, metric %q unit %q", r.Workload, r.System, r.Value, len(r.Runs), r.Metric, r.Unit)
		}
	}
	for _, sys := range inprocSystems {
		if r := find(rs, "bulk2/mtu1500", sys); r == nil || r.Extra["x_one_flow"] <= 0 {
			t.Errorf("bulk2/mtu1500 on %s: no ratio to one flow", sys)
		}
	}

	var table strings.Builder
	printTable(&table, rs)
	if !strings.Contains(table.String(), "ustack/gvisor") || strings.Count(table.String(), "\n") != len(rs)+1 {
		t.Errorf("table:\n%s", table.String())
	}

	dir := t.TempDir()
	jp := filepath.Join(dir, "bench.json")
	if err := newReport(cfg, rs).writeJSON(jp); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(jp)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(rs) || back.Machine.Cores <= 0 || back.Machine.GoVersion == "" {
		t.Errorf("JSON round trip: %d results, machine %+v", len(back.Results), back.Machine)
	}
	if back.Ratios["rr"]["ustack/gvisor"] <= 0 {
		t.Errorf("JSON ratios: %v", back.Ratios)
	}
	for _, name := range []string{"bench.svg", "bench.png"} {
		p := filepath.Join(dir, name)
		if err := drawChart(p, rs); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(p); err != nil || st.Size() < 1000 {
			t.Errorf("chart %s: %v, %v", name, st, err)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestSelected(t *testing.T) {
	cfg := Config{Only: []string{"bulk", " rr"}}
	for name, want := range map[string]bool{"bulk/mtu1500": true, "bulk2/mtu1500": true, "rr": true, "connect": false, "idle/10k": false} {
		if got := selected(cfg, name); got != want {
			t.Errorf("selected(%q) = %v, want %v", name, got, want)
		}
	}
	if !selected(Config{}, "anything") {
		t.Error("empty Only must select everything")
	}
}

// TestChartKernel draws a chart with kernel rows and a ustack variant, as
// the device workloads produce.
func TestChartKernel(t *testing.T) {
	rs := []Result{
		{Workload: "tap/send", System: "ustack/tap", Value: 2, Runs: []float64{2}, HigherIsBetter: true},
		{Workload: "tap/send", System: "gvisor/tap", Value: 1, Runs: []float64{1}, HigherIsBetter: true},
		{Workload: "tap/send", System: "kernel/veth", Value: 4, Runs: []float64{4}, HigherIsBetter: true},
		{Workload: "idle/10k", System: "ustack", Value: 2000, Runs: []float64{2000}},
		{Workload: "idle/10k", System: "gvisor", Value: 5000, Runs: []float64{5000}},
	}
	if x, ok := advantage(rs, rs[3], "gvisor"); !ok || x != 2.5 {
		t.Errorf("advantage of lower-is-better = %v, %v; want 2.5", x, ok)
	}
	if x, ok := ratio(rs, rs[0], "kernel"); !ok || x != 0.5 {
		t.Errorf("ratio to kernel = %v, %v; want 0.5", x, ok)
	}
	if _, ok := ratio(rs, rs[1], "kernel"); ok {
		t.Error("a gvisor row has no ratio")
	}
	p := filepath.Join(t.TempDir(), "c.svg")
	if err := drawChart(p, rs); err != nil {
		t.Fatal(err)
	}
}

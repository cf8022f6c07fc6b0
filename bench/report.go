package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// fmtExtra formats secondary figures as "k=v k=v" in name order.
func fmtExtra(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", k, fmtNum(m[k]))
	}
	return b.String()
}

// fmtNum prints a figure with about four significant digits.
func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e5 || v <= -1e5:
		return fmt.Sprintf("%.0f", v)
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.4g", v)
	}
}

// fmtRatio prints a ratio, marked when lower values are better (so a
// ratio below 1 is ustack ahead).
func fmtRatio(rs []Result, r Result, ref string) string {
	x, ok := ratio(rs, r, ref)
	if !ok {
		return ""
	}
	s := fmt.Sprintf("%.2f×", x)
	if !r.HigherIsBetter {
		s += " (lower better)"
	}
	return s
}

// printTable writes one row per workload and system.
func printTable(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tsystem\tmedian\tunit\truns\tustack/gvisor\tustack/kernel\textra")
	for _, r := range rs {
		if r.Err != "" {
			fmt.Fprintf(tw, "%s\t%s\terror\t\t\t\t\t%s\n", r.Workload, r.System, firstLine(r.Err))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Workload, r.System, fmtNum(r.Value), r.Unit,
			len(r.Runs), fmtRatio(rs, r, "gvisor"), fmtRatio(rs, r, "kernel"), fmtExtra(r.Extra))
	}
	tw.Flush()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Machine describes where the figures were taken.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	MemTotal  string `json:"mem_total"`
}

// Report is the JSON file: how, where and when, and every Result.
type Report struct {
	Date    string   `json:"date"`
	Command string   `json:"command"`
	Machine Machine  `json:"machine"`
	Config  Config   `json:"config"`
	Results []Result `json:"results"`
	// Ratios holds, per workload, each ustack system's ratio to gVisor
	// and to the kernel ("bulk/mtu1500": {"ustack/gvisor": 2.1}).
	Ratios map[string]map[string]float64 `json:"ratios"`
}

func newReport(cfg Config, rs []Result) Report {
	rep := Report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Command: "cd bench && go run . " + strings.Join(os.Args[1:], " "),
		Machine: Machine{
			CPU:       cpuModel(),
			Cores:     runtime.NumCPU(),
			Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
			GoVersion: runtime.Version(),
			MemTotal:  memTotal(),
		},
		Config:  cfg,
		Results: rs,
		Ratios:  map[string]map[string]float64{},
	}
	for _, r := range rs {
		for _, ref := range []string{"gvisor", "kernel"} {
			if x, ok := ratio(rs, r, ref); ok {
				m := rep.Ratios[r.Workload]
				if m == nil {
					m = map[string]float64{}
					rep.Ratios[r.Workload] = m
				}
				m[r.System+"/"+ref] = x
			}
		}
	}
	return rep
}

func (rep Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// procField returns the value of the first "key: value" line of a /proc
// file whose key is key.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func cpuModel() string { return procField("/proc/cpuinfo", "model name") }
func memTotal() string { return procField("/proc/meminfo", "MemTotal") }

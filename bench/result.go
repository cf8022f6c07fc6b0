package main

// Result is one measured workload on one system, as printed in the table
// and written to the JSON file. Every comparison in the report is a ratio
// of two Results of the same Workload taken in the same run.
type Result struct {
	// Workload names what was measured: "bulk/mtu1500", "rr", "connect",
	// "idle/10k", "tap/send/plain", ... Same name, same work, whatever the
	// system.
	Workload string `json:"workload"`
	// System is "ustack", "gvisor" or "kernel"; a variant after a slash
	// says how it was attached ("ustack/tap", "ustack/afpacket",
	// "gvisor/tap", "kernel/veth").
	System string `json:"system"`
	// Metric and Unit name the headline figure ("throughput", "MB/s";
	// "round trips", "1/s"; "heap per endpoint", "B").
	Metric string `json:"metric"`
	Unit   string `json:"unit"`
	// Value is the median of Runs.
	Value float64 `json:"value"`
	// Runs holds each repetition's figure, in the order they ran.
	Runs []float64 `json:"runs"`
	// HigherIsBetter orders ratios: true for throughput, false for
	// latency and memory.
	HigherIsBetter bool `json:"higher_is_better"`
	// Extra holds secondary figures by name, each a median over the
	// repetitions: "cpu_s_per_GB", "p50_us", "p99_us", "allocs_per_MB",
	// "allocs_per_rt", "cpu_us_per_conn", "goroutines_per_conn", ...
	Extra map[string]float64 `json:"extra,omitempty"`
	// Err is set when the workload could not run on this system; the
	// table shows it instead of a number.
	Err string `json:"error,omitempty"`
}

// Config is what every workload runner gets from the command line.
type Config struct {
	// Reps is how many times each workload runs per system (median taken).
	Reps int
	// Quick shrinks every workload (sizes, durations, connection counts)
	// for a smoke run: `go test` in CI uses it so the harness cannot rot.
	Quick bool
	// Only, when non-empty, selects workloads whose name starts with one
	// of these prefixes.
	Only []string
	// Verbose logs progress to stderr.
	Verbose bool
}

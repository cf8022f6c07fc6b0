package main

import (
	"fmt"
	"sort"
)

// Workload is one named measurement that runs against several systems.
//
// The harness calls Run once per repetition and system, interleaving the
// systems within each repetition (ustack rep 1, gvisor rep 1, ustack rep 2,
// ...) so that machine noise hits all of them alike. Run returns one
// repetition's figures: Value is that repetition's headline number and Extra
// its secondary figures; the harness fills Runs and takes the medians. Run
// should set Metric, Unit and HigherIsBetter (the same for every call). A
// non-nil error is recorded as the Result's Err for that system, and the
// system's remaining repetitions of this workload are skipped.
//
// Files in this package add workloads by calling register from an init
// function.
type Workload struct {
	// Name is the Result's Workload ("bulk/mtu1500", "tap/send/plain").
	Name string
	// Systems lists the systems to run, in order ("ustack", "gvisor",
	// "kernel/veth", ...). The table gives each system whose name begins
	// with "ustack" its ratio to the first system beginning with "gvisor"
	// and to the first beginning with "kernel".
	Systems []string
	// Run measures one repetition on one system.
	Run func(cfg Config, system string) (Result, error)
	// Setup, if set, runs once before the first repetition of this
	// workload (on any system) and its returned cleanup runs after the
	// last. An error from Setup marks every system of the workload with
	// Err.
	Setup func(cfg Config) (cleanup func(), err error)
	// MaxReps, if positive, caps the repetitions of this workload (for
	// very long ones such as a million idle connections).
	MaxReps int
}

// workloads holds every registered workload by name.
var workloads = map[string]Workload{}

// register adds w to the harness. It panics on a duplicate or empty name,
// an empty system list or a nil Run: those are programming errors found at
// start-up.
func register(w Workload) {
	if w.Name == "" || len(w.Systems) == 0 || w.Run == nil {
		panic(fmt.Sprintf("bench: register: incomplete workload %q", w.Name))
	}
	if _, dup := workloads[w.Name]; dup {
		panic(fmt.Sprintf("bench: register: duplicate workload %q", w.Name))
	}
	workloads[w.Name] = w
}

// registered returns all workloads sorted by name.
func registered() []Workload {
	out := make([]Workload, 0, len(workloads))
	for _, w := range workloads {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

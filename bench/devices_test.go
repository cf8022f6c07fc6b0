package main

import (
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deviceWorkloads are the workloads devices.go registers, with their
// systems.
var deviceWorkloads = map[string][]string{
	"tap/send/plain":   {sysUstackTap, sysGvisorTap},
	"tap/recv/plain":   {sysUstackTap, sysGvisorTap},
	"tap/send/offload": {sysUstackTap, sysGvisorTap, sysKernelVeth},
	"tap/recv/offload": {sysUstackTap, sysGvisorTap, sysKernelVeth},
	"tap/rr":           {sysUstackTap, sysGvisorTap, sysKernelVeth},
	"veth/send":        {sysUstackAF, sysGvisorAF, sysKernelVeth, sysIperf3},
	"veth/recv":        {sysUstackAF, sysGvisorAF, sysKernelVeth, sysIperf3},
	"veth/rr":          {sysUstackAF, sysGvisorAF, sysKernelVeth},
}

// TestDeviceQuick runs every device workload once on every system in
// Quick mode (16 MB transfers, 0.3 s of request/response) against the
// kernel peer in namespaces of its own: each must produce a positive
// figure with its secondary figures and no error, and every namespace it
// made must be gone afterwards.
func TestDeviceQuick(t *testing.T) {
	var ws []Workload
	for _, w := range registered() {
		if want, ok := deviceWorkloads[w.Name]; ok {
			if !slices.Equal(w.Systems, want) {
				t.Errorf("%s: systems %v, want %v", w.Name, w.Systems, want)
			}
			ws = append(ws, w)
		}
	}
	if len(ws) != len(deviceWorkloads) {
		t.Fatalf("%d device workloads registered, want %d", len(ws), len(deviceWorkloads))
	}
	rs := runAll(Config{Reps: 1, Quick: true}, ws)
	n := 0
	for _, s := range deviceWorkloads {
		n += len(s)
	}
	if len(rs) != n {
		t.Fatalf("%d results, want %d", len(rs), n)
	}
	for _, r := range rs {
		if r.Err != "" {
			t.Errorf("%s on %s: %s", r.Workload, r.System, r.Err)
			continue
		}
		if r.Value <= 0 || len(r.Runs) != 1 || !r.HigherIsBetter {
			t.Errorf("%s on %s: value %v, %d runs, higher is better %v", r.Workload, r.System, r.Value, len(r.Runs), r.HigherIsBetter)
		}
		want := []string{"cpu_s_per_GB", "MB_per_s"}
		if strings.HasSuffix(r.Workload, "/rr") {
			want = []string{"p50_us", "p99_us", "cpu_us_per_rt"}
		}
		for _, k := range want {
			if r.Extra[k] <= 0 {
				t.Errorf("%s on %s: extra %s = %v", r.Workload, r.System, k, r.Extra[k])
			}
		}
	}
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	mine := "ubench-" + strconv.Itoa(os.Getpid()) + "-"
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), mine) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}

// TestDeviceStallFails checks that a transfer that stops moving fails
// with a stall error instead of hanging: the peer here (in memory) never
// reads and never answers.
func TestDeviceStallFails(t *testing.T) {
	old := devStall
	devStall = time.Second
	defer func() { devStall = old }()
	for _, tc := range []struct {
		name string
		run  func(net.Conn) error
	}{
		{"send", func(c net.Conn) error { _, err := measureSend(c, 1<<30); return err }},
		{"recv", func(c net.Conn) error { _, err := measureRecv(c, 1<<30); return err }},
		{"rr", func(c net.Conn) error { _, err := measureRR(c, time.Minute); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, peer := net.Pipe()
			defer peer.Close()
			// The peer takes the 9-byte header and then goes silent.
			go io.ReadFull(peer, make([]byte, 9))
			err := tc.run(client)
			if err == nil || !strings.Contains(err.Error(), "stalled") {
				t.Fatalf("got %v, want a stall error", err)
			}
		})
	}
}

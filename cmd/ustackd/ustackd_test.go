package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ustack/internal/netns"
)

// buildDaemon builds ustackd into a temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ustackd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ustackd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadConfig(t *testing.T) {
	bin := buildDaemon(t)
	cfg := writeConfig(t, "interfaces:\n  - name: eth0\n    link: tap:ut0\n    adress: [10.0.0.1/24]\n")
	cmd := exec.Command(bin, "-c", cfg)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2", err)
	}
	want := "ustackd.yaml: interfaces[0]: unknown key \"adress\" (did you mean \"addresses\"?)\n"
	if string(out) != want {
		t.Errorf("stderr %q, want %q", out, want)
	}
	for _, args := range [][]string{{}, {"-c", cfg, "extra"}, {"-c", cfg, "-log-level", "loud"}} {
		err := exec.Command(bin, args...).Run()
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("ustackd %v: %v, want status 2", args, err)
		}
	}
}

// TestTAP runs ustackd on a TAP device in a namespace of its own and
// talks to it from the kernel's side with ping and socat.
func TestTAP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces and TAP devices)")
	}
	bin := buildDaemon(t)
	ns := netns.New(t)
	cfg := writeConfig(t, `
interfaces:
  - name: eth0
    link: tap:ut0
    addresses: [10.200.7.2/24]
services:
  - {type: echo, listen: "udp:7"}
  - {type: daytime}
`)
	cmd := ns.Command(bin, "-c", cfg, "-log-level", "debug")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// `ip netns exec` execs the daemon in place: cmd.Process is ustackd.
	exited := make(chan error, 1)
	var logs strings.Builder
	ready := make(chan struct{})
	readyC := ready
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "msg=ready") && ready != nil {
				close(ready)
				ready = nil
			}
		}
	}()
	go func() { <-logDone; exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-readyC:
	case err := <-exited:
		t.Fatalf("ustackd exited before it was ready: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("ustackd not ready after 20s")
	}

	// The kernel's side of the TAP.
	ns.Run(t, "ip", "addr", "add", "10.200.7.1/24", "dev", "ut0")
	ns.Run(t, "ip", "link", "set", "ut0", "up")

	out := ns.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.200.7.2")
	if !strings.Contains(out, "3 packets transmitted, 3 received") {
		t.Errorf("ping:\n%s", out)
	}
	out = ns.Run(t, "sh", "-c", "echo hello ustack | socat -t 0.5 - UDP4:10.200.7.2:7")
	if out != "hello ustack\n" {
		t.Errorf("socat echo: %q", out)
	}
	out = ns.Run(t, "sh", "-c", "echo | socat -t 0.5 - UDP4:10.200.7.2:13")
	if !strings.HasSuffix(out, "\r\n") || !strings.Contains(out, fmt.Sprint(time.Now().Year())) {
		t.Errorf("socat daytime: %q", out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("ustackd after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("ustackd still running 20s after SIGTERM")
	}
	for _, s := range []string{"msg=\"shutting down\"", "msg=stopped"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("log lacks %s:\n%s", s, logs.String())
		}
	}
	// The TAP device ustackd created is gone with it.
	if _, err := ns.Exec("ip", "link", "show", "ut0"); err == nil {
		t.Errorf("ut0 still exists after ustackd exited")
	}
}

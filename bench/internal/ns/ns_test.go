package ns

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func netnsNames(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestDeviceNSLifecycle makes two namespaces joined by a veth pair, runs
// code and a command inside one, and checks that Close removes both with
// their processes.
func TestDeviceNSLifecycle(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.HasPrefix(a.Name, prefix+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("name %q does not carry the PID", a.Name)
	}
	if err := Veth("ta", a, "tb", b); err != nil {
		t.Fatal(err)
	}
	if err := a.Tuntap("tt0", "tap"); err != nil {
		t.Fatal(err)
	}
	// Do runs inside: the interfaces seen there are a's.
	var inside []string
	if err := a.Do(func() error {
		out, err := exec.Command("ip", "-o", "link", "show").Output()
		inside = strings.Fields(string(out))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(inside, func(s string) bool { return strings.HasPrefix(s, "ta@") }) || !slices.Contains(inside, "tt0:") {
		t.Errorf("inside %s: %v", a, inside)
	}
	// A panic inside Do is an error, not a crash.
	if err := a.Do(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Do with a panic: %v", err)
	}
	p, err := a.Start(a.Command("sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("process still running after Close")
	}
	b.Close()
	names := netnsNames(t)
	if slices.Contains(names, a.Name) || slices.Contains(names, b.Name) {
		t.Errorf("namespaces left: %v", names)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestDeviceNSSweep checks that Sweep deletes a namespace of a harness
// process that has exited, and leaves this process's own.
func TestDeviceNSSweep(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	stale := prefix + strconv.Itoa(cmd.Process.Pid) + "-00000000"
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", stale).Run()
	own, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	gone, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(gone, stale) || slices.Contains(gone, own.Name) {
		t.Errorf("Sweep deleted %v; want %s and not %s", gone, stale, own.Name)
	}
	names := netnsNames(t)
	if slices.Contains(names, stale) || !slices.Contains(names, own.Name) {
		t.Errorf("after Sweep: %v", names)
	}
}

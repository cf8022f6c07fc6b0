package netns

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func nsList(t *testing.T) string {
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

func TestNewAndCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		ns := New(t)
		name = ns.Name
		if !strings.Contains(nsList(t), name) {
			t.Fatalf("%s not in ip netns list", name)
		}
		if out := ns.Run(t, "ip", "-o", "link", "show", "lo"); !strings.Contains(out, "UP") {
			t.Fatalf("lo not up: %s", out)
		}
		if _, err := ns.Exec("false"); err == nil {
			t.Fatal("Exec of a failing command returned no error")
		}
	})
	if strings.Contains(nsList(t), name) {
		t.Fatalf("%s still exists after the test", name)
	}
}

func TestDo(t *testing.T) {
	self, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	ns := New(t)
	ns.MustDo(t, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" {
			t.Errorf("interfaces inside %s: %v, want only lo", ns, ifs)
		}
		in, err := os.Readlink("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		if in == self {
			t.Errorf("Do ran f in the caller's namespace %s", in)
		}
		return nil
	})
	boom := errors.New("boom")
	if err := ns.Do(func() error { return boom }); err != boom {
		t.Fatalf("Do returned %v, want f's error", err)
	}
	// Threads that come back to the scheduler are in the original namespace.
	for range 20 {
		done := make(chan string)
		go func() {
			s, _ := os.Readlink("/proc/thread-self/ns/net")
			done <- s
		}()
		if s := <-done; s != self {
			t.Fatalf("a goroutine runs in namespace %s, want %s", s, self)
		}
	}
}

func TestVethPing(t *testing.T) {
	a, b := New(t), New(t)
	CreateVeth(t, "veth-a", a, "veth-b", b)
	a.Run(t, "ip", "addr", "add", "10.200.250.1/24", "dev", "veth-a")
	b.Run(t, "ip", "addr", "add", "10.200.250.2/24", "dev", "veth-b")
	a.Run(t, "ping", "-c", "1", "-W", "5", "10.200.250.2")
}

func TestStartKilled(t *testing.T) {
	var p *Process
	t.Run("inner", func(t *testing.T) {
		ns := New(t)
		p = ns.Start(t, "sleep", "1000")
	})
	select {
	case <-p.Done():
	default:
		t.Fatal("process still running after its test ended")
	}
	ns := New(t)
	q := ns.Start(t, "sh", "-c", "echo hello")
	if err := q.Wait(); err != nil || strings.TrimSpace(q.Output()) != "hello" {
		t.Fatalf("Wait = %v, output %q", err, q.Output())
	}
}

func TestCreateTuntap(t *testing.T) {
	ns := New(t)
	CreateTuntap(t, ns, "ust-tap0", "tap")
	if out := ns.Run(t, "ip", "-d", "link", "show", "ust-tap0"); !strings.Contains(out, "tap") {
		t.Fatalf("not a tap: %s", out)
	}
}

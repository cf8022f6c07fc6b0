// Package netns gives tests Linux network namespaces, veth pairs and TUN/TAP
// devices of their own, so they can use the kernel as a peer without
// touching the host's network.
//
// It is test support, not part of the stack: every function takes a
// testing.TB, needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), drives the
// `ip` tool from iproute2, and registers cleanup with t.Cleanup, so a
// namespace and everything in it is gone when the test ends. Addresses
// given to interfaces in these namespaces should come from 10.200.0.0/16
// or fd00:200::/32 (tests only talk inside namespaces they made).
//
// Code runs inside a namespace in two ways: a command through Exec, Run or
// Start (`ip netns exec`), or a Go function through Do, which runs it on
// an OS thread switched into the namespace (sockets and devices it opens
// stay in that namespace after it returns).
package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// NS is a named network namespace made by a test.
type NS struct {
	// Name is the namespace's name under /run/netns.
	Name string
}

// New makes a network namespace with a fresh name ("ust-" and random
// hex), brings its loopback up, and deletes it when the test ends (after
// the cleanups registered later, which run first). Processes started with
// Start are killed before that.
func New(t testing.TB) *NS {
	t.Helper()
	var r [4]byte
	rand.Read(r[:])
	ns := &NS{Name: "ust-" + hex.EncodeToString(r[:])}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("netns: ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("netns: ip netns del %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Path is the namespace's file, for setns(2).
func (ns *NS) Path() string { return "/run/netns/" + ns.Name }

func (ns *NS) String() string { return ns.Name }

// Command returns a command that runs name with args inside the namespace.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Exec runs a command inside the namespace and returns its combined
// output.
func (ns *NS) Exec(name string, args ...string) (string, error) {
	out, err := ns.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netns %s: %s %s: %v: %s", ns.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Run is Exec that fails the test on error.
func (ns *NS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Exec(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Start starts a command inside the namespace. When the test ends the
// process is killed (by its PID) and waited for, unless the test waited
// for it already.
func (ns *NS) Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: ns.Command(name, args...), done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = &p.out, &p.out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("netns %s: start %s: %v", ns.Name, name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Process is a command started by Start.
type Process struct {
	Cmd  *exec.Cmd
	out  lockedBuffer
	err  error
	done chan struct{}
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its error (nil for exit
// status 0).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Output is what the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Do runs f on an OS thread that is inside the namespace, and returns f's
// error (see DoPath).
func (ns *NS) Do(f func() error) error { return DoPath(ns.Path(), f) }

// DoPath runs f on an OS thread that is inside the network namespace at
// path (/run/netns/NAME), and returns f's error; a panic in f comes back as
// an error. Sockets and devices that f creates belong to the namespace and
// stay there after DoPath returns; goroutines that f starts run elsewhere,
// in the process's own namespace. The thread is returned to the scheduler
// only if switching back succeeds; otherwise it is discarded. DoPath needs
// no testing.TB, so programs (the bench harness) use it too.
func DoPath(path string, f func() error) error {
	type result struct{ err, ferr error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns %s: %w", path, err)}
			return
		}
		var ferr error
		func() {
			defer func() {
				if r := recover(); r != nil {
					ferr = fmt.Errorf("panic in namespace %s: %v", path, r)
				}
			}()
			ferr = f()
		}()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			done <- result{err: fmt.Errorf("setns back from %s: %w", path, err), ferr: ferr}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ferr: ferr}
	}()
	r := <-done
	if r.err != nil {
		return fmt.Errorf("netns: %w", r.err)
	}
	return r.ferr
}

// MustDo is Do that fails the test on error.
func (ns *NS) MustDo(t testing.TB, f func() error) {
	t.Helper()
	if err := ns.Do(f); err != nil {
		t.Fatal(err)
	}
}

// CreateVeth makes a veth pair with end nameA in nsA and end nameB in nsB
// (which may be the same namespace) and brings both ends up. The pair goes
// away with its namespaces; it is also deleted explicitly when the test
// ends.
func CreateVeth(t testing.TB, nameA string, nsA *NS, nameB string, nsB *NS) {
	t.Helper()
	out, err := exec.Command("ip", "link", "add", nameA, "netns", nsA.Name, "type", "veth",
		"peer", "name", nameB, "netns", nsB.Name).CombinedOutput()
	if err != nil {
		t.Fatalf("netns: create veth %s/%s: %v: %s", nameA, nameB, err, out)
	}
	t.Cleanup(func() { nsA.Exec("ip", "link", "del", nameA) }) // fails harmlessly if gone
	nsA.Run(t, "ip", "link", "set", nameA, "up")
	nsB.Run(t, "ip", "link", "set", nameB, "up")
}

// CreateTuntap makes a persistent TUN or TAP device (mode "tun" or "tap")
// in ns, as `ip tuntap add` does, and deletes it when the test ends. Tests
// of drivers that attach to an existing device use it.
func CreateTuntap(t testing.TB, ns *NS, name, mode string) {
	t.Helper()
	ns.Run(t, "ip", "tuntap", "add", "dev", name, "mode", mode)
	t.Cleanup(func() { ns.Exec("ip", "tuntap", "del", "dev", name, "mode", mode) })
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

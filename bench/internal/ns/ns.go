// Package ns gives the benchmark harness Linux network namespaces, veth
// pairs and TAP devices of its own, so workloads can use the kernel as a
// peer without touching the host's network.
//
// It is harness support, not part of the stack: it needs root
// (CAP_NET_ADMIN and CAP_SYS_ADMIN), drives the `ip` tool from iproute2,
// and returns errors instead of failing a test (ustack/internal/netns is
// the testing.TB flavour of the same approach). Everything made here is
// torn down by Close, by CloseAll, on SIGINT/SIGTERM/SIGHUP (the handler
// deletes every live namespace, then lets the signal kill the process as
// it would have), and, for what a SIGKILLed run leaves behind, by Sweep
// at the next start: namespace names carry the creating process's PID
// ("ubench-<pid>-<hex>"), and Sweep deletes those whose process is gone.
// Processes started with Start die with the harness (Pdeathsig).
//
// Code runs inside a namespace in two ways: a command through Command,
// Exec or Start (`ip netns exec`), or a Go function through Do, which runs
// it on an OS thread switched into the namespace (sockets and devices it
// opens stay in that namespace after it returns).
package ns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"ustack/internal/netns"
)

// prefix starts the name of every namespace this package makes.
const prefix = "ubench-"

// NS is a named network namespace made by the harness.
type NS struct {
	// Name is the namespace's name under /run/netns.
	Name string

	mu     sync.Mutex
	procs  []*Process
	closed bool
}

var (
	liveMu     sync.Mutex
	live       = map[*NS]struct{}{}
	signalOnce sync.Once
)

// New makes a network namespace with a fresh name, brings its loopback up
// and turns IPv6 off in it (so the kernel sends nothing a workload did not
// ask for). Close deletes it.
func New() (*NS, error) {
	signalOnce.Do(watchSignals)
	var r [4]byte
	rand.Read(r[:])
	n := &NS{Name: prefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(r[:])}
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ns: ip netns add %s: %v: %s", n.Name, err, bytes.TrimSpace(out))
	}
	liveMu.Lock()
	live[n] = struct{}{}
	liveMu.Unlock()
	if _, err := n.Exec("ip", "link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	if _, err := n.Exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Path is the namespace's file, for setns(2).
func (n *NS) Path() string { return "/run/netns/" + n.Name }

func (n *NS) String() string { return n.Name }

// Close kills (by PID) and reaps the processes started in the namespace,
// then deletes it; the devices in it go with it. It is safe to call more
// than once.
func (n *NS) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	liveMu.Lock()
	delete(live, n)
	liveMu.Unlock()
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ns: ip netns del %s: %v: %s", n.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

// CloseAll closes every namespace this process made and has not closed.
func CloseAll() {
	liveMu.Lock()
	all := make([]*NS, 0, len(live))
	for n := range live {
		all = append(all, n)
	}
	liveMu.Unlock()
	for _, n := range all {
		n.Close()
	}
}

// watchSignals deletes the live namespaces when the process is told to
// stop, then re-raises the signal with its default action.
func watchSignals() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-c
		CloseAll()
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	}()
}

// Sweep deletes namespaces left by harness processes that no longer run
// (a run killed with SIGKILL cannot clean up). It returns the names it
// deleted.
func Sweep() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); err == nil || errors.Is(err, unix.EPERM) {
			continue // still running
		}
		if exec.Command("ip", "netns", "del", e.Name()).Run() == nil {
			gone = append(gone, e.Name())
		}
	}
	return gone, nil
}

// Command returns a command that runs name with args inside the
// namespace. The command dies with the harness (Pdeathsig SIGKILL).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Exec runs a command inside the namespace and returns its combined
// output.
func (n *NS) Exec(name string, args ...string) (string, error) {
	out, err := n.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ns %s: %s %s: %v: %s", n.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Start starts cmd (made by Command) and tracks it: Close kills it if it
// still runs. Stdout and Stderr are left as the caller set them.
func (n *NS) Start(cmd *exec.Cmd) (*Process, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("ns %s: closed", n.Name)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ns %s: start %s: %w", n.Name, strings.Join(cmd.Args, " "), err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	n.procs = append(n.procs, p)
	return p, nil
}

// Process is a command started by Start.
type Process struct {
	Cmd  *exec.Cmd
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

// Kill kills the process by its PID unless it has exited, and waits for
// it.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		p.Cmd.Process.Kill()
		<-p.done
	}
}

// Do runs f on an OS thread that is inside the namespace, and returns f's
// error; a panic in f comes back as an error (netns.DoPath).
func (n *NS) Do(f func() error) error { return netns.DoPath(n.Path(), f) }

// Veth makes a veth pair with end nameA in nsA and end nameB in nsB and
// brings both ends up. The pair goes away with its namespaces.
func Veth(nameA string, nsA *NS, nameB string, nsB *NS) error {
	out, err := exec.Command("ip", "link", "add", nameA, "netns", nsA.Name, "type", "veth",
		"peer", "name", nameB, "netns", nsB.Name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ns: create veth %s/%s: %v: %s", nameA, nameB, err, bytes.TrimSpace(out))
	}
	if _, err := nsA.Exec("ip", "link", "set", nameA, "up"); err != nil {
		return err
	}
	_, err = nsB.Exec("ip", "link", "set", nameB, "up")
	return err
}

// Tuntap makes a persistent TUN or TAP device (mode "tun" or "tap") in
// the namespace, as `ip tuntap add` does. It goes away with the
// namespace.
func (n *NS) Tuntap(name, mode string) error {
	_, err := n.Exec("ip", "tuntap", "add", "dev", name, "mode", mode)
	return err
}

package interop

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCommands runs the programs, not the library, against the kernel on
// Topology A: `ustack ping` from a stack of its own on vB, and ustackd
// serving UDP echo on vB until SIGTERM.
func TestCommands(t *testing.T) {
	ustack, ustackd := buildCommands(t)

	t.Run("ping", func(t *testing.T) {
		tp := newKernelSide(t, topoConfig{kind: kindAFPacket})
		out := run(t, tp.s, nil, 15*time.Second, ustack, "ping", "-c", "3", "-i", "0.2",
			"--link", "afpacket:vB", "--addr", "10.200.1.2/24", tp.kaddr.String())
		sent, got, ok := parsePing(out)
		if !ok || sent != 3 || got != 3 {
			t.Fatalf("ustack ping: want 3 packets transmitted, 3 received; got:\n%s", out)
		}
	})

	t.Run("ustackd", func(t *testing.T) {
		tp := newKernelSide(t, topoConfig{kind: kindAFPacket})
		cfg := filepath.Join(t.TempDir(), "cfg.yaml")
		err := os.WriteFile(cfg, []byte(`interfaces:
  - name: eth0
    link: afpacket:vB
    addresses: [10.200.1.2/24]
services:
  - {type: echo, listen: "udp:7"}
`), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		d := tp.s.Start(t, ustackd, "-c", cfg)
		eventually(t, 10*time.Second, "ustackd to say it is ready", func() (bool, string) {
			select {
			case <-d.Done():
				t.Fatalf("ustackd exited early: %v\n%s", d.Wait(), d.Output())
			default:
			}
			return strings.Contains(d.Output(), "msg=ready"), d.Output()
		})

		payload, f := randomFile(t, 100)
		out := run(t, tp.k, f, 10*time.Second, "socat", "-t", "1", "-", "UDP:10.200.1.2:7")
		if out != string(payload) {
			t.Errorf("echo through ustackd: got %d bytes %q, want %d bytes %q", len(out), out, len(payload), payload)
		}

		if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := waitProcess(t, d, 10*time.Second); err != nil {
			t.Errorf("ustackd after SIGTERM: %v, want exit status 0\n%s", err, d.Output())
		}
		if !strings.Contains(d.Output(), "msg=stopped") {
			t.Errorf("ustackd did not log that it stopped:\n%s", d.Output())
		}
	})
}

package interop

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ustack/service"
)

// floodSYNs is how many SYNs TestTCPSYNFlood sends, over floodTime.
const (
	floodSYNs = 20000
	floodTime = 4 * time.Second
)

// TestTCPSYNFlood floods the stack's echo listener with SYNs from random
// addresses and ports of the kernel's subnet (testdata/synflood.py, with
// scapy) while 100 MB go from the kernel to the stack on an established
// connection. The transfer completes intact; once the SYN queue is full
// the listener answers with SYN cookies (RFC 4987), and a new connection
// from the kernel is still accepted during the flood, through a cookie,
// and echoes.
func TestTCPSYNFlood(t *testing.T) {
	script, err := filepath.Abs("testdata/synflood.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo(t, topoConfig{kind: kind})
			serveTCP(t, tp, service.Echo, netip.AddrPortFrom(tp.saddr, 7), service.Options{})
			// The spoofed sources: the upper half of the kernel's subnet,
			// where nobody answers ARP.
			a := tp.kaddr.As4()
			a[3] = 128
			spoofed := netip.PrefixFrom(netip.AddrFrom4(a), 25)

			s0 := tp.st.Stats()
			x := kernelToStack(t, tp, 5001, stream{seed: 21, n: bulkSize}, 120*time.Second)
			flood := tp.k.Start(t, "/usr/bin/python3", script, tp.kdev, tp.ifc.HardwareAddr().String(),
				tp.saddr.String(), "7", spoofed.String(), strconv.Itoa(floodSYNs),
				strconv.FormatFloat(floodTime.Seconds(), 'f', -1, 64), "1")

			// The SYN queue fills, and cookies go out.
			eventually(t, 10*time.Second, "the listener to send SYN cookies", func() (bool, string) {
				s := tp.st.Stats()
				return counterDelta(s0, s, "tcp.syncookies_sent") > 0,
					fmt.Sprintf("tcp.in.packets +%d, tcp.listen_drops +%d, flood output %q",
						counterDelta(s0, s, "tcp.in.packets"), counterDelta(s0, s, "tcp.listen_drops"), flood.Output())
			})
			floodOn := func() bool {
				select {
				case <-flood.Done():
					return false
				default:
					return true
				}
			}
			if !floodOn() {
				t.Errorf("the flood was over before the listener sent cookies: %v %s", flood.Wait(), flood.Output())
			}

			// A new connection, during the flood.
			e := stream{seed: 22, n: 64 << 10}
			h := newHashWriter()
			startK(t, tp.k, e.reader(), h, "socat", "-t", "30", "-", fmt.Sprintf("TCP:%s:7", tp.saddr)).wait(t, 30*time.Second)
			h.check(t, "echo on a new connection during the flood", e)
			if !floodOn() {
				t.Logf("the flood ended before the new connection did")
			}

			if err := waitProcess(t, flood, 30*time.Second); err != nil {
				t.Fatalf("synflood.py: %v\n%s", err, flood.Output())
			}
			if out := strings.TrimSpace(flood.Output()); out != "SENT "+strconv.Itoa(floodSYNs) {
				t.Errorf("synflood.py said %q, want SENT %d", out, floodSYNs)
			}
			x.finish(t)
			x.log(t, kind+" during the flood:")
			s1 := tp.st.Stats()
			logTCPCounters(t, s0, s1, nil, nil)
			if d := counterDelta(s0, s1, "tcp.syncookies_recv"); d < 1 {
				t.Errorf("tcp.syncookies_recv moved by %d: the new connection did not come through a cookie", d)
			}
			// Beyond the SYN queue (max_syn_backlog, 1024), every SYN that
			// reached the stack drew a cookie; allow for frames lost on the
			// way (the stack's AF_PACKET socket buffer).
			if d := counterDelta(s0, s1, "tcp.syncookies_sent"); d < floodSYNs/4 {
				t.Errorf("tcp.syncookies_sent moved by %d for %d SYNs, want at least %d", d, floodSYNs, floodSYNs/4)
			}
		})
	}
}

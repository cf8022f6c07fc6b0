package stack_test

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"ustack/internal/clock"
	"ustack/link/fault"
	"ustack/link/pipe"
	"ustack/socket"
	"ustack/stack"
)

// checkAccounting verifies, for each layer of s, that every packet that
// came in was either delivered upward or dropped with a counted reason.
func checkAccounting(t *testing.T, s *stack.Stack) {
	t.Helper()
	st := s.Stats()
	for _, layer := range []string{"if.eth0.", "arp.", "ipv4.", "udp."} {
		in := st[layer+"in.packets"]
		var drops uint64
		for name, v := range st {
			if strings.HasPrefix(name, layer+"drop.") {
				drops += v
			}
		}
		if got := st[layer+"delivered"] + drops; got != in {
			t.Errorf("%s: %s in %d != delivered %d + dropped %d", s.Name(), layer, in, st[layer+"delivered"], drops)
		}
	}
}

func TestLossyLinkAccounting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := clock.NewFake(time.Unix(0, 0))
		imp := fault.Impairment{Loss: 0.05, Duplicate: 0.02, Reorder: 0.05, Corrupt: 0.02}
		pa, pb := pipe.New(pipe.Config{})
		fa := fault.New(pa, fault.Config{Tx: imp, Rx: imp, Seed: 42, Clock: fc})

		n := &netw{t: t}
		a, b := n.stack("a"), n.stack("b")
		n.attach(a, "eth0", "10.0.0.1/24", fa)
		n.attach(b, "eth0", "10.0.0.2/24", pb)
		echoServer(t, b)

		c, err := socket.DialUDP(a, netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:7"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		const N = 2000
		got := make(map[uint32]int)
		msg := make([]byte, 200)
		rb := make([]byte, 2048)
		for i := uint32(0); i < N; i++ {
			binary.BigEndian.PutUint32(msg, i)
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			// Let frames move, release held (reordered) ones, and drain
			// the echoes that came back.
			synctest.Wait()
			if i%16 == 15 {
				fc.Advance(50 * time.Millisecond)
				synctest.Wait()
			}
			for {
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				k, err := c.Read(rb)
				if err != nil {
					break
				}
				if k != len(msg) {
					t.Fatalf("echo of %d bytes, want %d", k, len(msg))
				}
				got[binary.BigEndian.Uint32(rb)]++
			}
		}
		fc.Advance(time.Second)
		synctest.Wait()
		for {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(rb); err != nil {
				break
			}
			got[binary.BigEndian.Uint32(rb)]++
		}
		if len(got) < N/2 || len(got) > N {
			t.Errorf("%d distinct echoes of %d datagrams", len(got), N)
		}
		dups := 0
		for _, k := range got {
			dups += k - 1
		}
		tx, rx := fa.Counters(fault.Tx), fa.Counters(fault.Rx)
		t.Logf("echoes %d distinct, %d duplicates; tx lost %d dup %d corrupt %d reordered %d; rx lost %d dup %d corrupt %d",
			len(got), dups, tx.DroppedLoss.Load(), tx.Duplicated.Load(), tx.Corrupted.Load(), tx.Reordered.Load(),
			rx.DroppedLoss.Load(), rx.Duplicated.Load(), rx.Corrupted.Load())
		for _, c := range []*fault.Counters{tx, rx} {
			if c.DroppedLoss.Load() == 0 || c.Duplicated.Load() == 0 || c.Corrupted.Load() == 0 {
				t.Errorf("impairments did not happen: %+v", c)
			}
		}
		if tx.Reordered.Load() == 0 {
			t.Errorf("no reordering happened")
		}
		if dups == 0 {
			t.Errorf("no duplicate reached the application (UDP does not deduplicate)")
		}
		// Corrupted frames were caught by some check and counted.
		sb := b.Stats()
		caught := sb["ipv4.drop.bad_checksum"] + sb["udp.drop.bad_checksum"] + sb["if.eth0.drop.not_for_us"] +
			sb["if.eth0.drop.unknown_protocol"] + sb["ipv4.drop.bad_version"] + sb["ipv4.drop.bad_length"] +
			sb["ipv4.drop.bad_header_len"] + sb["udp.drop.no_endpoint"]
		if caught == 0 {
			t.Errorf("no corrupted frame was caught at b")
		}
		checkAccounting(t, a)
		checkAccounting(t, b)
	})
}

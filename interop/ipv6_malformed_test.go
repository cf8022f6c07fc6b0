package interop

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// malformed6 lists what testdata/malformed6.py sends, one class each,
// and by how much each class moves the stack's counters.
var malformed6 = []struct {
	class string
	want  map[string]int64
}{
	// A well-formed echo request, for comparison.
	{"good", map[string]int64{"icmp6.in.echo-request": 1, "icmp6.out.echo-reply": 1}},
	{"plen_long", map[string]int64{"ipv6.drop.bad_length": 1}},
	// Payload length 4: the packet is cut there, short of an ICMPv6
	// header.
	{"plen_short", map[string]int64{"icmp6.drop.truncated": 1, "icmp6.out.echo-reply": 0}},
	// RFC 8200 §4.3: parameter problem code 1.
	{"hbh_not_first", map[string]int64{"ipv6.drop.malformed": 1, "icmp6.out.param-problem": 1, "icmp6.out.echo-reply": 0}},
	// RFC 5095 §3: parameter problem code 0 pointing at the type.
	{"rh0", map[string]int64{"ipv6.in.rh_refused": 1, "ipv6.drop.unsupported": 1, "icmp6.out.param-problem": 1, "icmp6.out.echo-reply": 0}},
	// RFC 5722 §4: both fragments go; the datagram stays poisoned
	// (checked below).
	{"frag_overlap", map[string]int64{"ipv6.frag.in": 2, "ipv6.drop.frag_overlap": 2, "ipv6.reasm.ok": 0, "icmp6.out.echo-reply": 0}},
	// RFC 6946 §4: processed at once, not held.
	{"atomic_frag", map[string]int64{"ipv6.frag.atomic": 1, "icmp6.in.echo-request": 1, "icmp6.out.echo-reply": 1}},
	// RFC 7112 §5: dropped with a parameter problem code 3.
	{"tiny_first", map[string]int64{"ipv6.in.frag_incomplete_chain": 1, "ipv6.drop.frag_invalid": 1, "icmp6.out.param-problem": 1}},
	{"destopt_150", map[string]int64{"ipv6.in.ext_limit": 1, "ipv6.drop.bad_option": 1, "icmp6.out.echo-reply": 0}},
	// RFC 4861 §7.1.1: an option of length 0 drops the solicitation.
	{"nd_opt_len0", map[string]int64{"ndp.in.neighbor-solicitation": 1, "ndp.drop.bad_option": 1}},
	// The prefix option is dropped and counted (no address in
	// 2001:db8:202::/64, checked below); the rest of the advertisement
	// is taken.
	{"ra_prefix_len200", map[string]int64{"ndp.in.router-advertisement": 1, "ndp.drop.bad_option": 1}},
}

// v6Counter tells the counters TestIPv6Malformed watches.
func v6Counter(name string) bool {
	return strings.HasPrefix(name, "ipv6.") || strings.HasPrefix(name, "icmp6.") || strings.HasPrefix(name, "ndp.")
}

// v6Drop tells the IPv6 drop counters ("ipv6.drop.bad_length",
// "icmp6.socket.drop.unsupported", ...) whose moves the malformed-input
// tests hold to exactly what each class wants: a drop counter a class
// does not name must not move. ipv6.drop.not_for_us is left out: the
// kernel's own router solicitations (to ff02::2, a group a host does
// not join) land there whenever the kernel sends one.
func v6Drop(name string) bool {
	return v6Counter(name) && strings.Contains(name, ".drop.") && name != "ipv6.drop.not_for_us"
}

// checkMoves fails the test unless every counter in want moved between
// s0 and s1 by exactly its value and no other drop counter (v6Drop)
// moved; what says which case it was. It logs every IPv6 counter that
// moved.
func checkMoves(t *testing.T, what string, s0, s1 map[string]uint64, want map[string]int64) {
	t.Helper()
	var moved []string
	for _, name := range sortedKeys(s1) {
		d := counterDelta(s0, s1, name)
		if d != 0 && v6Counter(name) {
			moved = append(moved, name+" +"+strconv.FormatInt(d, 10))
		}
		if _, ok := want[name]; !ok && d != 0 && v6Drop(name) {
			t.Errorf("%s: %s moved by %d, want 0", what, name, d)
		}
	}
	t.Logf("%s: %s", what, strings.Join(moved, ", "))
	for _, name := range sortedKeys(want) {
		if d := counterDelta(s0, s1, name); d != want[name] {
			t.Errorf("%s: %s moved by %d, want %d", what, name, d, want[name])
		}
	}
}

// TestIPv6Malformed sends the stack broken IPv6 from the kernel's side
// with scapy, over each link kind (AF_PACKET on a veth, and TAP), one
// class at a time, and checks that each class moved the counters it
// should and no other drop counter; afterwards the stack still answers
// the kernel's ping over IPv6 and IPv4.
func TestIPv6Malformed(t *testing.T) {
	script, err := filepath.Abs("testdata/malformed6.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { testIPv6Malformed(t, kind, script) })
	}
}

func testIPv6Malformed(t *testing.T, kind, script string) {
	tp := newTopo6(t, kind)
	kernelPing6(t, tp, saddr6, 3) // neighbour caches warm
	kernelPing6(t, tp, tp.sll, 3)
	for _, c := range malformed6 {
		s0 := tp.st.Stats()
		out := run(t, tp.k, nil, 30*time.Second, "/usr/bin/python3", script,
			tp.kdev, tp.ifc.HardwareAddr().String(), kaddr6.String(), tp.kll.WithZone("").String(),
			saddr6.String(), tp.sll.WithZone("").String(), c.class)
		f := strings.Fields(out)
		if len(f) != 3 || f[0] != "SENT" || f[1] != c.class {
			t.Errorf("class %s: malformed6.py said %q", c.class, out)
			continue
		}
		frames, _ := strconv.Atoi(f[2])
		s1 := settle6(t, tp, s0, frames)
		checkMoves(t, fmt.Sprintf("class %s (%d frames)", c.class, frames), s0, s1, c.want)
	}
	// The overlapped datagram is held as a poisoned entry of 64 bytes
	// (to discard its later fragments) until its timer runs out.
	s := tp.st.Stats()
	if p, b := s["ipv6.reasm.pending"], s["ipv6.reasm.bytes"]; p != 1 || b != 64 {
		t.Errorf("ipv6.reasm.pending = %d, ipv6.reasm.bytes = %d; want 1 and 64 (the poisoned overlapped datagram)", p, b)
	}
	bad := netip.MustParsePrefix("2001:db8:202::/48")
	for _, p := range tp.st.Interface("eth0").Addrs() {
		if bad.Overlaps(p) {
			t.Errorf("the stack took %v from a prefix option of length 200", p)
		}
	}
	kernelPing6(t, tp, saddr6, 20)
	kernelPing6(t, tp, tp.sll, 20)
	kernelPing(t, tp.k, tp.saddr, 20)
}

// settle6 waits until the stack has taken frames more frames than in s0
// and its IPv6 counters have not changed for 200 ms, and returns its
// counters.
func settle6(t *testing.T, tp *topo6, s0 map[string]uint64, frames int) map[string]uint64 {
	t.Helper()
	var s, prev map[string]uint64
	var since time.Time
	eventually(t, 10*time.Second, "the counters to settle", func() (bool, string) {
		s = tp.st.Stats()
		cur := maps.Clone(s)
		maps.DeleteFunc(cur, func(k string, _ uint64) bool { return !v6Counter(k) })
		if !maps.Equal(prev, cur) {
			since = time.Now()
		}
		prev = cur
		rx := counterDelta(s0, s, "if.eth0.link.rx.packets")
		return rx >= int64(frames) && time.Since(since) >= 200*time.Millisecond, strconv.FormatInt(rx, 10) + " frames in"
	})
	return s
}

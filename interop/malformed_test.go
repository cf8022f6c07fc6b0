package interop

import (
	"bufio"
	"maps"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"ustack/internal/clock"
)

// malformed lists what testdata/malformed.py sends, one class each, and
// by how much each class moves the stack's counters. Every drop counter
// a class names must move by exactly the sum of the classes that name it.
var malformed = []struct {
	class string
	want  map[string]int64
}{
	{"ihl_short", map[string]int64{"ipv4.drop.bad_header_len": 1}},
	{"ihl_past_packet", map[string]int64{"ipv4.drop.bad_header_len": 1}},
	{"len_short", map[string]int64{"ipv4.drop.bad_length": 1}},
	{"len_long", map[string]int64{"ipv4.drop.bad_length": 1}},
	{"bad_checksum", map[string]int64{"ipv4.drop.bad_checksum": 1}},
	{"version5", map[string]int64{"ipv4.drop.bad_version": 1}},
	{"version6", map[string]int64{"ipv4.drop.bad_version": 1}},
	// RFC 1122 §3.2.1.7: delivered and answered, only counted.
	{"ttl0", map[string]int64{"ipv4.in.ttl_zero": 1, "icmp.in.echo": 1, "icmp.out.echo-reply": 1}},
	{"opt_len0", map[string]int64{"ipv4.drop.bad_option": 1}},
	{"opt_len1", map[string]int64{"ipv4.drop.bad_option": 1}},
	{"opt_past_header", map[string]int64{"ipv4.drop.bad_option": 1}},
	// Five 8-byte fragments of one UDP datagram to the echo service.
	{"tiny_fragments", map[string]int64{"ipv4.frag.in": 5, "ipv4.reasm.ok": 1, "udp.delivered": 1, "udp.out.packets": 1}},
	{"frag_empty", map[string]int64{"ipv4.frag.in": 1, "ipv4.drop.frag_invalid": 1}},
	{"frag_odd_length", map[string]int64{"ipv4.frag.in": 1, "ipv4.drop.frag_invalid": 1}},
	// The held fragment and the one overlapping it both go.
	{"frag_overlap", map[string]int64{"ipv4.frag.in": 2, "ipv4.drop.frag_overlap": 2}},
	{"frag_incomplete", map[string]int64{"ipv4.frag.in": 2}},
	{"frag_too_big", map[string]int64{"ipv4.frag.in": 1, "ipv4.drop.frag_too_big": 1}},
	// Larger than the stack's MTU, but Linux too takes what its device
	// hands up: answered, the reply cut to the MTU.
	{"oversize", map[string]int64{"icmp.in.echo": 1, "icmp.out.echo-reply": 1, "ipv4.frag.out": 3}},
	{"arp_hlen7", map[string]int64{"arp.drop.bad_length": 1}},
	{"arp_plen5", map[string]int64{"arp.drop.bad_length": 1}},
	{"arp_truncated", map[string]int64{"arp.drop.truncated": 1}},
	{"arp_opcode", map[string]int64{"arp.drop.unsupported": 2}},
	{"runt_short", map[string]int64{"if.eth0.drop.truncated": 1}},
	{"runt_header_ipv4", map[string]int64{"ipv4.drop.truncated": 1}},
	{"runt_header_arp", map[string]int64{"arp.drop.truncated": 1}},
	{"vlan", map[string]int64{"if.eth0.drop.unknown_protocol": 1}},
	{"unknown_ethertype", map[string]int64{"if.eth0.drop.unknown_protocol": 1}},
}

// settle polls the stack's and the kernel's counters until ready says
// they have arrived and the stack's have not changed for 200 ms, and
// returns them.
func settle(t *testing.T, tp *topo, ready func(map[string]uint64, map[string]int64) bool) (map[string]uint64, map[string]int64) {
	t.Helper()
	var s map[string]uint64
	var k map[string]int64
	var since time.Time
	eventually(t, 10*time.Second, "the counters to settle", func() (bool, string) {
		prev := s
		s, k = tp.st.Stats(), snmp(t, tp.k)
		if !maps.Equal(prev, s) {
			since = time.Now()
		}
		return ready(s, k) && time.Since(since) >= 200*time.Millisecond, "not settled"
	})
	return s, k
}

// TestMalformed sends the stack (Topology A) every kind of broken frame
// from the kernel's side with scapy, then checks that each was counted
// under its drop reason, that held fragments time out and their memory
// comes back, and that the stack still answers the kernel's ping.
func TestMalformed(t *testing.T) {
	clk := clock.NewFake(time.Now())
	tp := newTopo(t, topoConfig{kind: kindAFPacket, clock: clk})
	startEcho(t, tp.st, 7)
	kernelPing(t, tp.k, tp.saddr, 3) // both neighbour caches warm

	// Jumbo frames on both veth ends; the stack keeps the 1500 bytes it
	// read when it opened vB, so 4000-byte frames are oversize to it.
	tp.k.Run(t, "ip", "link", "set", "vA", "mtu", "9000")
	tp.s.Run(t, "ip", "link", "set", "vB", "mtu", "9000")

	var mem0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem0)
	s0, k0 := tp.st.Stats(), snmp(t, tp.k)

	script, err := filepath.Abs("testdata/malformed.py")
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, tp.k, nil, 30*time.Second, "/usr/bin/python3", script,
		"vA", tp.ifc.HardwareAddr().String(), tp.kaddr.String(), tp.saddr.String())
	sent, refused := map[string]int{}, map[string]string{}
	frames := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "SENT":
			n, _ := strconv.Atoi(f[2])
			sent[f[1]] = n
			frames += n
		case len(f) == 3 && f[0] == "REFUSED":
			refused[f[1]] = f[2]
		default:
			t.Errorf("malformed.py said %q", sc.Text())
		}
	}
	t.Logf("malformed.py sent %d frames; the kernel refused %v", frames, refused)
	// The stack has taken every frame, and the kernel the stack's
	// answers (the oversize echo's reply, reassembled from three
	// fragments; the tiny fragments' datagram echoed whole, to a port
	// the kernel has no socket on), and nothing has moved for 200 ms.
	s1, k1 := settle(t, tp, func(s map[string]uint64, k map[string]int64) bool {
		return counterDelta(s0, s, "if.eth0.link.rx.packets") >= int64(frames) &&
			k["Ip.ReasmOKs"] > k0["Ip.ReasmOKs"] && k["Udp.NoPorts"] > k0["Udp.NoPorts"]
	})

	// Every class the table knows was sent, and nothing else.
	want := map[string]int64{}
	classes := map[string][]string{}
	for _, c := range malformed {
		_, ok := sent[c.class]
		if !ok {
			if c.class == "runt_short" && refused[c.class] == "EINVAL" {
				// Linux refuses to send a frame shorter than the
				// device's 14-byte link header (dev_validate_header),
				// so no kernel peer can hand the stack a runt.
				continue
			}
			t.Errorf("class %s: not sent (refused: %q)", c.class, refused[c.class])
			continue
		}
		delete(sent, c.class)
		for name, n := range c.want {
			want[name] += n
			classes[name] = append(classes[name], c.class)
		}
	}
	for c := range sent {
		t.Errorf("malformed.py sent class %s, which the test does not know", c)
	}
	for _, name := range sortedKeys(want) {
		if d := counterDelta(s0, s1, name); d != want[name] {
			t.Errorf("%s moved by %d, want %d (from %s)", name, d, want[name], strings.Join(classes[name], ", "))
		}
	}
	if testing.Verbose() {
		for _, name := range sortedKeys(s1) {
			if d := counterDelta(s0, s1, name); d != 0 {
				t.Logf("%s +%d", name, d)
			}
		}
	}
	// Two echo replies: to TTL 0 and to the oversize request. A third is
	// the stack answering the VLAN-tagged request as if it were untagged.
	checkKernelDelta(t, k0, k1, map[string]int64{"Ip.ReasmOKs": 1, "Udp.NoPorts": 1, "Icmp.InEchoReps": 2})
	if d := k1["Icmp.InEchoReps"] - k0["Icmp.InEchoReps"]; d > 2 {
		t.Errorf("the stack answered the 802.1Q-tagged echo request (VLAN 5, id 0x5555 seq 4) with an untagged reply: " +
			"the tag was lost before the stack saw the frame")
	}

	// Held fragments: two datagrams never completed. Past the reassembly
	// timeout they go, with a time exceeded to the sender of the one
	// whose first fragment came (RFC 792, RFC 1122 §3.3.2).
	if p, b := s1["ipv4.reasm.pending"], s1["ipv4.reasm.bytes"]; p != 2 || b != 32 {
		t.Errorf("before the timeout: ipv4.reasm.pending = %d, ipv4.reasm.bytes = %d; want 2 and 32", p, b)
	}
	v, err := tp.st.GetSysctl("net.inet.ip.reass_timeout")
	if err != nil {
		t.Fatal(err)
	}
	timeout, err := time.ParseDuration(v)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(timeout + time.Second)
	s2 := tp.st.Stats()
	if p, b := s2["ipv4.reasm.pending"], s2["ipv4.reasm.bytes"]; p != 0 || b != 0 {
		t.Errorf("after the timeout: ipv4.reasm.pending = %d, ipv4.reasm.bytes = %d; want 0", p, b)
	}
	checkDelta(t, "stack", s1, s2, map[string]int64{"ipv4.drop.frag_timeout": 2, "icmp.out.time-exceeded": 1})
	eventually(t, 5*time.Second, "the kernel to get the time exceeded", func() (bool, string) {
		d := snmp(t, tp.k)["Icmp.InTimeExcds"] - k1["Icmp.InTimeExcds"]
		return d == 1, "Icmp.InTimeExcds moved by " + strconv.FormatInt(d, 10)
	})

	// Still alive, and holding no more memory than before.
	kernelPing(t, tp.k, tp.saddr, 20)
	var mem1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem1)
	t.Logf("HeapInuse %d KiB before, %d KiB after", mem0.HeapInuse>>10, mem1.HeapInuse>>10)
	if mem1.HeapInuse > mem0.HeapInuse+8<<20 {
		t.Errorf("HeapInuse grew from %d to %d bytes", mem0.HeapInuse, mem1.HeapInuse)
	}
}

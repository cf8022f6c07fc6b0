package interop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ustack/service"
	"ustack/socket"
)

// The four targets of testdata/tcp_malformed.py: the listening port (L),
// a closed port (C), a connection the script opens itself (E) and the
// kernel's own connection (K).
const (
	malLPort = 7    // echo
	malCPort = 9    // nothing listens
	malKPort = 5001 // the stack's end of the kernel's connection
	malKSrc  = 40100
)

// headerClasses are the segments the stack must drop before looking up
// a connection (RFC 9293 §3.1, §3.10.7 "check the checksum"), sent to
// every target; each moves the named counters by one, and draws no
// answer.
var headerClasses = []struct {
	class string
	drops []string
}{
	{"doff0", []string{"tcp.drop.bad_header_len"}},
	{"doff1", []string{"tcp.drop.bad_header_len"}},
	{"doff2", []string{"tcp.drop.bad_header_len"}},
	{"doff3", []string{"tcp.drop.bad_header_len"}},
	{"doff4", []string{"tcp.drop.bad_header_len"}},
	{"doff6_past", []string{"tcp.drop.bad_header_len"}},
	{"doff15_past", []string{"tcp.drop.bad_header_len"}},
	{"opt_len0", []string{"tcp.drop.bad_option"}},
	{"opt_len1", []string{"tcp.drop.bad_option"}},
	{"opt_trunc_ts", []string{"tcp.drop.bad_option"}},
	{"opt_trunc_mss", []string{"tcp.drop.bad_option"}},
	// SYN+FIN, SYN+RST, all bits, none: dropped without an answer, as
	// the package documents (RFC 9293 leaves them undefined).
	{"synfin", []string{"tcp.drop.malformed", "tcp.in_bad_flags"}},
	{"synrst", []string{"tcp.drop.malformed", "tcp.in_bad_flags"}},
	{"allflags", []string{"tcp.drop.malformed", "tcp.in_bad_flags"}},
	{"noflags", []string{"tcp.drop.malformed", "tcp.in_bad_flags"}},
	{"bad_checksum", []string{"tcp.drop.bad_checksum", "tcp.in_csum_errors"}},
}

// wellFormed are well-formed segments, each with the answer RFC 9293
// (and RFC 5961) asks for.
var wellFormed = []struct {
	probe, answer string
	counts        map[string]int64
}{
	// §3.10.7.1 CLOSED: to an ACK <SEQ=SEG.ACK><CTL=RST>, otherwise
	// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; a RST is dropped.
	{"C/syn", "rstack", map[string]int64{"tcp.drop.no_endpoint": 1}},
	{"C/ack", "rst", map[string]int64{"tcp.drop.no_endpoint": 1}},
	{"C/fin", "rstack", map[string]int64{"tcp.drop.no_endpoint": 1}},
	{"C/rst", "none", map[string]int64{"tcp.drop.no_endpoint": 1}},
	{"C/urg_past", "rst", map[string]int64{"tcp.drop.no_endpoint": 1}},
	// §3.10.7.2 LISTEN: a RST is ignored, an ACK draws a RST, a segment
	// with neither SYN nor ACK is dropped, a SYN (here with data and an
	// urgent pointer past it) is answered with SYN,ACK.
	{"L/ack", "rst", nil},
	{"L/rst", "none", nil},
	{"L/fin", "none", nil},
	{"L/urg_past", "synack", nil},
	// RFC 5961 §3.2 and §4.2 (RFC 9293 §3.10.7.4): a RST in the window
	// but not at RCV.NXT, and any SYN, draw a challenge ACK.
	{"E/rst_in_window", "ack", map[string]int64{"tcp.challenge_acks": 1}},
	{"E/syn_in_window", "ack", map[string]int64{"tcp.challenge_acks": 1}},
	{"E/syn_at_rcv_nxt", "ack", map[string]int64{"tcp.challenge_acks": 1}},
	// RFC 5961 §5.2 (RFC 9293 §3.10.7.4 fifth): an ACK of data not yet
	// sent, or older than SND.UNA - MAX.SND.WND: drop, and send an ACK,
	// throttled as challenge ACKs are (§7).
	{"E/ack_unsent", "ack", map[string]int64{"tcp.challenge_acks": 1}},
	{"E/ack_too_old", "ack", map[string]int64{"tcp.challenge_acks": 1}},
	// RFC 9293 §3.10.7.4 first: not acceptable: an ACK, unless RST.
	{"E/rst_out_of_window", "none", nil},
	{"E/data_out_of_window", "ack", nil},
	// Urgent pointer past the data: the data is in-line (RFC 6093), and
	// comes back from the echo service.
	{"E/urg_past", "data8", nil},
}

// TestTCPMalformed sends broken and hostile TCP segments from the
// kernel's side with scapy (testdata/tcp_malformed.py) to a listening
// port, a closed port, an established connection of the script's own,
// and the kernel's own established connection, on both topologies.
// Every header defect is dropped and counted under its reason with no
// answer; well-formed segments are answered as RFC 9293 and RFC 5961
// say; afterwards both connections still carry data.
func TestTCPMalformed(t *testing.T) {
	script, err := filepath.Abs("testdata/tcp_malformed.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { testTCPMalformed(t, kind, script) })
	}
}

func testTCPMalformed(t *testing.T, kind, script string) {
	tp := newTopo(t, topoConfig{kind: kind})
	serveTCP(t, tp, service.Echo, netip.AddrPortFrom(tp.saddr, malLPort), service.Options{})
	kc, sc := kernelConn(t, tp)
	exchange(t, kc, sc, 1, "before the malformed segments")

	a := tp.kaddr.As4()
	a[3] = 77
	spoof := netip.AddrFrom4(a)
	s0, _ := settle(t, tp, func(map[string]uint64, map[string]int64) bool { return true })
	out := run(t, tp.k, nil, 60*time.Second, "/usr/bin/python3", script,
		tp.kdev, tp.ifc.HardwareAddr().String(), tp.saddr.String(), spoof.String(),
		strconv.Itoa(malLPort), strconv.Itoa(malCPort),
		tp.kaddr.String(), strconv.Itoa(malKSrc), strconv.Itoa(malKPort))
	s1, _ := settle(t, tp, func(map[string]uint64, map[string]int64) bool { return true })

	answers := map[string]string{}
	markers, echo := -1, ""
	sc2 := bufio.NewScanner(strings.NewReader(out))
	for sc2.Scan() {
		f := strings.Fields(sc2.Text())
		switch {
		case len(f) == 3 && f[0] == "ANSWER":
			answers[f[1]] = f[2]
		case len(f) == 2 && f[0] == "MARKERS":
			markers, _ = strconv.Atoi(f[1])
		case len(f) >= 2 && f[0] == "ECHO":
			echo = strings.Join(f[1:], " ")
		default:
			t.Errorf("tcp_malformed.py said %q", sc2.Text())
		}
	}
	if markers < 0 {
		t.Fatalf("tcp_malformed.py did not finish:\n%s", out)
	}

	// The answers.
	want := map[string]int64{}
	for _, tgt := range []string{"L", "C", "E", "K"} {
		for _, c := range headerClasses {
			probe := tgt + "/" + c.class
			checkAnswer(t, answers, probe, "none")
			for _, name := range c.drops {
				want[name]++
			}
			want["tcp.in_errs"]++
		}
	}
	for _, c := range wellFormed {
		checkAnswer(t, answers, c.probe, c.answer)
		for name, n := range c.counts {
			want[name] += n
		}
	}
	for p, a := range answers {
		t.Errorf("tcp_malformed.py sent %s (answer %s), which the test does not know", p, a)
	}
	// Every marker is a SYN to the closed port.
	want["tcp.drop.no_endpoint"] += int64(markers)

	// The counters.
	for _, name := range sortedKeys(want) {
		if d := counterDelta(s0, s1, name); d != want[name] {
			t.Errorf("%s moved by %d, want %d", name, d, want[name])
		}
	}
	logTCPCounters(t, s0, s1, nil, nil)

	// Both connections still carry data: the script's own (its echo
	// after everything), and the kernel's, both ways.
	if echo != "ok" {
		t.Errorf("the script's connection after the malformed segments: echo %s", echo)
	}
	exchange(t, kc, sc, 2, "after the malformed segments")
	// The script ended its connection with a RST at RCV.NXT (RFC 9293
	// §3.10.7.4: acceptable, the connection is reset).
	eventually(t, 5*time.Second, "the script's connection to go", func() (bool, string) {
		for _, s := range tp.st.Sockets() {
			if s.Remote.Addr() == spoof && s.State != "LISTEN" {
				return false, fmt.Sprintf("%+v", s)
			}
		}
		return true, ""
	})
	if d := counterDelta(s0, tp.st.Stats(), "tcp.estab_resets"); d != 1 {
		t.Errorf("tcp.estab_resets moved by %d, want 1 (the script's closing RST)", d)
	}
	kernelPing(t, tp.k, tp.saddr, 3)
}

// checkAnswer checks the script's answer to one probe and forgets it.
func checkAnswer(t *testing.T, answers map[string]string, probe, want string) {
	t.Helper()
	got, ok := answers[probe]
	delete(answers, probe)
	switch {
	case !ok:
		t.Errorf("%s: not sent", probe)
	case got != want:
		t.Errorf("%s: answered %s, want %s", probe, got, want)
	}
}

// kernelConn connects a kernel socket (made in the kernel's namespace)
// from port malKSrc to the stack's port malKPort, and returns both ends.
func kernelConn(t *testing.T, tp *topo) (*net.TCPConn, *socket.TCPConn) {
	t.Helper()
	ln := listenTCP(t, tp.st, netip.AddrPortFrom(tp.saddr, malKPort))
	var kc *net.TCPConn
	tp.k.MustDo(t, func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(tp.kaddr, malKSrc)), Timeout: 10 * time.Second}
		c, err := d.Dial("tcp4", netip.AddrPortFrom(tp.saddr, malKPort).String())
		if err != nil {
			return err
		}
		kc = c.(*net.TCPConn)
		return nil
	})
	t.Cleanup(func() { kc.Close() })
	return kc, accept(t, ln, 10*time.Second)
}

// exchange sends 1 MB each way, at once, over the kernel's connection
// and checks it.
func exchange(t *testing.T, kc *net.TCPConn, sc *socket.TCPConn, seed uint64, what string) {
	t.Helper()
	up, down := stream{seed: 1000 + seed, n: MB}, stream{seed: 2000 + seed, n: MB}
	deadline := time.Now().Add(20 * time.Second)
	kc.SetDeadline(deadline)
	sc.SetDeadline(deadline)
	errs := make(chan error, 2)
	go func() {
		_, err := io.Copy(kc, up.reader())
		errs <- err
	}()
	go func() {
		_, err := io.Copy(sc, down.reader())
		errs <- err
	}()
	hs, hk := newHashWriter(), newHashWriter()
	go func() {
		_, err := io.CopyN(hk, kc, down.n)
		errs <- err
	}()
	if _, err := io.CopyN(hs, sc, up.n); err != nil {
		t.Fatalf("%s: the stack read: %v (%s)", what, err, brief(sc.Info()))
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("%s: %v (stack: %s)", what, err, brief(sc.Info()))
		}
	}
	hs.check(t, what+": kernel → stack", up)
	hk.check(t, what+": stack → kernel", down)
}

package ndp

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"ustack/proto"
	"ustack/wire"
)

var (
	group1  = netip.MustParseAddr("ff05::1:3")
	querier = netip.MustParseAddr("fe80::10")
)

// records decodes the records of an MLDv2 report.
func records(t *testing.T, s sent) (types []uint8, groups []netip.Addr) {
	t.Helper()
	m := s.icmp(t)
	if m.Type() != wire.ICMPv6MLDv2Report || s.Proto != wire.IPProtoHopByHop || s.TTL != 1 || s.Route.Dst != wire.IPv6AllMLDv2Routers() {
		t.Fatalf("not an MLDv2 report to ff02::16 with hop limit 1 and router alert: %v %v %d %v", m.Type(), s.Proto, s.TTL, s.Route.Dst)
	}
	r, err := wire.ParseMLDv2Report(m.Body())
	if err != nil {
		t.Fatal(err)
	}
	it := r.Records()
	for rec, ok := it.Next(); ok; rec, ok = it.Next() {
		types = append(types, rec.Type())
		groups = append(groups, rec.Multicast())
	}
	return types, groups
}

func query(maxDelay time.Duration, group netip.Addr, v2 bool) []byte {
	return enc(&wire.MLDQueryFields{MaxResponseDelay: maxDelay, Multicast: group, V2: v2, QRV: 2, QueryInterval: 125 * time.Second})
}

func TestMLDJoinLeave(t *testing.T) {
	e := newUpEnv(t)
	if err := e.p.Join(1, group1); err != nil {
		t.Fatal(err)
	}
	out := e.snd.take()
	if len(out) != 1 {
		t.Fatalf("%d packets on join, want 1", len(out))
	}
	if ty, g := records(t, out[0]); !slices.Equal(ty, []uint8{wire.MLDv2ChangeToExclude}) || !slices.Equal(g, []netip.Addr{group1}) {
		t.Errorf("join report %v %v", ty, g)
	}
	if out[0].Route.Src != ourLL {
		t.Errorf("report from %v, want %v", out[0].Route.Src, ourLL)
	}
	// Robustness: one retransmission within the unsolicited report
	// interval.
	e.clk.Advance(MLDUnsolicitedReportInterval)
	if n := len(e.snd.take()); n != MLDRobustness-1 {
		t.Errorf("%d retransmissions, want %d", n, MLDRobustness-1)
	}
	// A second join of the group says nothing.
	e.p.Join(1, group1)
	e.p.Leave(1, group1)
	if n := len(e.snd.take()); n != 0 {
		t.Errorf("%d packets for a second join and leave", n)
	}
	if err := e.p.Leave(1, group1); err != nil {
		t.Fatal(err)
	}
	out = e.snd.take()
	if len(out) != 1 {
		t.Fatalf("%d packets on leave", len(out))
	}
	if ty, g := records(t, out[0]); !slices.Equal(ty, []uint8{wire.MLDv2ChangeToInclude}) || g[0] != group1 {
		t.Errorf("leave report %v %v", ty, g)
	}
	e.clk.Advance(MLDUnsolicitedReportInterval)
	e.snd.take()
	if slices.Contains(e.p.Groups(1), group1) {
		t.Errorf("groups %v after leave", e.p.Groups(1))
	}
	if err := e.p.Leave(1, group1); err == nil {
		t.Error("leaving a group not joined succeeded")
	}
	// Nothing for all-nodes or interface-local groups.
	e.p.Join(1, allNodes)
	e.p.Join(1, netip.MustParseAddr("ff01::5"))
	if n := len(e.snd.take()); n != 0 {
		t.Errorf("%d reports for unreportable groups", n)
	}
}

func TestMLDGeneralQuery(t *testing.T) {
	e := newUpEnv(t)
	e.p.Join(1, group1)
	e.clk.Advance(time.Second)
	e.snd.take()

	e.in(querier, allNodes, 1, query(2*time.Second, netip.IPv6Unspecified(), true))
	if n := len(e.snd.take()); n != 0 {
		t.Errorf("answered at once: %d packets", n)
	}
	e.clk.Advance(2 * time.Second)
	out := e.snd.take()
	if len(out) != 1 {
		t.Fatalf("%d answers, want 1", len(out))
	}
	ty, g := records(t, out[0])
	want := []netip.Addr{wire.SolicitedNodeMulticast(ourLL), group1}
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(g, want) || !slices.Equal(ty, []uint8{wire.MLDv2ModeIsExclude, wire.MLDv2ModeIsExclude}) {
		t.Errorf("answer %v %v, want IS_EX for %v", ty, g, want)
	}
}

func TestMLDGroupQuery(t *testing.T) {
	e := newUpEnv(t)
	e.p.Join(1, group1)
	e.clk.Advance(time.Second)
	e.snd.take()

	e.in(querier, group1, 1, query(time.Second, group1, true))
	e.in(querier, netip.MustParseAddr("ff05::99"), 1, query(time.Second, netip.MustParseAddr("ff05::99"), true))
	e.clk.Advance(time.Second)
	out := e.snd.take()
	if len(out) != 1 {
		t.Fatalf("%d answers, want 1", len(out))
	}
	if ty, g := records(t, out[0]); !slices.Equal(g, []netip.Addr{group1}) || ty[0] != wire.MLDv2ModeIsExclude {
		t.Errorf("answer %v %v", ty, g)
	}
}

func TestMLDQueryValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  netip.Addr
		hl   uint8
		msg  []byte
		why  proto.DropReason
	}{
		{"hop limit 2", querier, 2, query(time.Second, netip.IPv6Unspecified(), true), proto.DropMalformed},
		{"global source", netip.MustParseAddr("2001:db8::1"), 1, query(time.Second, netip.IPv6Unspecified(), true), proto.DropBadSource},
		{"length 25", querier, 1, query(time.Second, netip.IPv6Unspecified(), true)[:25], proto.DropBadLength},
		{"unicast group", querier, 1, query(time.Second, ourLL, true), proto.DropMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newUpEnv(t)
			e.in(tc.src, allNodes, tc.hl, tc.msg)
			e.clk.Advance(time.Minute)
			if n := len(e.snd.take()); n != 0 {
				t.Errorf("%d answers", n)
			}
			if got := e.drops(tc.why); got != 1 {
				t.Errorf("drops for %v = %d, want 1", tc.why, got)
			}
		})
	}
}

// TestMLDv1Compat: an MLDv1 query puts the interface in MLDv1 mode:
// v1 reports to the group, dones to all-routers.
func TestMLDv1Compat(t *testing.T) {
	e := newUpEnv(t)
	e.in(querier, allNodes, 1, query(time.Second, netip.IPv6Unspecified(), false))
	e.clk.Advance(time.Second)
	out := e.snd.take()
	if len(out) != 1 {
		t.Fatalf("%d answers, want 1 (the solicited-node group)", len(out))
	}
	sn := wire.SolicitedNodeMulticast(ourLL)
	if m := out[0].icmp(t); m.Type() != wire.ICMPv6MLDReport || out[0].Route.Dst != sn || out[0].TTL != 1 {
		t.Errorf("answer %v to %v", m.Type(), out[0].Route.Dst)
	}
	e.p.Join(1, group1)
	if s := one(t, e.snd.take(), wire.ICMPv6MLDReport); s.Route.Dst != group1 {
		t.Errorf("v1 report to %v", s.Route.Dst)
	}
	e.clk.Advance(time.Second)
	e.snd.take()
	e.p.Leave(1, group1)
	if s := one(t, e.snd.take(), wire.ICMPv6MLDDone); s.Route.Dst != wire.IPv6AllRouters() {
		t.Errorf("done to %v", s.Route.Dst)
	}
	// Back to MLDv2 once the older querier is gone.
	e.clk.Advance(olderQuerierTimeout)
	e.snd.take()
	e.p.Join(1, group1)
	one(t, e.snd.take(), wire.ICMPv6MLDv2Report)
}

// TestGroupObserver: network/ipv6's group changes become MLD joins, also
// for every interface.
func TestGroupObserver(t *testing.T) {
	e := newUpEnv(t)
	e.p.GroupChanged(0, group1, true)
	if _, g := records(t, one(t, e.snd.take(), wire.ICMPv6MLDv2Report)); g[0] != group1 {
		t.Errorf("report for %v", g)
	}
	e.p.GroupChanged(0, group1, false)
	if ty, _ := records(t, one(t, e.snd.take(), wire.ICMPv6MLDv2Report)); ty[0] != wire.MLDv2ChangeToInclude {
		t.Errorf("leave record %v", ty)
	}
}

// TestMLDSplitsReports: a general query's answer fits the MTU.
func TestMLDSplitsReports(t *testing.T) {
	e := newUpEnv(t)
	for i := range 100 {
		g := netip.AddrFrom16([16]byte{0xff, 0x05, 14: byte(i >> 8), 15: byte(i)})
		e.p.Join(1, g)
	}
	e.clk.Advance(time.Second)
	e.snd.take()
	e.ifc.mu.Lock()
	e.ifc.mtu = 1280
	e.ifc.mu.Unlock()
	e.in(querier, allNodes, 1, query(0, netip.IPv6Unspecified(), true))
	e.clk.Advance(0)
	total := 0
	for _, s := range e.snd.take() {
		if len(s.Data)+wire.IPv6HeaderLen > 1280 {
			t.Errorf("report of %d bytes", len(s.Data))
		}
		_, g := records(t, s)
		total += len(g)
	}
	if total != 101 {
		t.Errorf("%d records, want 101", total)
	}
}

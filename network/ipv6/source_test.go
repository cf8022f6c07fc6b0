package ipv6

import (
	"net/netip"
	"testing"
)

// pickSource runs the RFC 6724 comparison over the candidates, as
// DefaultSource does.
func pickSource(cands []candidate, dst netip.Addr) netip.Addr {
	var best candidate
	for _, c := range cands {
		if !best.addr.IsValid() || betterSource(c, best, dst) {
			best = c
		}
	}
	return best.addr
}

// c is a candidate on the outgoing interface with a /64; flags: "d"
// deprecated, "o" on another interface.
func c(a, flags string) candidate {
	x := candidate{addr: netip.MustParseAddr(a), bits: 64, onOut: true}
	for _, f := range flags {
		switch f {
		case 'd':
			x.deprecated = true
		case 'o':
			x.onOut = false
		}
	}
	return x
}

func TestSourceSelectionRFC6724(t *testing.T) {
	tests := []struct {
		name  string
		dst   string
		cands []candidate
		want  string
	}{
		// RFC 6724 §10.2, the examples that do not involve home or
		// temporary addresses (rules 4 and 7 are not implemented).
		{"10.2 appropriate scope, global", "2001:db8:1::1",
			[]candidate{c("2001:db8:3::1", ""), c("fe80::1", "")}, "2001:db8:3::1"},
		{"10.2 appropriate scope, site multicast", "ff05::1",
			[]candidate{c("2001:db8:3::1", ""), c("fe80::1", "")}, "2001:db8:3::1"},
		{"10.2 same address though deprecated", "2001:db8:1::1",
			[]candidate{c("2001:db8:1::1", "d"), c("2001:db8:2::1", "")}, "2001:db8:1::1"},
		{"10.2 appropriate scope beats deprecation", "fe80::1",
			[]candidate{c("fe80::2", "d"), c("2001:db8:1::1", "")}, "fe80::2"},
		{"10.2 longest matching prefix", "2001:db8:1::1",
			[]candidate{c("2001:db8:1::2", ""), c("2001:db8:3::2", "")}, "2001:db8:1::2"},
		{"10.2 matching label (6to4)", "2002:c633:6401::1",
			[]candidate{c("2002:c633:6401::d5e3:7953:13eb:22e8", ""), c("2001:db8:1::2", "")}, "2002:c633:6401::d5e3:7953:13eb:22e8"},
		// The other rules, each on its own.
		{"rule 2 larger scope when the smaller can't reach", "ff0e::1",
			[]candidate{c("fe80::1", ""), c("fec0::1", ""), c("2001:db8::1", "")}, "2001:db8::1"},
		{"rule 2 smallest sufficient scope", "ff05::1",
			[]candidate{c("2001:db8::1", ""), c("fec0::1", "")}, "fec0::1"},
		{"rule 3 avoid deprecated", "2001:db8:9::1",
			[]candidate{c("2001:db8:9::2", "d"), c("2001:db8:7::2", "")}, "2001:db8:7::2"},
		{"rule 3 before rule 5", "2001:db8:9::1",
			[]candidate{c("2001:db8:9::2", "d"), c("2001:db8:7::2", "o")}, "2001:db8:7::2"},
		{"rule 5 outgoing interface before prefix", "2001:db8:9::1",
			[]candidate{c("2001:db8:9::2", "o"), c("2001:db8:7::2", "")}, "2001:db8:7::2"},
		{"rule 6 ULA to ULA", "fd01::1",
			[]candidate{c("2001:db8::1", ""), c("fd99::1", "")}, "fd99::1"},
		{"rule 6 global to global", "2001:db8:5::1",
			[]candidate{c("fd00:1::1", ""), c("2a00:1::1", "")}, "2a00:1::1"},
		{"rule 6 before rule 8 (Teredo label)", "2001:db8::1",
			[]candidate{c("2001::1", ""), c("2a00::1", "")}, "2a00::1"},
		{"rule 8 bounded by the source prefix", "2001:db8:1:0:ff::1",
			[]candidate{c("2001:db8:1:0:ff::2", "o"), {addr: netip.MustParseAddr("2001:db8:1::3"), bits: 48, onOut: false}}, "2001:db8:1:0:ff::2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := netip.MustParseAddr(tc.dst)
			if got := pickSource(tc.cands, dst); got != netip.MustParseAddr(tc.want) {
				t.Errorf("source for %s = %v, want %s", tc.dst, got, tc.want)
			}
			// The order of the candidates does not matter.
			rev := make([]candidate, len(tc.cands))
			for i, x := range tc.cands {
				rev[len(rev)-1-i] = x
			}
			if got := pickSource(rev, dst); got != netip.MustParseAddr(tc.want) {
				t.Errorf("reversed: source for %s = %v, want %s", tc.dst, got, tc.want)
			}
		})
	}
}

func TestPolicyLabels(t *testing.T) {
	for a, want := range map[string]int{
		"::1": 0, "2001:db8::1": 1, "::ffff:1.2.3.4": 4, "2002::1": 2, "2001::1": 5,
		"fd00::1": 13, "::1.2.3.4": 3, "fec0::1": 11, "3ffe::1": 12, "fe80::1": 1,
	} {
		if got := label(netip.MustParseAddr(a)); got != want {
			t.Errorf("label(%s) = %d, want %d", a, got, want)
		}
	}
}

func TestDeprecatedAvoided(t *testing.T) {
	r := newRig(t)
	r.if1.addrs = append(r.if1.addrs, netip.MustParsePrefix("2001:db8:9::1/64"))
	dst := netip.MustParseAddr("2001:db8:9::99")
	if got := r.p.DefaultSource(r.if1, dst); got.String() != "2001:db8:9::1" {
		t.Fatalf("before: %v", got)
	}
	r.p.SetDeprecated(1, netip.MustParseAddr("2001:db8:9::1"), true)
	if !r.p.Deprecated(1, netip.MustParseAddr("2001:db8:9::1")) {
		t.Fatal("not marked")
	}
	if got := r.p.DefaultSource(r.if1, dst); got.String() != "2001:db8:1::1" {
		t.Errorf("deprecated still chosen: %v", got)
	}
	// Still chosen to reach itself (rule 1).
	if got := r.p.DefaultSource(r.if1, netip.MustParseAddr("2001:db8:9::1")); got.String() != "2001:db8:9::1" {
		t.Errorf("rule 1: %v", got)
	}
	r.p.SetDeprecated(1, netip.MustParseAddr("2001:db8:9::1"), false)
	if got := r.p.DefaultSource(r.if1, dst); got.String() != "2001:db8:9::1" {
		t.Errorf("preferred again: %v", got)
	}
}

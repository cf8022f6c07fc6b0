package wire_test

import (
	"net/netip"
	"testing"
	"time"

	"ustack/wire"
)

// TestParseAllocs6: the IPv6 receive path (header, extension chain and
// options, ICMPv6 with its checksum and quote, ND messages and options,
// MLD) allocates nothing.
func TestParseAllocs6(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"IPv6 + extension chain", func() {
			h, err := wire.ParseIPv6(ip6(goldenExtChain))
			if err != nil {
				panic(err)
			}
			it := wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
			for e, ok := it.Next(); ok; e, ok = it.Next() {
				oit := wire.NewIPv6OptIter(e.Options())
				for o, ok := oit.Next(); ok; o, ok = oit.Next() {
					v, _ := o.RouterAlert()
					sink += int(o.Action()) + int(v)
				}
				if e.Type == wire.IPProtoFragment {
					f, _ := wire.ParseIPv6Fragment(e.Data)
					sink += f.Offset() + int(f.ID())
				}
			}
			if it.Err() != nil {
				panic(it.Err())
			}
			m, _ := wire.ParseICMPv6(h.Payload()[it.UpperOffset():])
			if !m.ChecksumValid(h.Src(), h.Dst()) {
				panic("checksum")
			}
			sink += int(h.FlowLabel())
		}},
		{"ICMPv6 quote", func() {
			h, _ := wire.ParseIPv6(ip6(goldenPortUnreach6))
			m, _ := wire.ParseICMPv6(h.Payload())
			q, err := m.Quote()
			if err != nil || !m.ChecksumValid(h.Src(), h.Dst()) {
				panic(err)
			}
			sink += len(q.Payload())
		}},
		{"NDP", func() {
			ra, err := wire.ParseNDPRouterAdvert(body(goldenRA))
			if err != nil {
				panic(err)
			}
			it := wire.NewNDPOptIter(ra.Options())
			for o, ok := it.Next(); ok; o, ok = it.Next() {
				if p, ok := o.PrefixInfo(); ok {
					sink += p.Prefix.Bits() + int(p.ValidLifetime/time.Second)
				}
				if m, ok := o.LinkAddr(); ok {
					sink += int(m[5])
				}
				mtu, _ := o.MTU()
				sink += int(mtu)
			}
			ns, _ := wire.ParseNDPNeighborSolicit(body(goldenNS))
			na, _ := wire.ParseNDPNeighborAdvert(body(goldenNA))
			rd, _ := wire.ParseNDPRedirect(body(goldenRedirect))
			if ns.Target() == na.Target() && rd.Dst().IsValid() {
				sink++
			}
			sink += int(ra.RouterLifetime())
			sn := wire.SolicitedNodeMulticast(ns.Target())
			sink += int(wire.MulticastMACv6(sn.As16())[5])
			if wire.LinkLocalFromMAC(macOne).IsLinkLocalUnicast() {
				sink++
			}
		}},
		{"MLD", func() {
			q, _ := wire.ParseMLDQuery(body(goldenMLDv2Query))
			sink += int(q.MaxResponseDelay()) + int(q.QRV()) + q.NumSources()
			for s := range q.Sources() {
				sink += int(s.BitLen())
			}
			r, _ := wire.ParseMLDv2Report(body(goldenMLDv2Report4))
			it := r.Records()
			for rec, ok := it.Next(); ok; rec, ok = it.Next() {
				if rec.Multicast().IsMulticast() {
					sink++
				}
				for s := range rec.Sources() {
					sink += int(s.BitLen())
				}
			}
		}},
		{"errors", func() {
			_, err1 := wire.ParseIPv6(ip6(goldenEcho6)[:30])
			_, err2 := wire.ParseNDPNeighborSolicit([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0})
			it := wire.NewIPv6ExtIter(wire.IPProtoDstOpts, []byte{0, 0, 1, 4, 0, 0, 0, 0})
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
			if err1 == nil || err2 == nil || it.Err() == nil {
				panic("no error")
			}
		}},
	} {
		if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
}

// TestEncodeAllocs6: the IPv6 encoders allocate nothing.
func TestEncodeAllocs6(t *testing.T) {
	buf := make([]byte, 256)
	ipf := wire.IPv6Fields{PayloadLen: 32, NextHeader: wire.IPProtoICMPv6, HopLimit: 255, Src: a6one, Dst: netip.MustParseAddr("ff02::1:ff00:2")}
	ns := wire.NDPNeighborSolicitFields{Target: a6two, SourceLLA: &macOne}
	ra := wire.NDPRouterAdvertFields{CurHopLimit: 64, SourceLLA: &macTwo, MTU: 1500,
		Prefixes: []wire.NDPPrefixInfo{{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true}}}
	rep := wire.MLDv2ReportFields{Records: []wire.MLDv2Record{{Type: wire.MLDv2ChangeToExclude, Multicast: netip.MustParseAddr("ff02::1:ff00:1")}}}
	frag := wire.IPv6FragmentFields{NextHeader: wire.IPProtoUDP, Offset: 1448, More: true, ID: 7}
	n := testing.AllocsPerRun(100, func() {
		ipf.Encode(buf)
		ns.Encode(buf[40:])
		wire.ICMPv6(buf[40:72]).UpdateChecksum(ipf.Src, ipf.Dst)
		ra.Encode(buf[40:])
		rep.Encode(buf[40:])
		frag.Encode(buf[40:])
		wire.EncodeIPv6RouterAlertHeader(buf[40:], wire.IPProtoICMPv6, wire.IPv6RouterAlertMLD)
	})
	if n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

package ndp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"ustack/proto"
	"ustack/wire"
)

// MLD, the listener side (RFC 3810 §6, with MLDv1 compatibility, §8):
// enough for snooping switches and multicast routers to deliver the groups
// we listen to. Every group is joined for all sources (EXCLUDE {}).
//
//	join  (first reference) -> CHANGE_TO_EXCLUDE {} report, MLDRobustness
//	                           times, random intervals up to 1s
//	leave (last reference)  -> CHANGE_TO_INCLUDE {} report, likewise
//	general query           -> one interface timer, random within the
//	                           maximum response delay: IS_EXCLUDE {} for
//	                           every group
//	group-specific query    -> a per-group timer: IS_EXCLUDE {} for it
//	MLDv1 query             -> MLDv1 mode for the Older Version Querier
//	                           Present Timeout: v1 reports and dones
//
// All messages go to ff02::16 (v1: reports to the group, dones to
// ff02::2) with hop limit 1 and a router alert, from our link-local
// address or :: before we have one (RFC 3810 §5).

// olderQuerierTimeout is the Older Version Querier Present Timeout with
// the default robustness (2), query interval (125s) and query response
// interval (10s) (RFC 3810 §9.12).
const olderQuerierTimeout = 2*125*time.Second + 10*time.Second

// group is a multicast group joined on an interface. It stays in the map
// after the last leave until its leave reports are sent.
type group struct {
	refs       int // joins: sockets' and ndp's own
	own        int // ndp's own joins (solicited-node): Host.JoinGroup is held while > 0
	changeType uint8
	changeLeft int // state-change reports still to send
	changeT    timer
	respT      timer // answer to a group-specific (or MLDv1) query
}

type mldState struct {
	generalT timer     // answer to an MLDv2 general query
	v1Until  time.Time // MLDv1 compatibility mode until then
}

// reportable reports whether MLD reports go out for g (RFC 3810 §6: never
// for ff02::1, nor for groups of reserved or interface-local scope).
func reportable(g netip.Addr) bool {
	scope := g.As16()[1] & 0x0f
	return g != wire.IPv6AllNodes() && scope > 1
}

// Join adds a listener of group on the interface (0: every interface,
// those attached later included) for MLD: the first one sends unsolicited
// reports, and queries are answered while any is left. It does not make
// the IP layer accept the group (the caller does that).
func (p *Protocol) Join(ifIndex int, group netip.Addr) error {
	group = group.WithZone("")
	if !group.Is6() || group.Is4In6() || !group.IsMulticast() {
		return fmt.Errorf("%w: %v is not an IPv6 multicast group", ErrInvalid, group)
	}
	p.mu.Lock()
	if ifIndex == 0 {
		p.every[group]++
		for _, at := range p.att {
			if at.started {
				p.joinGroup(at, group, false)
			}
		}
	} else if at := p.att[ifIndex]; at != nil {
		p.joinGroup(at, group, false)
	} else {
		p.mu.Unlock()
		return ErrNotAttached
	}
	p.mu.Unlock()
	p.flush()
	return nil
}

// Leave removes a listener added by Join; the last one sends leave
// reports.
func (p *Protocol) Leave(ifIndex int, group netip.Addr) error {
	group = group.WithZone("")
	p.mu.Lock()
	defer p.flush()
	defer p.mu.Unlock()
	if ifIndex == 0 {
		if p.every[group] == 0 {
			return fmt.Errorf("%w: %v not joined", ErrInvalid, group)
		}
		if p.every[group]--; p.every[group] == 0 {
			delete(p.every, group)
		}
		for _, at := range p.att {
			if at.started {
				p.leaveGroup(at, group, false)
			}
		}
		return nil
	}
	at := p.att[ifIndex]
	if at == nil {
		return ErrNotAttached
	}
	if g := at.groups[group]; g == nil || g.refs-g.own <= 0 {
		return fmt.Errorf("%w: %v not joined", ErrInvalid, group)
	}
	p.leaveGroup(at, group, false)
	return nil
}

// GroupChanged hears network/ipv6's first join and last leave of a group
// (ipv6.GroupObserver) and makes them MLD's: Join or Leave.
func (p *Protocol) GroupChanged(ifIndex int, group netip.Addr, joined bool) {
	if joined {
		p.Join(ifIndex, group)
	} else {
		p.Leave(ifIndex, group)
	}
}

// Groups lists the groups joined on the interface, sorted.
func (p *Protocol) Groups(ifIndex int) []netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifIndex]
	if at == nil {
		return nil
	}
	var out []netip.Addr
	for a, g := range at.groups {
		if g.refs > 0 {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// joinGroup adds a reference to g; own joins also hold Host.JoinGroup.
// Called with p.mu held.
func (p *Protocol) joinGroup(at *attachment, g netip.Addr, own bool) {
	gr := at.groups[g]
	if gr == nil {
		gr = &group{}
		at.groups[g] = gr
	}
	if own {
		gr.own++
		if gr.own == 1 {
			host, idx := at.host, at.ifc.Index()
			p.later(func() { host.JoinGroup(idx, g) })
		}
	}
	gr.refs++
	if gr.refs == 1 && reportable(g) {
		p.stateChange(at, g, gr, wire.MLDv2ChangeToExclude)
	}
}

// leaveGroup drops a reference to g. Called with p.mu held.
func (p *Protocol) leaveGroup(at *attachment, g netip.Addr, own bool) {
	gr := at.groups[g]
	if gr == nil || gr.refs == 0 {
		return
	}
	if own {
		if gr.own == 0 {
			return
		}
		gr.own--
		if gr.own == 0 {
			host, idx := at.host, at.ifc.Index()
			p.later(func() { host.LeaveGroup(idx, g) })
		}
	}
	gr.refs--
	if gr.refs > 0 {
		return
	}
	gr.respT.stop()
	if !reportable(g) {
		delete(at.groups, g)
		return
	}
	p.stateChange(at, g, gr, wire.MLDv2ChangeToInclude)
}

// stateChange sends the report of a join (CHANGE_TO_EXCLUDE {}) or leave
// (CHANGE_TO_INCLUDE {}) and schedules its retransmissions (RFC 3810
// §6.1). Called with p.mu held.
func (p *Protocol) stateChange(at *attachment, g netip.Addr, gr *group, typ uint8) {
	gr.changeType = typ
	gr.changeLeft = MLDRobustness
	p.sendChange(at, g, gr)
}

func (p *Protocol) sendChange(at *attachment, g netip.Addr, gr *group) {
	if gr.changeLeft <= 0 {
		return
	}
	gr.changeLeft--
	join := gr.changeType == wire.MLDv2ChangeToExclude
	switch {
	case p.mldv1(at) && join:
		p.sendV1(at, wire.ICMPv6MLDReport, g)
	case p.mldv1(at):
		// RFC 2710 §4: one done message is enough.
		gr.changeLeft = 0
		p.sendV1(at, wire.ICMPv6MLDDone, g)
	default:
		p.sendV2(at, []wire.MLDv2Record{{Type: gr.changeType, Multicast: g}})
	}
	if gr.changeLeft > 0 {
		p.arm(at, &gr.changeT, p.randDuration(MLDUnsolicitedReportInterval), func() { p.sendChange(at, g, gr) })
		return
	}
	if gr.refs == 0 && at.groups[g] == gr {
		delete(at.groups, g)
	}
}

// mldv1 reports whether an MLDv1 querier was heard recently (RFC 3810
// §8.2.1). Called with p.mu held.
func (p *Protocol) mldv1(at *attachment) bool {
	return !at.mld.v1Until.IsZero() && at.clk.Now().Before(at.mld.v1Until)
}

// mldQuery handles a received query (RFC 3810 §5.1.14 validation, §6.2
// and §8 processing). The router alert option is network/ipv6's to see;
// it is not checked here.
func (p *Protocol) mldQuery(ifc proto.Interface, info proto.PacketInfo, m wire.ICMPv6) proto.DropReason {
	q, err := wire.ParseMLDQuery(m.Body())
	if err != nil {
		return parseDrop(err) // lengths 21-23: ignored (RFC 3810 §8.1)
	}
	if !info.Src.IsLinkLocalUnicast() {
		return proto.DropBadSource
	}
	if info.TTL != 1 {
		return proto.DropMalformed
	}
	g := q.MulticastAddr()
	if !g.IsUnspecified() && !g.IsMulticast() {
		return proto.DropMalformed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifc.Index()]
	if at == nil || !ifc.Up() {
		return proto.DropInterfaceDown
	}
	now := at.clk.Now()
	maxDelay := q.MaxResponseDelay()
	if !q.IsV2() {
		at.mld.v1Until = now.Add(olderQuerierTimeout)
		at.mld.generalT.stop()
	}
	if p.mldv1(at) {
		// RFC 2710 §4: a timer per group, reset only to an earlier
		// time.
		for a, gr := range at.groups {
			if gr.refs > 0 && reportable(a) && (g.IsUnspecified() || g == a) {
				p.scheduleGroup(at, a, gr, now, maxDelay)
			}
		}
		return proto.DropNone
	}
	delay := p.randDuration(maxDelay)
	gen := &at.mld.generalT
	if gen.pending() && !gen.when.After(now.Add(delay)) {
		return proto.DropNone // §6.2 rule 1: a sooner answer covers it
	}
	if g.IsUnspecified() {
		// §6.2 rule 2: one answer for every group.
		p.arm(at, gen, delay, func() { p.reportAll(at) })
		return proto.DropNone
	}
	// §6.2 rules 3-4: a group (or group-and-source) specific query; all
	// sources are joined, so the answer is the group's state.
	if gr := at.groups[g]; gr != nil && gr.refs > 0 && reportable(g) {
		p.scheduleGroup(at, g, gr, now, maxDelay)
	}
	return proto.DropNone
}

// scheduleGroup arms gr's answer timer at a random delay within maxDelay,
// unless it is already due sooner. Called with p.mu held.
func (p *Protocol) scheduleGroup(at *attachment, g netip.Addr, gr *group, now time.Time, maxDelay time.Duration) {
	delay := p.randDuration(maxDelay)
	if gr.respT.pending() && !gr.respT.when.After(now.Add(delay)) {
		return
	}
	p.arm(at, &gr.respT, delay, func() {
		if gr.refs == 0 {
			return
		}
		if p.mldv1(at) {
			p.sendV1(at, wire.ICMPv6MLDReport, g)
			return
		}
		p.sendV2(at, []wire.MLDv2Record{{Type: wire.MLDv2ModeIsExclude, Multicast: g}})
	})
}

// reportAll answers a general query: IS_EXCLUDE {} for every group, in as
// few reports as fit the MTU. Called with p.mu held.
func (p *Protocol) reportAll(at *attachment) {
	var recs []wire.MLDv2Record
	for a, gr := range at.groups {
		if gr.refs > 0 && reportable(a) {
			recs = append(recs, wire.MLDv2Record{Type: wire.MLDv2ModeIsExclude, Multicast: a})
		}
	}
	slices.SortFunc(recs, func(x, y wire.MLDv2Record) int { return x.Multicast.Compare(y.Multicast) })
	// Room for records after the IPv6, hop-by-hop and report headers.
	per := max(1, (at.ifc.MTU()-wire.IPv6HeaderLen-wire.IPv6RouterAlertHeaderLen-8)/20)
	for len(recs) > 0 {
		n := min(per, len(recs))
		p.sendV2(at, recs[:n])
		recs = recs[n:]
	}
}

// mldSource is the source of MLD messages: our link-local address, or ::
// while we have none (RFC 3810 §5).
func mldSource(at *attachment) netip.Addr {
	if a := at.linkLocal(); a.IsValid() {
		return a
	}
	return netip.IPv6Unspecified()
}

// sendV2 queues an MLDv2 report. Called with p.mu held.
func (p *Protocol) sendV2(at *attachment, recs []wire.MLDv2Record) {
	f := wire.MLDv2ReportFields{Records: recs}
	p.send(at.ifc, mldSource(at), wire.IPv6AllMLDv2Routers(), 1, true, f.Len(), f.Encode)
}

// sendV1 queues an MLDv1 report (to the group) or done (to all routers)
// (RFC 2710 §3). Called with p.mu held.
func (p *Protocol) sendV1(at *attachment, t wire.ICMPv6Type, g netip.Addr) {
	f := wire.MLDv1ReportFields{Type: t, Multicast: g}
	dst := g
	if t == wire.ICMPv6MLDDone {
		dst = wire.IPv6AllRouters()
	}
	p.send(at.ifc, mldSource(at), dst, 1, true, f.Len(), f.Encode)
}

package tcp

import (
	"encoding/binary"

	"ustack/internal/seqnum"
	"ustack/proto"
)

// handleICMP takes an ICMP error quoting one of this connection's
// segments. The quoted sequence number must lie in [SND.UNA, SND.NXT)
// (RFC 5927 §4.1; RFC 5961 applies the same idea to RSTs), or the error is
// ignored as forged or stale. Fragmentation needed lowers the path MTU and
// resends what no longer fits (RFC 1191 §6.5, RFC 8201 for IPv6); in
// SYN-SENT and SYN-RECEIVED an unreachable error ends the attempt (as
// Linux does); otherwise errors are soft (RFC 1122 §4.2.3.9, RFC 5461):
// recorded for SO_ERROR and reported if the connection later times out.
func (c *Conn) handleICMP(e *proto.ICMPError) {
	c.mu.Lock()
	defer c.unlock()
	if len(e.Quote) < 8 || c.st == StateClosed || c.st == StateTimeWait {
		return
	}
	seq := seqnum.Value(binary.BigEndian.Uint32(e.Quote[4:8]))
	if !seq.InRange(c.sndUna, c.sndNxt) {
		c.p.stats.ICMPIgnored.Inc()
		return
	}
	switch e.Kind {
	case proto.ErrFragNeeded:
		c.lowerMTU(e.MTU)
		return
	case proto.ErrTimeExceeded, proto.ErrReassemblyTimeExceeded, proto.ErrParamProblem, proto.ErrSourceRouteFailed:
		c.softErr = e.Kind.Errno()
		return
	}
	err := e.Kind.Errno()
	if c.st == StateSynSent || c.st == StateSynReceived {
		c.p.stats.AttemptFails.Inc()
		c.toClosed(err)
		return
	}
	c.softErr = err
	c.readable.signal()
}

// Least path MTUs: RFC 791 (68, but Linux floors at 552 against forged
// errors) and RFC 8200 §5 (1280).
const (
	minPMTU4 = 552
	minPMTU6 = 1280
)

// lowerMTU applies a smaller path MTU: the MSS follows, and the segments
// in flight that no longer fit are sent again, cut to size, without a
// congestion response (they were dropped by a router, not by congestion).
func (c *Conn) lowerMTU(mtu int) {
	floor := minPMTU4
	if c.ipHdr != 20 {
		floor = minPMTU6
	}
	if mtu == 0 {
		// RFC 1191 §5: no next-hop MTU given: step down a plateau.
		mtu = plateauBelow(c.pmtu)
	}
	mtu = max(mtu, floor)
	if mtu >= c.pmtu {
		return
	}
	c.pmtu = mtu
	c.advMSS = min(c.advMSS, c.routeMSS())
	if c.smss > 0 {
		c.setMSS()
	}
	c.p.stats.PMTUUpdates.Inc()
	if c.dataState() {
		c.ensureFlight()
		c.simpleRetransmit()
		c.output()
	}
}

// plateauBelow is the next MTU plateau below mtu (RFC 1191 §7, table 7-1).
func plateauBelow(mtu int) int {
	for _, p := range []int{32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68} {
		if p < mtu {
			return p
		}
	}
	return 68
}

package tcp

import (
	"time"
)

// Info is a connection's state and counters, in the manner of Linux
// TCP_INFO. Sizes are in bytes.
type Info struct {
	State State
	// CAState is the sender's congestion state: "open", "recovery" (fast
	// recovery) or "loss" (after a retransmission timeout).
	CAState string
	// CongestionControl names the algorithm.
	CongestionControl string

	// Options agreed in the handshake.
	TimestampsOK, SACKOK, WScaleOK bool
	SndWScale, RcvWScale           int

	// RTT and timers.
	RTO, SRTT, RTTVar, MinRTT time.Duration
	Backoff                   int // RTO doublings in force

	// Segment sizes and the path.
	MSS      int // sender MSS (payload of a full segment)
	AdvMSS   int // the MSS we announced
	RcvMSS   int // estimate of the peer's segment size
	PMTU     int
	CWnd     int
	SSThresh int
	// PacingRate is the controller's pacing rate in bytes per second (0:
	// none).
	PacingRate uint64

	// The scoreboard now.
	Unacked    int  // bytes sent and not acknowledged
	SACKed     int  // of which SACKed
	Lost       int  // of which deemed lost
	Retrans    int  // of which retransmitted and in flight
	InFlight   int  // RFC 6675 pipe
	NotSent    int  // queued and never sent
	Reordering bool // RACK has seen reordering

	// Windows.
	SndWnd int // the peer's window
	RcvWnd int // the window we advertise now
	RcvBuf int // receive buffer (auto-tuned unless set)
	SndBuf int
	RecvQ  int // bytes waiting for Read
	OOOQ   int // bytes held beyond a hole

	// Counters.
	Retransmits   int    // consecutive RTOs unrecovered
	TotalRetrans  uint64 // segments retransmitted
	Probes        uint64 // zero-window probes sent
	BytesSent     uint64 // data bytes sent, retransmissions excluded
	BytesRetrans  uint64
	BytesAcked    uint64
	BytesReceived uint64
	SegsOut       uint64
	SegsIn        uint64
	DataSegsOut   uint64
	DataSegsIn    uint64
	DSACKDups     uint64 // D-SACK blocks received
	Undos         uint64 // congestion responses undone as spurious

	// Delivery rate (draft-cheng-iccrg-delivery-rate-estimation).
	DeliveryRate uint64 // bytes per second, of the latest sample
	Delivered    uint64 // bytes delivered
	AppLimited   bool

	// Time since the last events (0: never).
	LastDataSent, LastDataRecv, LastAckRecv time.Duration
}

// connInfoStats are the per-connection counters Info reports.
type connInfoStats struct {
	retransmits               int
	totalRetrans, probes      uint64
	bytesSent, bytesRetrans   uint64
	bytesAcked, bytesReceived uint64
	segsOut, segsIn           uint64
	dataSegsOut, dataSegsIn   uint64
	dsackRecv, undos          uint64
}

// noFlight is the flight state of a connection that has sent no data,
// for Info to read. Never written.
var noFlight flight

// Info returns the connection's state and counters.
func (c *Conn) Info() Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.p.clk.Now()
	fl := c.flight
	if fl == nil {
		fl = &noFlight
	}
	ago := func(t time.Time) time.Duration {
		if t.IsZero() {
			return 0
		}
		return now.Sub(t)
	}
	in := Info{
		State:         c.st,
		CAState:       fl.rec.state.String(),
		TimestampsOK:  c.tsOK,
		SACKOK:        c.sackOK,
		WScaleOK:      c.wsOK,
		RTO:           c.rtt.current(c),
		SRTT:          c.rtt.srtt,
		RTTVar:        c.rtt.rttvar,
		MinRTT:        c.rtt.minRTT,
		Backoff:       c.rtt.backoff,
		MSS:           c.smss,
		AdvMSS:        c.advMSS,
		RcvMSS:        c.rcvMSS,
		PMTU:          c.pmtu,
		CWnd:          c.ccs.CWnd,
		SSThresh:      c.ccs.SSThresh,
		PacingRate:    c.ccs.PacingRate,
		SACKed:        fl.sb.sacked,
		Lost:          fl.sb.lost,
		Retrans:       fl.sb.retrans,
		InFlight:      c.pipe(),
		NotSent:       c.unsent(),
		Reordering:    fl.rack.reordSeen,
		SndWnd:        c.sndWnd,
		RcvBuf:        c.rcvBuf,
		SndBuf:        c.sndBuf,
		RecvQ:         c.recvq.n,
		OOOQ:          c.recvq.oooBytes,
		Retransmits:   c.stats.retransmits,
		TotalRetrans:  c.stats.totalRetrans,
		Probes:        c.stats.probes,
		BytesSent:     c.stats.bytesSent,
		BytesRetrans:  c.stats.bytesRetrans,
		BytesAcked:    c.stats.bytesAcked,
		BytesReceived: c.stats.bytesReceived,
		SegsOut:       c.stats.segsOut,
		SegsIn:        c.stats.segsIn,
		DataSegsOut:   c.stats.dataSegsOut,
		DataSegsIn:    c.stats.dataSegsIn,
		DSACKDups:     c.stats.dsackRecv,
		Undos:         c.stats.undos,
		DeliveryRate:  fl.rate.lastRate,
		Delivered:     fl.rate.delivered,
		AppLimited:    fl.rate.appLimited != 0 || (c.flight == nil && c.idleAppLimited),
		LastDataSent:  ago(c.timeOf(c.lastDataSent)),
		LastDataRecv:  ago(c.timeOf(c.lastDataRecv)),
		LastAckRecv:   ago(c.timeOf(c.lastAckRecv)),
	}
	if c.cc != nil {
		in.CongestionControl = c.cc.Name()
	}
	if c.wsOK {
		in.SndWScale, in.RcvWScale = int(c.sndWS), int(c.rcvWS)
	}
	if c.sndUna.LessThan(c.sndNxt) {
		in.Unacked = int(c.sndUna.Size(c.sndNxt))
	}
	if c.rcvAdv.GreaterThan(c.rcvNxt) {
		in.RcvWnd = int(c.rcvNxt.Size(c.rcvAdv))
	}
	return in
}

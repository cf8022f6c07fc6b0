package tcp

import "time"

// rttState is the round-trip time estimate and the retransmission timeout
// (RFC 6298). Samples come from segments never retransmitted (Karn's
// algorithm, RFC 6298 §3) or from timestamp echoes (RFC 7323 §4).
type rttState struct {
	srtt, rttvar time.Duration
	rto          time.Duration // before backoff
	seeded       bool
	backoff      int // RTO doublings since the last new acknowledgment (§5.5)

	minRTT   time.Duration // least sample in the window (RACK, rate sampling)
	minRTTAt stamp
	latest   time.Duration // the last sample
}

// rttGranularity is G of RFC 6298 §2: the clock granularity.
const rttGranularity = time.Millisecond

// minRTTWindow is how long a least-RTT sample stays valid (Linux
// tcp_min_rtt_wlen).
const minRTTWindow = 300 * time.Second

func (r *rttState) init(p *Protocol) {
	r.rto = dur(&p.tun.RTOInitial) // RFC 6298 §2.1
}

// sample feeds one measurement m (RFC 6298 §2.2, §2.3).
func (r *rttState) sample(c *Conn, m time.Duration) {
	if m <= 0 {
		m = time.Microsecond
	}
	now := c.now()
	r.latest = m
	if !r.seeded {
		r.srtt = m
		r.rttvar = m / 2
		r.seeded = true
	} else {
		d := r.srtt - m
		if d < 0 {
			d = -d
		}
		r.rttvar = (3*r.rttvar + d) / 4 // β = 1/4
		r.srtt = (7*r.srtt + m) / 8     // α = 1/8
	}
	if r.minRTT == 0 || m <= r.minRTT || now.Sub(c.timeOf(r.minRTTAt)) > minRTTWindow {
		r.minRTT, r.minRTTAt = m, c.stampOf(now)
	}
	r.rto = r.srtt + max(rttGranularity, 4*r.rttvar)
	r.rto = max(r.rto, dur(&c.p.tun.RTOMin)) // §2.4, with a tunable floor
	r.rto = min(r.rto, dur(&c.p.tun.RTOMax)) // §2.5
	c.ccs.SRTT, c.ccs.MinRTT = r.srtt, r.minRTT
}

// current is the RTO with the exponential backoff of §5.5 applied, at
// most net.inet.tcp.rto_max.
func (r *rttState) current(c *Conn) time.Duration {
	d := r.rto
	maxRTO := dur(&c.p.tun.RTOMax)
	for i := 0; i < r.backoff && d < maxRTO; i++ {
		d *= 2
	}
	return min(d, maxRTO)
}

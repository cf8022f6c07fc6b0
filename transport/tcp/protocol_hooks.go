package tcp

import (
	"fmt"
	"sync/atomic"
	"time"

	"ustack/internal/stats"
	"ustack/proto"
	"ustack/transport/tcp/cc"
)

// This file is the connection engine's side of the seam with the protocol
// (tcp.go): the counters and tunables the engine reads, which the
// protocol embeds in its own stats and tunables structs (so the engine
// writes p.stats.Name.Inc() and p.tun.Name.Load()).

// connStats are the engine's counters, in the manner of netstat -s.
type connStats struct {
	ActiveOpens       stats.Counter // SYNs sent by Dial (tcpActiveOpens)
	AttemptFails      stats.Counter // handshakes that failed (tcpAttemptFails)
	EstabResets       stats.Counter // ESTABLISHED/CLOSE-WAIT ended by RST (tcpEstabResets)
	RetransSegs       stats.Counter // segments retransmitted
	OutRsts           stats.Counter // RSTs sent by connections
	SynRetrans        stats.Counter // SYNs and SYN-ACKs retransmitted
	Timeouts          stats.Counter // retransmission timer expirations
	FastRetrans       stats.Counter // fast retransmissions (entering recovery)
	SACKRecovery      stats.Counter // recoveries using SACK (RFC 6675)
	RenoRecovery      stats.Counter // recoveries without SACK (RFC 6582)
	TLPProbes         stats.Counter // tail loss probes sent (RFC 8985 §7)
	TLPRecovered      stats.Counter // losses repaired by a probe
	RACKReoTimeouts   stats.Counter // RACK reordering timer expirations
	Undos             stats.Counter // congestion responses undone as spurious
	SpuriousRTOs      stats.Counter // RTOs found spurious (RFC 3522, RFC 5682)
	DSACKRecv         stats.Counter // D-SACK blocks received (RFC 2883)
	DSACKSent         stats.Counter // D-SACK blocks sent
	SACKReneging      stats.Counter // SACKed data the peer dropped
	ChallengeACKs     stats.Counter // challenge ACKs sent (RFC 5961)
	ChallengeLimited  stats.Counter // challenge ACKs suppressed by the rate limit
	PAWSDrops         stats.Counter // segments dropped by PAWS (RFC 7323 §5)
	DisorderedACKs    stats.Counter // duplicate ACKs taken despite PAWS (overtaken on the way)
	OutOfWindow       stats.Counter // segments not acceptable (RFC 9293 §3.10.7.4)
	BadACKs           stats.Counter // ACKs of unsent data
	DupSegs           stats.Counter // segments wholly duplicate
	OOOSegs           stats.Counter // segments queued out of order
	PartialDupSegs    stats.Counter // segments partly duplicate
	DelayedACKs       stats.Counter // ACKs sent by the delayed-ACK timer
	QuickACKs         stats.Counter // ACKs sent at once (quick-ACK mode, holes)
	PersistProbes     stats.Counter // zero-window probes
	KeepaliveProbes   stats.Counter // keep-alive probes
	KeepaliveDrops    stats.Counter // connections dropped by keep-alive
	RetransDrops      stats.Counter // connections dropped by retransmission limits
	UserTimeoutDrops  stats.Counter // connections dropped by the user timeout
	AbortOnData       stats.Counter // RST for data after close (Linux TCPAbortOnData)
	AbortOnClose      stats.Counter // RST on close with unread data
	AbortOnLinger     stats.Counter // RST on close with linger 0
	PMTUUpdates       stats.Counter // MSS lowered by ICMP fragmentation needed
	ICMPIgnored       stats.Counter // ICMP errors quoting a sequence out of range
	TimeWaitReused    stats.Counter // TIME-WAIT ended early by a new SYN (RFC 6191)
	RcvBufGrowth      stats.Counter // receive buffer auto-tuning steps
	SlowPathChecksums stats.Counter // segments checksummed in software
}

// visit reports the counters under prefix ("tcp.").
func (s *connStats) visit(prefix string, v stats.Visitor) {
	for _, c := range []struct {
		name string
		c    *stats.Counter
	}{
		{"active_opens", &s.ActiveOpens}, {"attempt_fails", &s.AttemptFails},
		{"estab_resets", &s.EstabResets},
		{"retrans_segs", &s.RetransSegs}, {"out_rsts", &s.OutRsts},
		{"syn_retrans", &s.SynRetrans}, {"timeouts", &s.Timeouts},
		{"fast_retrans", &s.FastRetrans}, {"sack_recovery", &s.SACKRecovery},
		{"reno_recovery", &s.RenoRecovery}, {"tlp_probes", &s.TLPProbes},
		{"tlp_recovered", &s.TLPRecovered}, {"rack_reo_timeouts", &s.RACKReoTimeouts},
		{"undos", &s.Undos}, {"spurious_rtos", &s.SpuriousRTOs},
		{"dsack_recv", &s.DSACKRecv}, {"dsack_sent", &s.DSACKSent},
		{"sack_reneging", &s.SACKReneging}, {"challenge_acks", &s.ChallengeACKs},
		{"challenge_acks_limited", &s.ChallengeLimited}, {"paws_drops", &s.PAWSDrops},
		{"disordered_acks", &s.DisorderedACKs},
		{"out_of_window", &s.OutOfWindow}, {"bad_acks", &s.BadACKs},
		{"dup_segs", &s.DupSegs}, {"ooo_segs", &s.OOOSegs},
		{"partial_dup_segs", &s.PartialDupSegs}, {"delayed_acks", &s.DelayedACKs},
		{"quick_acks", &s.QuickACKs}, {"persist_probes", &s.PersistProbes},
		{"keepalive_probes", &s.KeepaliveProbes}, {"keepalive_drops", &s.KeepaliveDrops},
		{"retrans_drops", &s.RetransDrops}, {"user_timeout_drops", &s.UserTimeoutDrops},
		{"abort_on_data", &s.AbortOnData}, {"abort_on_close", &s.AbortOnClose},
		{"abort_on_linger", &s.AbortOnLinger}, {"pmtu_updates", &s.PMTUUpdates},
		{"icmp_ignored", &s.ICMPIgnored}, {"time_wait_reused", &s.TimeWaitReused},
		{"rcvbuf_growth", &s.RcvBufGrowth},
		{"sw_checksums", &s.SlowPathChecksums},
	} {
		v(prefix+c.name, c.c.Load())
	}
}

// Defaults of the engine's tunables.
const (
	DefaultMSL               = 30 * time.Second // TIME-WAIT lasts 2·MSL
	DefaultChallengeACKLimit = 1000             // per second (RFC 5961 §7)
	DefaultRTOMin            = 200 * time.Millisecond
	DefaultRTOMax            = 120 * time.Second
	DefaultRTOInitial        = time.Second // RFC 6298 §2.1
	DefaultDelAck            = 40 * time.Millisecond
	MaxDelAck                = 200 * time.Millisecond
	DefaultRmemDefault       = 131072  // initial receive buffer (Linux tcp_rmem[1])
	DefaultRmemMax           = 6291456 // auto-tuning bound (Linux tcp_rmem[2])
	DefaultWmemDefault       = 262144  // initial send buffer
	DefaultWmemMax           = 4194304 // send-buffer growth bound (Linux tcp_wmem[2])
	DefaultKeepIdle          = 2 * time.Hour
	DefaultKeepIntvl         = 75 * time.Second
	DefaultKeepCnt           = 9
	DefaultRetries2          = 15
	DefaultSynRetries        = 6
	DefaultFinTimeout        = 60 * time.Second
	DefaultCongestionControl = "cubic"
)

// connTunables are the engine's tunables (durations in nanoseconds).
type connTunables struct {
	MSL               atomic.Int64 // net.inet.tcp.msl
	ChallengeACKLimit atomic.Int64 // net.inet.tcp.challenge_ack_limit
	RTOMin            atomic.Int64 // net.inet.tcp.rto_min
	RTOMax            atomic.Int64 // net.inet.tcp.rto_max
	RTOInitial        atomic.Int64 // net.inet.tcp.rto_initial
	DelAck            atomic.Int64 // net.inet.tcp.delack
	RmemDefault       atomic.Int64 // net.inet.tcp.rmem_default
	RmemMax           atomic.Int64 // net.inet.tcp.rmem_max
	WmemDefault       atomic.Int64 // net.inet.tcp.wmem_default
	WmemMax           atomic.Int64 // net.inet.tcp.wmem_max
	KeepIdle          atomic.Int64 // net.inet.tcp.keepidle
	KeepIntvl         atomic.Int64 // net.inet.tcp.keepintvl
	KeepCnt           atomic.Int64 // net.inet.tcp.keepcnt
	Retries2          atomic.Int64 // net.inet.tcp.retries2
	SynRetries        atomic.Int64 // net.inet.tcp.syn_retries
	FinTimeout        atomic.Int64 // net.inet.tcp.fin_timeout
	SACK              atomic.Bool  // net.inet.tcp.sack
	Timestamps        atomic.Bool  // net.inet.tcp.timestamps
	WindowScaling     atomic.Bool  // net.inet.tcp.window_scaling
	RACK              atomic.Bool  // net.inet.tcp.rack
	FRTO              atomic.Bool  // net.inet.tcp.frto
	CongestionControl atomic.Pointer[string]
}

// setDefaults stores every default value.
func (t *connTunables) setDefaults() {
	t.MSL.Store(int64(DefaultMSL))
	t.ChallengeACKLimit.Store(DefaultChallengeACKLimit)
	t.RTOMin.Store(int64(DefaultRTOMin))
	t.RTOMax.Store(int64(DefaultRTOMax))
	t.RTOInitial.Store(int64(DefaultRTOInitial))
	t.DelAck.Store(int64(DefaultDelAck))
	t.RmemDefault.Store(DefaultRmemDefault)
	t.RmemMax.Store(DefaultRmemMax)
	t.WmemDefault.Store(DefaultWmemDefault)
	t.WmemMax.Store(DefaultWmemMax)
	t.KeepIdle.Store(int64(DefaultKeepIdle))
	t.KeepIntvl.Store(int64(DefaultKeepIntvl))
	t.KeepCnt.Store(DefaultKeepCnt)
	t.Retries2.Store(DefaultRetries2)
	t.SynRetries.Store(DefaultSynRetries)
	t.FinTimeout.Store(int64(DefaultFinTimeout))
	t.SACK.Store(true)
	t.Timestamps.Store(true)
	t.WindowScaling.Store(true)
	t.RACK.Store(true)
	t.FRTO.Store(true)
	name := DefaultCongestionControl
	t.CongestionControl.Store(&name)
}

// register adds the tunables to sys; reg validates congestion control
// names.
func (t *connTunables) register(sys *proto.Sysctl, reg *cc.Registry) {
	d := proto.DurationTunable
	i := proto.IntTunable
	b := proto.BoolTunable
	for _, tu := range []*proto.Tunable{
		d("net.inet.tcp.msl", "maximum segment lifetime; TIME-WAIT lasts twice this", &t.MSL, time.Millisecond, 10*time.Minute),
		i("net.inet.tcp.challenge_ack_limit", "challenge ACKs a connection sends per second (RFC 5961 §7)", &t.ChallengeACKLimit, 1, 1<<30),
		d("net.inet.tcp.rto_min", "least retransmission timeout (RFC 6298 §2.4)", &t.RTOMin, time.Millisecond, 10*time.Second),
		d("net.inet.tcp.rto_max", "greatest retransmission timeout", &t.RTOMax, time.Second, 10*time.Minute),
		d("net.inet.tcp.rto_initial", "retransmission timeout before an RTT sample (RFC 6298 §2.1)", &t.RTOInitial, 10*time.Millisecond, time.Minute),
		d("net.inet.tcp.delack", "delayed-ACK timeout (RFC 9293 §3.8.6.3)", &t.DelAck, time.Millisecond, MaxDelAck),
		i("net.inet.tcp.rmem_default", "initial receive buffer, bytes", &t.RmemDefault, 4096, 1<<30),
		i("net.inet.tcp.rmem_max", "receive buffer auto-tuning bound, bytes", &t.RmemMax, 4096, 1<<30),
		i("net.inet.tcp.wmem_default", "initial send buffer, bytes", &t.WmemDefault, 4096, 1<<30),
		i("net.inet.tcp.wmem_max", "send buffer growth bound, bytes", &t.WmemMax, 4096, 1<<30),
		d("net.inet.tcp.keepidle", "idle time before keep-alive probes (RFC 1122 §4.2.3.6)", &t.KeepIdle, time.Second, 1000*time.Hour),
		d("net.inet.tcp.keepintvl", "interval between keep-alive probes", &t.KeepIntvl, time.Second, 1000*time.Hour),
		i("net.inet.tcp.keepcnt", "unanswered keep-alive probes before dropping", &t.KeepCnt, 1, 1000),
		i("net.inet.tcp.retries2", "retransmissions before dropping an established connection", &t.Retries2, 1, 100),
		i("net.inet.tcp.syn_retries", "SYN retransmissions before giving up a connect", &t.SynRetries, 1, 100),
		d("net.inet.tcp.fin_timeout", "how long a closed connection waits in FIN-WAIT-2", &t.FinTimeout, time.Second, time.Hour),
		b("net.inet.tcp.sack", "offer and use selective acknowledgments (RFC 2018)", &t.SACK),
		b("net.inet.tcp.timestamps", "offer and use timestamps (RFC 7323 §3)", &t.Timestamps),
		b("net.inet.tcp.window_scaling", "offer and use window scaling (RFC 7323 §2)", &t.WindowScaling),
		b("net.inet.tcp.rack", "detect losses by time (RACK-TLP, RFC 8985)", &t.RACK),
		b("net.inet.tcp.frto", "detect spurious retransmission timeouts (F-RTO, RFC 5682)", &t.FRTO),
		{
			Name: "net.inet.tcp.cc_algorithm",
			Doc:  "default congestion control algorithm",
			Get:  func() string { return *t.CongestionControl.Load() },
			Set: func(s string) error {
				if reg != nil {
					if _, err := reg.New(s); err != nil {
						return fmt.Errorf("unknown algorithm %q (have %v)", s, reg.Names())
					}
				}
				t.CongestionControl.Store(&s)
				return nil
			},
		},
	} {
		sys.Register(tu)
	}
}

// ccName is the default congestion control algorithm's name.
func (t *connTunables) ccName() string {
	if s := t.CongestionControl.Load(); s != nil {
		return *s
	}
	return DefaultCongestionControl
}

func dur(v *atomic.Int64) time.Duration { return time.Duration(v.Load()) }

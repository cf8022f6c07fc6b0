// Package cc is TCP congestion control behind one small interface: the TCP
// core reports what happens (data acknowledged, a congestion event, the end
// of recovery, a spurious retransmission undone, a send) and a Controller
// sets the congestion window, the slow-start threshold and, when it wants
// to, a pacing rate. Reno (RFC 5681) and CUBIC (RFC 9438) with HyStart++
// (RFC 9406) live here; BBR can join without touching the core, because the
// core hands every controller a delivery-rate sample and honours a pacing
// rate.
//
// The core owns loss detection and recovery (RFC 6675 SACK recovery with
// PRR, RFC 8985 RACK-TLP, RFC 6582 NewReno): a Controller decides how much,
// never which segment.
//
// Controllers do no I/O and keep no goroutines; time comes in the events.
// A Controller belongs to one connection and is called with that
// connection's lock held.
package cc

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// State is the part of a connection's sending state a controller reads and
// sets. Sizes are in bytes.
type State struct {
	// MSS is the sender's maximum segment size (payload bytes).
	MSS int
	// CWnd is the congestion window; the controller sets it.
	CWnd int
	// SSThresh is the slow-start threshold; the controller sets it.
	// MaxSSThresh means "none yet".
	SSThresh int
	// InFlight is the bytes sent and not yet acknowledged or marked lost
	// (RFC 6675 "pipe").
	InFlight int
	// SRTT and MinRTT are the smoothed and the least RTT seen (0: none yet).
	SRTT, MinRTT time.Duration
	// PacingRate is the rate in bytes per second the core paces at; 0
	// means no pacing. The controller sets it.
	PacingRate uint64
}

// MaxSSThresh is the initial, "infinite" slow-start threshold.
const MaxSSThresh = math.MaxInt32

// InitialWindow is the initial congestion window for a given MSS (RFC 6928
// §2: min(10·MSS, max(2·MSS, 14600))).
func InitialWindow(mss int) int { return min(10*mss, max(2*mss, 14600)) }

// RateSample is a delivery-rate sample (draft-cheng-iccrg-delivery-rate-
// estimation), for controllers that model the path (BBR) and for TCP_INFO.
type RateSample struct {
	// Delivered is the bytes delivered over Interval.
	Delivered uint64
	// Interval is the sample's time span (0: no sample).
	Interval time.Duration
	// AppLimited: the sender did not have enough data to fill the window
	// when the measured data was sent.
	AppLimited bool
	// PriorInFlight is InFlight before this ACK.
	PriorInFlight int
}

// Rate is the sample's delivery rate in bytes per second (0 without one).
func (r RateSample) Rate() float64 {
	if r.Interval <= 0 {
		return 0
	}
	return float64(r.Delivered) / r.Interval.Seconds()
}

// Ack describes one acknowledgment that made progress.
type Ack struct {
	Now time.Time
	// Acked is the bytes newly delivered: cumulatively acknowledged or
	// newly selectively acknowledged.
	Acked int
	// RTT is this ACK's round-trip sample (0: none; RFC 6298 Karn's rule
	// applied by the core).
	RTT time.Duration
	// InRecovery: the connection is in loss recovery; controllers don't
	// grow the window then (the core's PRR decides what is sent).
	InRecovery bool
	// AppLimited: the window was not the limit on sending.
	AppLimited bool
	Rate       RateSample
	// Round optionally counts packet-timed round trips (RFC 9406 §4.2
	// rounds; BBR's round count): the core increments it on the first ACK
	// that acknowledges data sent after the ACK that began the previous
	// round (windowEnd = SND.NXT then), and that ACK belongs to the new
	// round. 0 means the core does not count rounds; controllers then
	// estimate them from the bytes acknowledged.
	Round uint64
}

// Event is a congestion signal.
type Event uint8

const (
	// Loss: loss detected by duplicate ACKs, SACK or RACK (fast
	// recovery begins).
	Loss Event = iota + 1
	// Timeout: the retransmission timer expired (RFC 5681 §3.1, eqn. 4).
	Timeout
	// ECE: the peer echoed a congestion mark (RFC 3168).
	ECE
)

func (e Event) String() string {
	switch e {
	case Loss:
		return "loss"
	case Timeout:
		return "timeout"
	case ECE:
		return "ece"
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// Controller is one connection's congestion controller.
type Controller interface {
	// Name is the algorithm's name ("cubic", "reno").
	Name() string
	// Init sets the initial window once the MSS is known.
	Init(s *State, now time.Time)
	// OnAck grows the window for data newly delivered.
	OnAck(s *State, a *Ack)
	// OnCongestion reacts to a congestion signal: it sets SSThresh (and
	// CWnd for Timeout; during fast recovery the core's PRR moves CWnd
	// toward SSThresh).
	OnCongestion(s *State, now time.Time, e Event)
	// OnRecoveryEnd is called when fast recovery ends.
	OnRecoveryEnd(s *State, now time.Time)
	// Undo restores the state saved before a congestion response that
	// turned out spurious (RFC 3522, RFC 4015, D-SACK: RFC 3708).
	Undo(s *State, now time.Time)
	// OnSent tells the controller bytes left (for pacing and BBR).
	OnSent(s *State, now time.Time, bytes int)
}

// Factory makes a Controller.
type Factory func() Controller

// Registry maps algorithm names to factories. The zero value is empty; use
// NewRegistry for one with the algorithms of this package.
type Registry struct{ m map[string]Factory }

// NewRegistry returns a registry holding reno and cubic.
func NewRegistry() *Registry {
	r := &Registry{m: map[string]Factory{}}
	r.Register("reno", NewReno)
	r.Register("cubic", NewCubic)
	return r
}

// Register adds (or replaces) an algorithm.
func (r *Registry) Register(name string, f Factory) {
	if r.m == nil {
		r.m = map[string]Factory{}
	}
	r.m[name] = f
}

// New makes a controller by name.
func (r *Registry) New(name string) (Controller, error) {
	f, ok := r.m[name]
	if !ok {
		return nil, fmt.Errorf("tcp: unknown congestion control %q (have %v)", name, r.Names())
	}
	return f(), nil
}

// Names lists the registered algorithms, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.m))
	for n := range r.m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

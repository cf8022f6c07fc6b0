package cc

import "time"

// What Reno and CUBIC share: slow start with appropriate byte counting, the
// spurious-response snapshot, and the guards that keep a window sane.
//
// Pacing and the hook for BBR. Reno and CUBIC leave State.PacingRate at 0:
// the core sends as the window and the ACK clock allow. The hook exists for
// a rate-based controller (BBR, draft-ietf-ccwg-bbr): in OnAck it reads
// Ack.Rate (the delivery-rate sample, its app-limited mark and the prior
// in-flight) and Ack.Round (packet-timed rounds), models the path's
// bandwidth and minimum RTT, and sets State.PacingRate and State.CWnd; in
// OnSent it sees every transmission (to stamp send times or to notice a
// restart after idle). Such a controller registers itself with
// Registry.Register; the core needs no change.

// maxCWnd caps every window a controller sets, so that sums never overflow
// and a window never exceeds what TCP's 32-bit sequence space can carry.
const maxCWnd = MaxSSThresh

// slowStart grows s.CWnd for acked bytes by at most limit bytes (RFC 3465
// §2.2: appropriate byte counting with limit L; RFC 5681 §3.1: cwnd +=
// min(N, SMSS) is the L = 1·SMSS case) and never past s.SSThresh. It returns
// the bytes of acked left over once the window reached ssthresh, for
// congestion avoidance to use (0 while slow start goes on).
func slowStart(s *State, acked, limit int) int {
	inc := min(acked, limit)
	if room := s.SSThresh - s.CWnd; inc >= room {
		s.CWnd = min(s.SSThresh, maxCWnd)
		return acked - max(room, 0)
	}
	s.CWnd = min(s.CWnd+inc, maxCWnd)
	return 0
}

// mssOf is the segment size to compute with: never 0, so that no division
// can fault when a core calls before the MSS is known.
func mssOf(s *State) int { return max(s.MSS, 1) }

// lossThreshold is RFC 5681 §3.1 eqn. (4): ssthresh = max(FlightSize/2,
// 2·SMSS), with FlightSize the bytes in flight the core reports at the event.
func lossThreshold(s *State) int {
	return max(s.InFlight/2, 2*mssOf(s))
}

// priorWindow is what a congestion response saved for Undo (RFC 3522, RFC
// 4015 §3, RFC 9438 §4.9).
type priorWindow struct {
	cwnd, ssthresh int
	ok             bool
}

// idleShift is how long a sender that had nothing in flight stood still
// before sending at now: the gap since the later of its last send and its
// last ACK. It is 0 if there was data in flight or no earlier activity.
// inFlight may or may not include the bytes being sent; both read as idle.
func idleShift(inFlight, bytes int, now, lastSend, lastAck time.Time) time.Duration {
	if inFlight > bytes {
		return 0
	}
	last := lastSend
	if lastAck.After(last) {
		last = lastAck
	}
	if last.IsZero() || !now.After(last) {
		return 0
	}
	return now.Sub(last)
}

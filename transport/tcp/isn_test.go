package tcp

import (
	"net/netip"
	"testing"
	"time"

	"ustack/internal/seqnum"
)

// TestSipHashVector checks SipHash-2-4 against the reference vector of
// the paper (Appendix A): key 00..0f, message 00..0e.
func TestSipHashVector(t *testing.T) {
	k := sipKey{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	m := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	if got, want := k.sum(m), uint64(0xa129ca6149be45e5); got != want {
		t.Errorf("siphash = %#x, want %#x", got, want)
	}
	if got, want := k.sum(nil), uint64(0x726fdb47dd0e0e31); got != want {
		t.Errorf("siphash(empty) = %#x, want %#x", got, want)
	}
}

func tuple(lport, rport uint16) connID {
	return connID{local: netip.AddrPortFrom(localIP, lport), remote: netip.AddrPortFrom(peerIP, rport)}
}

// TestISNClock: for one tuple the ISN advances with the 4 µs clock M (RFC
// 6528 §3), so a later incarnation starts above the earlier one.
func TestISNClock(t *testing.T) {
	e := newEnv(t)
	id := tuple(80, 40000)
	a := e.p.isn(id, e.clk.Now())
	if b := e.p.isn(id, e.clk.Now()); b != a {
		t.Fatalf("ISN at the same instant changed: %d then %d", a, b)
	}
	prev := a
	for _, d := range []time.Duration{4 * time.Microsecond, time.Millisecond, time.Second, time.Minute} {
		e.clk.Advance(d)
		got := e.e(id)
		if want := prev + e.ticks(d); got != want {
			t.Errorf("after %v: ISN %d, want %d (+%d ticks)", d, got, want, e.ticks(d))
		}
		if !got.GreaterThan(prev) {
			t.Errorf("after %v: ISN %d not after %d", d, got, prev)
		}
		prev = got
	}
}

func (e *env) e(id connID) seqnum.Value { return e.p.isn(id, e.clk.Now()) }
func (e *env) ticks(d time.Duration) seqnum.Value {
	return seqnum.Value(uint32(d / isnTick))
}

// TestISNPerTuple: F differs between tuples and between stacks (secrets).
func TestISNPerTuple(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	seen := map[seqnum.Value]connID{}
	for lp := uint16(1); lp <= 50; lp++ {
		for rp := uint16(1000); rp < 1020; rp++ {
			id := tuple(lp, rp)
			isn := e.p.isn(id, now)
			if o, dup := seen[isn]; dup {
				t.Fatalf("ISN %d for %v and %v", isn, o, id)
			}
			seen[isn] = id
		}
	}
	e2 := newEnv(t)
	id := tuple(80, 1000)
	if e.p.isn(id, now) == e2.p.isn(id, now) {
		t.Errorf("two stacks gave tuple %v the same ISN: secrets not per stack", id)
	}
	if e.p.tsOffset(id) == e.p.tsOffset(tuple(80, 1001)) {
		t.Errorf("timestamp offsets equal for two tuples")
	}
}

// TestTSVal: the timestamp clock ticks in milliseconds from the offset.
func TestTSVal(t *testing.T) {
	e := newEnv(t)
	a := e.p.tsVal(e.clk.Now(), 1000)
	e.clk.Advance(1500 * time.Millisecond)
	if b := e.p.tsVal(e.clk.Now(), 1000); b-a != 1500 {
		t.Errorf("TSval advanced %d over 1.5 s, want 1500", b-a)
	}
}

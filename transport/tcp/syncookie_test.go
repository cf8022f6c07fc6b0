package tcp

import (
	"testing"
	"time"

	"ustack/internal/seqnum"
)

func TestCookieRoundTrip(t *testing.T) {
	e := newEnv(t)
	id := tuple(80, 33333)
	const ourWS = 7
	for _, tc := range []struct {
		name string
		in   cookieOpts
		want cookieOpts
	}{
		{"bare", cookieOpts{mss: 536, sndWScale: -1}, cookieOpts{mss: 536, sndWScale: -1}},
		{"mss 1460 no ts", cookieOpts{mss: 1460, sndWScale: 7, sackOK: true},
			// Without timestamps there is no room for window scale or SACK.
			cookieOpts{mss: 1460, sndWScale: -1}},
		{"mss rounded down", cookieOpts{mss: 1450, sndWScale: -1}, cookieOpts{mss: 1440, sndWScale: -1}},
		{"tiny mss", cookieOpts{mss: 100, sndWScale: -1}, cookieOpts{mss: 536, sndWScale: -1}},
		{"jumbo", cookieOpts{mss: 9000, sndWScale: -1}, cookieOpts{mss: 8960, sndWScale: -1}},
		{"ts ws sack", cookieOpts{mss: 1460, sndWScale: 7, sackOK: true, tsOK: true},
			cookieOpts{mss: 1460, sndWScale: 7, sackOK: true, tsOK: true}},
		{"ts ws0", cookieOpts{mss: 1460, sndWScale: 0, tsOK: true}, cookieOpts{mss: 1460, sndWScale: 0, tsOK: true}},
		{"ts only", cookieOpts{mss: 1400, sndWScale: -1, tsOK: true}, cookieOpts{mss: 1400, sndWScale: -1, tsOK: true}},
		{"ts ws 14", cookieOpts{mss: 1460, sndWScale: 14, sackOK: true, tsOK: true},
			cookieOpts{mss: 1460, sndWScale: 14, sackOK: true, tsOK: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			irs := seqnum.Value(0xfffffff0)
			now := e.clk.Now()
			iss, sent := e.p.makeCookie(id, irs, tc.in, ourWS, now)
			if sent != tc.want {
				t.Errorf("makeCookie opts = %+v, want %+v", sent, tc.want)
			}
			ts := e.p.tsVal(now, e.p.tsOffset(id))
			tsv := cookieTSVal(ts, sent)
			if int32(tsv-ts) > 0 {
				t.Errorf("cookie TSval %d runs ahead of the clock %d", tsv, ts)
			}
			got, ok := e.p.checkCookie(id, irs+1, iss+1, sent.tsOK, tsv, ourWS, now)
			if !ok {
				t.Fatalf("checkCookie rejected a fresh cookie")
			}
			if got != tc.want {
				t.Errorf("checkCookie opts = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCookieAge: accepted during the current and the previous counter
// period, rejected after.
func TestCookieAge(t *testing.T) {
	e := newEnv(t)
	id := tuple(80, 1234)
	o := cookieOpts{mss: 1460, sndWScale: -1}
	e.clk.Advance(10 * cookiePeriod)
	iss, _ := e.p.makeCookie(id, 100, o, 0, e.clk.Now())
	check := func() bool {
		_, ok := e.p.checkCookie(id, 101, iss+1, false, 0, 0, e.clk.Now())
		return ok
	}
	if !check() {
		t.Fatal("fresh cookie rejected")
	}
	e.clk.Advance(cookiePeriod)
	if !check() {
		t.Fatal("cookie one period old rejected")
	}
	e.clk.Advance(cookiePeriod)
	if check() {
		t.Fatal("cookie two periods old accepted")
	}
	e.clk.Advance(30 * cookiePeriod) // t mod 32 comes round again
	if check() {
		t.Fatal("cookie 32 periods old accepted")
	}
}

// TestCookieReject: a cookie fails under another stack's secret and when
// any input or bit is changed.
func TestCookieReject(t *testing.T) {
	e := newEnv(t)
	other := newEnv(t)
	id := tuple(443, 5555)
	now := e.clk.Now()
	o := cookieOpts{mss: 1460, sndWScale: 7, sackOK: true, tsOK: true}
	const irs, ws = seqnum.Value(777), 8
	iss, sent := e.p.makeCookie(id, irs, o, ws, now)
	tsv := cookieTSVal(e.p.tsVal(now, e.p.tsOffset(id)), sent)
	if _, ok := e.p.checkCookie(id, irs+1, iss+1, true, tsv, ws, now); !ok {
		t.Fatal("valid cookie rejected")
	}
	for _, tc := range []struct {
		name     string
		p        *Protocol
		id       connID
		seq, ack seqnum.Value
		hasTS    bool
		ecr      uint32
		ws       int
	}{
		{"other secret", other.p, id, irs + 1, iss + 1, true, tsv, ws},
		{"other tuple", e.p, tuple(443, 5556), irs + 1, iss + 1, true, tsv, ws},
		{"other peer ISN", e.p, id, irs + 2, iss + 1, true, tsv, ws},
		{"mss bits", e.p, id, irs + 1, (iss ^ 1<<24) + 1, true, tsv, ws},
		{"counter bits", e.p, id, irs + 1, (iss ^ 1<<27) + 1, true, tsv, ws},
		{"mac bit", e.p, id, irs + 1, (iss ^ 1) + 1, true, tsv, ws},
		{"echoed wscale", e.p, id, irs + 1, iss + 1, true, tsv ^ 1, ws},
		{"echoed sack", e.p, id, irs + 1, iss + 1, true, tsv ^ cookieSACK, ws},
		{"timestamps dropped", e.p, id, irs + 1, iss + 1, false, 0, ws},
		{"our wscale changed", e.p, id, irs + 1, iss + 1, true, tsv, ws - 1},
	} {
		if _, ok := tc.p.checkCookie(tc.id, tc.seq, tc.ack, tc.hasTS, tc.ecr, tc.ws, now); ok {
			t.Errorf("%s: tampered cookie accepted", tc.name)
		}
	}
	// Random ACKs: about 2^-24 pass each; none of these may.
	n := 0
	for a := seqnum.Value(1); a < 1<<16; a += 7 {
		if _, ok := e.p.checkCookie(id, irs+1, a*65537, false, 0, ws, now); ok {
			n++
		}
	}
	if n > 0 {
		t.Errorf("%d random ACKs passed as cookies", n)
	}
}

func TestCookieTSValNotAhead(t *testing.T) {
	o := cookieOpts{sndWScale: 14, sackOK: true, tsOK: true}
	for _, ts := range []uint32{0, 1, 31, 32, 0x1f, 0xffffffe0, 0xffffffff, 123456} {
		v := cookieTSVal(ts, o)
		if int32(v-ts) > 0 || ts-v > 63 {
			t.Errorf("cookieTSVal(%d) = %d", ts, v)
		}
		if optsFromBits(uint8(v&cookieTSMask)|cookieTS) != (cookieOpts{sndWScale: 14, sackOK: true, tsOK: true}) {
			t.Errorf("cookieTSVal(%d) = %d loses the option bits", ts, v)
		}
	}
	_ = time.Second
}

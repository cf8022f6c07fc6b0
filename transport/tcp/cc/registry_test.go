package cc

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	for _, name := range []string{"cubic", "reno"} {
		c, err := r.New(name)
		if err != nil {
			t.Fatalf("New(%q): %v", name, err)
		}
		if c.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, c.Name())
		}
		s := State{MSS: testMSS}
		c.Init(&s, t0)
		if s.CWnd != InitialWindow(testMSS) {
			t.Errorf("%s: initial window %d", name, s.CWnd)
		}
	}
	// Each New is a fresh controller: state is per connection.
	a, _ := r.New("cubic")
	b, _ := r.New("cubic")
	if a == b {
		t.Error("New returned the same controller twice")
	}
	if got, want := r.Names(), []string{"cubic", "reno"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	_, err := r.New("vegas")
	if err == nil {
		t.Fatal(`New("vegas") succeeded`)
	}
	for _, s := range []string{`"vegas"`, "cubic", "reno"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

// TestOnAckAllocs: the per-ACK path allocates nothing.
func TestOnAckAllocs(t *testing.T) {
	for _, newCC := range []func() Controller{NewReno, NewCubic} {
		c := newCC()
		s := State{MSS: testMSS, SRTT: 10 * time.Millisecond}
		c.Init(&s, t0)
		a := &Ack{Now: t0, Acked: testMSS, RTT: 10 * time.Millisecond}
		n := testing.AllocsPerRun(1000, func() {
			a.Now = a.Now.Add(time.Millisecond)
			c.OnAck(&s, a)
			if s.CWnd > 1000*testMSS {
				s.InFlight = s.CWnd
				c.OnCongestion(&s, a.Now, Loss)
				c.OnRecoveryEnd(&s, a.Now)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per ACK", c.Name(), n)
		}
	}
}

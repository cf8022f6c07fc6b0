package tcp

import (
	"fmt"
	"testing"
	"time"

	"ustack/link"
)

// TestSimStress runs short transfers under heavy, seeded impairment (15%
// loss, 20% reordering by up to 50 ms, 5% duplication, 2% corruption,
// and on some seeds a path MTU drop signalled by ICMP), with each option
// set: SACK, no SACK (NewReno), no timestamps (F-RTO), large segments.
func TestSimStress(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		for _, v := range []string{"sack", "nosack", "nots", "nots-nosack", "tso", "reno-nosack"} {
			t.Run(fmt.Sprintf("%s-%d", v, seed), func(t *testing.T) {
				n := newSimNet(seed)
				if v == "tso" {
					n.caps = link.CapTSO4 | link.CapTxChecksum
				}
				o := Options{}
				if v == "reno-nosack" {
					o.CongestionControl = "reno"
				}
				n.tune = func(p *Protocol) {
					switch v {
					case "nosack", "reno-nosack":
						p.tun.SACK.Store(false)
					case "nots":
						p.tun.Timestamps.Store(false)
					case "nots-nosack":
						p.tun.Timestamps.Store(false)
						p.tun.SACK.Store(false)
					}
				}
				sp := newSimPair(t, n, o, o)
				n.loss, n.reorder, n.extra, n.dup, n.corrupt = 0.15, 0.2, 50*time.Millisecond, 0.05, 0.02
				if seed%3 == 0 {
					n.mtu = 576
				}
				sp.transfer(t, 1<<20, time.Hour)
			})
		}
	}
}

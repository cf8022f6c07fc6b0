package daemon

import (
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"ustack/socket"
	"ustack/wire"
)

const config6 = `
interfaces:
  - {name: eth0, link: "tap:a", addresses: [10.0.1.1/24, "fd00:1::1/64"]}
routes:
  - {to: default6, via: "fd00:1::fe"}
`

// TestStartIPv6: IPv6 addresses and routes from the configuration are
// applied: the route at once (its gateway's subnet is still under DAD),
// the address once DAD has passed; a neighbour then pings it.
func TestStartIPv6(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := ParseConfig([]byte(config6))
		if err != nil {
			t.Fatal(err)
		}
		p := newPipes(t, "tap:a")
		d, err := Start(cfg, Options{OpenLink: p.open})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		st := d.Stack()
		r, ok := st.Routes().Lookup(netip.MustParseAddr("2001:db8::1"))
		if !ok || r.Gateway != netip.MustParseAddr("fd00:1::fe") || r.IfIndex != st.Interface("eth0").Index() {
			t.Errorf("default IPv6 route: %v %v", r, ok)
		}
		h := p.host(t, "tap:a", "fd00:1::2/64", "")
		<-time.After(3 * time.Second) // duplicate address detection on both
		var assigned bool
		for _, a := range st.Interface("eth0").Addrs() {
			assigned = assigned || a.Addr() == netip.MustParseAddr("fd00:1::1")
		}
		if !assigned {
			t.Fatalf("fd00:1::1 not assigned: %v", st.Interface("eth0").Addrs())
		}
		c, err := socket.ListenPing(h, netip.IPv6Unspecified())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := make([]byte, 16)
		(&wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.EchoRest(0, 1)}).Encode(msg)
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP("fd00:1::1")}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		b := make([]byte, 100)
		n, from, err := c.ReadFrom(b)
		if err != nil || wire.ICMPv6(b[:n]).Type() != wire.ICMPv6EchoReply {
			t.Errorf("ping fd00:1::1: %v from %v", err, from)
		}
	})
}

package daemon

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestServicesDualStack: services without a listen address answer over
// IPv4 and IPv6 from one dual-stack socket each (TCP and UDP); one bound
// to 0.0.0.0 answers IPv4 only, and IPv6 gets port unreachable.
func TestServicesDualStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello, both families\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfig([]byte(`
interfaces:
  - {name: eth0, link: "tap:a", addresses: [10.0.1.1/24, "fd00:1::1/64"]}
services:
  - {type: echo, listen: "udp:7"}
  - {type: echo, listen: "tcp:7"}
  - {type: daytime}
  - {type: http, root: "` + root + `"}
  - {type: echo, listen: "udp:0.0.0.0:1007"}
`))
		if err != nil {
			t.Fatal(err)
		}
		p := newPipes(t, "tap:a")
		d, err := Start(cfg, Options{OpenLink: p.open})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		h := p.host(t, "tap:a", "10.0.1.2/24", "")
		if err := h.AddAddress("eth0", netip.MustParsePrefix("fd00:1::2/64")); err != nil {
			t.Fatal(err)
		}
		<-time.After(3 * time.Second) // duplicate address detection on both

		udpEcho := func(dst netip.AddrPort, msg string) (string, error) {
			c, err := socket.DialUDP(h, netip.AddrPort{}, dst)
			if err != nil {
				return "", err
			}
			defer c.Close()
			if _, err := c.Write([]byte(msg)); err != nil {
				return "", err
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			b := make([]byte, 100)
			n, err := c.Read(b)
			return string(b[:n]), err
		}
		tcpRead := func(dst netip.AddrPort, msg string) (string, error) {
			c, err := socket.DialTCP(h, netip.AddrPort{}, dst)
			if err != nil {
				return "", err
			}
			defer c.Close()
			if msg != "" {
				c.Write([]byte(msg))
			}
			c.CloseWrite()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(c)
			return string(b), err
		}
		tr := &http.Transport{DialContext: (&socket.Dialer{Stack: h}).DialContext}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}

		for _, a := range []string{"10.0.1.1", "fd00:1::1"} {
			addr := netip.MustParseAddr(a)
			if got, err := udpEcho(netip.AddrPortFrom(addr, 7), "udp to "+a); err != nil || got != "udp to "+a {
				t.Errorf("udp echo via %s: %q, %v", a, got, err)
			}
			if got, err := tcpRead(netip.AddrPortFrom(addr, 7), "tcp to "+a); err != nil || got != "tcp to "+a {
				t.Errorf("tcp echo via %s: %q, %v", a, got, err)
			}
			if got, err := udpEcho(netip.AddrPortFrom(addr, 13), "time?"); err != nil || !strings.HasSuffix(got, "\r\n") {
				t.Errorf("udp daytime via %s: %q, %v", a, got, err)
			}
			url := "http://" + netip.AddrPortFrom(addr, 80).String() + "/hello.txt"
			resp, err := client.Get(url)
			if err != nil {
				t.Errorf("GET %s: %v", url, err)
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || string(body) != "hello, both families\n" {
				t.Errorf("GET %s: %d %q %v", url, resp.StatusCode, body, err)
			}
		}
		// The service explicitly on 0.0.0.0 is IPv4 only.
		if got, err := udpEcho(netip.MustParseAddrPort("10.0.1.1:1007"), "v4"); err != nil || got != "v4" {
			t.Errorf("udp echo on 0.0.0.0:1007 via IPv4: %q, %v", got, err)
		}
		if got, err := udpEcho(netip.MustParseAddrPort("[fd00:1::1]:1007"), "v6"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("udp echo on 0.0.0.0:1007 via IPv6: %q, %v; want connection refused", got, err)
		}
		tr.CloseIdleConnections()
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

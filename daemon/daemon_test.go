package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"ustack/link"
	"ustack/link/pipe"
	"ustack/network/route"
	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// pipes is a LinkOpener handing out one side of a pipe per spec and
// keeping the other sides for the test's peer stacks.
type pipes struct {
	near, far map[string]*pipe.Endpoint
	macs      map[string]wire.MAC
	mtus      map[string]int
}

func newPipes(t *testing.T, specs ...string) *pipes {
	p := &pipes{near: map[string]*pipe.Endpoint{}, far: map[string]*pipe.Endpoint{},
		macs: map[string]wire.MAC{}, mtus: map[string]int{}}
	for i, s := range specs {
		p.near[s], p.far[s] = pipe.New(pipe.Config{Seed: uint32(100 + i)})
	}
	t.Cleanup(func() {
		for _, ep := range p.far {
			ep.Close()
		}
	})
	return p
}

func (p *pipes) open(spec string, mtu int, mac wire.MAC) (link.Endpoint, error) {
	ep, ok := p.near[spec]
	if !ok {
		return nil, fmt.Errorf("%s: no such device", spec)
	}
	p.macs[spec], p.mtus[spec] = mac, mtu
	return ep, nil
}

// host makes a peer stack on the far side of spec's pipe.
func (p *pipes) host(t *testing.T, spec string, addr, gw string) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{Name: spec})
	t.Cleanup(func() { s.Close() })
	if _, err := s.AddInterface("eth0", p.far[spec]); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAddress("eth0", netip.MustParsePrefix(addr)); err != nil {
		t.Fatal(err)
	}
	if gw != "" {
		if err := s.AddRoute(route.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr(gw)}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

const routerConfig = `
interfaces:
  - {name: eth0, link: "tap:a", addresses: [10.0.1.1/24]}
  - {name: eth1, link: "tap:b", mtu: 1400, mac: "02:00:00:00:00:b1", addresses: [10.0.2.1/24]}
routes:
  - {to: 10.9.0.0/16, via: 10.0.2.2}
sysctl:
  net.inet.ip.forwarding: 1
services:
  - {type: echo, listen: "udp:7"}
  - {type: daytime, listen: "udp:10.0.1.1:13"}
`

func TestStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := ParseConfig([]byte(routerConfig))
		if err != nil {
			t.Fatal(err)
		}
		p := newPipes(t, "tap:a", "tap:b")
		d, err := Start(cfg, Options{OpenLink: p.open})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		st := d.Stack()

		// What the configuration asked for.
		if got, want := p.macs["tap:a"], GenerateMAC("eth0", "tap:a"); got != want {
			t.Errorf("eth0 MAC %s, want generated %s", got, want)
		}
		if got := p.macs["tap:b"]; got != (wire.MAC{2, 0, 0, 0, 0, 0xb1}) {
			t.Errorf("eth1 MAC %s", got)
		}
		if p.mtus["tap:b"] != 1400 || st.Interface("eth1").MTU() != 1400 {
			t.Errorf("eth1 MTU: asked %d, interface %d", p.mtus["tap:b"], st.Interface("eth1").MTU())
		}
		if v, _ := st.GetSysctl("net.inet.ip.forwarding"); v != "1" {
			t.Errorf("forwarding = %s", v)
		}
		if d.Addr("eth1") != netip.MustParseAddr("10.0.2.1") {
			t.Errorf("eth1 address %v", d.Addr("eth1"))
		}
		r, ok := st.Routes().Lookup(netip.MustParseAddr("10.9.1.1"))
		if !ok || r.Gateway != netip.MustParseAddr("10.0.2.2") || r.IfIndex != st.Interface("eth1").Index() {
			t.Errorf("route to 10.9.1.1: %v %v", r, ok)
		}

		// The services answer, and the router forwards.
		a := p.host(t, "tap:a", "10.0.1.2/24", "10.0.1.1")
		b := p.host(t, "tap:b", "10.0.2.2/24", "10.0.2.1")
		c, err := socket.ListenUDP(a, netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ask := func(to string, msg string) string {
			t.Helper()
			c.WriteToUDPAddrPort([]byte(msg), netip.MustParseAddrPort(to))
			c.SetReadDeadline(time.Now().Add(time.Second))
			b := make([]byte, 1500)
			n, _, err := c.ReadFromUDPAddrPort(b)
			if err != nil {
				return err.Error()
			}
			return string(b[:n])
		}
		if got := ask("10.0.1.1:7", "hello"); got != "hello" {
			t.Errorf("echo on 10.0.1.1: %q", got)
		}
		if got := ask("10.0.2.1:7", "via the other address"); got != "via the other address" {
			t.Errorf("echo on 10.0.2.1: %q", got)
		}
		if got := ask("10.0.1.1:13", ""); !strings.HasSuffix(got, "\r\n") || !strings.Contains(got, fmt.Sprint(time.Now().Year())) {
			t.Errorf("daytime: %q", got)
		}
		bc, err := socket.ListenUDP(b, netip.MustParseAddrPort("0.0.0.0:5000"))
		if err != nil {
			t.Fatal(err)
		}
		defer bc.Close()
		c.WriteToUDPAddrPort([]byte("across"), netip.MustParseAddrPort("10.0.2.2:5000"))
		bc.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 100)
		n, from, err := bc.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "across" || from.Addr() != netip.MustParseAddr("10.0.1.2") {
			t.Errorf("forwarded datagram: %q from %v, %v", buf[:n], from, err)
		}

		// Close takes it all down: the links are closed.
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for spec, ep := range p.near {
			if _, err := ep.WriteBatch(nil); !errors.Is(err, link.ErrClosed) {
				t.Errorf("%s after Close: write error %v, want link.ErrClosed", spec, err)
			}
		}
	})
}

func TestStartFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := ParseConfig([]byte(routerConfig))
		if err != nil {
			t.Fatal(err)
		}
		p := newPipes(t, "tap:a") // tap:b is missing
		_, err = Start(cfg, Options{OpenLink: p.open})
		if err == nil || err.Error() != "interface eth1: tap:b: no such device" {
			t.Fatalf("Start: %v", err)
		}
		if _, err := p.near["tap:a"].WriteBatch(nil); !errors.Is(err, link.ErrClosed) {
			t.Errorf("the link opened first was not closed: %v", err)
		}
	})
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := ParseConfig([]byte("interfaces:\n  - {name: eth0, link: tap:a, addresses: [10.0.1.1/24]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		// Run with the real opener fails cleanly on a device that
		// cannot be opened here: an invalid name.
		cfg.Interfaces[0].Link = "tap:bad/name"
		err = Run(context.Background(), cfg, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "interface eth0: ") {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestTCPServices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		file := make([]byte, 100000)
		for i := range file {
			file[i] = byte(i * 13)
		}
		if err := os.WriteFile(filepath.Join(root, "data.bin"), file, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfig([]byte(`
interfaces:
  - {name: eth0, link: "tap:a", addresses: [10.0.1.1/24]}
services:
  - {type: echo, listen: "tcp:7"}
  - {type: daytime, listen: "tcp:10.0.1.1:13"}
  - {type: http, listen: "tcp:80", root: "` + root + `"}
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
		a := p.host(t, "tap:a", "10.0.1.2/24", "")

		// echo: what goes in comes back, and the service closes when
		// the client half-closes.
		c, err := socket.DialTCP(a, netip.AddrPort{}, netip.MustParseAddrPort("10.0.1.1:7"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("hello over tcp"))
		c.CloseWrite()
		if got, err := io.ReadAll(c); err != nil || string(got) != "hello over tcp" {
			t.Errorf("echo: %q, %v", got, err)
		}

		// daytime: one line, then the server closes.
		c2, err := socket.DialTCP(a, netip.AddrPort{}, netip.MustParseAddrPort("10.0.1.1:13"))
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if got, err := io.ReadAll(c2); err != nil || !strings.HasSuffix(string(got), "\r\n") {
			t.Errorf("daytime: %q, %v", got, err)
		}

		// http: the whole file, and a range of it.
		tr := &http.Transport{DialContext: (&socket.Dialer{Stack: a}).DialContext}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		resp, err := client.Get("http://10.0.1.1/data.bin")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, file) {
			t.Errorf("GET: status %d, %d bytes, %v", resp.StatusCode, len(body), err)
		}
		req, _ := http.NewRequest("GET", "http://10.0.1.1/data.bin", nil)
		req.Header.Set("Range", "bytes=1000-1999")
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, file[1000:2000]) ||
			resp.Header.Get("Content-Range") != "bytes 1000-1999/100000" {
			t.Errorf("range GET: status %d, %d bytes, Content-Range %q, %v", resp.StatusCode, len(body), resp.Header.Get("Content-Range"), err)
		}
		resp, err = client.Get("http://10.0.1.1/missing")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /missing: status %d", resp.StatusCode)
		}
		tr.CloseIdleConnections()
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

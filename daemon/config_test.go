package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"ustack/wire"
)

const goodConfig = `
# a router with two interfaces
interfaces:
  - name: eth0
    link: tap:ut0
    mtu: 1400
    mac: 02:00:00:00:00:01
    addresses: [10.0.1.1/24, 10.0.3.1/24]
  - name: eth1
    link: afpacket:vB
    addresses:
      - 10.0.2.1/24
  - name: tun0
    link: tun:ut1
routes:
  - to: default
    via: 10.0.1.254
  - {to: 192.168.0.0/16, via: 10.0.2.9}
sysctl:
  net.inet.ip.forwarding: 1
  net.inet.ip.ttl: "32"
services:
  - {type: echo, listen: "udp:7"}
  - {type: discard, listen: "udp:10.0.1.1:9"}
  - type: chargen
  - {type: daytime, listen: "udp:127.0.0.1:13"}
  - {type: echo, listen: "tcp:7"}
  - {type: chargen, listen: "tcp:10.0.1.1:19"}
  - {type: http, root: .}
  - {type: http, listen: "tcp:10.0.2.1:8080", root: ..}
`

func TestParseGood(t *testing.T) {
	c, err := ParseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Interfaces: []Interface{
			{Name: "eth0", Link: "tap:ut0", MTU: 1400, MAC: wire.MAC{2, 0, 0, 0, 0, 1},
				Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.1/24"), netip.MustParsePrefix("10.0.3.1/24")}},
			{Name: "eth1", Link: "afpacket:vB", Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.2.1/24")}},
			{Name: "tun0", Link: "tun:ut1"},
		},
		Routes: []Route{
			{To: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.0.1.254")},
			{To: netip.MustParsePrefix("192.168.0.0/16"), Via: netip.MustParseAddr("10.0.2.9")},
		},
		Sysctl: []Setting{{"net.inet.ip.forwarding", "1"}, {"net.inet.ip.ttl", "32"}},
		Services: []Service{
			{Type: "echo", Network: "udp", Addr: netip.MustParseAddrPort("[::]:7")},
			{Type: "discard", Network: "udp", Addr: netip.MustParseAddrPort("10.0.1.1:9")},
			{Type: "chargen", Network: "udp", Addr: netip.MustParseAddrPort("[::]:19")},
			{Type: "daytime", Network: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:13")},
			{Type: "echo", Network: "tcp", Addr: netip.MustParseAddrPort("[::]:7")},
			{Type: "chargen", Network: "tcp", Addr: netip.MustParseAddrPort("10.0.1.1:19")},
			{Type: "http", Network: "tcp", Addr: netip.MustParseAddrPort("[::]:80"), Root: "."},
			{Type: "http", Network: "tcp", Addr: netip.MustParseAddrPort("10.0.2.1:8080"), Root: ".."},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed:\n%+v\nwant:\n%+v", c, want)
	}
	// Round trip: what Marshal writes parses back to the same config.
	out := c.Marshal()
	c2, err := ParseConfig(out)
	if err != nil {
		t.Fatalf("parse of marshalled config: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c2, c) {
		t.Fatalf("round trip changed the config:\n%s\ngot %+v", out, c2)
	}
	if again := c2.Marshal(); string(again) != string(out) {
		t.Errorf("marshal not stable:\n%s\nthen\n%s", out, again)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, s := range []string{"", "# nothing\n", "interfaces:\nroutes: []\n"} {
		c, err := ParseConfig([]byte(s))
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if len(c.Interfaces)+len(c.Routes)+len(c.Sysctl)+len(c.Services) != 0 {
			t.Errorf("%q: got %+v", s, c)
		}
	}
}

func TestParseBad(t *testing.T) {
	const iface = "interfaces:\n  - {name: eth0, link: tap:ut0, addresses: [10.0.0.1/24]}\n"
	const iface6 = "interfaces:\n  - {name: eth0, link: tap:ut0, addresses: [10.0.0.1/24, \"fd00::1/64\"]}\n"
	tests := []struct {
		name, config, want string
	}{
		{"bad cidr", "interfaces:\n  - name: eth0\n    link: tap:ut0\n    addresses: [10.0.0.1/24, 10.0.0.300/24]\n",
			`interfaces[0].addresses[1]: "10.0.0.300/24" is not a CIDR prefix (want ADDRESS/BITS, e.g. 10.0.0.2/24)`},
		{"bare address", "interfaces:\n  - {name: eth0, link: tap:ut0, addresses: [10.0.0.1]}\n",
			`interfaces[0].addresses[0]: "10.0.0.1" is not a CIDR prefix (want ADDRESS/BITS, e.g. 10.0.0.2/24)`},
		{"mapped address", "interfaces:\n  - {name: eth0, link: tap:ut0, addresses: [\"::ffff:10.0.0.1/120\"]}\n",
			`interfaces[0].addresses[0]: ::ffff:10.0.0.1/120: write IPv4 addresses as a.b.c.d and IPv6 ones without a zone`},
		{"route family", "interfaces:\n  - {name: eth0, link: tap:ut0, addresses: [10.0.0.1/24, fd00::1/64]}\nroutes:\n  - {to: default6, via: 10.0.0.9}\n",
			`routes[0].via: "10.0.0.9" is not an IPv6 address`},
		{"unknown key", "interfaces:\n  - name: eth0\n    link: tap:ut0\n    adress: [10.0.0.1/24]\n",
			`interfaces[0]: unknown key "adress" (did you mean "addresses"?)`},
		{"unknown top key", "interface: []\n",
			`unknown key "interface" (did you mean "interfaces"?)`},
		{"unknown key far off", "frobnicate: 1\n",
			`unknown key "frobnicate"`},
		{"unknown link kind", "interfaces:\n  - {name: eth0, link: veth:v0}\n",
			`interfaces[0].link: unknown link kind "veth" in "veth:v0" (want one of afpacket, tap, tun)`},
		{"link without kind", "interfaces:\n  - {name: eth0, link: ut0}\n",
			`interfaces[0].link: "ut0" is not a link spec (want KIND:DEVICE, KIND one of afpacket, tap, tun)`},
		{"long device", "interfaces:\n  - {name: eth0, link: tap:abcdefghijklmnop}\n",
			`interfaces[0].link: "abcdefghijklmnop" is not a device name (1 to 15 characters, no '/', ':' or spaces)`},
		{"duplicate name", "interfaces:\n  - {name: eth0, link: tap:ut0}\n  - {name: eth0, link: tap:ut1}\n",
			`interfaces[1].name: duplicate interface name "eth0" (also interfaces[0].name)`},
		{"duplicate link", "interfaces:\n  - {name: eth0, link: tap:ut0}\n  - {name: eth1, link: tap:ut0}\n",
			`interfaces[1].link: link "tap:ut0" is already used by interfaces[0].link`},
		{"duplicate address", "interfaces:\n  - {name: eth0, link: tap:ut0, addresses: [10.0.0.1/24]}\n  - {name: eth1, link: tap:ut1, addresses: [10.0.0.1/16]}\n",
			`interfaces[1].addresses[0]: address 10.0.0.1 is already given at interfaces[0].addresses[0]`},
		{"loopback name", "interfaces:\n  - {name: lo, link: tap:ut0}\n",
			`interfaces[0].name: "lo" is the stack's loopback interface; choose another name`},
		{"missing link", "interfaces:\n  - {name: eth0}\n",
			`interfaces[0]: missing key "link"`},
		{"missing name", "interfaces:\n  - {link: tap:ut0}\n",
			`interfaces[0]: missing key "name"`},
		{"bad mtu", "interfaces:\n  - {name: eth0, link: tap:ut0, mtu: 20}\n",
			`interfaces[0].mtu: "20" is not an integer in [68, 65535]`},
		{"bad mac", "interfaces:\n  - {name: eth0, link: tap:ut0, mac: 02:00:00}\n",
			`interfaces[0].mac: "02:00:00" is not a MAC address (want six hex bytes, e.g. 02:00:00:00:00:01)`},
		{"multicast mac", "interfaces:\n  - {name: eth0, link: tap:ut0, mac: 01:00:5e:00:00:01}\n",
			`interfaces[0].mac: 01:00:5e:00:00:01 is not a unicast MAC address`},
		{"mac on tun", "interfaces:\n  - {name: tun0, link: tun:ut0, mac: 02:00:00:00:00:01}\n",
			`interfaces[0].mac: a tun link carries IP packets and has no MAC`},
		{"interfaces not a list", "interfaces: {name: eth0}\n",
			`interfaces: want a list, got a mapping`},
		{"addresses not a list", "interfaces:\n  - {name: eth0, link: tap:ut0, addresses: 10.0.0.1/24}\n",
			`interfaces[0].addresses: want a list, got "10.0.0.1/24"`},
		{"route via off subnet", iface + "routes:\n  - {to: default, via: 10.9.9.1}\n",
			`routes[0].via: gateway 10.9.9.1 is not on any configured subnet`},
		{"route via self", iface + "routes:\n  - {to: default, via: 10.0.0.1}\n",
			`routes[0].via: gateway 10.0.0.1 is not on any configured subnet`},
		{"route bad to", iface + "routes:\n  - {to: 10.1.0.0, via: 10.0.0.2}\n",
			`routes[0].to: "10.1.0.0" is not a CIDR prefix, "default" or "default6"`},
		{"route host bits", iface + "routes:\n  - {to: 10.1.2.3/16, via: 10.0.0.2}\n",
			`routes[0].to: 10.1.2.3/16 has bits set past the prefix length (did you mean 10.1.0.0/16?)`},
		{"route missing via", iface + "routes:\n  - {to: default}\n",
			`routes[0]: missing key "via"`},
		{"route bad via", iface + "routes:\n  - {to: default, via: gateway}\n",
			`routes[0].via: "gateway" is not an IPv4 address`},
		{"unknown sysctl", "sysctl:\n  net.inet.ip.forwardng: 1\n",
			`sysctl: unknown name "net.inet.ip.forwardng" (did you mean "net.inet.ip.forwarding"?)`},
		{"unknown sysctl far off", "sysctl:\n  kern.hostname: x\n",
			`sysctl: unknown name "kern.hostname"`},
		{"bad sysctl value", "sysctl:\n  net.inet.ip.ttl: 300\n",
			`sysctl.net.inet.ip.ttl: want an integer in [1, 255], got "300"`},
		{"sysctl not a map", "sysctl: [a, b]\n",
			`sysctl: want a mapping of keys to values, got a list`},
		{"unknown service", "services:\n  - {type: qotd, listen: \"udp:17\"}\n",
			`services[0].type: unknown service type "qotd" (want one of chargen, daytime, discard, echo, http)`},
		{"http over udp", "services:\n  - {type: http, listen: \"udp:80\", root: .}\n",
			`services[0].listen: http runs over TCP only (want tcp:PORT or tcp:ADDRESS:PORT)`},
		{"http without root", "services:\n  - {type: http, listen: \"tcp:80\"}\n",
			`services[0]: missing key "root" (the directory to serve)`},
		{"http root missing", "services:\n  - {type: http, root: /nonexistent/ustack-www}\n",
			`services[0].root: root "/nonexistent/ustack-www": no such file or directory`},
		{"http root a file", "services:\n  - {type: http, root: config_test.go}\n",
			`services[0].root: root "config_test.go" is not a directory`},
		{"root on echo", "services:\n  - {type: echo, listen: \"tcp:7\", root: .}\n",
			`services[0].root: only http services have a root`},
		{"overlapping tcp services", iface + "services:\n  - {type: echo, listen: \"tcp:7\"}\n  - {type: discard, listen: \"tcp:10.0.0.1:7\"}\n",
			`services[1].listen: tcp:10.0.0.1:7 overlaps services[0].listen`},
		{"bad port", "services:\n  - {type: echo, listen: \"udp:70000\"}\n",
			`services[0].listen: "udp:70000": "70000" is not a port (want 1 to 65535)`},
		{"port zero", "services:\n  - {type: echo, listen: \"udp:0\"}\n",
			`services[0].listen: "udp:0": "0" is not a port (want 1 to 65535)`},
		{"no port", "services:\n  - {type: echo, listen: udp}\n",
			`services[0].listen: "udp" is not a listen spec (want udp:PORT, tcp:PORT, or with ADDRESS: before PORT)`},
		{"bad network", "services:\n  - {type: echo, listen: \"sctp:7\"}\n",
			`services[0].listen: "sctp:7": unknown network "sctp" (want udp or tcp)`},
		{"bad listen address", "services:\n  - {type: echo, listen: \"udp:10.0.0.x:7\"}\n",
			`services[0].listen: "udp:10.0.0.x:7": "10.0.0.x" is not an IP address`},
		{"IPv6 listen address without brackets", "services:\n  - {type: echo, listen: \"udp:::1:7\"}\n",
			`services[0].listen: "udp:::1:7": write an IPv6 address in brackets, as udp:[::1]:PORT`},
		{"IPv4 listen address in brackets", "services:\n  - {type: echo, listen: \"udp:[127.0.0.1]:7\"}\n",
			`services[0].listen: "udp:[127.0.0.1]:7": write an IPv4 address without brackets`},
		{"mapped listen address", "services:\n  - {type: echo, listen: \"udp:[::ffff:127.0.0.1]:7\"}\n",
			`services[0].listen: "udp:[::ffff:127.0.0.1]:7": write IPv4 addresses as a.b.c.d and IPv6 ones without a zone`},
		{"zoned listen address", "services:\n  - {type: echo, listen: \"udp:[fe80::1%eth0]:7\"}\n",
			`services[0].listen: "udp:[fe80::1%eth0]:7": write IPv4 addresses as a.b.c.d and IPv6 ones without a zone`},
		{"foreign IPv6 listen address", iface + "services:\n  - {type: echo, listen: \"tcp:[fd00::9]:7\"}\n",
			`services[0].listen: fd00::9 is not an address of any configured interface`},
		// The default (dual-stack [::]) takes IPv4 too: it overlaps the
		// IPv4 wildcard, and an explicit [::] is the default.
		{"dual-stack overlaps IPv4 wildcard", "services:\n  - {type: echo, listen: \"udp:0.0.0.0:7\"}\n  - {type: discard, listen: \"udp:7\"}\n",
			`services[1].listen: udp:7 overlaps services[0].listen`},
		{"explicit [::] overlaps default", "services:\n  - {type: echo, listen: \"tcp:7\"}\n  - {type: discard, listen: \"tcp:[::]:7\"}\n",
			`services[1].listen: tcp:[::]:7 overlaps services[0].listen`},
		{"dual-stack overlaps IPv6 address", iface6 + "services:\n  - {type: echo, listen: \"udp:7\"}\n  - {type: discard, listen: \"udp:[fd00::1]:7\"}\n",
			`services[1].listen: udp:[fd00::1]:7 overlaps services[0].listen`},
		{"foreign listen address", iface + "services:\n  - {type: echo, listen: \"udp:10.0.0.2:7\"}\n",
			`services[0].listen: 10.0.0.2 is not an address of any configured interface`},
		{"overlapping services", iface + "services:\n  - {type: echo, listen: \"udp:7\"}\n  - {type: discard, listen: \"udp:10.0.0.1:7\"}\n",
			`services[1].listen: udp:10.0.0.1:7 overlaps services[0].listen`},
		{"service missing type", "services:\n  - {listen: \"udp:7\"}\n",
			`services[0]: missing key "type"`},
		{"yaml syntax", "interfaces:\n  - name: eth0\n   link: x\n",
			`line 1: did not find expected '-' indicator`},
		{"duplicate key", "interfaces:\n  - {name: eth0, name: eth1, link: tap:ut0}\n",
			`interfaces[0]: key "name" is given twice`},
		{"top level list", "- a\n- b\n",
			`want a mapping of keys to values, got a list`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.config))
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if _, ok := err.(*ConfigError); !ok {
				t.Errorf("error is %T, want *ConfigError", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error:\n got %q\nwant %q", got, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ustackd.yaml")
	bad := "interfaces:\n  - name: eth0\n    link: tap:ut0\n    addresses: [10.0.0.1/24, 10.0.0.300/24]\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	want := `ustackd.yaml: interfaces[0].addresses[1]: "10.0.0.300/24" is not a CIDR prefix (want ADDRESS/BITS, e.g. 10.0.0.2/24)`
	if err == nil || err.Error() != want {
		t.Errorf("LoadConfig: %v\nwant %s", err, want)
	}
	_, err = LoadConfig(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.HasSuffix(err.Error(), "missing.yaml: cannot read: no such file or directory") {
		t.Errorf("LoadConfig(missing): %v", err)
	}
	if err := os.WriteFile(path, []byte(goodConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err != nil {
		t.Errorf("LoadConfig(good): %v", err)
	}
}

func TestGenerateMAC(t *testing.T) {
	a := GenerateMAC("eth0", "tap:ut0")
	if a != GenerateMAC("eth0", "tap:ut0") {
		t.Error("not deterministic")
	}
	if a == GenerateMAC("eth0", "tap:ut1") || a == GenerateMAC("eth1", "tap:ut0") {
		t.Error("different interfaces get the same MAC")
	}
	if !a.IsLocal() || a.IsMulticast() {
		t.Errorf("%s is not locally administered unicast", a)
	}
}

func TestParseIPv6(t *testing.T) {
	c, err := ParseConfig([]byte("interfaces:\n  - {name: eth0, link: tap:ut0, addresses: [10.0.0.1/24, \"2001:db8::1/64\"]}\n" +
		"routes:\n  - {to: default6, via: \"2001:db8::fe\"}\n  - {to: \"2001:db8:5::/48\", via: \"2001:db8::9\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{To: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8::fe")},
		{To: netip.MustParsePrefix("2001:db8:5::/48"), Via: netip.MustParseAddr("2001:db8::9")},
	}
	if !reflect.DeepEqual(c.Routes, want) || len(c.Interfaces[0].Addresses) != 2 {
		t.Errorf("routes %v, addresses %v", c.Routes, c.Interfaces[0].Addresses)
	}
}

// TestParseListenFamilies: a service without an address listens
// dual-stack on [::]; 0.0.0.0 is IPv4 only, and does not overlap an IPv6
// address on the same port; each spec survives Marshal.
func TestParseListenFamilies(t *testing.T) {
	c, err := ParseConfig([]byte(`
interfaces:
  - {name: eth0, link: tap:ut0, addresses: [10.0.0.1/24, "fd00::1/64"]}
services:
  - {type: echo, listen: "udp:7"}
  - {type: echo, listen: "tcp:[::]:7"}
  - {type: discard, listen: "udp:0.0.0.0:9"}
  - {type: discard, listen: "udp:[fd00::1]:9"}
  - {type: daytime, listen: "tcp:[::1]:13"}
  - {type: daytime, listen: "tcp:10.0.0.1:13"}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ addr, listen string }{
		{"[::]:7", "udp:7"},
		{"[::]:7", "tcp:7"},
		{"0.0.0.0:9", "udp:0.0.0.0:9"},
		{"[fd00::1]:9", "udp:[fd00::1]:9"},
		{"[::1]:13", "tcp:[::1]:13"},
		{"10.0.0.1:13", "tcp:10.0.0.1:13"},
	}
	if len(c.Services) != len(want) {
		t.Fatalf("%d services, want %d", len(c.Services), len(want))
	}
	for i, w := range want {
		s := c.Services[i]
		if s.Addr != netip.MustParseAddrPort(w.addr) || s.Listen() != w.listen {
			t.Errorf("services[%d]: addr %v, listen %q; want %s, %q", i, s.Addr, s.Listen(), w.addr, w.listen)
		}
	}
	c2, err := ParseConfig(c.Marshal())
	if err != nil || !reflect.DeepEqual(c2.Services, c.Services) {
		t.Errorf("round trip: %v\n%+v\nwant %+v", err, c2, c.Services)
	}
}

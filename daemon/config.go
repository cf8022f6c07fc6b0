package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"ustack/service"
	"ustack/stack"
	"ustack/wire"
)

// Config is a daemon's configuration, as read from its YAML file:
//
//	interfaces:
//	  - name: eth0
//	    link: tap:ut0          # afpacket:IFNAME | tap:IFNAME | tun:IFNAME
//	    mtu: 1500              # optional
//	    mac: 02:00:00:00:00:01 # optional; default generated from name and link
//	    addresses: [10.0.0.2/24]
//	routes:
//	  - {to: default, via: 10.0.0.1}
//	sysctl:
//	  net.inet.ip.forwarding: 1
//	services:
//	  - {type: echo, listen: "udp:7"}          # dual-stack: IPv4 and IPv6
//	  - {type: echo, listen: "tcp:0.0.0.0:7"}  # IPv4 only
//	  - {type: http, listen: "tcp:[fd00::1]:80", root: /srv/www}
type Config struct {
	Interfaces []Interface
	Routes     []Route
	// Sysctl holds the tunables to set, in file order.
	Sysctl   []Setting
	Services []Service
}

// Interface is one configured interface.
type Interface struct {
	// Name is the stack's name for it ("eth0").
	Name string
	// Link says which device: "afpacket:IFNAME", "tap:IFNAME" (created if
	// missing) or "tun:IFNAME".
	Link string
	// MTU overrides the link's default when non-zero.
	MTU int
	// MAC is the hardware address on Ethernet links; zero means
	// GenerateMAC(Name, Link).
	MAC wire.MAC
	// Addresses are the interface's addresses with their prefix lengths.
	Addresses []netip.Prefix
}

// Route is one static route.
type Route struct {
	To  netip.Prefix // 0.0.0.0/0 for "default", ::/0 for "default6"
	Via netip.Addr
}

// Setting is one sysctl assignment.
type Setting struct{ Name, Value string }

// Service is one built-in service (see package service) on a socket.
type Service struct {
	Type string
	// Network is "udp" or "tcp". A service without a listen spec takes
	// UDP, or TCP for http, on its well-known port.
	Network string
	// Addr is the local address and port. The IPv6 unspecified address
	// (the default, "udp:7" or "udp:[::]:7") is a dual-stack socket that
	// takes IPv4 too, with the peers as IPv4-mapped addresses, as Go's
	// net listens on "udp" and "tcp" (RFC 3493 §3.7); the IPv4
	// unspecified address ("udp:0.0.0.0:7") takes IPv4 only.
	Addr netip.AddrPort
	// Root is the directory an http service serves (only for http).
	Root string
}

// Listen is the service's listen spec: "udp:7" (dual-stack),
// "tcp:0.0.0.0:7", "tcp:10.0.0.1:80", "tcp:[fd00::1]:80".
func (s Service) Listen() string {
	if a := s.Addr.Addr(); !a.IsValid() || a == netip.IPv6Unspecified() {
		return fmt.Sprintf("%s:%d", s.Network, s.Addr.Port())
	}
	return fmt.Sprintf("%s:%s", s.Network, s.Addr)
}

// Link kinds OpenLink knows.
const (
	LinkAFPacket = "afpacket"
	LinkTAP      = "tap"
	LinkTUN      = "tun"
)

var linkKinds = []string{LinkAFPacket, LinkTAP, LinkTUN}

// ParseLinkSpec splits "kind:device" and checks both parts.
func ParseLinkSpec(spec string) (kind, dev string, err error) {
	kind, dev, ok := strings.Cut(spec, ":")
	if !ok || kind == "" {
		return "", "", fmt.Errorf("%q is not a link spec (want KIND:DEVICE, KIND one of %s)", spec, strings.Join(linkKinds, ", "))
	}
	if !contains(linkKinds, kind) {
		return "", "", fmt.Errorf("unknown link kind %q in %q (want one of %s)", kind, spec, strings.Join(linkKinds, ", "))
	}
	if dev == "" || len(dev) > 15 || strings.ContainsAny(dev, "/ \t:") {
		return "", "", fmt.Errorf("%q is not a device name (1 to 15 characters, no '/', ':' or spaces)", dev)
	}
	return kind, dev, nil
}

// GenerateMAC makes a locally administered unicast MAC from an interface's
// name and link spec, so a configuration gets the same MAC on every start
// and interfaces on different links differ.
func GenerateMAC(name, link string) wire.MAC {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(link))
	sum := h.Sum64()
	var m wire.MAC
	for i := range m {
		m[i] = byte(sum >> (8 * i))
	}
	m[0] = m[0]&^0x01 | 0x02 // unicast, locally administered (IEEE 802 U/L bit)
	return m
}

// LoadConfig reads and checks a configuration file. Errors are one line
// naming the file (its base name), the key and the problem.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: cannotRead(err)}
	}
	c, err := ParseConfig(data)
	if ce, ok := err.(*ConfigError); ok {
		ce.File = filepath.Base(path)
	}
	return c, err
}

func cannotRead(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return "cannot read: " + pe.Err.Error()
	}
	return err.Error()
}

// ParseConfig parses and checks a configuration. The error, a
// *ConfigError, names the first problem found.
func ParseConfig(data []byte) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &ConfigError{Msg: strings.TrimPrefix(oneLine(err.Error()), "yaml: ")}
	}
	var root node
	if len(doc.Content) > 0 {
		root = node{n: doc.Content[0]}
	}
	top, _, err := root.mapping("interfaces", "routes", "sysctl", "services")
	if err != nil {
		return nil, err
	}
	c := &Config{}
	if c.Interfaces, err = parseInterfaces(top["interfaces"].orPath("interfaces")); err != nil {
		return nil, err
	}
	if c.Routes, err = parseRoutes(top["routes"].orPath("routes"), c.Interfaces); err != nil {
		return nil, err
	}
	if c.Sysctl, err = parseSysctl(top["sysctl"].orPath("sysctl")); err != nil {
		return nil, err
	}
	if c.Services, err = parseServices(top["services"].orPath("services"), c.Interfaces); err != nil {
		return nil, err
	}
	return c, nil
}

// orPath gives a missing node its path.
func (n node) orPath(p string) node {
	if n.path == "" {
		n.path = p
	}
	return n
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func parseInterfaces(n node) ([]Interface, error) {
	list, err := n.sequence()
	if err != nil {
		return nil, err
	}
	var out []Interface
	names := map[string]string{} // name -> path
	links := map[string]string{} // link -> path
	addrs := map[netip.Addr]string{}
	for _, e := range list {
		m, _, err := e.mapping("name", "link", "mtu", "mac", "addresses")
		if err != nil {
			return nil, err
		}
		var ifc Interface
		name, ok := m["name"]
		if !ok {
			return nil, e.errorf("missing key \"name\"")
		}
		if ifc.Name, err = name.scalar(); err != nil {
			return nil, err
		}
		switch {
		case ifc.Name == "lo":
			return nil, name.errorf("%q is the stack's loopback interface; choose another name", ifc.Name)
		case len(ifc.Name) > 15 || strings.ContainsAny(ifc.Name, "/ \t:"):
			return nil, name.errorf("%q is not an interface name (1 to 15 characters, no '/', ':' or spaces)", ifc.Name)
		}
		if p, dup := names[ifc.Name]; dup {
			return nil, name.errorf("duplicate interface name %q (also %s)", ifc.Name, p)
		}
		names[ifc.Name] = name.path
		ln, ok := m["link"]
		if !ok {
			return nil, e.errorf("missing key \"link\"")
		}
		if ifc.Link, err = ln.scalar(); err != nil {
			return nil, err
		}
		kind, _, err := ParseLinkSpec(ifc.Link)
		if err != nil {
			return nil, ln.errorf("%v", err)
		}
		if p, dup := links[ifc.Link]; dup {
			return nil, ln.errorf("link %q is already used by %s", ifc.Link, p)
		}
		links[ifc.Link] = ln.path
		if v, ok := m["mtu"]; ok {
			if ifc.MTU, err = v.integer(68, 65535); err != nil {
				return nil, err
			}
		}
		if v, ok := m["mac"]; ok {
			s, err := v.scalar()
			if err != nil {
				return nil, err
			}
			if kind == LinkTUN {
				return nil, v.errorf("a tun link carries IP packets and has no MAC")
			}
			if ifc.MAC, err = wire.ParseMAC(s); err != nil {
				return nil, v.errorf("%q is not a MAC address (want six hex bytes, e.g. 02:00:00:00:00:01)", s)
			}
			if ifc.MAC.IsMulticast() || ifc.MAC.IsZero() {
				return nil, v.errorf("%s is not a unicast MAC address", ifc.MAC)
			}
		}
		al, err := m["addresses"].orPath(e.child("addresses").path).sequence()
		if err != nil {
			return nil, err
		}
		for _, a := range al {
			s, err := a.scalar()
			if err != nil {
				return nil, err
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, a.errorf("%q is not a CIDR prefix (want ADDRESS/BITS, e.g. 10.0.0.2/24)", s)
			}
			if p.Addr().Is4In6() || p.Addr().Zone() != "" {
				return nil, a.errorf("%s: write IPv4 addresses as a.b.c.d and IPv6 ones without a zone", p)
			}
			if q, dup := addrs[p.Addr()]; dup {
				return nil, a.errorf("address %s is already given at %s", p.Addr(), q)
			}
			addrs[p.Addr()] = a.path
			ifc.Addresses = append(ifc.Addresses, p)
		}
		out = append(out, ifc)
	}
	return out, nil
}

func parseRoutes(n node, ifs []Interface) ([]Route, error) {
	list, err := n.sequence()
	if err != nil {
		return nil, err
	}
	var out []Route
	for _, e := range list {
		m, _, err := e.mapping("to", "via")
		if err != nil {
			return nil, err
		}
		var r Route
		to, ok := m["to"]
		if !ok {
			return nil, e.errorf("missing key \"to\"")
		}
		s, err := to.scalar()
		if err != nil {
			return nil, err
		}
		if s == "default" {
			r.To = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		} else if s == "default6" {
			r.To = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		} else if r.To, err = netip.ParsePrefix(s); err != nil {
			return nil, to.errorf("%q is not a CIDR prefix, \"default\" or \"default6\"", s)
		} else if r.To.Addr().Is4In6() || r.To.Addr().Zone() != "" {
			return nil, to.errorf("%s: write IPv4 prefixes as a.b.c.d/n and IPv6 ones without a zone", r.To)
		} else if r.To != r.To.Masked() {
			return nil, to.errorf("%s has bits set past the prefix length (did you mean %s?)", r.To, r.To.Masked())
		}
		via, ok := m["via"]
		if !ok {
			return nil, e.errorf("missing key \"via\"")
		}
		if s, err = via.scalar(); err != nil {
			return nil, err
		}
		if r.Via, err = netip.ParseAddr(s); err != nil || r.Via.Is4() != r.To.Addr().Is4() || r.Via.Is4In6() || r.Via.Zone() != "" {
			fam := "an IPv4"
			if !r.To.Addr().Is4() {
				fam = "an IPv6"
			}
			return nil, via.errorf("%q is not %s address", s, fam)
		}
		if !onSubnet(ifs, r.Via) {
			return nil, via.errorf("gateway %s is not on any configured subnet", r.Via)
		}
		out = append(out, r)
	}
	return out, nil
}

// onSubnet reports whether a is on the subnet of a configured address
// (and is not that address itself).
func onSubnet(ifs []Interface, a netip.Addr) bool {
	for _, ifc := range ifs {
		for _, p := range ifc.Addresses {
			if p.Contains(a) && p.Addr() != a {
				return true
			}
		}
	}
	return false
}

// isConfigured reports whether a is a configured address.
func isConfigured(ifs []Interface, a netip.Addr) bool {
	for _, ifc := range ifs {
		for _, p := range ifc.Addresses {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

func parseSysctl(n node) ([]Setting, error) {
	m, order, err := n.mapping()
	if err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return nil, nil
	}
	// Names and values are checked against a real stack's registry, so the
	// daemon cannot fail later on a setting the file got wrong.
	probe := stack.New(stack.Options{NoLoopback: true})
	defer probe.Close()
	var out []Setting
	for _, name := range order {
		v := m[name]
		value, err := v.scalar()
		if err != nil {
			return nil, err
		}
		if _, err := probe.GetSysctl(name); err != nil {
			msg := fmt.Sprintf("unknown name %q", name)
			var names []string
			for _, t := range probe.Sysctl().All() {
				names = append(names, t.Name)
			}
			if s := suggest(name, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return nil, n.errorf("%s", msg)
		}
		if err := probe.SetSysctl(name, value); err != nil {
			return nil, v.errorf("%v", strings.TrimPrefix(err.Error(), "sysctl "+name+": "))
		}
		out = append(out, Setting{Name: name, Value: value})
	}
	return out, nil
}

func parseServices(n node, ifs []Interface) ([]Service, error) {
	list, err := n.sequence()
	if err != nil {
		return nil, err
	}
	var out []Service
	used := map[Service]string{} // with Type cleared: socket -> path
	for _, e := range list {
		m, _, err := e.mapping("type", "listen", "root")
		if err != nil {
			return nil, err
		}
		t, ok := m["type"]
		if !ok {
			return nil, e.errorf("missing key \"type\"")
		}
		var svc Service
		if svc.Type, err = t.scalar(); err != nil {
			return nil, err
		}
		if !service.Known(svc.Type) {
			return nil, t.errorf("unknown service type %q (want one of %s)", svc.Type, strings.Join(service.Kinds(), ", "))
		}
		l, ok := m["listen"]
		listen := fmt.Sprintf("udp:%d", service.Port(svc.Type))
		if !service.Datagram(svc.Type) {
			listen = fmt.Sprintf("tcp:%d", service.Port(svc.Type))
		}
		if ok {
			if listen, err = l.scalar(); err != nil {
				return nil, err
			}
		} else {
			l = e.child("listen")
		}
		if svc.Network, svc.Addr, err = parseListen(listen); err != nil {
			return nil, l.errorf("%v", err)
		}
		if svc.Network == "udp" && !service.Datagram(svc.Type) {
			return nil, l.errorf("%s runs over TCP only (want tcp:PORT or tcp:ADDRESS:PORT)", svc.Type)
		}
		if a := svc.Addr.Addr(); !a.IsUnspecified() && !a.IsLoopback() && !isConfigured(ifs, a) {
			return nil, l.errorf("%s is not an address of any configured interface", a)
		}
		for s, p := range used {
			if s.Network == svc.Network && s.Addr.Port() == svc.Addr.Port() && overlaps(s.Addr.Addr(), svc.Addr.Addr()) {
				return nil, l.errorf("%s overlaps %s", listen, p)
			}
		}
		used[Service{Network: svc.Network, Addr: svc.Addr}] = l.path
		r, ok := m["root"]
		switch {
		case ok && svc.Type != service.HTTP:
			return nil, r.errorf("only http services have a root")
		case ok:
			if svc.Root, err = r.scalar(); err != nil {
				return nil, err
			}
			if err := service.CheckRoot(svc.Root); err != nil {
				return nil, r.errorf("%v", err)
			}
		case svc.Type == service.HTTP:
			return nil, e.errorf("missing key \"root\" (the directory to serve)")
		}
		out = append(out, svc)
	}
	return out, nil
}

// overlaps reports whether sockets bound to a and b on one port would
// take some of the same packets: the IPv6 wildcard (dual-stack) takes
// every address, the IPv4 wildcard every IPv4 one.
func overlaps(a, b netip.Addr) bool {
	switch {
	case a == b, a == netip.IPv6Unspecified(), b == netip.IPv6Unspecified():
		return true
	case a == netip.IPv4Unspecified():
		return b.Is4()
	case b == netip.IPv4Unspecified():
		return a.Is4()
	}
	return false
}

// parseListen parses "NETWORK:PORT" or "NETWORK:ADDRESS:PORT", NETWORK
// udp or tcp, an IPv6 ADDRESS in brackets ("udp:[fd00::1]:7"). Without
// an address the service listens dual-stack on [::].
func parseListen(s string) (network string, ap netip.AddrPort, err error) {
	network, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", ap, fmt.Errorf("%q is not a listen spec (want udp:PORT, tcp:PORT, or with ADDRESS: before PORT)", s)
	}
	switch network {
	case "udp", "tcp":
	default:
		return "", ap, fmt.Errorf("%q: unknown network %q (want udp or tcp)", s, network)
	}
	addr, port := netip.IPv6Unspecified(), rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host := rest[:i]
		bracketed := strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")
		if bracketed {
			host = host[1 : len(host)-1]
		}
		addr, err = netip.ParseAddr(host)
		switch {
		case err != nil:
			return "", ap, fmt.Errorf("%q: %q is not an IP address", s, rest[:i])
		case addr.Is4() && bracketed:
			return "", ap, fmt.Errorf("%q: write an IPv4 address without brackets", s)
		case addr.Is6() && !bracketed:
			return "", ap, fmt.Errorf("%q: write an IPv6 address in brackets, as %s:[%s]:PORT", s, network, host)
		case addr.Is4In6() || addr.Zone() != "":
			return "", ap, fmt.Errorf("%q: write IPv4 addresses as a.b.c.d and IPv6 ones without a zone", s)
		}
		port = rest[i+1:]
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", ap, fmt.Errorf("%q: %q is not a port (want 1 to 65535)", s, port)
	}
	return network, netip.AddrPortFrom(addr, uint16(p)), nil
}

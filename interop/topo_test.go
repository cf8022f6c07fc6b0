package interop

import (
	"net/netip"
	"strings"
	"testing"

	"ustack/internal/clock"
	"ustack/internal/netns"
	"ustack/link"
	"ustack/link/offload"
	"ustack/link/tap"
	"ustack/stack"
	"ustack/wire"
)

// The two ways the stack meets the kernel.
const (
	// kindAFPacket: namespace K holds vA (10.200.1.1/24); its veth peer
	// vB, up and without an address, sits in namespace S, where the
	// stack opens an AF_PACKET socket on it.
	kindAFPacket = "afpacket"
	// kindTAP: namespace K holds the TAP device ut0 (10.200.2.1/24);
	// the stack opens the same device from inside K, so the kernel
	// receives what the stack writes and the other way round.
	kindTAP = "tap"
)

var kinds = []string{kindAFPacket, kindTAP}

// topoConfig says how to build a topology.
type topoConfig struct {
	kind string
	// noOffload turns the kernel's transmit checksum offload off, so it
	// sends complete checksums (AF_PACKET: ethtool -K vA tx off; TAP:
	// no TUNSETOFFLOAD). Otherwise the kernel hands the stack partial
	// checksums, which the stack takes as they are
	// (offload.Accept.PartialCsum).
	noOffload bool
	// clock is the stack's clock (nil: the real one).
	clock clock.Clock
}

// topo is a stack on a link facing the kernel.
type topo struct {
	kind         string
	k            *netns.NS // the kernel's side
	s            *netns.NS // where the stack's device is (K itself for TAP)
	kdev         string    // the kernel's device in k
	kaddr, saddr netip.Addr
	prefix       int
	st           *stack.Stack
	ifc          *stack.Interface
	obs          *observer
}

// tapMAC is the stack's address on the TAP device; the kernel's end of
// the device keeps its own random one.
var tapMAC = wire.MAC{0x02, 0x00, 0x0a, 0xc8, 0x02, 0x02}

// newNS makes a namespace with IPv6 off, so the kernel sends nothing
// but what a test asks for (the stack has no IPv6, and router
// solicitations and MLD reports would land in its drop counters).
func newNS(t *testing.T) *netns.NS {
	t.Helper()
	ns := netns.New(t)
	ns.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return ns
}

// newTopo builds a topology with the stack attached and addressed. It
// all goes away when the test ends.
func newTopo(t *testing.T, cfg topoConfig) *topo {
	t.Helper()
	tp := newKernelSide(t, cfg)
	var ep link.Endpoint
	accept := offload.Accept{PartialCsum: true}
	switch cfg.kind {
	case kindAFPacket:
		ep = openAFPacket(t, tp.s, "vB", accept)
	case kindTAP:
		tp.k.MustDo(t, func() error {
			var err error
			ep, err = tap.Open("ut0", &tap.Config{MAC: tapMAC, Up: true, Offload: !cfg.noOffload, Accept: accept})
			return err
		})
	}
	checkKernelTxCsum(t, tp.k, tp.kdev, !cfg.noOffload)

	tp.obs = &observer{Endpoint: ep}
	tp.st = stack.New(stack.Options{Name: "interop-" + cfg.kind, Clock: cfg.clock})
	t.Cleanup(func() { tp.st.Close() })
	ifc, err := tp.st.AddInterface("eth0", tp.obs)
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	tp.ifc = ifc
	if err := tp.st.AddAddress("eth0", netip.PrefixFrom(tp.saddr, tp.prefix)); err != nil {
		t.Fatal(err)
	}
	return tp
}

// newKernelSide builds a topology's namespaces and devices and gives the
// kernel its address, leaving the stack's side for a stack to open.
func newKernelSide(t *testing.T, cfg topoConfig) *topo {
	t.Helper()
	tp := &topo{kind: cfg.kind, prefix: 24}
	switch cfg.kind {
	case kindAFPacket:
		tp.k, tp.s = newNS(t), newNS(t)
		tp.kdev = "vA"
		tp.kaddr, tp.saddr = netip.MustParseAddr("10.200.1.1"), netip.MustParseAddr("10.200.1.2")
		netns.CreateVeth(t, "vA", tp.k, "vB", tp.s)
		if cfg.noOffload {
			tp.k.Run(t, "ethtool", "-K", "vA", "tx", "off")
		}
	case kindTAP:
		tp.k = newNS(t)
		tp.s = tp.k
		tp.kdev = "ut0"
		tp.kaddr, tp.saddr = netip.MustParseAddr("10.200.2.1"), netip.MustParseAddr("10.200.2.2")
		netns.CreateTuntap(t, tp.k, "ut0", "tap")
	default:
		t.Fatalf("unknown topology %q", cfg.kind)
	}
	tp.k.Run(t, "ip", "addr", "add", netip.PrefixFrom(tp.kaddr, tp.prefix).String(), "dev", tp.kdev)
	tp.k.Run(t, "ip", "link", "set", tp.kdev, "up")
	return tp
}

// checkKernelTxCsum checks that dev's transmit checksum offload is as the
// test means it to be.
func checkKernelTxCsum(t *testing.T, ns *netns.NS, dev string, on bool) {
	t.Helper()
	out := ns.Run(t, "ethtool", "-k", dev)
	want := "tx-checksumming: off"
	if on {
		want = "tx-checksumming: on"
	}
	if !strings.Contains(out, want) {
		t.Fatalf("ethtool -k %s: want %q in:\n%s", dev, want, out)
	}
}

package stack_test

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"ustack/buf"
	"ustack/link"
	"ustack/stack"
	"ustack/wire"
)

// sinkLink is an Ethernet link that swallows what is written and lets the
// test inject frames by calling the dispatcher directly.
type sinkLink struct {
	mac     wire.MAC
	d       link.Dispatcher
	written atomic.Int64
}

func (l *sinkLink) Name() string                    { return "sink" }
func (l *sinkLink) Type() link.Type                 { return link.TypeEthernet }
func (l *sinkLink) MTU() int                        { return 1500 }
func (l *sinkLink) HardwareAddr() wire.MAC          { return l.mac }
func (l *sinkLink) Capabilities() link.Capabilities { return 0 }
func (l *sinkLink) HeaderRoom() int                 { return 0 }
func (l *sinkLink) Attach(d link.Dispatcher)        { l.d = d }
func (l *sinkLink) Close() error                    { return nil }
func (l *sinkLink) WriteBatch(pkts []*buf.Packet) (int, error) {
	for _, p := range pkts {
		l.written.Add(1)
		p.Release()
	}
	return len(pkts), nil
}

var peerMAC = wire.MAC{2, 0, 0, 0, 0, 2}

func sinkStack(t testing.TB) (*stack.Stack, *sinkLink) {
	return sinkStackOpts(t, stack.Options{Name: "sink"})
}

func sinkStackOpts(t testing.TB, o stack.Options) (*stack.Stack, *sinkLink) {
	s := stack.New(o)
	t.Cleanup(func() { s.Close() })
	l := &sinkLink{mac: wire.MAC{2, 0, 0, 0, 0, 1}}
	if _, err := s.AddInterface("eth0", l); err != nil {
		t.Fatal(err)
	}
	s.AddAddress("eth0", netip.MustParsePrefix("10.0.0.1/24"))
	if err := s.Interface("eth0").NeighborCache().AddStatic(netip.MustParseAddr("10.0.0.2"), peerMAC); err != nil {
		t.Fatal(err)
	}
	return s, l
}

package udp_test

import (
	"net/netip"
	"testing"

	"ustack/buf"
	"ustack/proto"
	"ustack/transport/udp"
	"ustack/wire"
)

// IPv6: a datagram without a checksum is dropped (RFC 8200 §8.1). (The
// send side is checked end to end in stack/e2e6_test.go.)
func TestIPv6Checksum(t *testing.T) {
	_, p, sys := newFake(t)
	sys.Set("net.inet.udp.checksum", "0") // IPv4 only: IPv6 receivers need one anyway
	e := mustBind(t, p, "[::]:53", udp.Options{})
	src := netip.MustParseAddrPort("[2001:db8::1]:4000")
	dst := netip.MustParseAddrPort("[2001:db8::2]:53")
	good := datagram(src, dst, []byte("payload"))
	if v := p.HandlePacket(info(src, dst), buf.FromBytes(good)); v != proto.Consumed {
		t.Fatalf("verdict %v", v)
	}
	if got, from := recvString(t, e); got != "payload" || from != src {
		t.Errorf("got %q from %v", got, from)
	}
	zero := append([]byte(nil), good...)
	wire.UDP(zero).SetChecksum(0)
	before := p.Stats().Dropped(proto.DropBadChecksum)
	p.HandlePacket(info(src, dst), buf.FromBytes(zero))
	if p.Stats().Dropped(proto.DropBadChecksum) != before+1 {
		t.Errorf("zero checksum over IPv6 not dropped")
	}
	expectEmpty(t, e)
}

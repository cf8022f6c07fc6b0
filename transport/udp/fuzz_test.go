package udp_test

import (
	"net/netip"
	"testing"

	"ustack/buf"
	"ustack/proto"
	"ustack/transport/udp"
)

// FuzzHandlePacket feeds arbitrary datagrams to a bound endpoint: no
// panic, every packet is either queued whole (its payload is the UDP
// length minus the header) or counted as a drop, and NoEndpoint leaves the
// packet to the caller.
func FuzzHandlePacket(f *testing.F) {
	src, dst := netip.MustParseAddrPort("10.0.0.1:4000"), netip.MustParseAddrPort("10.0.0.2:53")
	f.Add(datagram(src, dst, []byte("hello")))
	f.Add(datagram(src, netip.MustParseAddrPort("10.0.0.2:54"), nil))
	f.Add([]byte{0, 1, 0, 53, 0, 7, 0, 0})
	_, p, _ := newFake(f)
	e, err := p.Bind(dst, udp.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		pkt := buf.FromBytes(b)
		before := p.Stats().TotalDrops()
		switch p.HandlePacket(info(src, dst), pkt) {
		case proto.NoEndpoint:
			if string(pkt.ToBytes()) != string(b) {
				t.Fatal("NoEndpoint changed the packet")
			}
			pkt.Release()
		case proto.Consumed:
			got, _, ok := e.Recv()
			if ok {
				if n := int(b[4])<<8 | int(b[5]); got.Len() != n-8 {
					t.Fatalf("payload %d bytes, UDP length %d", got.Len(), n)
				}
				got.Release()
			} else if p.Stats().TotalDrops() != before+1 {
				t.Fatal("consumed without queueing or counting a drop")
			}
		}
	})
}

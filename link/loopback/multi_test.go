package loopback

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// TestMultiQueue: NewQueues spreads flows over its queues by their
// addresses and ports, and a connection's two directions share one.
func TestMultiQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queues = 3
		e := NewQueues(0, queues)
		defer e.Close()
		if e.NumRxQueues() != queues {
			t.Fatalf("NumRxQueues = %d", e.NumRxQueues())
		}
		var mu sync.Mutex
		byFlow := map[[2]uint16]uint32{} // ports → next seq
		bad := 0
		e.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range pkts {
				b := p.ToBytes()
				if p.Flags&buf.FlagLoopback == 0 {
					bad++
				}
				p.Release()
				k := [2]uint16{binary.BigEndian.Uint16(b[20:]), binary.BigEndian.Uint16(b[22:])}
				if seq := binary.BigEndian.Uint32(b[24:]); seq != byFlow[k] {
					bad++
				}
				byFlow[k]++
			}
		}))
		pkt := func(src, dst netip.AddrPort, seq uint32) *buf.Packet {
			b := make([]byte, 40)
			(&wire.IPv4Fields{TotalLen: 40, TTL: 64, Protocol: wire.IPProtoUDP, Src: src.Addr(), Dst: dst.Addr()}).Encode(b)
			binary.BigEndian.PutUint16(b[20:], src.Port())
			binary.BigEndian.PutUint16(b[22:], dst.Port())
			binary.BigEndian.PutUint32(b[24:], seq)
			return buf.FromBytes(b)
		}
		srv := netip.MustParseAddrPort("127.0.0.1:53")
		const flows, per = 12, 20
		for seq := range per {
			var pkts []*buf.Packet
			for f := range flows {
				cli := netip.AddrPortFrom(srv.Addr(), uint16(30000+f))
				pkts = append(pkts, pkt(cli, srv, uint32(seq)), pkt(srv, cli, uint32(seq)))
			}
			if n, err := e.WriteBatch(pkts); err != nil || n != len(pkts) {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
		}
		synctest.Wait()
		used, total := 0, uint64(0)
		for i := range queues {
			if n := e.RxQueuePackets(i); n > 0 {
				used++
				total += n
				// Each flow contributes both directions, 2·per packets,
				// to one queue.
				if n%(2*per) != 0 {
					t.Errorf("queue %d has %d packets: a flow's directions split", i, n)
				}
			}
		}
		if used < 2 || total != 2*flows*per || bad != 0 || len(byFlow) != 2*flows {
			t.Errorf("%d queues used, %d packets, %d bad, %d flow directions", used, total, bad, len(byFlow))
		}
	})
}

package pipe

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

// tcpFrame is an Ethernet/IPv4/TCP frame from src to dst whose 4 bytes
// after the ports carry seq.
func tcpFrame(src, dst netip.AddrPort, seq uint32) []byte {
	b := make([]byte, wire.EthernetHeaderLen+20+20)
	(&wire.EthernetFields{Type: wire.EtherTypeIPv4}).Encode(b)
	(&wire.IPv4Fields{TotalLen: 40, TTL: 64, Protocol: wire.IPProtoTCP, Src: src.Addr(), Dst: dst.Addr()}).Encode(b[14:])
	binary.BigEndian.PutUint16(b[34:], src.Port())
	binary.BigEndian.PutUint16(b[36:], dst.Port())
	binary.BigEndian.PutUint32(b[38:], seq)
	return b
}

// TestMultiQueue: a pipe with Config.Queues has that many receive queues
// on each side; flows take the queue QueueOf names, in both directions,
// and each arrives in order.
func TestMultiQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queues = 4
		a, b := New(Config{Queues: queues, QueueLen: 256})
		defer a.Close()
		defer b.Close()
		if a.NumRxQueues() != queues || b.NumRxQueues() != queues {
			t.Fatalf("NumRxQueues = %d, %d", a.NumRxQueues(), b.NumRxQueues())
		}
		var mu sync.Mutex
		next := map[uint16]uint32{}
		bad := 0
		b.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range pkts {
				f := p.ToBytes()
				p.Release()
				port, seq := binary.BigEndian.Uint16(f[34:]), binary.BigEndian.Uint32(f[38:])
				if seq != next[port] {
					bad++
				}
				next[port] = seq + 1
			}
		}))
		a.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) { link.ReleaseAll(pkts, 0) }))
		dst := netip.MustParseAddrPort("10.0.0.2:80")
		want := make([]uint64, queues)
		const flows, per = 16, 10
		for seq := range per {
			var pkts []*buf.Packet
			for f := range flows {
				src := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(5000+f))
				fr := tcpFrame(src, dst, uint32(seq))
				want[QueueOf(fr, link.TypeEthernet, queues)]++
				pkts = append(pkts, buf.FromBytes(fr))
				// The reply direction hashes alike (symmetric).
				if r := tcpFrame(dst, src, 0); QueueOf(r, link.TypeEthernet, queues) != QueueOf(fr, link.TypeEthernet, queues) {
					t.Fatalf("flow %v: replies take another queue", src)
				}
			}
			write(t, a, pkts...)
		}
		synctest.Wait()
		used := 0
		for i := range queues {
			if got := b.RxQueuePackets(i); got != want[i] {
				t.Errorf("queue %d: %d frames, want %d", i, got, want[i])
			}
			if want[i] > 0 {
				used++
			}
		}
		if used < 2 || bad != 0 || len(next) != flows {
			t.Errorf("%d queues used, %d frames out of order, %d flows seen", used, bad, len(next))
		}
		if b.LinkStats().RxPackets.Load() != flows*per {
			t.Errorf("RxPackets = %d", b.LinkStats().RxPackets.Load())
		}
		// ARP goes to queue 0.
		arp := make([]byte, 42)
		binary.BigEndian.PutUint16(arp[12:], uint16(wire.EtherTypeARP))
		q0 := a.RxQueuePackets(0)
		write(t, b, buf.FromBytes(arp))
		synctest.Wait()
		if a.RxQueuePackets(0) != q0+1 {
			t.Errorf("ARP frame not delivered on queue 0")
		}
	})
}

// TestDefaultOneQueue: without Config.Queues, one queue per side.
func TestDefaultOneQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := New(Config{})
		defer a.Close()
		defer b.Close()
		if a.NumRxQueues() != 1 || b.NumRxQueues() != 1 {
			t.Errorf("NumRxQueues = %d, %d, want 1", a.NumRxQueues(), b.NumRxQueues())
		}
	})
}

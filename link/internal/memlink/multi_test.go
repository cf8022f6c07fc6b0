package memlink_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"ustack/buf"
	"ustack/link"
	"ustack/link/internal/memlink"
	"ustack/wire"
)

// flowRecorder checks, per flow, that sequence numbers arrive in order,
// and counts the batches being delivered at the moment.
type flowRecorder struct {
	typ    link.Type
	mu     sync.Mutex
	next   map[netip.AddrPort]uint32 // by source
	got    int
	errs   []string
	inside atomic.Int32
	block  chan struct{} // if non-nil, DeliverBatch waits on it
}

func (r *flowRecorder) DeliverBatch(_ link.Endpoint, pkts []*buf.Packet) {
	r.inside.Add(1)
	defer r.inside.Add(-1)
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pkts {
		b := p.ToBytes()
		p.Release()
		if r.typ == link.TypeEthernet {
			b = b[wire.EthernetHeaderLen:]
		}
		var src netip.AddrPort
		var l4 []byte
		if b[0]>>4 == 4 {
			src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:16])), binary.BigEndian.Uint16(b[20:]))
			l4 = b[20:]
		} else {
			src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), binary.BigEndian.Uint16(b[40:]))
			l4 = b[40:]
		}
		seq := binary.BigEndian.Uint32(l4[4:])
		if want := r.next[src]; seq != want && len(r.errs) < 10 {
			r.errs = append(r.errs, fmt.Sprintf("flow from %v: seq %d, want %d", src, seq, want))
		}
		r.next[src] = seq + 1
		r.got++
	}
}

// TestMultiQueueKeepsFlowOrder: many flows pushed by several writers at
// once over 4 queues: every flow arrives complete and in order, each
// queue delivers exactly the frames of the flows that hash to it, and
// the queues deliver concurrently.
func TestMultiQueueKeepsFlowOrder(t *testing.T) {
	for _, typ := range []link.Type{link.TypeEthernet, link.TypeIP} {
		t.Run(typ.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const (
					queues  = 4
					writers = 4
					flows   = 32 // per writer
					perFlow = 50
				)
				var rx, tx link.Stats
				q := memlink.NewConfig(&stubEP{}, &rx, memlink.Config{Len: writers * flows * perFlow, Queues: queues, Type: typ}, func(*buf.Packet) {})
				defer q.Close()
				r := &flowRecorder{typ: typ, next: make(map[netip.AddrPort]uint32)}
				q.Attach(r)
				dst := ap("10.0.0.2:80")
				dst6 := ap("[2001:db8::2]:80")
				want := make([]uint64, queues)
				var wg sync.WaitGroup
				for w := range writers {
					var srcs []netip.AddrPort
					for f := range flows {
						if f%2 == 0 {
							srcs = append(srcs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(w), 1}), uint16(1000+f)))
						} else {
							srcs = append(srcs, netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(w)}), uint16(1000+f)))
						}
					}
					for _, s := range srcs {
						d := dst
						if s.Addr().Is6() {
							d = dst6
						}
						want[memlink.QueueOf(ipFrame(typ == link.TypeEthernet, 0, wire.IPProtoUDP, s, d, 0), typ, queues)] += perFlow
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						batch := make([]*buf.Packet, 0, 8)
						for seq := range perFlow {
							// Interleave the writer's flows within and across
							// batches.
							for i, s := range srcs {
								d := dst
								if s.Addr().Is6() {
									d = dst6
								}
								batch = append(batch, buf.FromBytes(ipFrame(typ == link.TypeEthernet, 0, wire.IPProtoUDP, s, d, uint32(seq))))
								if len(batch) == cap(batch) || i == len(srcs)-1 {
									q.Push(batch, func(*buf.Packet) bool { return true }, &tx)
									batch = batch[:0]
								}
							}
						}
					}()
				}
				wg.Wait()
				synctest.Wait() // the readers have drained their queues
				total := uint64(writers * flows * perFlow)
				r.mu.Lock()
				defer r.mu.Unlock()
				if d := tx.TxDrops.Load(); d != 0 {
					t.Fatalf("%d frames dropped", d)
				}
				for _, e := range r.errs {
					t.Error(e)
				}
				if r.got != int(total) || len(r.next) != writers*flows {
					t.Errorf("got %d frames of %d flows, want %d of %d", r.got, len(r.next), total, writers*flows)
				}
				for f, n := range r.next {
					if n != perFlow {
						t.Errorf("flow %v: %d frames, want %d", f, n, perFlow)
					}
				}
				used := 0
				for i := range queues {
					if got := q.QueuePackets(i); got != want[i] {
						t.Errorf("queue %d delivered %d frames, want %d (its flows')", i, got, want[i])
					}
					if want[i] > 0 {
						used++
					}
				}
				if used < 2 {
					t.Errorf("flows used %d queues of %d", used, queues)
				}
			})
		})
	}
}

// TestMultiQueueDeliversConcurrently: while one queue's batch is held in
// the dispatcher, another queue still delivers — the readers do not wait
// for each other.
func TestMultiQueueDeliversConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rx, tx link.Stats
		q := memlink.NewConfig(&stubEP{}, &rx, memlink.Config{Len: 16, Queues: 2, Type: link.TypeEthernet}, func(*buf.Packet) {})
		defer q.Close()
		r := &flowRecorder{typ: link.TypeEthernet, next: make(map[netip.AddrPort]uint32), block: make(chan struct{})}
		q.Attach(r)
		// One flow on each queue.
		var srcs [2]netip.AddrPort
		for p, found := uint16(1), 0; found < 3; p++ {
			s := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), p)
			i := flowQueue(s, ap("10.0.0.2:80"), 2)
			if found&(1<<i) == 0 {
				srcs[i] = s
				found |= 1 << i
			}
		}
		for _, s := range srcs {
			q.Push([]*buf.Packet{buf.FromBytes(ipFrame(true, 0, wire.IPProtoTCP, s, ap("10.0.0.2:80"), 0))}, func(*buf.Packet) bool { return true }, &tx)
		}
		synctest.Wait() // both readers are blocked inside DeliverBatch
		if n := r.inside.Load(); n != 2 {
			t.Errorf("%d batches being delivered at once, want 2 (one per queue)", n)
		}
		close(r.block)
		synctest.Wait()
		if q.QueuePackets(0) != 1 || q.QueuePackets(1) != 1 {
			t.Errorf("queues delivered %d and %d frames, want 1 and 1", q.QueuePackets(0), q.QueuePackets(1))
		}
	})
}

// TestMultiQueueNonIPOnQueueZero: ARP and other non-IP frames take queue
// 0 of a multi-queue link.
func TestMultiQueueNonIPOnQueueZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rx, tx link.Stats
		q := memlink.NewConfig(&stubEP{}, &rx, memlink.Config{Len: 64, Queues: 8, Type: link.TypeEthernet}, func(*buf.Packet) {})
		defer q.Close()
		q.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) { link.ReleaseAll(pkts, 0) }))
		var pkts []*buf.Packet
		for i, et := range []wire.EtherType{wire.EtherTypeARP, 0x88b5, 0x88cc, 0x0842} {
			f := make([]byte, 60)
			binary.BigEndian.PutUint16(f[12:], uint16(et))
			for j := range f[14:] {
				f[14+j] = byte(i*7 + j*13)
			}
			pkts = append(pkts, buf.FromBytes(f))
		}
		q.Push(pkts, func(*buf.Packet) bool { return true }, &tx)
		synctest.Wait()
		if got := q.QueuePackets(0); got != 4 || rx.RxPackets.Load() != 4 {
			t.Errorf("queue 0 delivered %d of %d frames, want all 4", got, rx.RxPackets.Load())
		}
	})
}

// TestMultiQueueClose: Close stops every queue's reader, drops what each
// holds and refuses later pushes.
func TestMultiQueueClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rx, tx link.Stats
		q := memlink.NewConfig(&stubEP{}, &rx, memlink.Config{Len: 64, Queues: 3, Type: link.TypeEthernet}, func(*buf.Packet) {})
		if q.NumQueues() != 3 {
			t.Fatalf("NumQueues = %d", q.NumQueues())
		}
		// Detached: frames queued on every queue are dropped.
		var pkts []*buf.Packet
		for p := range 30 {
			pkts = append(pkts, buf.FromBytes(ipFrame(true, 0, wire.IPProtoTCP, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(p+1)), ap("10.0.0.2:80"), 0)))
		}
		if n := q.Push(pkts, func(*buf.Packet) bool { return true }, &tx); n != 30 {
			t.Fatalf("Push = %d", n)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if got := rx.RxDrops.Load(); got != 30 {
			t.Errorf("RxDrops = %d, want 30", got)
		}
		if n := q.Push([]*buf.Packet{buf.FromBytes(ipFrame(true, 0, wire.IPProtoTCP, ap("10.0.0.1:7"), ap("10.0.0.2:80"), 0))}, func(*buf.Packet) bool { return true }, &tx); n != 0 || tx.TxDrops.Load() != 1 {
			t.Errorf("Push after Close = %d, TxDrops %d", n, tx.TxDrops.Load())
		}
	})
}

// TestQueuesBounded: Queues beyond MaxQueues is MaxQueues; 0 is one.
func TestQueuesBounded(t *testing.T) {
	var rx link.Stats
	for _, c := range []struct{ in, want int }{{0, 1}, {-3, 1}, {1, 1}, {5, 5}, {1000, memlink.MaxQueues}} {
		q := memlink.NewConfig(&stubEP{}, &rx, memlink.Config{Len: 1, Queues: c.in}, func(*buf.Packet) {})
		if q.NumQueues() != c.want {
			t.Errorf("Queues %d: %d queues, want %d", c.in, q.NumQueues(), c.want)
		}
		q.Close()
	}
}

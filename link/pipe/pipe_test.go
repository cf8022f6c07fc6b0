package pipe

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// recorder is a Dispatcher that keeps a copy of every frame and the size of
// every batch, and releases the packets.
type recorder struct {
	mu      sync.Mutex
	frames  [][]byte
	pkts    []buf.Packet // metadata snapshots
	batches []int
	eps     []link.Endpoint
}

func (r *recorder) DeliverBatch(ep link.Endpoint, pkts []*buf.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, len(pkts))
	for _, p := range pkts {
		r.frames = append(r.frames, p.ToBytes())
		r.pkts = append(r.pkts, buf.Packet{IfIndex: p.IfIndex, Flags: p.Flags, Offload: p.Offload, LinkHeader: p.LinkHeader})
		r.eps = append(r.eps, ep)
		p.Release()
	}
}

func (r *recorder) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames...)
}

// frame returns an Ethernet frame of n bytes whose payload starts with the
// sequence number i.
func frame(i, n int) *buf.Packet {
	b := make([]byte, n)
	if n >= wire.EthernetHeaderLen+4 {
		binary.BigEndian.PutUint16(b[12:], uint16(wire.EtherTypeIPv4))
		binary.BigEndian.PutUint32(b[14:], uint32(i))
	}
	return buf.FromBytes(b)
}

func frameSeq(b []byte) int { return int(binary.BigEndian.Uint32(b[14:])) }

func write(t *testing.T, ep link.Endpoint, pkts ...*buf.Packet) int {
	t.Helper()
	n, err := ep.WriteBatch(pkts)
	if err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	return n
}

func TestDefaults(t *testing.T) {
	a, b := New(Config{})
	defer a.Close()
	defer b.Close()
	c, d := New(Config{})
	defer c.Close()
	defer d.Close()
	for _, ep := range []*Endpoint{a, b, c, d} {
		if ep.Type() != link.TypeEthernet || ep.MTU() != 1500 || ep.HeaderRoom() != 0 || ep.Capabilities() != 0 {
			t.Errorf("%s: type %v mtu %d room %d caps %v", ep.Name(), ep.Type(), ep.MTU(), ep.HeaderRoom(), ep.Capabilities())
		}
		if m := ep.HardwareAddr(); !m.IsLocal() || m.IsMulticast() {
			t.Errorf("%s: MAC %v is not a locally administered unicast address", ep.Name(), m)
		}
	}
	macs := map[wire.MAC]bool{a.HardwareAddr(): true, b.HardwareAddr(): true, c.HardwareAddr(): true, d.HardwareAddr(): true}
	names := map[string]bool{a.Name(): true, b.Name(): true, c.Name(): true, d.Name(): true}
	if len(macs) != 4 || len(names) != 4 {
		t.Errorf("default pipes share MACs or names: %v %v", macs, names)
	}
	if a.Peer() != b || b.Peer() != a {
		t.Error("Peer() does not link the sides")
	}
	var _ link.Counted = a
}

func TestConfig(t *testing.T) {
	ma := wire.MAC{0x02, 1, 2, 3, 4, 5}
	a, b := New(Config{Name: "p", MTU: 9000, MACA: ma, Seed: 0x123456, Offloads: link.CapTxChecksum | link.CapLoopback})
	defer a.Close()
	defer b.Close()
	if a.Name() != "pa" || b.Name() != "pb" || a.MTU() != 9000 {
		t.Errorf("names %q %q, MTU %d", a.Name(), b.Name(), a.MTU())
	}
	if a.HardwareAddr() != ma || b.HardwareAddr() != (wire.MAC{0x02, 0, 0x12, 0x34, 0x56, 0x0b}) {
		t.Errorf("MACs %v %v", a.HardwareAddr(), b.HardwareAddr())
	}
	if a.Capabilities() != link.CapTxChecksum {
		t.Errorf("Capabilities() = %v, want tx-csum only", a.Capabilities())
	}
	x, y := New(Config{Type: link.TypeIP, MACA: ma})
	defer x.Close()
	defer y.Close()
	if x.Type() != link.TypeIP || !x.HardwareAddr().IsZero() || !y.HardwareAddr().IsZero() {
		t.Errorf("IP pipe: type %v MACs %v %v", x.Type(), x.HardwareAddr(), y.HardwareAddr())
	}
}

func TestDeliversBatchesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := New(Config{})
		defer a.Close()
		defer b.Close()
		var ra, rb recorder
		a.Attach(&ra)
		b.Attach(&rb)

		const n = 200
		var pkts []*buf.Packet
		var sizes []int
		for i := range n {
			size := 18 + (i*37)%1497
			sizes = append(sizes, size)
			pkts = append(pkts, frame(i, size))
		}
		if got := write(t, a, pkts...); got != n {
			t.Fatalf("WriteBatch sent %d, want %d", got, n)
		}
		write(t, b, frame(7, 60))
		synctest.Wait()

		got := rb.got()
		if len(got) != n {
			t.Fatalf("b received %d frames, want %d", len(got), n)
		}
		for i, f := range got {
			if frameSeq(f) != i || len(f) != sizes[i] {
				t.Fatalf("frame %d: seq %d size %d, want seq %d size %d", i, frameSeq(f), len(f), i, sizes[i])
			}
			if rb.eps[i] != link.Endpoint(b) {
				t.Fatalf("frame %d delivered with endpoint %v", i, rb.eps[i])
			}
		}
		total := 0
		for _, s := range rb.batches {
			if s < 1 || s > link.MaxBatch {
				t.Errorf("batch of %d frames", s)
			}
			total += s
		}
		if len(rb.batches) < (n+link.MaxBatch-1)/link.MaxBatch {
			t.Errorf("%d batches for %d frames", len(rb.batches), n)
		}
		if g := ra.got(); len(g) != 1 || len(g[0]) != 60 {
			t.Errorf("a received %d frames", len(g))
		}
		bytes := 0
		for _, s := range sizes {
			bytes += s
		}
		as, bs := a.LinkStats(), b.LinkStats()
		if as.TxPackets.Load() != n || as.TxBytes.Load() != uint64(bytes) || bs.RxPackets.Load() != n || bs.RxBytes.Load() != uint64(bytes) {
			t.Errorf("a tx %d/%d, b rx %d/%d; want %d/%d", as.TxPackets.Load(), as.TxBytes.Load(), bs.RxPackets.Load(), bs.RxBytes.Load(), n, bytes)
		}
		if as.RxPackets.Load() != 1 || bs.TxPackets.Load() != 1 {
			t.Errorf("reverse direction: a rx %d, b tx %d", as.RxPackets.Load(), bs.TxPackets.Load())
		}
	})
}

func TestLengthLimits(t *testing.T) {
	vlan := func(n int) *buf.Packet {
		p := frame(0, n)
		binary.BigEndian.PutUint16(p.Bytes()[12:], uint16(wire.EtherTypeVLAN))
		return p
	}
	gso := func(p *buf.Packet, t buf.GSOType) *buf.Packet { p.Offload.GSO = t; return p }
	for _, tc := range []struct {
		name string
		cfg  Config
		pkt  func() *buf.Packet
		ok   bool
	}{
		{"eth-max", Config{}, func() *buf.Packet { return frame(0, 1514) }, true},
		{"eth-over", Config{}, func() *buf.Packet { return frame(0, 1515) }, false},
		{"eth-vlan-max", Config{}, func() *buf.Packet { return vlan(1518) }, true},
		{"eth-vlan-over", Config{}, func() *buf.Packet { return vlan(1519) }, false},
		{"eth-runt", Config{}, func() *buf.Packet { return buf.FromBytes(make([]byte, 13)) }, false},
		{"eth-header-only", Config{}, func() *buf.Packet { return buf.FromBytes(make([]byte, 14)) }, true},
		{"eth-jumbo", Config{MTU: 9000}, func() *buf.Packet { return frame(0, 9014) }, true},
		{"ip-max", Config{Type: link.TypeIP}, func() *buf.Packet { return buf.FromBytes(make([]byte, 1500)) }, true},
		{"ip-over", Config{Type: link.TypeIP}, func() *buf.Packet { return buf.FromBytes(make([]byte, 1501)) }, false},
		{"ip-empty", Config{Type: link.TypeIP}, func() *buf.Packet { return buf.FromBytes(nil) }, false},
		{"tso-without-cap", Config{}, func() *buf.Packet { return gso(frame(0, 30000), buf.GSOTCPv4) }, false},
		{"tso4", Config{Offloads: link.CapTSO4}, func() *buf.Packet { return gso(frame(0, 30000), buf.GSOTCPv4) }, true},
		{"tso6-with-tso4", Config{Offloads: link.CapTSO4}, func() *buf.Packet { return gso(frame(0, 30000), buf.GSOTCPv6) }, false},
		{"tso6", Config{Offloads: link.CapTSO6}, func() *buf.Packet { return gso(frame(0, 30000), buf.GSOTCPv6) }, true},
		{"uso", Config{Offloads: link.CapUSO}, func() *buf.Packet { return gso(frame(0, 30000), buf.GSOUDPL4) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := New(tc.cfg)
				defer a.Close()
				defer b.Close()
				var r recorder
				b.Attach(&r)
				n := write(t, a, tc.pkt())
				synctest.Wait()
				want, errs := 1, uint64(0)
				if !tc.ok {
					want, errs = 0, 1
				}
				if n != want || len(r.got()) != want {
					t.Errorf("sent %d, delivered %d; want %d", n, len(r.got()), want)
				}
				if got := a.LinkStats().TxErrors.Load(); got != errs {
					t.Errorf("TxErrors = %d, want %d", got, errs)
				}
			})
		})
	}
}

func TestQueueFullDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := New(Config{QueueLen: 8})
		defer a.Close()
		defer b.Close()
		var r recorder
		unblock := make(chan struct{})
		first := true
		b.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
			if first {
				first = false
				<-unblock // hold the reader so the queue fills
			}
			r.DeliverBatch(ep, pkts)
		}))
		write(t, a, frame(0, 60))
		synctest.Wait() // reader is now blocked in the dispatcher
		var pkts []*buf.Packet
		for i := 1; i <= 20; i++ {
			pkts = append(pkts, frame(i, 60))
		}
		if n := write(t, a, pkts...); n != 8 {
			t.Errorf("WriteBatch sent %d into a queue of 8", n)
		}
		if got := a.LinkStats().TxDrops.Load(); got != 12 {
			t.Errorf("TxDrops = %d, want 12", got)
		}
		close(unblock)
		synctest.Wait()
		got := r.got()
		if len(got) != 9 {
			t.Fatalf("delivered %d frames, want 9", len(got))
		}
		for i, f := range got {
			if frameSeq(f) != i {
				t.Errorf("frame %d has seq %d", i, frameSeq(f))
			}
		}
	})
}

func TestDetachAndReattach(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := New(Config{})
		defer a.Close()
		defer b.Close()
		var r1, r2 recorder
		b.Attach(&r1)
		write(t, a, frame(1, 60))
		synctest.Wait()
		b.Attach(nil)
		write(t, a, frame(2, 60), frame(3, 60))
		synctest.Wait()
		b.Attach(&r2)
		write(t, a, frame(4, 60))
		synctest.Wait()
		if len(r1.got()) != 1 || frameSeq(r1.got()[0]) != 1 {
			t.Errorf("first dispatcher got %d frames", len(r1.got()))
		}
		if len(r2.got()) != 1 || frameSeq(r2.got()[0]) != 4 {
			t.Errorf("second dispatcher got %d frames", len(r2.got()))
		}
		if got := b.LinkStats().RxDrops.Load(); got != 2 {
			t.Errorf("RxDrops = %d, want 2 (frames received while detached)", got)
		}
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := New(Config{})
		var r recorder
		a.Attach(&r)
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := a.Close(); !errors.Is(err, link.ErrClosed) {
			t.Errorf("second Close: %v, want ErrClosed", err)
		}
		if n, err := a.WriteBatch([]*buf.Packet{frame(0, 60)}); n != 0 || !errors.Is(err, link.ErrClosed) {
			t.Errorf("WriteBatch on closed side = %d, %v; want 0, ErrClosed", n, err)
		}
		if n := write(t, b, frame(0, 60)); n != 0 {
			t.Errorf("WriteBatch towards a closed peer sent %d", n)
		}
		if b.LinkStats().TxDrops.Load() != 1 {
			t.Errorf("TxDrops = %d, want 1", b.LinkStats().TxDrops.Load())
		}
		synctest.Wait()
		if len(r.got()) != 0 {
			t.Error("closed side delivered a frame")
		}
		b.Close()
		// synctest.Test fails if a reader goroutine outlives Close.
	})
}

// TestCloseDropsQueued closes a side whose reader is stuck in its
// dispatcher with frames queued behind.
func TestCloseDropsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := New(Config{})
		defer a.Close()
		unblock := make(chan struct{})
		b.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
			<-unblock
			link.ReleaseAll(pkts, 0)
		}))
		write(t, a, frame(0, 60))
		synctest.Wait()
		write(t, a, frame(1, 60), frame(2, 60))
		closed := make(chan error)
		go func() { closed <- b.Close() }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a batch was being delivered")
		default:
		}
		close(unblock)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if got := b.LinkStats().RxDrops.Load(); got != 2 {
			t.Errorf("RxDrops = %d, want 2", got)
		}
	})
}

// readers counts the goroutines running a memlink reader.
func readers() int {
	b := make([]byte, 1<<20)
	for {
		n := runtime.Stack(b, true)
		if n < len(b) {
			return strings.Count(string(b[:n]), "memlink.(*Queue).reader(")
		}
		b = make([]byte, 2*len(b))
	}
}

// TestNoGoroutineLeak checks outside a bubble that Close ends the readers.
// It counts reader goroutines by their stacks: readers of earlier tests
// (or of an earlier -count round) may still be returning, so it waits a
// bounded time for the count to fall to its target.
func TestNoGoroutineLeak(t *testing.T) {
	settle := func(want func(int) bool) int {
		deadline := time.Now().Add(5 * time.Second)
		n := readers()
		for !want(n) && time.Now().Before(deadline) {
			runtime.Gosched()
			n = readers()
		}
		return n
	}
	settle(func(n int) bool { return n == 0 })
	var eps []*Endpoint
	for range 10 {
		a, b := New(Config{Queues: 1 + len(eps)%3})
		a.Attach(&recorder{})
		write(t, b, frame(0, 60))
		eps = append(eps, a, b)
	}
	want := 0
	for _, ep := range eps {
		want += ep.NumRxQueues()
	}
	// A reader not yet scheduled shows no reader frame.
	n := settle(func(n int) bool { return n >= want })
	for _, ep := range eps {
		ep.Close()
	}
	if n < want {
		t.Errorf("%d reader goroutines after starting %d", n, want)
	}
	if n := settle(func(n int) bool { return n == 0 }); n != 0 {
		t.Errorf("%d reader goroutines after Close, want 0", n)
	}
}

// TestReceiveNotOnSendersGoroutine: a dispatcher that blocks must not block
// the writer, and a dispatcher may answer from DeliverBatch.
func TestReceiveNotOnSendersGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := New(Config{})
		defer a.Close()
		defer b.Close()
		unblock := make(chan struct{})
		b.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
			<-unblock
			// Echo: write back on the receiving side.
			ep.WriteBatch(pkts)
		}))
		var r recorder
		a.Attach(&r)
		write(t, a, frame(1, 60)) // returns although b's dispatcher blocks
		close(unblock)
		// Ping-pong: a answers every echo until 100 round trips.
		done := make(chan struct{})
		rounds := 0
		a.Attach(link.DispatcherFunc(func(ep link.Endpoint, pkts []*buf.Packet) {
			rounds += len(pkts)
			if rounds == 100 {
				link.ReleaseAll(pkts, 0)
				close(done)
				return
			}
			ep.WriteBatch(pkts)
		}))
		<-done
	})
}

func TestMetadataInTransit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		offloads link.Capabilities
		keep     bool
	}{
		{"no-offloads", 0, false},
		{"csum-offloads", link.CapTxChecksum | link.CapRxChecksum, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := New(Config{Offloads: tc.offloads})
				defer a.Close()
				defer b.Close()
				var r recorder
				b.Attach(&r)
				p := frame(0, 100)
				p.IfIndex = 5
				p.Flags = buf.FlagLinkBroadcast
				p.LinkHeader = p.Bytes()[:14]
				p.Offload = buf.Offload{NeedsCsum: true, CsumStart: 34, CsumOffset: 16}
				write(t, a, p)
				synctest.Wait()
				got := r.pkts[0]
				if got.IfIndex != 0 || got.Flags != 0 || got.LinkHeader != nil {
					t.Errorf("sender metadata crossed the pipe: IfIndex %d Flags %v LinkHeader %x", got.IfIndex, got.Flags, got.LinkHeader)
				}
				if got.Offload.NeedsCsum != tc.keep {
					t.Errorf("Offload = %+v, want kept = %v", got.Offload, tc.keep)
				}
			})
		})
	}
}

package fdlink

// A TUN/TAP device moves frames like this, per queue (one descriptor
// each; more than one with IFF_MULTI_QUEUE, the kernel choosing the
// queue of each frame it sends by its flow hash):
//
//	kernel ─▶ queue fd ─▶ readLoop: readv until EAGAIN (≤ batch) into RxBufs
//	       ─▶ Base.Input: virtio-net header ─▶ Offload; Complete/Segment
//	       ─▶ Base.Flush: GRO (Accept.GRO) ─▶ link.Dispatcher (same goroutine)
//
//	WriteBatch (any goroutine) ─▶ per frame: header from Offload, a queue
//	       by flow hash ─▶ writev(header, views...) ─▶ queue fd ─▶ kernel
//
// A TUN/TAP descriptor has no call that moves several frames, so each
// frame is one readv or writev; batching is per wakeup (read until
// EAGAIN) and the cost per byte falls with large frames (offloads, GRO).
// Descriptors are non-blocking and wrapped in os.Files, so waiting is
// done by Go's netpoller and Close wakes the readers.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/link"
	"ustack/link/offload"
	"ustack/wire"
)

// TunTapConfig configures OpenTunTap. See link/tap and link/tun for the
// meaning of each field.
type TunTapConfig struct {
	TAP         bool
	MTU         int
	MAC         wire.MAC
	Up          bool
	Offload     bool
	NoTxOffload bool
	Accept      offload.Accept
	Batch       int
	Queues      int
}

// TunTap is an open TUN or TAP device.
type TunTap struct {
	Base
	dev    string
	queues []*tunQueue
	rerr   atomic.Pointer[error]

	closed    atomic.Bool
	closeOnce sync.Once
	started   bool

	tx   sync.Pool // of *txScratch
	soft *SoftGSO  // with NoTxOffload
}

// tunQueue is one descriptor of the device and its reader's state.
type tunQueue struct {
	file     *os.File
	rc       syscall.RawConn
	done     chan struct{}
	rxFrames stats.Counter

	// Reader state, owned by readLoop.
	rx    *RxBufs
	lens  []int
	batch []*buf.Packet
	gro   offload.Coalescer
	merge []*buf.Packet
}

type txScratch struct {
	hdr  [offload.HeaderLen]byte
	iovs []unix.Iovec
}

// maxGSOFrame is the largest IP packet a GSO frame carries (the IPv4 and
// IPv6 length fields, and Linux's default gso_max_size).
const maxGSOFrame = 65535

// l2Room is the link header room a TAP frame may need: Ethernet and one
// VLAN tag.
const l2Room = wire.EthernetHeaderLen + wire.VLANTagLen

// attach opens /dev/net/tun and attaches it to the device name with
// flags, returning the descriptor and the device's name.
func attach(name string, flags uint16, kind string) (int, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, "", err
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("%s %q: TUNSETIFF: %w", kind, name, err)
	}
	return fd, ifr.Name(), nil
}

// OpenTunTap opens /dev/net/tun and attaches to the device name, creating
// it if it does not exist ("" lets the kernel choose a name). The device
// always carries a virtio-net header (IFF_VNET_HDR, TUNSETVNETHDRSZ 10).
// With cfg.Queues > 1 it opens that many queues (IFF_MULTI_QUEUE; an
// existing device must have been made multi-queue). Call Start to begin
// receiving.
func OpenTunTap(name string, cfg *TunTapConfig) (_ *TunTap, err error) {
	flags := uint16(unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	kind := "tun"
	if cfg.TAP {
		flags |= unix.IFF_TAP
		kind = "tap"
	} else {
		flags |= unix.IFF_TUN
	}
	nq := max(cfg.Queues, 1)
	if nq > 1 {
		flags |= unix.IFF_MULTI_QUEUE
	}
	fds := make([]int, 0, nq)
	defer func() {
		if err != nil {
			for _, fd := range fds {
				if fd >= 0 {
					unix.Close(fd)
				}
			}
		}
	}()
	fd, dev, err := attach(name, flags, kind)
	if err != nil {
		return nil, err
	}
	fds = append(fds, fd)
	for len(fds) < nq {
		// The first attach created the device if it had to; the rest
		// join it by its name.
		fd, _, err := attach(dev, flags, kind)
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
	}
	// The header size and offloads are the device's, whichever queue sets
	// them.
	if err := unix.IoctlSetPointerInt(fds[0], unix.TUNSETVNETHDRSZ, offload.HeaderLen); err != nil {
		return nil, fmt.Errorf("%s %s: TUNSETVNETHDRSZ: %w", kind, dev, err)
	}
	// What the kernel may send us: with offloads, partial checksums and
	// TCP (and, from Linux 6.2, UDP) segmentation; otherwise complete
	// MTU-sized frames.
	rxGSO := false
	if cfg.Offload {
		base := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		if err := unix.IoctlSetInt(fds[0], unix.TUNSETOFFLOAD, base|unix.TUN_F_USO4|unix.TUN_F_USO6); err != nil {
			if err := unix.IoctlSetInt(fds[0], unix.TUNSETOFFLOAD, base); err != nil {
				return nil, fmt.Errorf("%s %s: TUNSETOFFLOAD: %w", kind, dev, err)
			}
		}
		rxGSO = true
	} else if err := unix.IoctlSetInt(fds[0], unix.TUNSETOFFLOAD, 0); err != nil {
		return nil, fmt.Errorf("%s %s: TUNSETOFFLOAD: %w", kind, dev, err)
	}
	if cfg.MTU > 0 {
		if err := SetMTU(dev, cfg.MTU); err != nil {
			return nil, err
		}
	}
	mtu, err := MTU(dev)
	if err != nil {
		return nil, err
	}
	t := &TunTap{dev: dev}
	t.Info = Info{
		Name:   kind + ":" + dev,
		Type:   link.TypeIP,
		MTU:    mtu,
		Accept: cfg.Accept,
		// We can always hand the kernel partial checksums and large
		// frames: it completes and segments them as needed.
		Caps: link.CapTxChecksum | link.CapTSO4 | link.CapTSO6 | link.CapUSO | link.CapRxChecksum,
	}
	if cfg.NoTxOffload {
		// The kernel sees plain frames; the stack still hands over
		// large ones, cut in software just before the write.
		t.soft = &SoftGSO{}
	}
	if (rxGSO && cfg.Accept.LargeFrames) || cfg.Accept.GRO {
		t.Caps |= link.CapRxGSO
	}
	l2 := 0
	if cfg.TAP {
		l2 = l2Room
		t.Info.Type = link.TypeEthernet
		t.MAC = cfg.MAC
		if t.MAC.IsZero() {
			if t.MAC, err = HardwareAddr(dev); err != nil {
				return nil, err
			}
		}
	}
	if cfg.Up {
		if err := SetUp(dev); err != nil {
			return nil, err
		}
	}
	batch := cfg.Batch
	if batch <= 0 {
		batch = link.MaxBatch
	}
	mtuFrame := offload.HeaderLen + l2 + mtu
	maxFrame := mtuFrame
	if rxGSO {
		maxFrame = max(maxFrame, offload.HeaderLen+l2+maxGSOFrame)
	}
	for i, fd := range fds {
		q := &tunQueue{
			done:  make(chan struct{}),
			rx:    NewRxBufs(batch, mtuFrame, maxFrame),
			lens:  make([]int, batch),
			batch: make([]*buf.Packet, 0, batch),
		}
		if cfg.Accept.GRO {
			q.merge = make([]*buf.Packet, 0, batch)
		}
		q.file = os.NewFile(uintptr(fd), "/dev/net/tun")
		fds[i] = -1 // the file owns it now
		t.queues = append(t.queues, q)
	}
	for _, q := range t.queues {
		if q.rc, err = q.file.SyscallConn(); err != nil {
			t.closeFiles()
			return nil, err
		}
	}
	t.tx.New = func() any { return &txScratch{iovs: make([]unix.Iovec, 0, 8)} }
	return t, nil
}

// DeviceName is the kernel's name of the device.
func (t *TunTap) DeviceName() string { return t.dev }

// HeaderRoom is 0: the virtio-net header goes in an iovec of its own.
func (t *TunTap) HeaderRoom() int { return 0 }

// Queues is the number of queues (descriptors) open on the device.
func (t *TunTap) Queues() int { return len(t.queues) }

// Start starts one reader goroutine per queue; each delivers batches as
// self. With more than one queue, the dispatcher is called from several
// goroutines at once, each frame of a flow (as the kernel hashes it) by
// the same one.
func (t *TunTap) Start(self link.Endpoint) {
	t.started = true
	for _, q := range t.queues {
		go t.readLoop(self, q)
	}
}

// QueueRxFrames is how many frames each queue has read.
func (t *TunTap) QueueRxFrames() []uint64 {
	n := make([]uint64, len(t.queues))
	for i, q := range t.queues {
		n[i] = q.rxFrames.Load()
	}
	return n
}

func (t *TunTap) closeFiles() error {
	var err error
	for _, q := range t.queues {
		if e := q.file.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// Err is the error that stopped the reader, if any (nil after Close).
func (t *TunTap) Err() error {
	if p := t.rerr.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *TunTap) readLoop(self link.Endpoint, q *tunQueue) {
	defer close(q.done)
	for {
		count := 0
		var rerr error
		err := q.rc.Read(func(fd uintptr) bool {
			for count < len(q.lens) {
				iov := q.rx.Iovecs(count)
				n, _, e := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
				switch e {
				case 0:
					q.lens[count] = int(n)
					count++
					continue
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return count > 0 // wait for more only if we have nothing
				}
				rerr = e
				return true
			}
			return true
		})
		q.rxFrames.Add(uint64(count))
		out := q.batch[:0]
		for i := range count {
			n := q.lens[i]
			p := q.rx.Take(i, n)
			if n >= q.rx.Cap() {
				t.Stats.RxErrors.Inc() // truncated
				p.Release()
				continue
			}
			out = t.Input(p, out)
		}
		q.merge = t.Flush(self, out, &q.gro, q.merge)
		clear(out)
		q.batch = out[:0]
		if err != nil {
			return // closed
		}
		if rerr != nil {
			// The device is gone or broken (EBADFD after the interface
			// is deleted, EIO): stop rather than spin.
			t.Stats.RxErrors.Inc()
			e := fmt.Errorf("%s: read: %w", t.Info.Name, rerr)
			t.rerr.Store(&e)
			return
		}
	}
}

// WriteBatch writes each frame with a virtio-net header made from its
// Offload (CsumStart counts from the front of the frame). It takes
// ownership of every packet. A frame the kernel refuses (EINVAL for a bad
// GSO request, say) is counted and skipped; the first such error is
// returned with the count of frames written. With several queues, the
// frames are written to the queue their flow hashes to: writers of
// different flows do not wait for each other on one descriptor, and one
// flow's frames keep their order. With NoTxOffload, large frames are cut
// and partial checksums completed first (SoftGSO).
func (t *TunTap) WriteBatch(pkts []*buf.Packet) (int, error) {
	if t.soft != nil {
		return t.soft.WriteBatch(&t.Base, pkts, t.writeFrames)
	}
	return t.writeFrames(pkts)
}

func (t *TunTap) writeFrames(pkts []*buf.Packet) (int, error) {
	if len(t.queues) == 1 {
		return t.writeQueue(t.queues[0], pkts)
	}
	sent := 0
	var firstErr error
	for len(pkts) > 0 {
		// The longest run of frames for one queue.
		qi := t.queueOf(pkts[0])
		k := 1
		for k < len(pkts) && t.queueOf(pkts[k]) == qi {
			k++
		}
		n, err := t.writeQueue(t.queues[qi], pkts[:k])
		sent += n
		if err != nil && firstErr == nil {
			firstErr = err
		}
		pkts = pkts[k:]
		if errors.Is(err, link.ErrClosed) {
			link.ReleaseAll(pkts, 0)
			break
		}
	}
	return sent, firstErr
}

// queueOf picks the queue for frame p by a hash of its addresses and
// ports (FNV-1a over the bytes that hold them); frames that are not IP,
// or whose headers are not in the first view, go to queue 0.
func (t *TunTap) queueOf(p *buf.Packet) int {
	b := p.View(0)
	if t.Info.Type == link.TypeEthernet {
		if len(b) < wire.EthernetHeaderLen {
			return 0
		}
		et := wire.EtherType(binary.BigEndian.Uint16(b[wire.EthernetHeaderLen-2:]))
		if et != wire.EtherTypeIPv4 && et != wire.EtherTypeIPv6 {
			return 0
		}
		b = b[wire.EthernetHeaderLen:]
	}
	var addrs, ports []byte
	switch {
	case len(b) >= wire.IPv4MinHeaderLen && b[0]>>4 == 4:
		addrs = b[12:20]
		if ihl := int(b[0]&0xf) * 4; len(b) >= ihl+4 {
			ports = b[ihl : ihl+4]
		}
	case len(b) >= 44 && b[0]>>4 == 6:
		addrs, ports = b[8:40], b[40:44] // ports unless extension headers
	default:
		return 0
	}
	h := uint32(2166136261)
	for _, c := range addrs {
		h = (h ^ uint32(c)) * 16777619
	}
	for _, c := range ports {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(h % uint32(len(t.queues)))
}

func (t *TunTap) writeQueue(q *tunQueue, pkts []*buf.Packet) (int, error) {
	if t.closed.Load() {
		t.Stats.TxDrops.Add(uint64(len(pkts)))
		link.ReleaseAll(pkts, 0)
		return 0, link.ErrClosed
	}
	s := t.tx.Get().(*txScratch)
	defer t.tx.Put(s)
	sent, i := 0, 0
	var firstErr error
	fail := func(err error) {
		t.Stats.TxErrors.Inc()
		if firstErr == nil {
			firstErr = fmt.Errorf("%s: write: %w", t.Info.Name, err)
		}
	}
	err := q.rc.Write(func(fd uintptr) bool {
		for i < len(pkts) {
			p := pkts[i]
			if err := offload.EncodeHeader(s.hdr[:], &p.Offload); err != nil {
				fail(err)
				p.Release()
				i++
				continue
			}
			s.iovs = AppendIovecs(s.iovs[:0], s.hdr[:], p)
			_, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&s.iovs[0])), uintptr(len(s.iovs)))
			switch e {
			case unix.EAGAIN:
				return false
			case unix.EINTR:
				continue
			case 0:
				sent++
				t.Stats.TxPackets.Inc()
				t.Stats.TxBytes.Add(uint64(p.Len()))
				t.CountTx(p)
			default:
				fail(e)
			}
			p.Release()
			i++
		}
		return true
	})
	clear(s.iovs[:cap(s.iovs)])
	if err != nil {
		t.Stats.TxDrops.Add(uint64(len(pkts) - i))
		link.ReleaseAll(pkts, i)
		if errors.Is(err, os.ErrClosed) {
			return sent, link.ErrClosed
		}
		return sent, err
	}
	return sent, firstErr
}

// Close detaches, closes the descriptors (which removes a device that was
// not persistent) and waits for the readers to stop. It must not be
// called from the dispatcher. A second Close returns link.ErrClosed.
func (t *TunTap) Close() error {
	err := link.ErrClosed
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		t.Attach(nil)
		err = t.closeFiles()
		for _, q := range t.queues {
			if t.started {
				<-q.done
			}
			q.rx.Release()
		}
	})
	return err
}

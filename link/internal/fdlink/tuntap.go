package fdlink

// A TUN/TAP device moves frames like this:
//
//	kernel ─▶ tun fd ─▶ readLoop: readv until EAGAIN (≤ batch) into RxBufs
//	       ─▶ Base.Input: virtio-net header ─▶ Offload; Complete/Segment
//	       ─▶ Base.Dispatch ─▶ link.Dispatcher (same goroutine)
//
//	WriteBatch (any goroutine) ─▶ per frame: header from Offload
//	       ─▶ writev(header, views...) ─▶ tun fd ─▶ kernel
//
// The descriptor is non-blocking and wrapped in an os.File, so waiting is
// done by Go's netpoller and Close wakes the reader.

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"ustack/buf"
	"ustack/link"
	"ustack/link/offload"
	"ustack/wire"
)

// TunTapConfig configures OpenTunTap. See link/tap and link/tun for the
// meaning of each field.
type TunTapConfig struct {
	TAP     bool
	MTU     int
	MAC     wire.MAC
	Up      bool
	Offload bool
	Accept  offload.Accept
	Batch   int
}

// TunTap is an open TUN or TAP device.
type TunTap struct {
	Base
	dev  string
	file *os.File
	rc   syscall.RawConn

	// Reader state, owned by readLoop.
	rx    *RxBufs
	lens  []int
	batch []*buf.Packet
	rerr  atomic.Pointer[error]

	closed    atomic.Bool
	closeOnce sync.Once
	started   bool
	done      chan struct{}

	tx sync.Pool // of *txScratch
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

// OpenTunTap opens /dev/net/tun and attaches to the device name, creating
// it if it does not exist ("" lets the kernel choose a name). The device
// always carries a virtio-net header (IFF_VNET_HDR, TUNSETVNETHDRSZ 10).
// Call Start to begin receiving.
func OpenTunTap(name string, cfg *TunTapConfig) (_ *TunTap, err error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	defer func() {
		if err != nil && fd >= 0 {
			unix.Close(fd)
		}
	}()
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, err
	}
	flags := uint16(unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	kind := "tun"
	if cfg.TAP {
		flags |= unix.IFF_TAP
		kind = "tap"
	} else {
		flags |= unix.IFF_TUN
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, fmt.Errorf("%s %q: TUNSETIFF: %w", kind, name, err)
	}
	dev := ifr.Name()
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, offload.HeaderLen); err != nil {
		return nil, fmt.Errorf("%s %s: TUNSETVNETHDRSZ: %w", kind, dev, err)
	}
	// What the kernel may send us: with offloads, partial checksums and
	// TCP (and, from Linux 6.2, UDP) segmentation; otherwise complete
	// MTU-sized frames.
	rxGSO := false
	if cfg.Offload {
		base := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base|unix.TUN_F_USO4|unix.TUN_F_USO6); err != nil {
			if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base); err != nil {
				return nil, fmt.Errorf("%s %s: TUNSETOFFLOAD: %w", kind, dev, err)
			}
		}
		rxGSO = true
	} else if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0); err != nil {
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
	t := &TunTap{dev: dev, done: make(chan struct{})}
	t.Info = Info{
		Name:   kind + ":" + dev,
		Type:   link.TypeIP,
		MTU:    mtu,
		Accept: cfg.Accept,
		// We can always hand the kernel partial checksums and large
		// frames: it completes and segments them as needed.
		Caps: link.CapTxChecksum | link.CapTSO4 | link.CapTSO6 | link.CapUSO | link.CapRxChecksum,
	}
	if rxGSO && cfg.Accept.LargeFrames {
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
	t.rx = NewRxBufs(batch, mtuFrame, maxFrame)
	t.lens = make([]int, batch)
	t.batch = make([]*buf.Packet, 0, batch)
	t.file = os.NewFile(uintptr(fd), "/dev/net/tun")
	fd = -1 // the file owns it now
	if t.rc, err = t.file.SyscallConn(); err != nil {
		t.file.Close()
		return nil, err
	}
	t.tx.New = func() any { return &txScratch{iovs: make([]unix.Iovec, 0, 8)} }
	return t, nil
}

// DeviceName is the kernel's name of the device.
func (t *TunTap) DeviceName() string { return t.dev }

// HeaderRoom is 0: the virtio-net header goes in an iovec of its own.
func (t *TunTap) HeaderRoom() int { return 0 }

// Start starts the reader goroutine, which delivers batches as self.
func (t *TunTap) Start(self link.Endpoint) {
	t.started = true
	go t.readLoop(self)
}

// Err is the error that stopped the reader, if any (nil after Close).
func (t *TunTap) Err() error {
	if p := t.rerr.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *TunTap) readLoop(self link.Endpoint) {
	defer close(t.done)
	for {
		count := 0
		var rerr error
		err := t.rc.Read(func(fd uintptr) bool {
			for count < len(t.lens) {
				iov := t.rx.Iovecs(count)
				n, _, e := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
				switch e {
				case 0:
					t.lens[count] = int(n)
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
		out := t.batch[:0]
		for i := range count {
			n := t.lens[i]
			p := t.rx.Take(i, n)
			if n >= t.rx.Cap() {
				t.Stats.RxErrors.Inc() // truncated
				p.Release()
				continue
			}
			out = t.Input(p, out)
		}
		t.Dispatch(self, out)
		clear(out)
		t.batch = out[:0]
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
// returned with the count of frames written.
func (t *TunTap) WriteBatch(pkts []*buf.Packet) (int, error) {
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
	err := t.rc.Write(func(fd uintptr) bool {
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

// Close detaches, closes the descriptor (which removes a device that was
// not persistent) and waits for the reader to stop. It must not be called
// from the dispatcher. A second Close returns link.ErrClosed.
func (t *TunTap) Close() error {
	err := link.ErrClosed
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		t.Attach(nil)
		err = t.file.Close()
		if t.started {
			<-t.done
		}
		t.rx.Release()
	})
	return err
}

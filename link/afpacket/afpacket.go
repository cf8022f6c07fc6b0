// Package afpacket is the link driver that puts ustack on an existing
// Ethernet interface (a NIC or one end of a veth pair) through a Linux
// AF_PACKET socket.
//
// It is a link-layer driver (link.Endpoint of type link.TypeEthernet). It
// binds a SOCK_RAW socket for every protocol (ETH_P_ALL) to the interface,
// with PACKET_VNET_HDR so frames come and go with a virtio-net header: the
// kernel's large GSO frames and partial checksums (from a local sender on
// the other end of a veth, say) arrive described instead of as
// mysteries, and the stack can hand over partial checksums and large TCP
// and UDP frames, which the kernel finishes. What the stack does not take
// on receive is finished in software (link/offload). Frames the host sends
// out of the interface are ignored (PACKET_IGNORE_OUTGOING, and
// PACKET_OUTGOING as a fallback): the stack is another station on the
// link, not a tap on the host's traffic.
//
// The reader goroutine takes up to Config.Batch frames per recvmmsg,
// merges their TCP segments when Config.Accept.GRO, and delivers them as
// one batch; WriteBatch sends with sendmmsg. The driver
// does not create, configure or bring up the interface, and does not use
// the TPACKET rings. VLAN tags that the interface strips in hardware are
// not put back.
//
// Open, like any code that names an interface, acts in the network
// namespace of the calling OS thread.
package afpacket

// Receive path:
//
//	interface ─▶ packet socket ─▶ readLoop: recvmmsg (≤ Batch) into RxBufs
//	          ─▶ drop PACKET_OUTGOING, truncated ─▶ Base.Input (vnet header,
//	             Complete/Segment) ─▶ Base.Flush (GRO) ─▶ dispatcher
//	             (same goroutine)
//
// Send path: WriteBatch (any goroutine) ─▶ sendmmsg of (vnet header, views...)

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
	"ustack/link/internal/fdlink"
	"ustack/link/offload"
	"ustack/wire"
)

// Config configures an endpoint. A nil *Config means the zero value: the
// interface's MAC, not promiscuous, no partial checksums or large frames
// handed up, batches of link.MaxBatch.
type Config struct {
	// MAC is the stack's Ethernet address. Zero: the interface's. A
	// different address usually needs Promisc on a real NIC.
	MAC wire.MAC
	// Promisc puts the interface in promiscuous mode while the endpoint
	// is open (PACKET_MR_PROMISC).
	Promisc bool
	// Accept is what the stack takes as it is: partial checksums and
	// large frames it does not take are completed and segmented by the
	// driver.
	Accept offload.Accept
	// NoTxOffload keeps partial checksums and large frames from the
	// kernel: the driver cuts large frames and completes checksums in
	// software just before sending (software GSO), so the kernel sees
	// only plain frames while the stack still builds large segments.
	NoTxOffload bool
	// Batch is the most frames per recvmmsg and per sendmmsg (0:
	// link.MaxBatch).
	Batch int
	// RcvBuf is the socket receive buffer in bytes (SO_RCVBUFFORCE, or
	// SO_RCVBUF without the privilege); 0 takes DefaultRcvBuf, a negative
	// value leaves the kernel's default.
	RcvBuf int
}

// DefaultRcvBuf is the receive buffer a packet socket gets unless told
// otherwise. The kernel's default (about 208 KB) overflows under one TCP
// flow with a multi-megabyte window: measured on a veth, 100 MB from the
// kernel lost 4,795 frames with it and none with 8 MB.
const DefaultRcvBuf = 4 << 20

// Endpoint is an AF_PACKET socket bound to an interface.
type Endpoint struct {
	b     fdlink.Base
	dev   string
	index int
	file  *os.File
	rc    syscall.RawConn

	// Reader state, owned by readLoop.
	rx    *fdlink.RxBufs
	msgs  []unix.Mmsghdr
	names []unix.RawSockaddrLinklayer
	ctl   []byte // a control buffer of auxSpace bytes per message
	batch []*buf.Packet
	gro   offload.Coalescer
	merge []*buf.Packet
	rerr  atomic.Pointer[error]

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}

	tx   sync.Pool       // of *txScratch
	soft *fdlink.SoftGSO // with NoTxOffload
}

var (
	_ link.Endpoint = (*Endpoint)(nil)
	_ link.Counted  = (*Endpoint)(nil)
)

// maxGSOFrame is the largest IP packet in a GSO frame (the IP length
// fields, and Linux's default gso_max_size).
const maxGSOFrame = 65535

// l2Room is an Ethernet header and one VLAN tag.
const l2Room = wire.EthernetHeaderLen + wire.VLANTagLen

// Open binds an endpoint to the interface name and starts its reader. The
// interface must exist and be Ethernet; it is not brought up.
func Open(name string, cfg *Config) (_ *Endpoint, err error) {
	if cfg == nil {
		cfg = &Config{}
	}
	index, err := fdlink.IfIndex(name)
	if err != nil {
		return nil, err
	}
	mtu, err := fdlink.MTU(name)
	if err != nil {
		return nil, err
	}
	mac := cfg.MAC
	if mac.IsZero() {
		if mac, err = fdlink.HardwareAddr(name); err != nil {
			return nil, err
		}
	}
	// Protocol 0 until bound, so no frame of another interface is queued.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("afpacket %s: socket: %w", name, err)
	}
	defer func() {
		if err != nil && fd >= 0 {
			unix.Close(fd)
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return nil, fmt.Errorf("afpacket %s: PACKET_VNET_HDR: %w", name, err)
	}
	// Linux 4.20; older kernels fall back to the PACKET_OUTGOING check.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	// The kernel strips VLAN tags before we see a frame and tells only in
	// PACKET_AUXDATA; the reader puts them back (vlan.go).
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return nil, fmt.Errorf("afpacket %s: PACKET_AUXDATA: %w", name, err)
	}
	rcvBuf := cfg.RcvBuf
	if rcvBuf == 0 {
		rcvBuf = DefaultRcvBuf
	}
	if rcvBuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf); err != nil {
				return nil, fmt.Errorf("afpacket %s: SO_RCVBUF: %w", name, err)
			}
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: fdlink.Htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		return nil, fmt.Errorf("afpacket %s: bind: %w", name, err)
	}
	if cfg.Promisc {
		mreq := unix.PacketMreq{Ifindex: int32(index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return nil, fmt.Errorf("afpacket %s: promiscuous mode: %w", name, err)
		}
	}
	batch := cfg.Batch
	if batch <= 0 {
		batch = link.MaxBatch
	}
	e := &Endpoint{dev: name, index: index, done: make(chan struct{})}
	e.b.Info = fdlink.Info{
		Name:   "afpacket:" + name,
		Type:   link.TypeEthernet,
		MTU:    mtu,
		MAC:    mac,
		Accept: cfg.Accept,
		Caps:   link.CapTxChecksum | link.CapTSO4 | link.CapTSO6 | link.CapUSO | link.CapRxChecksum,
	}
	if cfg.NoTxOffload {
		// The kernel sees plain frames; the stack still hands over
		// large ones, cut in software just before the write.
		e.soft = &fdlink.SoftGSO{}
	}
	if cfg.Accept.Large() {
		e.b.Caps |= link.CapRxGSO
	}
	// A local sender's GSO frames can arrive whatever the interface's MTU.
	mtuFrame := offload.HeaderLen + l2Room + mtu
	e.rx = fdlink.NewRxBufs(batch, mtuFrame, max(mtuFrame, offload.HeaderLen+l2Room+maxGSOFrame))
	e.msgs = make([]unix.Mmsghdr, batch)
	e.names = make([]unix.RawSockaddrLinklayer, batch)
	e.ctl = make([]byte, batch*auxSpace)
	e.batch = make([]*buf.Packet, 0, batch)
	if cfg.Accept.GRO {
		e.merge = make([]*buf.Packet, 0, batch)
	}
	e.file = os.NewFile(uintptr(fd), e.b.Info.Name)
	fd = -1 // the file owns it now
	if e.rc, err = e.file.SyscallConn(); err != nil {
		e.file.Close()
		return nil, err
	}
	e.tx.New = func() any { return newTxScratch(batch) }
	go e.readLoop()
	return e, nil
}

// Name is "afpacket:" and the interface name.
func (e *Endpoint) Name() string { return e.b.Name() }

// DeviceName is the interface's name.
func (e *Endpoint) DeviceName() string { return e.dev }

// IfIndex is the interface's kernel index.
func (e *Endpoint) IfIndex() int { return e.index }

// Type is link.TypeEthernet.
func (e *Endpoint) Type() link.Type { return e.b.Type() }

// MTU is the interface's MTU when the endpoint was opened.
func (e *Endpoint) MTU() int { return e.b.MTU() }

// HardwareAddr is the stack's MAC (Config.MAC or the interface's).
func (e *Endpoint) HardwareAddr() wire.MAC { return e.b.HardwareAddr() }

// Capabilities: the kernel takes partial checksums and large TCP and UDP
// frames (CapTxChecksum, CapTSO4, CapTSO6, CapUSO); received frames may
// carry CsumValid (CapRxChecksum) and are large only with
// Accept.LargeFrames (CapRxGSO).
func (e *Endpoint) Capabilities() link.Capabilities { return e.b.Capabilities() }

// HeaderRoom is 0: the virtio-net header is sent from a buffer of its own.
func (e *Endpoint) HeaderRoom() int { return 0 }

// Attach sets the dispatcher that receives frames; nil detaches (frames
// are then dropped and counted).
func (e *Endpoint) Attach(d link.Dispatcher) { e.b.Attach(d) }

// LinkStats are the endpoint's counters.
// Frames the kernel dropped because the socket's receive buffer was full
// (PACKET_STATISTICS, packet(7)) are added to RxDrops each time.
func (e *Endpoint) LinkStats() *link.Stats {
	e.rc.Control(func(fd uintptr) {
		// The kernel resets its counters on every read.
		if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			e.b.Stats.RxDrops.Add(uint64(st.Drops))
		}
	})
	return &e.b.Stats
}

// OffloadStats count large frames and partial checksums each way and
// what GRO merged.
func (e *Endpoint) OffloadStats() *offload.Stats { return &e.b.Offload }

// Err is the error that stopped the reader early, or nil.
func (e *Endpoint) Err() error {
	if p := e.rerr.Load(); p != nil {
		return *p
	}
	return nil
}

func (e *Endpoint) readLoop() {
	defer close(e.done)
	for {
		count := 0
		var rerr error
		err := e.rc.Read(func(fd uintptr) bool {
			for i := range e.msgs {
				iov := e.rx.Iovecs(i)
				m := &e.msgs[i]
				m.Hdr = unix.Msghdr{
					Name:    (*byte)(unsafe.Pointer(&e.names[i])),
					Namelen: unix.SizeofSockaddrLinklayer,
					Iov:     &iov[0],
					Control: &e.ctl[i*auxSpace],
				}
				m.Hdr.SetIovlen(len(iov))
				m.Hdr.SetControllen(auxSpace)
				m.Len = 0
			}
			for {
				n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&e.msgs[0])),
					uintptr(len(e.msgs)), unix.MSG_DONTWAIT, 0, 0)
				switch errno {
				case 0:
					count = int(n)
					return true
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false
				}
				rerr = errno
				return true
			}
		})
		out := e.batch[:0]
		for i := range count {
			m := &e.msgs[i]
			p := e.rx.Take(i, int(m.Len))
			switch {
			case e.names[i].Pkttype == unix.PACKET_OUTGOING:
				p.Release()
			case m.Hdr.Flags&unix.MSG_TRUNC != 0 || int(m.Len) >= e.rx.Cap():
				e.b.Stats.RxErrors.Inc()
				p.Release()
			default:
				ctl := e.ctl[i*auxSpace : i*auxSpace+int(m.Hdr.Controllen)]
				if tpid, tci, ok := vlanFromControl(ctl); ok && !restoreVLAN(p, tpid, tci) {
					e.b.Stats.RxErrors.Inc()
					p.Release()
					continue
				}
				out = e.b.Input(p, out)
			}
		}
		e.merge = e.b.Flush(e, out, &e.gro, e.merge)
		clear(out)
		e.batch = out[:0]
		if err != nil {
			return // closed
		}
		if rerr != nil {
			// ENETDOWN is reported once when the interface goes down;
			// anything else means the socket is unusable.
			if rerr == unix.ENETDOWN {
				continue
			}
			e.b.Stats.RxErrors.Inc()
			err := fmt.Errorf("%s: recvmmsg: %w", e.b.Info.Name, rerr)
			e.rerr.Store(&err)
			return
		}
	}
}

type txScratch struct {
	hdrs   [][offload.HeaderLen]byte
	msgs   []unix.Mmsghdr
	starts []int
	iovs   []unix.Iovec
}

func newTxScratch(n int) *txScratch {
	return &txScratch{
		hdrs:   make([][offload.HeaderLen]byte, n),
		msgs:   make([]unix.Mmsghdr, n),
		starts: make([]int, n+1),
		iovs:   make([]unix.Iovec, 0, 4*n),
	}
}

// WriteBatch sends the frames with sendmmsg, each with a virtio-net header
// made from its Offload (offsets count from the Ethernet header). It takes
// ownership of every packet and returns how many were sent; a frame the
// kernel refuses (EMSGSIZE, EINVAL) is counted and skipped, and the first
// such error is returned. With Config.NoTxOffload, large frames are cut
// and partial checksums completed first, the segments of each large frame
// going in one sendmmsg.
func (e *Endpoint) WriteBatch(pkts []*buf.Packet) (int, error) {
	if e.soft != nil {
		return e.soft.WriteBatch(&e.b, pkts, e.writeFrames)
	}
	return e.writeFrames(pkts)
}

func (e *Endpoint) writeFrames(pkts []*buf.Packet) (int, error) {
	st := &e.b.Stats
	if e.closed.Load() {
		st.TxDrops.Add(uint64(len(pkts)))
		link.ReleaseAll(pkts, 0)
		return 0, link.ErrClosed
	}
	s := e.tx.Get().(*txScratch)
	defer e.tx.Put(s)
	sent, i := 0, 0
	var firstErr error
	drop := func(err error) {
		st.TxErrors.Inc()
		if firstErr == nil {
			firstErr = fmt.Errorf("%s: send: %w", e.b.Info.Name, err)
		}
		pkts[i].Release()
		i++
	}
	err := e.rc.Write(func(fd uintptr) bool {
		for i < len(pkts) {
			// Build messages for pkts[i:i+k]; a frame whose header cannot
			// be encoded ends the group.
			k := 0
			s.iovs = s.iovs[:0]
			for k < len(s.msgs) && i+k < len(pkts) {
				if offload.EncodeHeader(s.hdrs[k][:], &pkts[i+k].Offload) != nil {
					break
				}
				s.starts[k] = len(s.iovs)
				s.iovs = fdlink.AppendIovecs(s.iovs, s.hdrs[k][:], pkts[i+k])
				k++
			}
			if k == 0 {
				drop(offload.ErrHeader)
				continue
			}
			s.starts[k] = len(s.iovs)
			for j := range k {
				m := &s.msgs[j]
				m.Hdr = unix.Msghdr{Iov: &s.iovs[s.starts[j]]}
				m.Hdr.SetIovlen(s.starts[j+1] - s.starts[j])
				m.Len = 0
			}
			n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(k), unix.MSG_DONTWAIT, 0, 0)
			switch errno {
			case 0:
			case unix.EAGAIN:
				return false
			case unix.ENOBUFS:
				// The device queue was full: the kernel dropped the frame.
				st.TxDrops.Inc()
				pkts[i].Release()
				i++
				continue
			case unix.EINTR:
				continue
			default:
				drop(errno) // the first message failed
				continue
			}
			for range int(n) {
				sent++
				st.TxPackets.Inc()
				st.TxBytes.Add(uint64(pkts[i].Len()))
				e.b.CountTx(pkts[i])
				pkts[i].Release()
				i++
			}
		}
		return true
	})
	clear(s.iovs[:cap(s.iovs)])
	for j := range s.msgs {
		s.msgs[j].Hdr.Iov = nil
	}
	if err != nil {
		st.TxDrops.Add(uint64(len(pkts) - i))
		link.ReleaseAll(pkts, i)
		if errors.Is(err, os.ErrClosed) {
			return sent, link.ErrClosed
		}
		return sent, err
	}
	return sent, firstErr
}

// Close detaches, closes the socket (leaving promiscuous mode) and waits
// for the reader to stop. It must not be called from the dispatcher. A
// second Close returns link.ErrClosed.
func (e *Endpoint) Close() error {
	err := link.ErrClosed
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.b.Attach(nil)
		err = e.file.Close()
		<-e.done
		e.rx.Release()
	})
	return err
}

package main

// gVisor's netstack on the device workloads' TAP, for the comparison
// rows: plain frames through its own fdbased endpoint, and frames with a
// virtio-net header (TSO/GSO to the kernel, the kernel's large frames and
// partial checksums taken) through vnetTap below. fdbased turns host GSO
// on only for socket FDs (AF_PACKET, as runsc uses it), never for a TAP
// FD, so the offload rows need an endpoint of their own; it writes the
// header exactly as fdbased does on a socket and reads as fdbased's readv
// dispatcher does, without copying frames.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// gvStack is a gVisor stack with one NIC facing the kernel.
type gvStack struct {
	s     *gstack.Stack
	close func() // closes the link's FD or socket
}

// gvisorDevStack makes a stack on ep with address a: IPv4, ARP and TCP
// with gVisor's defaults, as the in-process rows use it (pair_gvisor.go).
func gvisorDevStack(ep gstack.LinkEndpoint, a netip.Prefix) (*gstack.Stack, error) {
	s := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := s.CreateNIC(1, ep); err != nil {
		s.Close()
		return nil, fmt.Errorf("gvisor: CreateNIC: %v", err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFrom4(a.Addr().As4()),
			PrefixLen: a.Bits(),
		},
	}
	if err := s.AddProtocolAddress(1, pa, gstack.AddressProperties{}); err != nil {
		s.Close()
		return nil, fmt.Errorf("gvisor: AddProtocolAddress: %v", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1}})
	return s, nil
}

// dial connects to ap within 10 s.
func (g *gvStack) dial(ap netip.AddrPort) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := gonet.DialTCP(g.s, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}, ipv4.ProtocolNumber)
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("gvisor: dial %v: %w", ap, r.err)
		}
		return r.c, nil
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("gvisor: dial %v: timed out", ap)
	}
}

// shutdown closes the stack, waits (boundedly) for its goroutines, then
// closes the device.
func (g *gvStack) shutdown() {
	g.s.Close()
	done := make(chan struct{})
	go func() { g.s.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	g.close()
}

// openTapFD attaches to the TAP device name in the calling thread's
// namespace. With vnet the frames carry a 10-byte virtio-net header and
// the kernel may send partial checksums and TCP segmentation offload
// frames (TUN_F_CSUM|TSO4|TSO6); without, plain complete frames.
func openTapFD(name string, vnet bool) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	if err != nil {
		err = fmt.Errorf("tap %s: TUNSETIFF: %w", name, err)
	}
	if err == nil && vnet {
		if e := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); e != nil {
			err = fmt.Errorf("tap %s: TUNSETVNETHDRSZ: %w", name, e)
		}
	}
	if err == nil {
		off := 0
		if vnet {
			off = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		}
		if e := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, off); e != nil {
			err = fmt.Errorf("tap %s: TUNSETOFFLOAD: %w", name, e)
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// gvisorTap puts a gVisor stack on the TAP device dev (opened from inside
// the namespace by do) at address a, with GSO and the virtio-net header
// or plain.
func gvisorTap(do func(func() error) error, dev string, mac net.HardwareAddr, a netip.Prefix, gso bool) (*gvStack, error) {
	var fd int
	if err := do(func() (err error) { fd, err = openTapFD(dev, gso); return err }); err != nil {
		return nil, err
	}
	var ep gstack.LinkEndpoint
	var closeFn func()
	if gso {
		v, err := newVnetTap(fd, 1500, tcpip.LinkAddress(mac))
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		ep, closeFn = v, func() { v.file.Close() }
	} else {
		e, err := fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: 1500, EthernetHeader: true, Address: tcpip.LinkAddress(mac), GRO: true})
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("gvisor: fdbased: %w", err)
		}
		ep, closeFn = e, func() { unix.Close(fd) }
	}
	s, err := gvisorDevStack(ep, a)
	if err != nil {
		closeFn()
		return nil, err
	}
	return &gvStack{s: s, close: closeFn}, nil
}

// vnetHdrLen is the size of struct virtio_net_hdr.
const vnetHdrLen = 10

// virtio-net header values (linux/virtio_net.h).
const (
	vnetNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSOTCPv4  = 1
	vnetGSOTCPv6  = 4
)

// vnetTap is a gVisor link endpoint on a TAP FD opened with IFF_VNET_HDR:
// host GSO on send, large frames and partial checksums accepted on
// receive. One goroutine reads and delivers inline.
type vnetTap struct {
	file *os.File
	rc   syscall.RawConn
	mtu  uint32
	addr tcpip.LinkAddress

	mu         sync.Mutex
	dispatcher gstack.NetworkDispatcher
	wg         sync.WaitGroup
}

var (
	_ gstack.LinkEndpoint = (*vnetTap)(nil)
	_ gstack.GSOEndpoint  = (*vnetTap)(nil)
)

func newVnetTap(fd int, mtu uint32, addr tcpip.LinkAddress) (*vnetTap, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tap")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err // the caller closes fd
	}
	return &vnetTap{file: f, rc: rc, mtu: mtu, addr: addr}, nil
}

func (e *vnetTap) MTU() uint32                             { return e.mtu }
func (e *vnetTap) SetMTU(mtu uint32)                       { e.mtu = mtu }
func (e *vnetTap) MaxHeaderLength() uint16                 { return header.EthernetMinimumSize }
func (e *vnetTap) LinkAddress() tcpip.LinkAddress          { return e.addr }
func (e *vnetTap) SetLinkAddress(a tcpip.LinkAddress)      { e.addr = a }
func (e *vnetTap) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }
func (e *vnetTap) Close()                                  {}
func (e *vnetTap) SetOnCloseAction(func())                 {}
func (e *vnetTap) Wait()                                   { e.wg.Wait() }
func (e *vnetTap) GSOMaxSize() uint32                      { return 65536 }
func (e *vnetTap) SupportedGSO() gstack.SupportedGSO       { return gstack.HostGSOSupported }

// Capabilities: Ethernet needs address resolution; received checksums
// are not checked (CapabilityRXChecksumOffload, as runsc sets it with
// host GSO: the kernel on the TAP's other side sends partial checksums,
// and gVisor takes the capability for every packet, not a per-packet
// flag). Sent checksums are left partial only on GSO packets, which TCP
// marks, as with fdbased.
func (e *vnetTap) Capabilities() gstack.LinkEndpointCapabilities {
	return gstack.CapabilityResolutionRequired | gstack.CapabilityRXChecksumOffload
}

func (e *vnetTap) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

// Attach starts the reader on the first dispatcher; nil (the NIC is
// being removed) closes the device, which stops the reader.
func (e *vnetTap) Attach(d gstack.NetworkDispatcher) {
	e.mu.Lock()
	start := e.dispatcher == nil && d != nil
	e.dispatcher = d
	e.mu.Unlock()
	if start {
		e.wg.Add(1)
		go e.readLoop()
	}
	if d == nil {
		e.file.Close()
	}
}

func (e *vnetTap) AddHeader(pkt *gstack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

func (e *vnetTap) ParseHeader(pkt *gstack.PacketBuffer) bool {
	b, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if !ok {
		return false
	}
	pkt.NetworkProtocolNumber = header.Ethernet(b).Type()
	return true
}

// vnetHeader is the virtio-net header for pkt, as fdbased writes it on a
// socket with host GSO.
func vnetHeader(pkt *gstack.PacketBuffer) [vnetHdrLen]byte {
	var h [vnetHdrLen]byte
	g := pkt.GSOOptions
	if g.Type == gstack.GSONone {
		return h
	}
	put16 := func(off int, v uint16) { h[off], h[off+1] = byte(v), byte(v>>8) }
	put16(2, uint16(pkt.HeaderSize()))
	if g.NeedsCsum {
		h[0] = vnetNeedsCsum
		put16(6, header.EthernetMinimumSize+g.L3HdrLen)
		put16(8, g.CsumOffset)
	}
	if pkt.Data().Size() > int(g.MSS) {
		switch g.Type {
		case gstack.GSOTCPv4:
			h[1] = vnetGSOTCPv4
		case gstack.GSOTCPv6:
			h[1] = vnetGSOTCPv6
		}
		put16(4, g.MSS)
	}
	return h
}

// WritePackets writes each packet with one writev of its header and
// views.
func (e *vnetTap) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	iov := make([][]byte, 0, 8)
	for i, pkt := range pkts.AsSlice() {
		h := vnetHeader(pkt)
		iov = append(iov[:0], h[:])
		iov = append(iov, pkt.AsSlices()...)
		var werr error
		err := e.rc.Write(func(fd uintptr) bool {
			_, werr = unix.Writev(int(fd), iov)
			return werr != unix.EAGAIN
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			var errno unix.Errno
			if errors.As(err, &errno) {
				return i, tcpip.TranslateErrno(errno)
			}
			return i, &tcpip.ErrClosedForSend{}
		}
	}
	return pkts.Len(), nil
}

// readLoop reads one frame per readv into views of fdbased's sizes (so a
// 1500-byte frame does not pin 64 KB), and delivers it.
func (e *vnetTap) readLoop() {
	defer e.wg.Done()
	sizes := fdbased.BufConfig
	views := make([]*buffer.View, len(sizes))
	var hdr [vnetHdrLen]byte
	iov := make([]unix.Iovec, len(sizes)+1)
	iov[0].Base = &hdr[0]
	iov[0].SetLen(vnetHdrLen)
	for {
		for i := range views {
			if views[i] == nil {
				views[i] = buffer.NewViewSize(sizes[i])
				iov[i+1].Base = unsafe.SliceData(views[i].AsSlice())
				iov[i+1].SetLen(sizes[i])
			}
		}
		var n int
		var rerr error
		err := e.rc.Read(func(fd uintptr) bool {
			r, _, errno := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			n, rerr = int(r), nil
			if errno != 0 {
				rerr = errno
			}
			return errno != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			for _, v := range views {
				if v != nil {
					v.Release()
				}
			}
			return
		}
		n -= vnetHdrLen
		if n < header.EthernetMinimumSize {
			continue
		}
		var payload buffer.Buffer
		left := n
		for i, v := range views {
			if left == 0 {
				break
			}
			k := min(left, v.Size())
			v.CapLength(k)
			payload.Append(v)
			views[i] = nil
			left -= k
		}
		pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: payload})
		if !e.ParseHeader(pkt) {
			pkt.DecRef()
			continue
		}
		e.mu.Lock()
		d := e.dispatcher
		e.mu.Unlock()
		if d != nil {
			d.DeliverNetworkPacket(pkt.NetworkProtocolNumber, pkt)
		}
		pkt.DecRef()
	}
}

// gvisorAFPacket puts a gVisor stack on an AF_PACKET socket bound to dev
// (opened from inside its namespace by do), configured as runsc configures
// its host network: PACKET_VNET_HDR with host GSO (64 KB segments to the
// kernel), received checksums not checked (the kernel's partial ones
// arrive described in the header), recvmmsg, the interface's MAC.
func gvisorAFPacket(do func(func() error) error, dev string, a netip.Prefix) (*gvStack, error) {
	var fd int
	var mac net.HardwareAddr
	err := do(func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = ifc.HardwareAddr
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("socket(AF_PACKET): %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			unix.Close(fd)
			return fmt.Errorf("PACKET_VNET_HDR: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
			unix.Close(fd)
			return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind %s: %w", dev, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gvisor: %w", err)
	}
	ep, err := fdbased.New(&fdbased.Options{
		FDs: []int{fd}, MTU: 1500, EthernetHeader: true, Address: tcpip.LinkAddress(mac),
		GSOMaxSize: 65536, RXChecksumOffload: true, PacketDispatchMode: fdbased.RecvMMsg, GRO: true,
	})
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("gvisor: fdbased: %w", err)
	}
	s, err := gvisorDevStack(ep, a)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &gvStack{s: s, close: func() { unix.Close(fd) }}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

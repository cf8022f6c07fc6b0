// Package tun is the link driver for Linux TUN devices: bare IPv4 and IPv6
// packets between ustack and the kernel through /dev/net/tun.
//
// It is a link-layer driver (link.Endpoint of type link.TypeIP, no link
// header, no hardware address). It creates the device or attaches to an
// existing one, sets its MTU and brings it up if asked, and moves batches
// of packets. Every packet carries a virtio-net header (IFF_VNET_HDR), so
// the stack can hand the kernel partial checksums and large TCP/UDP
// packets, and, with Config.Offload, receive them from it; what the stack
// does not take is finished in software (link/offload). It does not
// configure addresses or routes on the kernel side,  With Config.Queues it
// opens a multi-queue device, one reader per queue.
//
// The reader goroutine reads until the device has no more packets (up to
// Config.Batch) with one readv per packet (a TUN/TAP descriptor has no
// call that moves more), merges the batch's TCP segments when
// Config.Accept.GRO, then delivers it.
// Open, like any code that names an interface, acts in the network
// namespace of the calling OS thread.
package tun

import (
	"ustack/buf"
	"ustack/link"
	"ustack/link/internal/fdlink"
	"ustack/link/offload"
	"ustack/wire"
)

// Config configures a TUN endpoint. A nil *Config means the zero value:
// keep the device's MTU, leave it down, no offloads from the kernel,
// batches of link.MaxBatch.
type Config struct {
	// MTU, if positive, is set on the device; the endpoint's MTU is the
	// device's.
	MTU int
	// Up brings the device up.
	Up bool
	// Offload lets the kernel send partial checksums and large packets
	// (TUNSETOFFLOAD with TUN_F_CSUM, TSO4, TSO6 and, where the kernel
	// has them, USO4/USO6). Without it the kernel sends complete,
	// MTU-sized packets.
	Offload bool
	// Accept is what the stack takes as it is: partial checksums and
	// large packets it does not take are completed and segmented by the
	// driver.
	Accept offload.Accept
	// NoTxOffload keeps partial checksums and large packets from the
	// kernel: the driver cuts large packets and completes checksums in
	// software just before the write (software GSO), so the kernel sees
	// only plain packets while the stack still builds large segments.
	NoTxOffload bool
	// Batch is the most packets read per delivered batch (0: link.MaxBatch).
	Batch int
	// Queues, if more than 1, opens that many queues (IFF_MULTI_QUEUE),
	// each with its own reader goroutine: the kernel spreads the flows it
	// sends over them by hash, and the dispatcher is called from all the
	// readers at once (each flow from one). An existing device must have
	// been created multi-queue (ip tuntap add ... multi_queue).
	Queues int
}

// Endpoint is an open TUN device.
type Endpoint struct{ d *fdlink.TunTap }

var (
	_ link.Endpoint = (*Endpoint)(nil)
	_ link.Counted  = (*Endpoint)(nil)
)

// Open attaches to the TUN device name, creating it if it does not exist
// ("" lets the kernel pick a name such as tun0), and starts the reader.
// A device created here disappears when the endpoint closes; one created
// before (persistent, `ip tuntap add`) stays.
func Open(name string, cfg *Config) (*Endpoint, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	d, err := fdlink.OpenTunTap(name, &fdlink.TunTapConfig{
		MTU: cfg.MTU, Up: cfg.Up, Offload: cfg.Offload, NoTxOffload: cfg.NoTxOffload, Accept: cfg.Accept, Batch: cfg.Batch, Queues: cfg.Queues,
	})
	if err != nil {
		return nil, err
	}
	e := &Endpoint{d: d}
	d.Start(e)
	return e, nil
}

// Name is "tun:" and the device name.
func (e *Endpoint) Name() string { return e.d.Name() }

// DeviceName is the kernel's name of the device.
func (e *Endpoint) DeviceName() string { return e.d.DeviceName() }

// Type is link.TypeIP.
func (e *Endpoint) Type() link.Type { return e.d.Type() }

// MTU is the device's MTU when it was opened.
func (e *Endpoint) MTU() int { return e.d.MTU() }

// HardwareAddr is zero: an IP link has no link address.
func (e *Endpoint) HardwareAddr() wire.MAC { return wire.MAC{} }

// Capabilities: the kernel takes partial checksums and large TCP and UDP
// packets (CapTxChecksum, CapTSO4, CapTSO6, CapUSO); received packets may
// carry CsumValid (CapRxChecksum), and are large only with Config.Offload
// and Accept.LargeFrames (CapRxGSO).
func (e *Endpoint) Capabilities() link.Capabilities { return e.d.Capabilities() }

// HeaderRoom is 0: the virtio-net header is written from a buffer of its own.
func (e *Endpoint) HeaderRoom() int { return e.d.HeaderRoom() }

// Attach sets the dispatcher that receives packets; nil detaches (packets
// are then dropped and counted).
func (e *Endpoint) Attach(d link.Dispatcher) { e.d.Attach(d) }

// WriteBatch writes the packets, each with a virtio-net header made from
// its Offload (offsets count from the IP header). It takes ownership of
// every packet and returns how many were written; a packet the kernel
// refuses is counted and skipped, and the first such error is returned.
func (e *Endpoint) WriteBatch(pkts []*buf.Packet) (int, error) { return e.d.WriteBatch(pkts) }

// Close detaches, closes the device and waits for the reader to stop. It
// must not be called from the dispatcher.
func (e *Endpoint) Close() error { return e.d.Close() }

// LinkStats are the endpoint's counters.
func (e *Endpoint) LinkStats() *link.Stats { return e.d.LinkStats() }

// OffloadStats count large frames and partial checksums each way and
// what GRO merged.
func (e *Endpoint) OffloadStats() *offload.Stats { return &e.d.Offload }

// Queues is the number of queues open on the device.
func (e *Endpoint) Queues() int { return e.d.Queues() }

// QueueRxFrames is how many frames each queue has read.
func (e *Endpoint) QueueRxFrames() []uint64 { return e.d.QueueRxFrames() }

// Err is the error that stopped the reader early (the device was deleted,
// say), or nil.
func (e *Endpoint) Err() error { return e.d.Err() }

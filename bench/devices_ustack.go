package main

// ustack on the device workloads' links: the TAP device (link/tap, in
// the kernel's namespace) and the stack's end of a veth pair through
// AF_PACKET (link/afpacket).

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"ustack/link"
	"ustack/link/afpacket"
	"ustack/link/offload"
	"ustack/link/tap"
	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// usStack is a ustack instance with one interface facing the kernel.
type usStack struct{ st *stack.Stack }

func (u *usStack) dial(ap netip.AddrPort) (net.Conn, error) {
	d := socket.Dialer{Stack: u.st, Timeout: 10 * time.Second}
	return d.Dial("tcp", ap.String())
}

// shutdown closes the stack and with it the link.
func (u *usStack) shutdown() { u.st.Close() }

// noOffload hides a link's offload capabilities, so the stack sends
// MTU-sized segments with complete checksums: the "plain" rows.
type noOffload struct{ link.Endpoint }

func (noOffload) Capabilities() link.Capabilities { return 0 }

// newUstack puts a stack on ep at address a.
func newUstack(name string, ep link.Endpoint, a netip.Prefix) (*usStack, error) {
	st := stack.New(stack.Options{Name: name})
	if _, err := st.AddInterface("eth0", ep); err != nil {
		ep.Close()
		st.Close()
		return nil, fmt.Errorf("ustack: add interface: %w", err)
	}
	if err := st.AddAddress("eth0", a); err != nil {
		st.Close()
		return nil, fmt.Errorf("ustack: add address: %w", err)
	}
	return &usStack{st: st}, nil
}

// ustackTap opens the TAP device dev from inside its namespace (do) and
// puts a stack on it. With offloads the kernel may send partial checksums
// and large frames, which the stack takes as they are, and the stack
// hands it 64 KB segments (TSO); without, 1500-byte frames both ways.
func ustackTap(do func(func() error) error, dev string, mac wire.MAC, a netip.Prefix, offloads bool) (*usStack, error) {
	var ep link.Endpoint
	err := do(func() error {
		t, err := tap.Open(dev, &tap.Config{
			MAC: mac, Up: true, Offload: offloads,
			// GRO merges a received batch's segments in software, with or
			// without the kernel's offloads (gVisor's fdbased rows turn
			// its GRO on too).
			Accept: offload.Accept{PartialCsum: offloads, LargeFrames: offloads, GRO: true},
		})
		ep = t
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ustack: %w", err)
	}
	if !offloads {
		ep = noOffload{ep}
	}
	return newUstack("bench-tap", ep, a)
}

// ustackAFPacket binds an AF_PACKET endpoint to dev from inside its
// namespace (do) and puts a stack on it, taking the kernel's partial
// checksums and GSO frames as they are.
func ustackAFPacket(do func(func() error) error, dev string, a netip.Prefix) (*usStack, error) {
	var ep link.Endpoint
	err := do(func() error {
		p, err := afpacket.Open(dev, &afpacket.Config{Accept: offload.Accept{PartialCsum: true, LargeFrames: true, GRO: true}})
		ep = p
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ustack: %w", err)
	}
	return newUstack("bench-afpacket", ep, a)
}

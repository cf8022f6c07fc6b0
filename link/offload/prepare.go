package offload

import (
	"encoding/binary"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// maxLinkHeader is an Ethernet header with two VLAN tags (802.1ad + 802.1Q).
const maxLinkHeader = wire.EthernetHeaderLen + 2*wire.VLANTagLen

// LinkHeaderLen is the length of the link header in front of the IP header
// of frame pkt on a link of type t: 0 on IP links; on Ethernet links 14 plus
// 4 for each of up to two VLAN tags (IEEE 802.1Q, 802.1ad). It fails when
// the frame is too short for its header.
func LinkHeaderLen(t link.Type, pkt *buf.Packet) (int, error) {
	if t != link.TypeEthernet {
		return 0, nil
	}
	n := wire.EthernetHeaderLen
	for range 2 {
		b := pkt.Pullup(n)
		if b == nil {
			return 0, ErrMalformed
		}
		et := wire.EtherType(binary.BigEndian.Uint16(b[n-2:]))
		if et != wire.EtherTypeVLAN && et != wire.EtherTypeQinQ {
			break
		}
		n += wire.VLANTagLen
	}
	if pkt.Pullup(n) == nil {
		return 0, ErrMalformed
	}
	return n, nil
}

// SegmentFrame is Segment for a whole frame of a link of type t: it takes
// the link header off, segments the IP packet and puts a copy of the link
// header in front of every segment (into the headroom Segment leaves).
// Takes ownership of pkt; on error pkt is released and out is returned
// unchanged.
func SegmentFrame(pkt *buf.Packet, t link.Type, out []*buf.Packet) ([]*buf.Packet, error) {
	if pkt.Offload.GSO == buf.GSONone {
		return append(out, pkt), nil
	}
	n, err := LinkHeaderLen(t, pkt)
	if err != nil {
		pkt.Release()
		return out, err
	}
	var lh [maxLinkHeader]byte
	copy(lh[:n], pkt.Pullup(n))
	pkt.TrimFront(n)
	base := len(out)
	out, err = Segment(pkt, out)
	if err != nil {
		return out, err
	}
	for _, s := range out[base:] {
		copy(s.Prepend(n), lh[:n])
	}
	return out, nil
}

// Accept says which offload states the stack above a driver takes as they
// are. The zero value takes neither: the driver hands up only
// MTU-sized packets with complete checksums.
type Accept struct {
	// PartialCsum: deliver packets with Offload.NeedsCsum (a checksum the
	// local sender left partial, which the stack must treat as good and
	// complete before forwarding) without completing them.
	PartialCsum bool
	// LargeFrames: deliver GSO frames whole, larger than the MTU, with
	// Offload.GSO set (link.CapRxGSO).
	LargeFrames bool
	// GRO: merge the in-order TCP segments of each received batch into
	// large frames (Coalescer) before delivering it. What GRO makes is a
	// large frame with a partial checksum, so GRO implies LargeFrames and
	// PartialCsum.
	GRO bool
}

// Large reports whether a takes GSO frames whole.
func (a Accept) Large() bool { return a.LargeFrames || a.GRO }

// Partial reports whether a takes partial checksums.
func (a Accept) Partial() bool { return a.PartialCsum || a.GRO }

// PrepareRx finishes a received frame pkt of a link of type t for a stack
// that takes what a says, and appends the result to out: a GSO frame is
// segmented unless a.Large(), and a partial checksum is completed
// unless a.Partial(). It does not coalesce (see Coalescer). Takes ownership of pkt; on error pkt is released and
// out is returned unchanged.
func PrepareRx(pkt *buf.Packet, t link.Type, a Accept, out []*buf.Packet) ([]*buf.Packet, error) {
	o := &pkt.Offload
	if o.GSO != buf.GSONone && !a.Large() {
		return SegmentFrame(pkt, t, out)
	}
	if o.NeedsCsum && !a.Partial() {
		if err := Complete(pkt); err != nil {
			pkt.Release()
			return out, err
		}
	}
	return append(out, pkt), nil
}

// PrepareTx does in software, for a device of link type t with
// capabilities caps, what the device cannot: it segments a GSO frame whose
// type the device does not take (link.CapTSO4, CapTSO6, CapUSO) and
// completes a partial checksum when the device lacks link.CapTxChecksum.
// The result is appended to out. Takes ownership of pkt; on error pkt is
// released and out is returned unchanged.
func PrepareTx(pkt *buf.Packet, t link.Type, caps link.Capabilities, out []*buf.Packet) ([]*buf.Packet, error) {
	o := &pkt.Offload
	var need link.Capabilities
	switch o.GSO {
	case buf.GSOTCPv4:
		need = link.CapTSO4
	case buf.GSOTCPv6:
		need = link.CapTSO6
	case buf.GSOUDPL4:
		need = link.CapUSO
	}
	if need != 0 && !caps.Has(need) {
		return SegmentFrame(pkt, t, out)
	}
	if o.NeedsCsum && !caps.Has(link.CapTxChecksum) {
		if err := Complete(pkt); err != nil {
			pkt.Release()
			return out, err
		}
	}
	return append(out, pkt), nil
}

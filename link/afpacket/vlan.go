package afpacket

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"

	"ustack/buf"
	"ustack/link/offload"
	"ustack/wire"
)

// VLAN tags and PACKET_AUXDATA.
//
// The kernel takes the 802.1Q tag off a received frame (in hardware or in
// software) before a packet socket sees it, and reports it only in the
// PACKET_AUXDATA control message (packet(7)). The driver puts the tag back
// so the stack sees the frame as it was on the wire.

// sizeofAuxdata is the size of struct tpacket_auxdata.
const sizeofAuxdata = int(unsafe.Sizeof(unix.TpacketAuxdata{}))

// auxSpace is the control buffer one message needs for its auxdata.
var auxSpace = unix.CmsgSpace(sizeofAuxdata)

// vlanFromControl finds PACKET_AUXDATA in a control buffer and returns the
// frame's VLAN tag, if the kernel took one off. It does not allocate.
func vlanFromControl(ctl []byte) (tpid, tci uint16, ok bool) {
	const hdr = unix.SizeofCmsghdr
	for len(ctl) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		n := int(h.Len)
		if n < hdr || n > len(ctl) {
			return 0, 0, false
		}
		if h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA && n >= hdr+sizeofAuxdata {
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&ctl[unix.CmsgLen(0)]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID == 0 {
				return 0, 0, false
			}
			tpid = uint16(wire.EtherTypeVLAN)
			if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = aux.Vlan_tpid
			}
			return tpid, aux.Vlan_tci, true
		}
		ctl = ctl[min(unix.CmsgSpace(n-hdr), len(ctl)):]
	}
	return 0, 0, false
}

// restoreVLAN puts a tag back after the MAC addresses of p, whose front is
// a virtio-net header and then the frame, and moves the header's offsets,
// which the kernel counted on the untagged frame. It reports false when p
// is too short to be a frame.
func restoreVLAN(p *buf.Packet, tpid, tci uint16) bool {
	const front = offload.HeaderLen + 12 // vnet header, destination and source MAC
	b := p.Pullup(front)
	if b == nil {
		return false
	}
	var saved [front]byte
	copy(saved[:], b)
	// virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start,
	// csum_offset (virtio spec §5.1.6), in host order.
	if saved[0]&1 != 0 { // VIRTIO_NET_HDR_F_NEEDS_CSUM
		binary.NativeEndian.PutUint16(saved[6:], binary.NativeEndian.Uint16(saved[6:])+wire.VLANTagLen)
	}
	if saved[1] != 0 { // a GSO type
		binary.NativeEndian.PutUint16(saved[2:], binary.NativeEndian.Uint16(saved[2:])+wire.VLANTagLen)
	}
	p.TrimFront(front)
	tag := p.Prepend(wire.VLANTagLen)
	binary.BigEndian.PutUint16(tag[0:], tpid)
	binary.BigEndian.PutUint16(tag[2:], tci)
	copy(p.Prepend(front), saved[:])
	return true
}

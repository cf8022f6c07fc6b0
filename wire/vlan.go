package wire

import "encoding/binary"

// IEEE 802.1Q VLAN tags and IEEE 802.1ad (Q-in-Q) stacking.
//
// On the wire a tag sits between the source address and the EtherType of
// an Ethernet II header: a 2-byte TPID (0x8100 for a customer tag, 0x88a8
// for a service tag), which is where the EtherType would be, then the
// 2-byte TCI and the EtherType of what follows:
//
//	dst(6) src(6) TPID(2) | TCI(2) type(2) | payload
//	                        `--- VLAN ----'
//
// The Ethernet view's Type is the TPID; the VLAN view starts at the TCI.

// TCI is a VLAN tag control information word (IEEE 802.1Q §9.6): a 3-bit
// priority code point, a drop eligible indicator and a 12-bit VLAN ID.
type TCI uint16

// MakeTCI packs a TCI. pcp is masked to 3 bits, vid to 12.
func MakeTCI(pcp uint8, dei bool, vid uint16) TCI {
	t := TCI(pcp&7)<<13 | TCI(vid&0xfff)
	if dei {
		t |= 1 << 12
	}
	return t
}

// PCP is the priority code point (0..7).
func (t TCI) PCP() uint8 { return uint8(t >> 13) }

// DEI reports the drop eligible indicator (formerly CFI).
func (t TCI) DEI() bool { return t&(1<<12) != 0 }

// VID is the VLAN identifier. 0 means a priority-tagged frame with no VLAN;
// 0xfff is reserved (IEEE 802.1Q Table 9-2).
func (t TCI) VID() uint16 { return uint16(t & 0xfff) }

func (t TCI) String() string {
	s := "vlan " + itoa(int(t.VID())) + " pcp " + itoa(int(t.PCP()))
	if t.DEI() {
		s += " dei"
	}
	return s
}

// VLANMaxID is the largest VLAN ID that may be sent (0xfff is reserved).
const VLANMaxID = 4094

// VLAN is a view of one VLAN tag after its TPID: TCI, inner EtherType and
// what follows.
type VLAN []byte

// ParseVLAN checks that b holds a VLAN tag (TCI and inner EtherType). The
// VID is not checked: 0 (priority tag) and 0xfff are returned as they are.
func ParseVLAN(b []byte) (VLAN, error) {
	if len(b) < VLANTagLen {
		return nil, ErrTruncated
	}
	return VLAN(b), nil
}

func (v VLAN) TCI() TCI            { return TCI(binary.BigEndian.Uint16(v[0:])) }
func (v VLAN) PCP() uint8          { return v.TCI().PCP() }
func (v VLAN) DEI() bool           { return v.TCI().DEI() }
func (v VLAN) VID() uint16         { return v.TCI().VID() }
func (v VLAN) Type() EtherType     { return EtherType(binary.BigEndian.Uint16(v[2:])) }
func (v VLAN) Payload() []byte     { return v[VLANTagLen:] }
func (v VLAN) SetTCI(t TCI)        { binary.BigEndian.PutUint16(v[0:], uint16(t)) }
func (v VLAN) SetType(t EtherType) { binary.BigEndian.PutUint16(v[2:], uint16(t)) }

// VLANFields are the fields of a VLAN tag (after its TPID, which is the
// Type of the EthernetFields or VLANFields before it).
type VLANFields struct {
	PCP  uint8  // 0..7
	DEI  bool   // drop eligible
	VID  uint16 // 0..4094
	Type EtherType
}

// Len is the encoded length.
func (f *VLANFields) Len() int { return VLANTagLen }

// Encode writes the tag into b[:VLANTagLen].
func (f *VLANFields) Encode(b []byte) {
	v := VLAN(b[:VLANTagLen])
	v.SetTCI(MakeTCI(f.PCP, f.DEI, f.VID))
	v.SetType(f.Type)
}

// IsVLANTPID reports whether t announces a VLAN tag: 802.1Q (0x8100) or
// 802.1ad (0x88a8).
func IsVLANTPID(t EtherType) bool { return t == EtherTypeVLAN || t == EtherTypeQinQ }

// VLANTag is one tag as ParseEthernetFrame found it.
type VLANTag struct {
	TPID EtherType // EtherTypeVLAN or EtherTypeQinQ
	TCI  TCI
}

// VLANTags are the tags of a frame, outermost first. The zero value means
// untagged.
type VLANTags struct {
	N   int // number of tags in Tag, 0..2
	Tag [2]VLANTag
}

// Outer and Inner are the outermost and innermost tag; ok is false for an
// untagged frame. With one tag, both are that tag.
func (t VLANTags) Outer() (VLANTag, bool) { return t.Tag[0], t.N > 0 }
func (t VLANTags) Inner() (VLANTag, bool) {
	if t.N == 0 {
		return VLANTag{}, false
	}
	return t.Tag[t.N-1], true
}

// MaxVLANTags is how many stacked tags ParseEthernetFrame walks.
const MaxVLANTags = 2

// ParseEthernetFrame parses an Ethernet II header and up to two VLAN tags
// (802.1Q 0x8100 and 802.1ad 0x88a8, in either order: some networks stack
// two 0x8100 tags). It returns the Ethernet view (whose Type is the outer
// TPID when tagged), the tags, the innermost EtherType and the payload after
// the last tag. It does not allocate.
//
// Errors: ErrTruncated if b ends inside the header or a tag; ErrUnsupported
// for a third tag. An innermost type below 0x0600 is an IEEE 802.3 length
// field, not an EtherType (IEEE 802.3 §3.2.6); it is returned as it is and
// callers that handle only Ethernet II drop it as an unknown type.
func ParseEthernetFrame(b []byte) (hdr Ethernet, tags VLANTags, typ EtherType, payload []byte, err error) {
	if len(b) < EthernetHeaderLen {
		return nil, tags, 0, nil, ErrTruncated
	}
	hdr = Ethernet(b)
	typ = hdr.Type()
	off := EthernetHeaderLen
	for IsVLANTPID(typ) {
		if tags.N == MaxVLANTags {
			return nil, VLANTags{}, 0, nil, ErrUnsupported
		}
		if len(b)-off < VLANTagLen {
			return nil, VLANTags{}, 0, nil, ErrTruncated
		}
		v := VLAN(b[off:])
		tags.Tag[tags.N] = VLANTag{TPID: typ, TCI: v.TCI()}
		tags.N++
		typ = v.Type()
		off += VLANTagLen
	}
	return hdr, tags, typ, b[off:], nil
}

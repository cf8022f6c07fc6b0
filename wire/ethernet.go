package wire

import "encoding/binary"

// Ethernet II (IEEE 802.3 with an EtherType, RFC 894) and 802.1Q.
const (
	EthernetHeaderLen = 14
	VLANTagLen        = 4
	EthernetMinFrame  = 60 // without FCS
)

// Ethernet is a view of an Ethernet II header.
type Ethernet []byte

// ParseEthernet checks that b holds an Ethernet header.
func ParseEthernet(b []byte) (Ethernet, error) {
	if len(b) < EthernetHeaderLen {
		return nil, ErrTruncated
	}
	return Ethernet(b), nil
}

func (e Ethernet) Dst() (m MAC)        { copy(m[:], e[0:6]); return }
func (e Ethernet) Src() (m MAC)        { copy(m[:], e[6:12]); return }
func (e Ethernet) Type() EtherType     { return EtherType(binary.BigEndian.Uint16(e[12:])) }
func (e Ethernet) SetDst(m MAC)        { copy(e[0:6], m[:]) }
func (e Ethernet) SetSrc(m MAC)        { copy(e[6:12], m[:]) }
func (e Ethernet) SetType(t EtherType) { binary.BigEndian.PutUint16(e[12:], uint16(t)) }
func (e Ethernet) Payload() []byte     { return e[EthernetHeaderLen:] }

// EthernetFields are the fields of an Ethernet II header.
type EthernetFields struct {
	Dst, Src MAC
	Type     EtherType
}

// Len is the encoded length.
func (f *EthernetFields) Len() int { return EthernetHeaderLen }

// Encode writes the header into b[:EthernetHeaderLen].
func (f *EthernetFields) Encode(b []byte) {
	e := Ethernet(b[:EthernetHeaderLen])
	e.SetDst(f.Dst)
	e.SetSrc(f.Src)
	e.SetType(f.Type)
}

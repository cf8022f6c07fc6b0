package wire

import "encoding/binary"

// TCP header (RFC 9293 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	|                        Sequence Number                        |
//	|                    Acknowledgment Number                      |
//	|  DOffset  | Rsrvd |C|E|U|A|P|R|S|F|            Window         |
//	|           Checksum            |         Urgent Pointer        |
//	|                    [Options]                                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	TCPMinHeaderLen = 20
	TCPMaxHeaderLen = 60
)

// TCPFlags are the control bits of a TCP header (RFC 9293 §3.1; CWR and
// ECE from RFC 3168 §6.1).
type TCPFlags uint8

const (
	TCPFlagFIN TCPFlags = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

var tcpFlagNames = [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// Has reports whether all of the flags in g are set.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// String lists the set flags, lowest bit first, joined by '|' ("SYN|ACK");
// "none" when no flag is set.
func (f TCPFlags) String() string {
	if f == 0 {
		return "none"
	}
	var b [32]byte
	s := b[:0]
	for i, name := range tcpFlagNames {
		if f&(1<<i) != 0 {
			if len(s) > 0 {
				s = append(s, '|')
			}
			s = append(s, name...)
		}
	}
	return string(s)
}

// TCP is a view of a TCP segment: header, options and payload. TCP has no
// length field: the segment is everything the network layer delivers (for
// IPv4, IPv4.Payload()).
type TCP []byte

// ParseTCP checks that b starts with a TCP header whose data offset is at
// least 5 words and lies within b. Options are not parsed (see
// TCP.ParseOptions) and the checksum is not checked (see
// TCP.ChecksumValid).
func ParseTCP(b []byte) (TCP, error) {
	if len(b) < TCPMinHeaderLen {
		return nil, ErrTruncated
	}
	hl := int(b[12]>>4) * 4
	if hl < TCPMinHeaderLen {
		return nil, ErrBadLength
	}
	if hl > len(b) {
		return nil, ErrTruncated
	}
	return TCP(b), nil
}

func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:]) }
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:]) }
func (t TCP) Seq() uint32     { return binary.BigEndian.Uint32(t[4:]) }
func (t TCP) Ack() uint32     { return binary.BigEndian.Uint32(t[8:]) }

// DataOffset is the header length in 32-bit words (5..15).
func (t TCP) DataOffset() uint8 { return t[12] >> 4 }

// HeaderLen is the header length in bytes, options included.
func (t TCP) HeaderLen() int   { return int(t[12]>>4) * 4 }
func (t TCP) Flags() TCPFlags  { return TCPFlags(t[13]) }
func (t TCP) Window() uint16   { return binary.BigEndian.Uint16(t[14:]) }
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:]) }
func (t TCP) Urgent() uint16   { return binary.BigEndian.Uint16(t[18:]) }
func (t TCP) Options() []byte  { return t[TCPMinHeaderLen:t.HeaderLen()] }
func (t TCP) Payload() []byte  { return t[t.HeaderLen():] }

// ParseOptions parses the header's options (see ParseTCPOptions).
func (t TCP) ParseOptions() (TCPOptions, error) { return ParseTCPOptions(t.Options()) }

func (t TCP) SetSrcPort(p uint16)  { binary.BigEndian.PutUint16(t[0:], p) }
func (t TCP) SetDstPort(p uint16)  { binary.BigEndian.PutUint16(t[2:], p) }
func (t TCP) SetSeq(n uint32)      { binary.BigEndian.PutUint32(t[4:], n) }
func (t TCP) SetAck(n uint32)      { binary.BigEndian.PutUint32(t[8:], n) }
func (t TCP) SetFlags(f TCPFlags)  { t[13] = uint8(f) }
func (t TCP) SetWindow(w uint16)   { binary.BigEndian.PutUint16(t[14:], w) }
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[16:], c) }
func (t TCP) SetUrgent(p uint16)   { binary.BigEndian.PutUint16(t[18:], p) }
func (t TCP) setDataOffset(hl int) { t[12] = uint8(hl/4) << 4 }

// ChecksumValid reports whether the checksum over the whole segment holds,
// given the pseudo-header sum for len(t) bytes (RFC 9293 §3.1; see
// PseudoHeaderChecksum and IPv4.PseudoHeaderChecksum).
func (t TCP) ChecksumValid(pseudo uint16) bool { return Checksum(t, pseudo) == 0xffff }

// UpdateChecksum recomputes the checksum over the whole segment, given the
// pseudo-header sum for len(t) bytes.
func (t TCP) UpdateChecksum(pseudo uint16) {
	t.SetChecksum(0)
	t.SetChecksum(^Checksum(t, pseudo))
}

// TCPFields are the fields of a TCP header. The data offset follows from
// the options; the reserved bits are sent as zero (RFC 9293 §3.1).
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            TCPFlags
	Window           uint16
	Checksum         uint16 // written as is; see TCP.UpdateChecksum
	Urgent           uint16
	Options          TCPOptions
}

// Len is the encoded header length, options included.
func (f *TCPFields) Len() int { return TCPMinHeaderLen + f.Options.Len() }

// Encode writes the header and options into b[:f.Len()].
func (f *TCPFields) Encode(b []byte) {
	hl := f.Len()
	t := TCP(b[:hl])
	t.SetSrcPort(f.SrcPort)
	t.SetDstPort(f.DstPort)
	t.SetSeq(f.Seq)
	t.SetAck(f.Ack)
	t.setDataOffset(hl)
	t.SetFlags(f.Flags)
	t.SetWindow(f.Window)
	t.SetChecksum(f.Checksum)
	t.SetUrgent(f.Urgent)
	f.Options.Encode(t[TCPMinHeaderLen:])
}

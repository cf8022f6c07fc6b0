// Package buf holds ustack's packet buffers: the layer under every protocol.
//
// A Packet is a list of views (the data) over pooled chunks of storage (what
// the packet holds a reference on), in the manner of BONE's bone_data_t: a
// data list and a free list. Headers are prepended into headroom without
// copying; Split and TrimFront cut a packet without copying; IP
// fragmentation splits one payload into many packets that share its chunks.
//
// Ownership: a Packet has exactly one owner at a time. Every function or
// method in ustack that takes a *Packet says in its doc comment whether it
// takes ownership; by default, a callee that takes a packet owns it and must
// Release it or hand it on. The owner may read and write the bytes; after
// handing the packet on it must not touch it again. Chunks shared between
// packets (after Split or Clone) carry an internal reference count that this
// package maintains: callers never pair references by hand.
//
// buf does no I/O, knows no formats and keeps no global mutable state except
// its pools.
package buf

import (
	"fmt"
	"io"
)

// DefaultHeadroom is the headroom New leaves in front of the data: enough for
// a virtio-net header, Ethernet with two VLAN tags, an IPv6 header with
// extension headers or an IPv4 header with options, and a TCP header with
// options.
const DefaultHeadroom = 192

// view is a window onto a chunk (or onto caller-owned memory when c is nil).
type view struct {
	c   *chunk
	off int // start of the window within c.data
	n   int // length of the window
	ext []byte
}

func (v *view) bytes() []byte {
	if v.c == nil {
		return v.ext[v.off : v.off+v.n]
	}
	return v.c.data[v.off : v.off+v.n]
}

// Packet is a network packet: bytes plus the metadata the layers attach as it
// moves. The zero value is not usable; get packets from New, FromBytes or
// Clone.
type Packet struct {
	views   []view
	chunks  []*chunk
	size    int
	inViews [4]view
	inChunk [4]*chunk

	released bool

	// Metadata. Layers set what they learn; Release clears it.

	// IfIndex is the interface the packet arrived on (receive path) or
	// leaves by (send path); 0 when unknown.
	IfIndex int
	// LinkHeader, NetworkHeader and TransportHeader are the bytes of the
	// headers the receive path has consumed, kept for ICMP errors, capture
	// and filters. They alias the packet's storage and are valid until the
	// packet is released or its front is written by Prepend.
	LinkHeader, NetworkHeader, TransportHeader []byte
	// Offload describes checksum and segmentation offload state (virtio-net
	// semantics), set by drivers on receive and by transports on send.
	Offload Offload
	// Flags carry per-packet facts such as link-layer broadcast.
	Flags Flags
}

// Flags are per-packet facts learned on the receive path.
type Flags uint8

const (
	// FlagLinkBroadcast: the frame was sent to the link broadcast address.
	FlagLinkBroadcast Flags = 1 << iota
	// FlagLinkMulticast: the frame was sent to a link multicast address.
	FlagLinkMulticast
	// FlagLinkOtherHost: the frame was addressed to another station.
	FlagLinkOtherHost
	// FlagLoopback: the packet was looped back inside the stack.
	FlagLoopback
)

// GSOType is the kind of segmentation offload a large packet asks for.
type GSOType uint8

const (
	GSONone GSOType = iota
	GSOTCPv4
	GSOTCPv6
	GSOUDPL4 // UDP segmentation (USO): each segment is its own datagram
)

func (t GSOType) String() string {
	switch t {
	case GSONone:
		return "none"
	case GSOTCPv4:
		return "tcpv4"
	case GSOTCPv6:
		return "tcpv6"
	case GSOUDPL4:
		return "udp-l4"
	}
	return fmt.Sprintf("gso(%d)", uint8(t))
}

// Offload is the offload state of a packet, with the same meaning as the
// virtio-net header (virtio spec §5.1.6.2). CsumStart and HdrLen count from
// the packet's current front: Prepend and TrimFront shift them, so no layer
// adjusts them by hand.
type Offload struct {
	// NeedsCsum: the transport checksum is partial. The checksum over
	// bytes [CsumStart, end) is to be stored at CsumStart+CsumOffset; the
	// field already holds the pseudo-header sum.
	NeedsCsum  bool
	CsumStart  uint16
	CsumOffset uint16
	// CsumValid: the link has verified the transport checksum.
	CsumValid bool
	// GSO: the packet is larger than the MTU and is to be cut into segments
	// of at most GSOSize payload bytes after the first HdrLen header bytes.
	GSO     GSOType
	GSOSize uint16
	HdrLen  uint16
}

// shift moves the offload offsets when n bytes are added (n > 0) or
// removed (n < 0) at the front. A checksum start that would fall before
// the front no longer describes the packet: the partial-checksum state is
// cleared. HdrLen is a hint (virtio spec §5.1.6.2) and stops at zero.
func (o *Offload) shift(n int) {
	if o.NeedsCsum {
		if c := int(o.CsumStart) + n; c >= 0 {
			o.CsumStart = uint16(c)
		} else {
			o.NeedsCsum, o.CsumStart, o.CsumOffset = false, 0, 0
		}
	}
	if o.GSO != GSONone {
		o.HdrLen = uint16(max(int(o.HdrLen)+n, 0))
	}
}

// New returns a packet with headroom bytes of room in front and size bytes
// of data (not zeroed). The caller owns it.
func New(headroom, size int) *Packet {
	p := getPacket()
	c := getChunk(headroom + size)
	p.addChunk(c)
	p.views = append(p.views, view{c: c, off: headroom, n: size})
	p.size = size
	return p
}

// FromBytes returns a packet holding a copy of b behind DefaultHeadroom.
// The caller owns it.
func FromBytes(b []byte) *Packet {
	p := New(DefaultHeadroom, len(b))
	copy(p.views[0].bytes(), b)
	countCopy(len(b))
	return p
}

// Wrap returns a packet that uses b as its storage without copying. The
// caller hands b to the packet: it must not use b again. Such a packet has no
// headroom; Prepend allocates a chunk in front of it.
func Wrap(b []byte) *Packet {
	p := getPacket()
	p.views = append(p.views, view{ext: b, n: len(b)})
	p.size = len(b)
	return p
}

// Len is the number of data bytes.
func (p *Packet) Len() int { return p.size }

// Headroom is the room in front of the data that Prepend can use without
// allocating.
func (p *Packet) Headroom() int {
	if len(p.views) == 0 {
		return 0
	}
	v := &p.views[0]
	if v.c == nil || v.c.shared() {
		return 0
	}
	return v.off
}

// Contiguous reports whether the data is one slice.
func (p *Packet) Contiguous() bool { return len(p.views) <= 1 }

// Bytes returns the data if it is contiguous, and nil otherwise (use
// Pullup or CopyTo then). The slice aliases the packet.
func (p *Packet) Bytes() []byte {
	switch len(p.views) {
	case 0:
		return nil
	case 1:
		return p.views[0].bytes()
	}
	return nil
}

// NumViews is the number of contiguous pieces of data.
func (p *Packet) NumViews() int { return len(p.views) }

// View returns the i-th contiguous piece of data; it aliases the packet.
func (p *Packet) View(i int) []byte { return p.views[i].bytes() }

// AppendViews appends the packet's pieces of data to vs (for vectored I/O)
// and returns the extended slice.
func (p *Packet) AppendViews(vs [][]byte) [][]byte {
	for i := range p.views {
		vs = append(vs, p.views[i].bytes())
	}
	return vs
}

// Pullup makes the first n bytes contiguous and returns them. It copies only
// when they span views. It returns nil if the packet is shorter than n.
func (p *Packet) Pullup(n int) []byte {
	if n > p.size {
		return nil
	}
	if n == 0 {
		return []byte{}
	}
	if p.views[0].n >= n {
		return p.views[0].bytes()[:n]
	}
	// Gather the first n bytes into a new chunk with headroom kept.
	countCopy(n)
	c := getChunk(DefaultHeadroom + n)
	dst := c.data[DefaultHeadroom : DefaultHeadroom+n]
	copied, i := 0, 0
	for copied < n {
		b := p.views[i].bytes()
		k := copy(dst[copied:], b)
		copied += k
		if k == len(b) {
			i++
			continue
		}
		// Partly consumed view: keep its tail.
		p.views[i].off += k
		p.views[i].n -= k
		break
	}
	// Replace views [0, i) with the new one. The old chunks stay referenced
	// in p.chunks, so header slices into them stay valid.
	p.addChunk(c)
	rest := p.views[i:]
	nv := view{c: c, off: DefaultHeadroom, n: n}
	if i == 0 {
		p.views = append(p.views, view{})
		copy(p.views[1:], p.views[:len(p.views)-1])
		p.views[0] = nv
	} else {
		p.views[0] = nv
		k := copy(p.views[1:], rest)
		clearViews(p.views[1+k:])
		p.views = p.views[:1+k]
	}
	return dst
}

// Prepend makes room for n bytes in front of the data and returns them (not
// zeroed). It uses headroom when the first chunk is the packet's own and
// otherwise puts a new chunk in front. It may overwrite bytes trimmed from
// the front earlier, so header slices recorded before may change.
func (p *Packet) Prepend(n int) []byte {
	if n == 0 {
		// No empty views: they would make a contiguous packet look split.
		return []byte{}
	}
	p.Offload.shift(n)
	if len(p.views) > 0 {
		v := &p.views[0]
		if v.c != nil && !v.c.shared() && v.off >= n {
			v.off -= n
			v.n += n
			p.size += n
			return v.c.data[v.off : v.off+n]
		}
	}
	c := getChunk(DefaultHeadroom + n)
	p.addChunk(c)
	p.views = append(p.views, view{})
	copy(p.views[1:], p.views[:len(p.views)-1])
	p.views[0] = view{c: c, off: DefaultHeadroom, n: n}
	p.size += n
	return c.data[DefaultHeadroom : DefaultHeadroom+n]
}

// Append adds n bytes at the end and returns them (not zeroed). It uses the
// tail room of the last chunk when the packet owns it alone.
func (p *Packet) Append(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	if k := len(p.views); k > 0 {
		v := &p.views[k-1]
		if v.c != nil && !v.c.shared() && v.off+v.n+n <= len(v.c.data) {
			b := v.c.data[v.off+v.n : v.off+v.n+n]
			v.n += n
			p.size += n
			return b
		}
	}
	c := getChunk(n)
	p.addChunk(c)
	p.views = append(p.views, view{c: c, off: 0, n: n})
	p.size += n
	return c.data[:n]
}

// AppendBytes copies b to the end of the packet.
func (p *Packet) AppendBytes(b []byte) {
	copy(p.Append(len(b)), b)
	countCopy(len(b))
}

// TrimFront removes n bytes from the front. The bytes stay in storage, so
// header slices taken before remain valid.
func (p *Packet) TrimFront(n int) {
	if n > p.size {
		n = p.size
	}
	p.Offload.shift(-n)
	p.size -= n
	i := 0
	for n > 0 {
		v := &p.views[i]
		if v.n > n {
			v.off += n
			v.n -= n
			break
		}
		n -= v.n
		i++
	}
	if i > 0 {
		k := copy(p.views, p.views[i:])
		clearViews(p.views[k:])
		p.views = p.views[:k]
	}
}

// Truncate keeps the first n bytes and drops the rest.
func (p *Packet) Truncate(n int) {
	if n >= p.size {
		return
	}
	p.size = n
	for i := range p.views {
		v := &p.views[i]
		if v.n >= n {
			v.n = n
			clearViews(p.views[i+1:])
			p.views = p.views[:i+1]
			if n == 0 {
				clearViews(p.views[i:])
				p.views = p.views[:i]
			}
			return
		}
		n -= v.n
	}
}

// Split cuts the packet at byte off: p keeps [0, off) and the returned packet
// holds [off, Len()). No data is copied; both packets share the chunks they
// span. The caller owns the new packet. off must be within [0, Len()].
func (p *Packet) Split(off int) *Packet {
	if off < 0 || off > p.size {
		panic(fmt.Sprintf("buf: Split(%d) of a %d-byte packet", off, p.size))
	}
	q := getPacket()
	rem := off
	i := 0
	for ; i < len(p.views); i++ {
		if p.views[i].n > rem {
			break
		}
		rem -= p.views[i].n
	}
	for j := i; j < len(p.views); j++ {
		v := p.views[j]
		if j == i {
			v.off += rem
			v.n -= rem
		}
		q.views = append(q.views, v)
		if v.c != nil {
			v.c.ref()
			q.chunks = append(q.chunks, v.c)
		}
	}
	q.size = p.size - off
	// Keep p's views up to the cut.
	if i < len(p.views) && rem > 0 {
		p.views[i].n = rem
		i++
	}
	clearViews(p.views[i:])
	p.views = p.views[:i]
	p.size = off
	return q
}

// Clone returns a packet with the same data sharing the same chunks, and the
// same metadata. The caller owns the clone. Neither packet may write into
// the shared bytes; Prepend on either uses a new chunk.
func (p *Packet) Clone() *Packet {
	q := getPacket()
	for _, v := range p.views {
		q.views = append(q.views, v)
	}
	for _, c := range p.chunks {
		c.ref()
		q.chunks = append(q.chunks, c)
	}
	q.size = p.size
	q.copyMeta(p)
	return q
}

// DeepCopy returns a packet with a private contiguous copy of the data and
// DefaultHeadroom in front of it, and the same metadata except header slices.
func (p *Packet) DeepCopy() *Packet {
	q := New(DefaultHeadroom, p.size)
	p.CopyTo(q.views[0].bytes())
	q.IfIndex, q.Offload, q.Flags = p.IfIndex, p.Offload, p.Flags
	return q
}

// Concat appends q's data to p. It takes ownership of q.
func (p *Packet) Concat(q *Packet) {
	if p.size == 0 {
		// Drop an empty view kept for headroom: a packet with data has no
		// empty views, so Contiguous stays exact.
		clearViews(p.views)
		p.views = p.views[:0]
	}
	for _, v := range q.views {
		if v.n > 0 {
			p.views = append(p.views, v)
		}
	}
	p.chunks = append(p.chunks, q.chunks...)
	p.size += q.size
	clearViews(q.views)
	q.views = q.views[:0]
	for i := range q.chunks {
		q.chunks[i] = nil
	}
	q.chunks = q.chunks[:0]
	q.size = 0
	q.Release()
}

// CopyTo copies up to len(b) bytes of data into b and returns the count.
func (p *Packet) CopyTo(b []byte) int {
	n := 0
	for i := range p.views {
		if n == len(b) {
			break
		}
		n += copy(b[n:], p.views[i].bytes())
	}
	countCopy(n)
	return n
}

// ReadAt copies data from offset off into b, as io.ReaderAt does.
func (p *Packet) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("buf: negative offset %d", off)
	}
	if off >= int64(p.size) {
		return 0, io.EOF
	}
	n := 0
	for i := range p.views {
		vb := p.views[i].bytes()
		if off >= int64(len(vb)) {
			off -= int64(len(vb))
			continue
		}
		n += copy(b[n:], vb[off:])
		off = 0
		if n == len(b) {
			countCopy(n)
			return n, nil
		}
	}
	countCopy(n)
	return n, io.EOF
}

// ToBytes returns a new slice with a copy of the data (for tests and slow
// paths).
func (p *Packet) ToBytes() []byte {
	b := make([]byte, p.size)
	p.CopyTo(b)
	return b
}

// Release returns the packet and its storage to the pools. The owner calls
// it once when it is done; the packet must not be used afterwards. Releasing
// twice panics.
func (p *Packet) Release() {
	if p == nil {
		return
	}
	if p.released {
		panic("buf: packet released twice")
	}
	for i, c := range p.chunks {
		c.unref()
		p.chunks[i] = nil
	}
	clearViews(p.views)
	putPacket(p)
}

func (p *Packet) addChunk(c *chunk) { p.chunks = append(p.chunks, c) }

func (p *Packet) copyMeta(from *Packet) {
	p.IfIndex = from.IfIndex
	p.LinkHeader = from.LinkHeader
	p.NetworkHeader = from.NetworkHeader
	p.TransportHeader = from.TransportHeader
	p.Offload = from.Offload
	p.Flags = from.Flags
}

func clearViews(vs []view) {
	for i := range vs {
		vs[i] = view{}
	}
}

// String describes the packet for debugging.
func (p *Packet) String() string {
	return fmt.Sprintf("Packet{len=%d views=%d chunks=%d}", p.size, len(p.views), len(p.chunks))
}

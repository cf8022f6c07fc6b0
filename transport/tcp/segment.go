package tcp

import (
	"net/netip"
	"time"

	"ustack/buf"
	"ustack/internal/seqnum"
	"ustack/proto"
	"ustack/wire"
)

// The types here are shared by the two halves of the package: the protocol
// (tcp.go, demux.go, ports.go, listen.go, syncookie.go, isn.go: receiving,
// demultiplexing, the listen side) and the connection engine (conn.go,
// input.go, output.go, timer.go, and the files beside them: one
// connection's state machine).

// connID is a connection's 4-tuple, seen from this stack.
type connID struct {
	local, remote netip.AddrPort
}

// segment is a received TCP segment, validated and parsed by the protocol
// before it reaches a listener or a connection.
type segment struct {
	id    connID
	seq   seqnum.Value
	ack   seqnum.Value
	flags wire.TCPFlags
	// wnd is the raw window field; the connection scales it (RFC 7323
	// §2.2: never on a SYN).
	wnd  uint16
	urg  uint16
	opts wire.TCPOptions
	// pkt holds the payload only (the header has been trimmed), or nothing
	// for a bare control segment. Whoever takes the segment owns pkt.
	pkt *buf.Packet
	// payloadLen is pkt.Len() (0 when pkt is nil).
	payloadLen int
	// arrived is when the segment came in (clock time), set when it is
	// handed to a listener (a connection reads the clock itself).
	arrived time.Time
	// ttl and tos from the IP header; ifIndex of the interface.
	ttl, tos uint8
	ifIndex  int
	// batch is the received batch the segment arrived in, or nil: the
	// connection leaves its ACK decision to the batch's end.
	batch *proto.Batch
}

// seqLen is the sequence space the segment takes: data, plus one each for
// SYN and FIN (RFC 9293 §3.4).
func (s *segment) seqLen() seqnum.Size {
	n := seqnum.Size(s.payloadLen)
	if s.flags&wire.TCPFlagSYN != 0 {
		n++
	}
	if s.flags&wire.TCPFlagFIN != 0 {
		n++
	}
	return n
}

// release drops the payload.
func (s *segment) release() {
	if s.pkt != nil {
		s.pkt.Release()
		s.pkt = nil
	}
}

// handshake is what a completed three-way handshake agreed, handed from the
// listen side (SYN queue or SYN cookie) to a new connection in ESTABLISHED.
type handshake struct {
	id       connID
	iss, irs seqnum.Value // our and the peer's initial sequence numbers
	// sndWnd is the peer's window from the final ACK, already scaled.
	sndWnd int
	// mss is the peer's MSS option (RFC 6691), or 536 without one
	// (RFC 9293 §3.7.1); the connection clamps it to the route.
	mss int
	// sndWScale, rcvWScale: the shift counts (RFC 7323 §2.3), -1 when
	// window scaling was not agreed.
	sndWScale, rcvWScale int
	sackOK               bool
	// tsOK: timestamps agreed; tsRecent is the peer's latest TSval,
	// tsOffset our clock's offset for TSval.
	tsOK     bool
	tsRecent uint32
	tsOffset uint32
	// rtt is the handshake's RTT sample (SYN-ACK to ACK), 0 for cookies.
	rtt time.Duration
	// opts are the options the listener applied (buffer sizes, no-delay,
	// congestion control) inherited from the listening socket.
	opts Options
}

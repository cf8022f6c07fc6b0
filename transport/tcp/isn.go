package tcp

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"time"

	"ustack/internal/seqnum"
)

// Keyed hashes of a connection's 4-tuple: initial sequence numbers (RFC
// 6528), timestamp offsets (RFC 7323 §5.4), SYN-cookie MACs (RFC 4987
// §3.6) and ephemeral port offsets (RFC 6056 §3.3.4), each with its own 128-bit secret drawn from crypto/rand when the
// stack starts. The hash is SipHash-2-4 (Aumasson and Bernstein, 2012): a
// short-input PRF fast enough for every SYN of a flood.

// secrets are a stack's keys. They never change for the stack's life:
// changing the ISN key would break the monotonicity RFC 6528 §3 relies on
// for TIME_WAIT reuse.
type secrets struct {
	isn, ts, cookie, port sipKey
}

type sipKey struct{ k0, k1 uint64 }

func newSecrets() secrets {
	var b [64]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("tcp: crypto/rand: " + err.Error())
	}
	k := func(o int) sipKey {
		return sipKey{binary.LittleEndian.Uint64(b[o:]), binary.LittleEndian.Uint64(b[o+8:])}
	}
	return secrets{isn: k(0), ts: k(16), cookie: k(32), port: k(48)}
}

// isnTick is the period of the ISN clock M (RFC 6528 §3: "a timer that is
// incremented every 4 microseconds").
const isnTick = 4 * time.Microsecond

// tupleBytes appends the 4-tuple in a fixed layout (local address and
// port, remote address and port; addresses as 16 bytes) to b.
func tupleBytes(b []byte, id connID) []byte {
	la, ra := id.local.Addr().As16(), id.remote.Addr().As16()
	b = append(b, la[:]...)
	b = binary.BigEndian.AppendUint16(b, id.local.Port())
	b = append(b, ra[:]...)
	return binary.BigEndian.AppendUint16(b, id.remote.Port())
}

// isn returns the initial sequence number for a connection (RFC 6528 §3):
//
//	ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
//
// M counts 4 µs ticks of the stack's clock since the stack started; F is
// SipHash under the stack's ISN secret. For one 4-tuple successive ISNs
// grow with time (so a new incarnation starts above an old one's sequence
// space, RFC 9293 §3.4.1); across tuples they are unpredictable.
func (p *Protocol) isn(id connID, now time.Time) seqnum.Value {
	var b [36]byte
	m := uint32(now.Sub(p.epoch) / isnTick)
	f := uint32(p.sec.isn.sum(tupleBytes(b[:0], id)))
	return seqnum.Value(m + f)
}

// tsOffset is the offset added to the timestamp clock for one connection
// (RFC 7323 §5.4 recommends a random offset per connection, so TSval
// leaks neither uptime nor the clock of other connections). It depends
// only on the 4-tuple and a secret, so a SYN cookie's connection finds the
// offset its SYN-ACK used without keeping state.
func (p *Protocol) tsOffset(id connID) uint32 {
	var b [36]byte
	return uint32(p.sec.ts.sum(tupleBytes(b[:0], id)))
}

// tsVal is the timestamp value (RFC 7323 §3: TSval) to send at now for a
// connection with the offset: a clock in milliseconds since the stack
// started, plus the offset. The connection engine and the listen side
// both use it, so the SYN-ACK and later segments share one clock.
func (p *Protocol) tsVal(now time.Time, offset uint32) uint32 {
	return uint32(now.Sub(p.epoch)/time.Millisecond) + offset
}

// sum is SipHash-2-4 of m under the key.
func (k sipKey) sum(m []byte) uint64 {
	v0 := k.k0 ^ 0x736f6d6570736575
	v1 := k.k1 ^ 0x646f72616e646f6d
	v2 := k.k0 ^ 0x6c7967656e657261
	v3 := k.k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(m)
	for len(m) >= 8 {
		w := binary.LittleEndian.Uint64(m)
		v3 ^= w
		round()
		round()
		v0 ^= w
		m = m[8:]
	}
	var last [8]byte
	copy(last[:], m)
	last[7] = byte(n)
	w := binary.LittleEndian.Uint64(last[:])
	v3 ^= w
	round()
	round()
	v0 ^= w
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}

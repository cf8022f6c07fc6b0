// Package seqnum is 32-bit sequence-number arithmetic (RFC 9293 §3.4, RFC
// 1982 serial numbers): comparisons that wrap around, windows and
// distances. TCP sequence and acknowledgment numbers and timestamps use it.
package seqnum

// Value is a sequence number.
type Value uint32

// Size is a distance between sequence numbers or the size of a window.
type Size uint32

// LessThan reports whether v comes before w (modulo 2³²).
func (v Value) LessThan(w Value) bool { return int32(v-w) < 0 }

// LessThanEq reports whether v is w or comes before it.
func (v Value) LessThanEq(w Value) bool { return v == w || v.LessThan(w) }

// GreaterThan reports whether v comes after w.
func (v Value) GreaterThan(w Value) bool { return int32(v-w) > 0 }

// GreaterThanEq reports whether v is w or comes after it.
func (v Value) GreaterThanEq(w Value) bool { return v == w || v.GreaterThan(w) }

// InRange reports whether a <= v < b.
func (v Value) InRange(a, b Value) bool { return v-a < b-a }

// InWindow reports whether v is in the window of size s starting at first.
func (v Value) InWindow(first Value, s Size) bool { return v.InRange(first, first.Add(s)) }

// Add returns v advanced by s.
func (v Value) Add(s Size) Value { return v + Value(s) }

// Sub returns v moved back by s.
func (v Value) Sub(s Size) Value { return v - Value(s) }

// Size returns the distance from v forward to w.
func (v Value) Size(w Value) Size { return Size(w - v) }

// Max returns the later of v and w.
func Max(v, w Value) Value {
	if v.LessThan(w) {
		return w
	}
	return v
}

// Min returns the earlier of v and w.
func Min(v, w Value) Value {
	if v.LessThan(w) {
		return v
	}
	return w
}

// Overlap reports whether the ranges [a, a+as) and [b, b+bs) overlap.
func Overlap(a Value, as Size, b Value, bs Size) bool {
	return a.LessThan(b.Add(bs)) && b.LessThan(a.Add(as))
}

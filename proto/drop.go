package proto

import (
	"ustack/internal/stats"
)

// DropReason says why a packet was dropped. Every drop is counted under one.
type DropReason uint8

const (
	DropNone DropReason = iota
	DropTruncated
	DropMalformed
	DropBadVersion
	DropBadHeaderLen
	DropBadLength
	DropBadChecksum
	DropBadOption
	DropTTLExceeded
	DropNotForUs
	DropNoRoute
	DropForwardingOff
	DropUnknownProtocol
	DropNoEndpoint
	DropFragTimeout
	DropFragOverlap
	DropFragDuplicate
	DropFragMemory
	DropFragTooBig
	DropFragInvalid
	DropFragNeeded
	DropNeighFailed
	DropNeighQueueFull
	DropInterfaceDown
	DropLinkError
	DropQueueFull
	DropRateLimited
	DropBadSource
	DropUnsupported
	DropFiltered
	DropNoBuffer
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"none", "truncated", "malformed", "bad_version", "bad_header_len", "bad_length",
	"bad_checksum", "bad_option", "ttl_exceeded", "not_for_us", "no_route",
	"forwarding_off", "unknown_protocol", "no_endpoint", "frag_timeout",
	"frag_overlap", "frag_duplicate", "frag_memory", "frag_too_big", "frag_invalid", "frag_needed",
	"neigh_failed", "neigh_queue_full", "interface_down", "link_error",
	"queue_full", "rate_limited", "bad_source", "unsupported", "filtered", "no_buffer",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Counters are the counters every protocol layer keeps: packets and bytes
// in and out, and drops by reason.
type Counters struct {
	InPackets, InBytes   stats.Counter
	OutPackets, OutBytes stats.Counter
	Delivered            stats.Counter
	Drops                [numDropReasons]stats.Counter
}

// Drop counts one packet dropped for reason r.
func (c *Counters) Drop(r DropReason) { c.Drops[r].Inc() }

// Dropped returns the number of packets dropped for r.
func (c *Counters) Dropped(r DropReason) uint64 { return c.Drops[r].Load() }

// TotalDrops is the number of packets dropped for any reason.
func (c *Counters) TotalDrops() uint64 {
	var n uint64
	for i := range c.Drops {
		n += c.Drops[i].Load()
	}
	return n
}

// Visit reports the counters under prefix ("ipv4."): in.packets,
// in.bytes, out.packets, out.bytes, delivered, drop.<reason> (non-zero only).
func (c *Counters) Visit(prefix string, v stats.Visitor) {
	v(prefix+"in.packets", c.InPackets.Load())
	v(prefix+"in.bytes", c.InBytes.Load())
	v(prefix+"out.packets", c.OutPackets.Load())
	v(prefix+"out.bytes", c.OutBytes.Load())
	v(prefix+"delivered", c.Delivered.Load())
	for i := DropReason(1); i < numDropReasons; i++ {
		if n := c.Drops[i].Load(); n != 0 {
			v(prefix+"drop."+i.String(), n)
		}
	}
}

// StatsSource is implemented by anything with counters to list.
type StatsSource interface {
	VisitStats(v stats.Visitor)
}

// TypeCounters count messages by an 8-bit type (ICMP, ICMPv6).
type TypeCounters [256]stats.Counter

// Visit reports the non-zero counters as prefix+name(type).
func (c *TypeCounters) Visit(prefix string, name func(uint8) string, v stats.Visitor) {
	for t := range c {
		if n := c[t].Load(); n != 0 {
			v(prefix+name(uint8(t)), n)
		}
	}
}

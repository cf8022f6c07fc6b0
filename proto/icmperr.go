package proto

import (
	"net/netip"
	"syscall"

	"ustack/wire"
)

// ErrorKind classifies ICMP (v4 or v6) errors independently of version.
type ErrorKind uint8

const (
	ErrNetUnreachable ErrorKind = iota + 1
	ErrHostUnreachable
	ErrProtoUnreachable
	ErrPortUnreachable
	ErrFragNeeded // IPv4 fragmentation needed / IPv6 packet too big
	ErrAdminProhibited
	ErrTimeExceeded
	ErrReassemblyTimeExceeded
	ErrParamProblem
	ErrSourceRouteFailed
)

var kindNames = [...]string{"", "net-unreachable", "host-unreachable", "proto-unreachable",
	"port-unreachable", "frag-needed", "admin-prohibited", "time-exceeded",
	"reassembly-time-exceeded", "param-problem", "source-route-failed"}

func (k ErrorKind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return "icmp-error"
}

// Errno is the errno a socket reports for the error, as Linux does
// (RFC 1122 §4.2.3.9 for which are hard).
func (k ErrorKind) Errno() syscall.Errno {
	switch k {
	case ErrNetUnreachable:
		return syscall.ENETUNREACH
	case ErrHostUnreachable, ErrSourceRouteFailed:
		return syscall.EHOSTUNREACH
	case ErrProtoUnreachable:
		return syscall.ENOPROTOOPT
	case ErrPortUnreachable:
		return syscall.ECONNREFUSED
	case ErrFragNeeded:
		return syscall.EMSGSIZE
	case ErrAdminProhibited:
		return syscall.EACCES
	case ErrTimeExceeded, ErrReassemblyTimeExceeded:
		return syscall.EHOSTUNREACH
	case ErrParamProblem:
		return syscall.EPROTO
	}
	return syscall.EIO
}

// ICMPError is an ICMP error message about a packet this stack sent,
// delivered to the transport that sent it.
type ICMPError struct {
	Kind ErrorKind
	// Type and Code are the raw ICMP values.
	Type, Code uint8
	// MTU is the next-hop MTU for ErrFragNeeded (0 if the router sent none).
	MTU int
	// From is the address of the host or router that sent the error.
	From netip.Addr
	// Src, Dst and Proto are from the quoted IP header: the original
	// packet's addresses (Src is ours).
	Src, Dst netip.Addr
	Proto    wire.IPProtocol
	// Quote is the quoted transport header and whatever data followed it
	// (at least 8 bytes).
	Quote []byte
}

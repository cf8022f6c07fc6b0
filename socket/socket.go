// Package socket is ustack's socket layer: net.PacketConn and net.Conn
// values over the stack's transport endpoints, with the semantics of Go's
// net package, so that code written for net works unchanged.
//
// It owns deadlines, blocking and the shape of errors: every error is a
// *net.OpError (Op "read", "write", "dial", "listen", "accept", "close",
// "set"), errno values are wrapped in *os.SyscallError as net does, so
// errors.Is works for net.ErrClosed, os.ErrDeadlineExceeded and syscall
// errnos such as syscall.ECONNREFUSED, and the end of a TCP stream is a
// bare io.EOF. It keeps no goroutine per socket: a blocked read or write
// waits on the endpoint's Readable or Writable channel, its deadline's
// channel (one reusable timer per direction) and the socket's close
// channel.
//
// It does not implement protocols (transport/udp, transport/tcp and
// transport/icmp do) and does not resolve host names (only numeric
// addresses and "localhost").
package socket

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"ustack/transport/icmp"
	"ustack/transport/tcp"
	"ustack/transport/udp"
)

// Provider is what sockets need from a stack; *stack.Stack implements it.
type Provider interface {
	UDP() *udp.Protocol
	ICMP() *icmp.Protocol
	TCP() *tcp.Protocol
}

// errMissingAddress is the error net returns for a write without an
// address.
var errMissingAddress = &net.AddrError{Err: "missing address"}

// errInvalid is what net returns for an address of the wrong type.
var errInvalid error = syscall.EINVAL

// sysErr wraps a bare errno in *os.SyscallError naming the system call a
// kernel socket would have made, as net does.
func sysErr(call string, err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		return os.NewSyscallError(call, errno)
	}
	return err
}

// udpAddr converts ap for net, keeping a nil interface (not a typed nil)
// for the zero AddrPort.
func udpAddr(ap netip.AddrPort) net.Addr {
	if !ap.Addr().IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}

// ipAddr converts a for net, or returns a nil interface.
func ipAddr(a netip.Addr) net.Addr {
	if !a.IsValid() {
		return nil
	}
	return &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
}

// parseAddr parses "host:port" for a "udp", "udp4", "udp6", "tcp", "tcp4"
// or "tcp6" network. An empty host is the unspecified address of the
// family (IPv4 for "udp" and "tcp"; Listen and ListenPacket make those
// dual-stack, see parseListenAddr), "localhost" the loopback address.
func parseAddr(network, address string) (netip.AddrPort, error) {
	switch network {
	case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6":
	default:
		return netip.AddrPort{}, net.UnknownNetworkError(network)
	}
	v4only, v6only := strings.HasSuffix(network, "4"), strings.HasSuffix(network, "6")
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := parsePort(network, service)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var a netip.Addr
	switch {
	case host == "" && v6only:
		a = netip.IPv6Unspecified()
	case host == "":
		a = netip.IPv4Unspecified()
	case host == "localhost" && v6only:
		a = netip.IPv6Loopback()
	case host == "localhost":
		a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	default:
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, &net.AddrError{Err: "non-IP host (ustack does not resolve names)", Addr: host}
		}
		a = a.Unmap()
	}
	if (v4only && !a.Is4()) || (v6only && a.Is4()) {
		return netip.AddrPort{}, &net.AddrError{Err: "no suitable address found", Addr: address}
	}
	return netip.AddrPortFrom(a, port), nil
}

// parseListenAddr is parseAddr for Listen and ListenPacket: an empty host
// on "udp" or "tcp" is the IPv6 wildcard, a dual-stack socket that takes
// IPv4 too (peers as IPv4-mapped addresses), as Go's net listens.
func parseListenAddr(network, address string) (netip.AddrPort, error) {
	la, err := parseAddr(network, address)
	if err != nil {
		return la, err
	}
	if (network == "udp" || network == "tcp") && strings.HasPrefix(address, ":") {
		la = netip.AddrPortFrom(netip.IPv6Unspecified(), la.Port())
	}
	return la, nil
}

func parsePort(network, service string) (uint16, error) {
	if service == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(service, 10, 16); err == nil {
		return uint16(n), nil
	}
	n, err := net.LookupPort(network, service) // /etc/services, no network
	if err != nil {
		return 0, err
	}
	return uint16(n), nil
}

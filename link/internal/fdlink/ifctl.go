// Package fdlink is the machinery shared by ustack's file-descriptor link
// drivers (link/tap, link/tun, link/afpacket): interface ioctls, the
// receive buffers, the part of an endpoint that does not depend on the
// kind of descriptor (identity, counters, dispatcher, offload policy), and
// the TUN/TAP device itself.
//
// It belongs to the link layer and knows nothing of protocols beyond what
// link/offload needs. Every function that names an interface acts in the
// network namespace of the calling OS thread.
package fdlink

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"ustack/wire"
)

// ctlSocket opens a datagram socket to issue interface ioctls on.
func ctlSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket for interface ioctls: %w", err)
	}
	return fd, nil
}

func ifreqOp(name string, req uint, f func(*unix.Ifreq)) (*unix.Ifreq, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, err
	}
	if f != nil {
		f(ifr)
	}
	fd, err := ctlSocket()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.IoctlIfreq(fd, req, ifr); err != nil {
		return nil, err
	}
	return ifr, nil
}

// IfIndex is the kernel's index of the interface.
func IfIndex(name string) (int, error) {
	ifr, err := ifreqOp(name, unix.SIOCGIFINDEX, nil)
	if err != nil {
		return 0, fmt.Errorf("interface %s: index: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// MTU is the interface's MTU.
func MTU(name string) (int, error) {
	ifr, err := ifreqOp(name, unix.SIOCGIFMTU, nil)
	if err != nil {
		return 0, fmt.Errorf("interface %s: get MTU: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// SetMTU sets the interface's MTU.
func SetMTU(name string, mtu int) error {
	_, err := ifreqOp(name, unix.SIOCSIFMTU, func(ifr *unix.Ifreq) { ifr.SetUint32(uint32(mtu)) })
	if err != nil {
		return fmt.Errorf("interface %s: set MTU %d: %w", name, mtu, err)
	}
	return nil
}

// SetUp brings the interface up (IFF_UP).
func SetUp(name string) error {
	ifr, err := ifreqOp(name, unix.SIOCGIFFLAGS, nil)
	if err != nil {
		return fmt.Errorf("interface %s: get flags: %w", name, err)
	}
	flags := ifr.Uint16() | unix.IFF_UP
	if _, err := ifreqOp(name, unix.SIOCSIFFLAGS, func(ifr *unix.Ifreq) { ifr.SetUint16(flags) }); err != nil {
		return fmt.Errorf("interface %s: set up: %w", name, err)
	}
	return nil
}

// ifreqHW is struct ifreq with ifr_hwaddr (a struct sockaddr).
type ifreqHW struct {
	name   [unix.IFNAMSIZ]byte
	family uint16
	data   [14]byte
	_      [8]byte
}

// HardwareAddr is the interface's Ethernet address.
func HardwareAddr(name string) (wire.MAC, error) {
	var m wire.MAC
	var ifr ifreqHW
	if len(name) >= unix.IFNAMSIZ {
		return m, fmt.Errorf("interface name %q too long", name)
	}
	copy(ifr.name[:], name)
	fd, err := ctlSocket()
	if err != nil {
		return m, err
	}
	defer unix.Close(fd)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGIFHWADDR, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return m, fmt.Errorf("interface %s: get hardware address: %w", name, errno)
	}
	if ifr.family != unix.ARPHRD_ETHER {
		return m, fmt.Errorf("interface %s: not Ethernet (ARPHRD %d)", name, ifr.family)
	}
	copy(m[:], ifr.data[:6])
	return m, nil
}

// Htons converts a 16-bit value to network byte order, as socket calls
// want protocol numbers.
func Htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

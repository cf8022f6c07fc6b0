// Package interop holds the tests that use the Linux kernel as ustack's
// peer: the kernel's ping, neighbour table, socat and reassembly on one
// side, a ustack stack on the other, over real devices.
//
// It sits above every other layer (tests only, no exported API) and owns
// the topologies those tests build: a veth pair whose far end the stack
// opens with AF_PACKET, and a TAP device shared by the kernel and the
// stack. Every test makes its own network namespaces (internal/netns),
// devices and addresses (10.200.0.0/16, and 2001:db8:200::/64 and
// 2001:db8:201::/64 for the IPv6 tests, ipv6_*_test.go, which turn IPv6
// on in the kernel's namespace) and removes them; traffic never leaves
// those namespaces. The tests need root and the tools ip, ping, socat,
// ss, ethtool and curl, and for IPv6 ndisc6 and radvd; the
// malformed-input and SYN flood tests also run scapy scripts (testdata/*.py) with Debian's /usr/bin/python3. The TCP
// tests (tcp_*_test.go) move data between the kernel's socat and curl and
// the stack, in process (socket, service) and as the programs (ustack nc,
// ustackd, and ustack impair in a third namespace in the middle of the
// cable); they compare sha256 sums and log the throughput.
//
// It does not test the stack against itself (stack's own tests do) and
// does not benchmark.
package interop

// Package interop holds the tests that use the Linux kernel as ustack's
// peer: the kernel's ping, neighbour table, socat and reassembly on one
// side, a ustack stack on the other, over real devices.
//
// It sits above every other layer (tests only, no exported API) and owns
// the topologies those tests build: a veth pair whose far end the stack
// opens with AF_PACKET, and a TAP device shared by the kernel and the
// stack. Every test makes its own network namespaces (internal/netns),
// devices and addresses (10.200.0.0/16) and removes them; traffic never
// leaves those namespaces. The tests need root and the tools ip, ping,
// socat, ss and ethtool; the malformed-input test also runs a scapy script
// (testdata/malformed.py) with Debian's /usr/bin/python3.
//
// It does not test the stack against itself (stack's own tests do) and
// does not benchmark.
package interop

package main

// The kernel peer: the bench binary itself, re-executed inside a namespace
// (`ip netns exec NS <bench> -devices-peer ADDR`), serving plain kernel
// sockets. Every device workload, whatever stack is on the other side,
// talks to this same program, so the rows differ only in that stack.
//
// Protocol, one TCP connection per measurement, opened by the harness:
//
//	client → peer: op (1 byte) and n (8 bytes, big endian)
//	op 's' (sink):   the client sends until it half-closes; the peer reads
//	                 all of it, then answers the byte count (8 bytes) and
//	                 closes. The client's clock stops at the answer, so
//	                 bytes still buffered are not counted as delivered.
//	op 'o' (source): the peer sends n bytes and closes.
//	op 'e' (echo):   the peer writes back whatever it reads until EOF.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
)

// peerFlag as os.Args[1] turns the process into the kernel peer.
const peerFlag = "-devices-peer"

// Peer operations.
const (
	opSink   = 's'
	opSource = 'o'
	opEcho   = 'e'
)

// peerBuf is the size of the peer's read and write buffers, and of the
// harness's for bulk transfers.
const peerBuf = 256 << 10

func init() {
	if len(os.Args) >= 3 && os.Args[1] == peerFlag {
		if err := runPeer(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "peer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// runPeer listens on addr, says "ready" on stdout, and serves connections
// until killed.
func runPeer(addr string) error {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go servePeer(c.(*net.TCPConn))
	}
}

func servePeer(c *net.TCPConn) {
	defer c.Close()
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	n := int64(binary.BigEndian.Uint64(hdr[1:]))
	switch hdr[0] {
	case opSink:
		got, err := drain(c, make([]byte, peerBuf))
		if err != nil {
			return
		}
		var ans [8]byte
		binary.BigEndian.PutUint64(ans[:], uint64(got))
		c.Write(ans[:])
	case opSource:
		b := make([]byte, peerBuf)
		for n > 0 {
			k := min(int64(len(b)), n)
			if _, err := c.Write(b[:k]); err != nil {
				return
			}
			n -= k
		}
	case opEcho:
		b := make([]byte, 64<<10)
		for {
			k, err := c.Read(b)
			if k > 0 {
				if _, werr := c.Write(b[:k]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
}

// drain reads r until EOF into b, and returns how many bytes it read.
// (Not io.Copy to io.Discard: that reads 8 KB at a time.)
func drain(r io.Reader, b []byte) (int64, error) {
	var n int64
	for {
		k, err := r.Read(b)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

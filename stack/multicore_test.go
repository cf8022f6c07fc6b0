package stack_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"ustack/link/pipe"
	"ustack/socket"
	"ustack/stack"
)

// TestMultiQueueStress runs many TCP and UDP flows, IPv4 and IPv6, both
// ways at once between two stacks over a pipe with four receive queues
// per side, so the receive path of each stack runs on four goroutines at
// once (run it with -race). Every byte must arrive intact and in order,
// and the flows must have used several queues on each side.
func TestMultiQueueStress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := n.stack("a"), n.stack("b")
		const queues = 4
		ea, eb := pipe.New(pipe.Config{Queues: queues, QueueLen: 4096})
		n.attach(a, "eth0", "10.0.0.1/24", ea)
		n.attach(b, "eth0", "10.0.0.2/24", eb)
		static6(t, a, b)

		const (
			tcpFlows = 12 // each way, half of them over IPv6
			udpFlows = 8
			size     = 96 << 10
		)
		var wg sync.WaitGroup
		errs := make(chan error, 4*(tcpFlows+udpFlows))
		for _, dir := range []struct {
			from, to *stack.Stack
			v4, v6   string
		}{{a, b, "10.0.0.2", "2001:db8::2"}, {b, a, "10.0.0.1", "2001:db8::1"}} {
			for i := range tcpFlows {
				dst := dir.v4
				if i%2 == 1 {
					dst = dir.v6
				}
				port := fmt.Sprint(6000 + i)
				ln, err := socket.Listen(dir.to, "tcp", net.JoinHostPort(dst, port))
				if err != nil {
					t.Fatal(err)
				}
				data := make([]byte, size)
				for j := range data {
					data[j] = byte(j*31 + i*7 + j>>9)
				}
				wg.Add(2)
				go func() { // receiver: hash everything, compare
					defer wg.Done()
					defer ln.Close()
					c, err := ln.Accept()
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					h := sha256.New()
					if _, err := io.Copy(h, c); err != nil {
						errs <- err
						return
					}
					if got := [32]byte(h.Sum(nil)); got != sha256.Sum256(data) {
						errs <- fmt.Errorf("tcp to %s:%s: data differs", dst, port)
					}
				}()
				go func() { // sender, in pieces of varied sizes
					defer wg.Done()
					c, err := socket.Dial(dir.from, "tcp", net.JoinHostPort(dst, port))
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					for off, k := 0, 1; off < len(data); k++ {
						m := min(len(data)-off, 1+(k*7919)%20000)
						if _, err := c.Write(data[off : off+m]); err != nil {
							errs <- err
							return
						}
						off += m
					}
					c.(interface{ CloseWrite() error }).CloseWrite()
				}()
			}
		}
		// UDP: numbered datagrams, echoed; each flow checks that what
		// comes back is its own, in order (nothing is lost in memory).
		// Every third flow sends datagrams larger than the MTU: IPv4
		// and IPv6 reassembly run under several queues too.
		for _, s := range []*stack.Stack{a, b} {
			pc, err := socket.ListenPacket(s, "udp", ":7")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			go func() {
				buf := make([]byte, 8192)
				for {
					m, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					pc.WriteTo(buf[:m], from)
				}
			}()
		}
		for i := range udpFlows {
			from, dst := a, "10.0.0.2:7"
			if i%2 == 1 {
				from, dst = b, "[2001:db8::1]:7"
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := socket.DialUDP(from, netip.AddrPort{}, netip.MustParseAddrPort(dst))
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				msg, got := make([]byte, 200), make([]byte, 8192)
				if i%3 == 0 {
					msg = make([]byte, 4000)
				}
				for seq := range 100 {
					msg[0], msg[1], msg[2] = byte(i), byte(seq), byte(seq>>8)
					if _, err := c.Write(msg); err != nil {
						errs <- err
						return
					}
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					m, err := c.Read(got)
					if err != nil {
						errs <- fmt.Errorf("udp flow %d, datagram %d: %w", i, seq, err)
						return
					}
					if !bytes.Equal(got[:m], msg) {
						errs <- fmt.Errorf("udp flow %d: datagram %d came back as %x", i, seq, got[:3])
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, ep := range []*pipe.Endpoint{ea, eb} {
			used := 0
			for i := range queues {
				if ep.RxQueuePackets(i) > 0 {
					used++
				}
			}
			if used < 3 {
				t.Errorf("%s: %d receive queues carried traffic, want at least 3 of %d", ep.Name(), used, queues)
			}
			if d := ep.LinkStats().TxDrops.Load(); d != 0 {
				t.Errorf("%s: %d frames dropped on a full queue", ep.Name(), d)
			}
		}
		synctest.Wait() // the last ACKs and echoes are through
		for _, s := range []*stack.Stack{a, b} {
			st := s.Stats()
			// IPv4 and IPv6 absorb fragments into reassembly, so only
			// the layers around them balance frame for frame.
			for _, layer := range []string{"if.eth0.", "arp.", "udp."} {
				var drops uint64
				for name, v := range st {
					if strings.HasPrefix(name, layer+"drop.") {
						drops += v
						t.Errorf("%s: %s = %d", s.Name(), name, v)
					}
				}
				if in, del := st[layer+"in.packets"], st[layer+"delivered"]; in != del+drops {
					t.Errorf("%s: %sin.packets %d != delivered %d + dropped %d", s.Name(), layer, in, del, drops)
				}
			}
			if st["ipv4.reasm.ok"] == 0 {
				t.Errorf("%s: no IPv4 datagram reassembled", s.Name())
			}
		}
	})
}

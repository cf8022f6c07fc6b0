package offload

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// partial turns a packet built with a full transport checksum into one with
// a partial checksum: the field holds the pseudo-header sum.
func partial(b []byte) (out []byte, o buf.Offload) {
	p, ok := parse(b)
	if !ok {
		panic("partial: bad packet")
	}
	field := 16
	if p.proto == wire.IPProtoUDP {
		field = 6
	}
	out = append([]byte{}, b...)
	l4len := len(b) - p.l4Off
	binary.BigEndian.PutUint16(out[p.l4Off+field:], wire.PseudoHeaderChecksum(p.proto, p.src, p.dst, l4len))
	return out, buf.Offload{NeedsCsum: true, CsumStart: uint16(p.l4Off), CsumOffset: uint16(field)}
}

func TestComplete(t *testing.T) {
	tests := []struct {
		name string
		s    spec
		cuts []int
	}{
		{"udp4", spec{udp: true, payload: 100}, nil},
		{"udp4 odd", spec{udp: true, payload: 101}, nil},
		{"tcp4", spec{payload: 1400, tcpOpts: tsOpt}, nil},
		{"tcp6", spec{v6: true, payload: 999}, nil},
		{"udp6 views", spec{v6: true, udp: true, payload: 1001}, []int{1, 47, 49, 50, 333, 334, 1000}},
		{"tcp4 views", spec{payload: 3000}, []int{30, 61, 1500, 1501, 2999}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := build(tc.s)
			b, o := partial(want)
			pkt := packetOf(b, tc.cuts...)
			pkt.Offload = o
			if err := Complete(pkt); err != nil {
				t.Fatal(err)
			}
			if got := pkt.ToBytes(); string(got) != string(want) {
				t.Fatalf("completed packet differs from the one with a full checksum")
			}
			if pkt.Offload.NeedsCsum || !pkt.Offload.CsumValid {
				t.Fatalf("offload after Complete: %+v", pkt.Offload)
			}
			pkt.Release()
		})
	}
}

func TestCompleteZero(t *testing.T) {
	// Choose the last payload word so that the checksum comes out 0:
	// Complete must store 0xffff.
	b := build(spec{udp: true, payload: 64})
	b, o := partial(b)
	binary.BigEndian.PutUint16(b[len(b)-2:], 0)
	sum := wire.Checksum(b[o.CsumStart:], 0)
	binary.BigEndian.PutUint16(b[len(b)-2:], ^sum)
	pkt := buf.FromBytes(b)
	pkt.Offload = o
	if err := Complete(pkt); err != nil {
		t.Fatal(err)
	}
	got := pkt.ToBytes()
	if c := binary.BigEndian.Uint16(got[o.CsumStart+o.CsumOffset:]); c != 0xffff {
		t.Fatalf("checksum %#04x, want 0xffff", c)
	}
	if p, _ := parse(got); !p.l4OK {
		t.Fatal("checksum does not verify")
	}
	pkt.Release()
}

func TestCompleteErrors(t *testing.T) {
	pkt := buf.FromBytes(make([]byte, 40))
	pkt.Offload = buf.Offload{NeedsCsum: true, CsumStart: 34, CsumOffset: 6}
	if err := Complete(pkt); !errors.Is(err, ErrCsumRange) {
		t.Fatalf("err = %v, want ErrCsumRange", err)
	}
	pkt.Offload = buf.Offload{}
	if err := Complete(pkt); err != nil {
		t.Fatalf("Complete without NeedsCsum: %v", err)
	}
	pkt.Release()
}

func TestPrepareRx(t *testing.T) {
	eth := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00}
	ip := build(spec{udp: true, payload: 2500})
	pip, po := partial(ip)
	frame := append(append([]byte{}, eth...), pip...)
	po.CsumStart += uint16(len(eth))

	tests := []struct {
		name      string
		gso       bool
		a         Accept
		n         int
		needsCsum bool
	}{
		{"partial, completed", false, Accept{}, 1, false},
		{"partial, kept", false, Accept{PartialCsum: true}, 1, true},
		{"gso, segmented", true, Accept{PartialCsum: true}, 3, false},
		{"gso, kept", true, Accept{LargeFrames: true, PartialCsum: true}, 1, true},
		{"gso, kept, completed", true, Accept{LargeFrames: true}, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := buf.FromBytes(frame)
			pkt.Offload = po
			if tc.gso {
				pkt.Offload.GSO, pkt.Offload.GSOSize = buf.GSOUDPL4, 1000
			}
			out, err := PrepareRx(pkt, link.TypeEthernet, tc.a, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer releaseAll(out)
			if len(out) != tc.n {
				t.Fatalf("%d packets, want %d", len(out), tc.n)
			}
			for _, p := range out {
				if p.Offload.NeedsCsum != tc.needsCsum {
					t.Fatalf("NeedsCsum = %v, want %v", p.Offload.NeedsCsum, tc.needsCsum)
				}
				if !tc.needsCsum {
					if q, _ := parse(p.ToBytes()[len(eth):]); !q.l4OK {
						t.Fatal("bad checksum")
					}
				}
			}
		})
	}
}

func TestPrepareTx(t *testing.T) {
	ip := build(spec{payload: 3000, tcpFlags: 0x18})
	pip, po := partial(ip)
	tests := []struct {
		name string
		caps link.Capabilities
		n    int
	}{
		{"no offloads", 0, 3},
		{"tx csum only", link.CapTxChecksum, 3},
		{"tso6 only", link.CapTxChecksum | link.CapTSO6, 3},
		{"tso4", link.CapTxChecksum | link.CapTSO4, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := buf.FromBytes(pip)
			pkt.Offload = po
			pkt.Offload.GSO, pkt.Offload.GSOSize = buf.GSOTCPv4, 1000
			out, err := PrepareTx(pkt, link.TypeIP, tc.caps, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer releaseAll(out)
			if len(out) != tc.n {
				t.Fatalf("%d packets, want %d", len(out), tc.n)
			}
			if tc.n > 1 {
				mustCheck(t, ip, 1000, out)
			} else if out[0].Offload.GSO != buf.GSOTCPv4 || !out[0].Offload.NeedsCsum {
				t.Fatalf("offload changed: %+v", out[0].Offload)
			}
		})
	}
	// A plain packet with a partial checksum on a device without checksum
	// offload is completed.
	u := build(spec{udp: true, payload: 10})
	pu, pou := partial(u)
	pkt := buf.FromBytes(pu)
	pkt.Offload = pou
	out, err := PrepareTx(pkt, link.TypeIP, 0, nil)
	if err != nil || len(out) != 1 || string(out[0].ToBytes()) != string(u) {
		t.Fatalf("PrepareTx = %v, %v; want the completed datagram", out, err)
	}
	releaseAll(out)
}

// TestSumMatchesFlat: Sum over a packet cut into views at random places
// equals the checksum of the same bytes in one slice, for any start and
// length.
func TestSumMatchesFlat(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for round := 0; round < 300; round++ {
		flat := make([]byte, 1+rng.IntN(3000))
		for i := range flat {
			flat[i] = byte(rng.Uint32())
		}
		// Each piece is its own packet, so its own view.
		var pkt *buf.Packet
		for rest := flat; len(rest) > 0; {
			k := 1 + rng.IntN(min(len(rest), 700))
			if pkt == nil {
				pkt = buf.FromBytes(rest[:k])
			} else {
				pkt.Concat(buf.FromBytes(rest[:k]))
			}
			rest = rest[k:]
		}
		if len(flat) > 1400 && pkt.NumViews() < 2 {
			t.Fatalf("round %d: %d bytes in one view; the test needs several", round, len(flat))
		}
		off := rng.IntN(len(flat))
		n := rng.IntN(len(flat) - off + 1)
		if got, want := Sum(pkt, off, n), wire.Checksum(flat[off:off+n], 0); got != want {
			t.Fatalf("round %d: Sum(off %d, n %d) over %d views = %#04x, want %#04x", round, off, n, pkt.NumViews(), got, want)
		}
		if got, want := Sum(pkt, off, -1), wire.Checksum(flat[off:], 0); got != want {
			t.Fatalf("round %d: Sum(off %d, to end) = %#04x, want %#04x", round, off, got, want)
		}
		pkt.Release()
	}
}

package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"ustack/wire"
)

// One fuzz target per parser, seeded from the golden packets. Each asserts
// that the parser does not panic on any input and, when it accepts the
// input, that encoding the parsed fields writes exactly Len bytes and
// parses back to the same fields.

var goldenFrames = [][]byte{
	goldenARPRequest, goldenARPReply, goldenEchoRR, goldenEchoReplyRR, goldenEchoTS,
	goldenIGMPRA, goldenUDP, goldenPortUnreach, goldenSYN, goldenRST, goldenTCPData,
	goldenSACK, goldenVLAN, goldenQinQ,
}

// ipv4Frames are the golden frames that carry IPv4 behind a plain header.
var ipv4Frames = [][]byte{
	goldenEchoRR, goldenEchoReplyRR, goldenEchoTS, goldenIGMPRA, goldenUDP,
	goldenPortUnreach, goldenSYN, goldenRST, goldenTCPData, goldenSACK,
}

func FuzzEthernet(f *testing.F) {
	for _, b := range goldenFrames {
		f.Add(b)
	}
	f.Add(goldenVLAN[:16])
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := wire.ParseVLAN(b); err == nil {
			vf := wire.VLANFields{PCP: v.PCP(), DEI: v.DEI(), VID: v.VID(), Type: v.Type()}
			enc := filled(vf.Len())
			vf.Encode(enc)
			checkBytes(t, "VLAN re-encode", enc, b[:wire.VLANTagLen])
		}
		if e, err := wire.ParseEthernet(b); err == nil {
			_ = e.Payload()
		}
		hdr, tags, typ, payload, err := wire.ParseEthernetFrame(b)
		if err != nil {
			if len(b) >= 14+4*wire.MaxVLANTags && !errors.Is(err, wire.ErrUnsupported) {
				t.Fatalf("long frame rejected: %v", err)
			}
			return
		}
		if tags.N < 0 || tags.N > wire.MaxVLANTags {
			t.Fatalf("tags.N = %d", tags.N)
		}
		// Re-encode: Ethernet with the outer TPID (or type), then the tags.
		n := 14 + 4*tags.N
		if len(payload) != len(b)-n {
			t.Fatalf("payload %d bytes of %d, %d tags", len(payload), len(b), tags.N)
		}
		first := typ
		if tags.N > 0 {
			first = tags.Tag[0].TPID
		}
		ef := wire.EthernetFields{Dst: hdr.Dst(), Src: hdr.Src(), Type: first}
		enc := filled(n)
		ef.Encode(enc)
		off := ef.Len()
		for i := range tags.N {
			next := typ
			if i+1 < tags.N {
				next = tags.Tag[i+1].TPID
			}
			tci := tags.Tag[i].TCI
			vf := wire.VLANFields{PCP: tci.PCP(), DEI: tci.DEI(), VID: tci.VID(), Type: next}
			vf.Encode(enc[off:])
			off += vf.Len()
		}
		if off != n {
			t.Fatalf("encoded %d bytes, want %d", off, n)
		}
		checkBytes(t, "re-encode", enc, b[:n])
		_, tags2, typ2, _, err := wire.ParseEthernetFrame(append(enc, payload...))
		if err != nil || tags2 != tags || typ2 != typ {
			t.Fatalf("reparse: %v %+v %v, want %+v %v", err, tags2, typ2, tags, typ)
		}
	})
}

func FuzzARP(f *testing.F) {
	f.Add(goldenARPRequest[14:])
	f.Add(goldenARPReply[14:])
	f.Add(goldenQinQ[22:])
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := wire.ParseARP(b)
		if err != nil {
			return
		}
		af := wire.ARPFields{Op: a.Op(), SenderMAC: a.SenderMAC(), SenderIP: a.SenderIP(), TargetMAC: a.TargetMAC(), TargetIP: a.TargetIP()}
		enc := filled(af.Len())
		af.Encode(enc)
		checkBytes(t, "re-encode", enc, b[:wire.ARPLen])
	})
}

func FuzzIPv4(f *testing.F) {
	for _, fr := range ipv4Frames {
		f.Add(ip(fr))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := wire.ParseIPv4Quote(b); err == nil {
			_, _ = q.Payload(), q.Packet()
			_, _ = q.CheckOptions()
		}
		h, err := wire.ParseIPv4(b)
		if err != nil {
			return
		}
		if _, err := wire.ParseIPv4Quote(b); err != nil {
			t.Fatalf("ParseIPv4 accepts what ParseIPv4Quote rejects: %v", err)
		}
		_, _ = h.FindOption(wire.IPv4OptRouterAlert)
		it := h.OptionIter()
		for _, ok := it.Next(); ok; _, ok = it.Next() {
		}
		if _, err := h.CheckOptions(); err == nil && it.Err() != nil {
			t.Fatalf("CheckOptions accepts what the iterator rejects: %v", it.Err())
		}

		fields := ipv4Fields(h)
		enc := filled(fields.Len())
		fields.Encode(enc)
		if fields.Len() != h.HeaderLen() {
			t.Fatalf("Len %d, header %d", fields.Len(), h.HeaderLen())
		}
		if h.ChecksumValid() {
			checkBytes(t, "re-encode", enc, h.Header())
		}
		h2, err := wire.ParseIPv4(append(enc, h.Payload()...))
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if d := diff(fields, ipv4Fields(h2)); d != "" {
			t.Fatalf("reparse %s", d)
		}
		if !h2.ChecksumValid() {
			t.Fatal("encoded checksum invalid")
		}
		h2.DecrementTTL()
		if !h2.ChecksumValid() {
			t.Fatal("checksum invalid after DecrementTTL")
		}
	})
}

func FuzzIPv4Options(f *testing.F) {
	for _, fr := range []([]byte){goldenEchoRR, goldenEchoReplyRR, goldenEchoTS, goldenIGMPRA} {
		f.Add(ipv4Opts(fr))
	}
	f.Add([]byte{131, 7, 4, 10, 0, 0, 1, 0})
	f.Add([]byte{130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, opts []byte) {
		// Re-encode every option the iterator yields: the bytes must come
		// back up to where it stopped.
		var enc []byte
		it := wire.NewIPv4OptionIter(opts)
		prev := -1
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			if o.Off <= prev || o.Off+o.Len() > len(opts) {
				t.Fatalf("option at %d (len %d) after %d in %d bytes", o.Off, o.Len(), prev, len(opts))
			}
			prev = o.Off
			of := wire.IPv4OptionFields{Type: o.Type, Data: o.Data}
			if of.Len() != o.Len() {
				t.Fatalf("Len %d, option %d", of.Len(), o.Len())
			}
			b := filled(of.Len())
			of.Encode(b)
			enc = append(enc, b...)
			_, _, _ = o.Pointer(), o.RouteAddrs(), o.RouteAddr(0)
			_, _ = o.TimestampFlags()
			_, _ = o.RouterAlert()
		}
		checkBytes(t, "re-encode", enc, opts[:len(enc)])
		bad, err := wire.CheckIPv4Options(opts)
		if it.Err() != nil {
			if err == nil {
				t.Fatal("CheckIPv4Options accepts what the iterator rejects")
			}
			if it.BadOffset() < 0 || it.BadOffset() >= len(opts) {
				t.Fatalf("iterator BadOffset %d of %d", it.BadOffset(), len(opts))
			}
		}
		if err != nil && (bad < 0 || bad >= len(opts)) {
			t.Fatalf("bad offset %d of %d", bad, len(opts))
		}
	})
}

func FuzzICMPv4(f *testing.F) {
	for _, fr := range []([]byte){goldenEchoRR, goldenEchoReplyRR, goldenEchoTS, goldenPortUnreach} {
		f.Add(l4(fr))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.ParseICMPv4(b)
		if err != nil {
			return
		}
		if q, err := m.Quote(); err == nil {
			_, _, _ = q.Src(), q.Payload(), q.Packet()
		}
		fields := wire.ICMPv4Fields{Type: m.Type(), Code: m.Code(), Rest: m.Rest()}
		enc := filled(fields.Len() + len(m.Payload()))
		fields.Encode(enc)
		copy(enc[fields.Len():], m.Payload())
		m2, err := wire.ParseICMPv4(enc)
		if err != nil {
			t.Fatal(err)
		}
		m2.UpdateChecksum()
		if !m2.ChecksumValid() {
			t.Fatal("checksum invalid after UpdateChecksum")
		}
		if m.ChecksumValid() && m.Checksum() != m2.Checksum() && m.Checksum() != 0xffff && m2.Checksum() != 0 {
			t.Fatalf("checksum %#04x, recomputed %#04x", m.Checksum(), m2.Checksum())
		}
		got := wire.ICMPv4Fields{Type: m2.Type(), Code: m2.Code(), Rest: m2.Rest()}
		if d := diff(fields, got); d != "" {
			t.Fatalf("reparse %s", d)
		}
	})
}

func FuzzUDP(f *testing.F) {
	f.Add(l4(goldenUDP))
	f.Add(l4(goldenPortUnreach)[28:])
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := wire.ParseUDP(b)
		if err != nil {
			return
		}
		fields := wire.UDPFields{SrcPort: u.SrcPort(), DstPort: u.DstPort(), Length: u.Length(), Checksum: u.Checksum()}
		enc := filled(fields.Len())
		fields.Encode(enc)
		checkBytes(t, "re-encode", enc, b[:wire.UDPHeaderLen])
		u2, err := wire.ParseUDP(append(enc, u.Payload()...))
		if err != nil || len(u2) != len(u) {
			t.Fatalf("reparse: %v", err)
		}
	})
}

func FuzzTCP(f *testing.F) {
	for _, fr := range []([]byte){goldenSYN, goldenRST, goldenTCPData, goldenSACK} {
		f.Add(l4(fr))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := wire.ParseTCP(b)
		if err != nil {
			return
		}
		_ = s.Flags().String()
		opts, err := s.ParseOptions()
		if err != nil {
			if !errors.Is(err, wire.ErrBadOption) {
				t.Fatalf("ParseOptions: %v", err)
			}
			return
		}
		fields := wire.TCPFields{
			SrcPort: s.SrcPort(), DstPort: s.DstPort(), Seq: s.Seq(), Ack: s.Ack(),
			Flags: s.Flags(), Window: s.Window(), Checksum: s.Checksum(), Urgent: s.Urgent(),
			Options: opts,
		}
		n := fields.Len()
		if n > wire.TCPMaxHeaderLen || n%4 != 0 {
			t.Fatalf("Len %d", n)
		}
		enc := filled(n)
		fields.Encode(enc)
		s2, err := wire.ParseTCP(append(enc, s.Payload()...))
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if s2.HeaderLen() != n {
			t.Fatalf("encoded header %d bytes, Len %d", s2.HeaderLen(), n)
		}
		if d := diff(fields, tcpFields(t, s2)); d != "" {
			t.Fatalf("reparse %s", d)
		}
		if !bytes.Equal(s2.Payload(), s.Payload()) {
			t.Fatal("payload changed")
		}
		_ = opts.String()
	})
}

func FuzzTCPOptions(f *testing.F) {
	for _, fr := range []([]byte){goldenSYN, goldenTCPData, goldenSACK} {
		f.Add(tcpOpts(fr))
	}
	f.Add([]byte{2, 4, 0, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 5, 26, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6})
	f.Add([]byte{30, 4, 0, 0, 1, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		it := wire.NewTCPOptionIter(b)
		for _, ok := it.Next(); ok; _, ok = it.Next() {
		}
		o, err := wire.ParseTCPOptions(b)
		if err != nil {
			if !errors.Is(err, wire.ErrBadOption) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		if it.Err() != nil {
			t.Fatalf("ParseTCPOptions accepts what the iterator rejects: %v", it.Err())
		}
		n := o.Len()
		if n > 40 || n%4 != 0 {
			t.Fatalf("Len %d", n)
		}
		enc := filled(n)
		o.Encode(enc)
		o2, err := wire.ParseTCPOptions(enc)
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if len(b) <= 40 {
			// Anything that fits a TCP header round-trips whole.
			if d := diff(o, o2); d != "" {
				t.Fatalf("reparse %s", d)
			}
		} else if o2.NumSACK > o.NumSACK {
			t.Fatalf("reparse gained SACK blocks")
		}
	})
}

func FuzzChecksum(f *testing.F) {
	f.Add(ip(goldenSYN), uint16(0))
	f.Add([]byte{0xff}, uint16(0xffff))
	f.Fuzz(func(t *testing.T, b []byte, initial uint16) {
		if got, want := wire.Checksum(b, initial), naiveSum(b, initial); got != want {
			t.Fatalf("Checksum %#04x, naive %#04x", got, want)
		}
		if len(b) >= 4 && len(b)%2 == 0 {
			// Split at every even point: the halves combine.
			for i := 0; i <= len(b); i += 2 {
				if c := wire.ChecksumCombine(wire.Checksum(b[:i], initial), wire.Checksum(b[i:], 0)); c != wire.Checksum(b, initial) {
					t.Fatalf("split at %d: %#04x", i, c)
				}
			}
		}
	})
}

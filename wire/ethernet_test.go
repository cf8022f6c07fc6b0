package wire_test

import (
	"errors"
	"testing"

	"ustack/wire"
)

func TestEthernetGolden(t *testing.T) {
	e, err := wire.ParseEthernet(goldenARPRequest)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Dst", e.Dst(), wire.BroadcastMAC)
	check(t, "Src", e.Src(), wire.MAC{2, 0, 0, 0, 0, 1})
	check(t, "Type", e.Type(), wire.EtherTypeARP)
	check(t, "len(Payload)", len(e.Payload()), wire.ARPLen)
	check(t, "Dst.IsBroadcast", e.Dst().IsBroadcast(), true)
	check(t, "Src.IsLocal", e.Src().IsLocal(), true)
	check(t, "Src.IsMulticast", e.Src().IsMulticast(), false)

	f := wire.EthernetFields{Dst: e.Dst(), Src: e.Src(), Type: e.Type()}
	b := filled(f.Len())
	f.Encode(b)
	checkBytes(t, "Encode", b, eth(goldenARPRequest))
}

func TestMAC(t *testing.T) {
	m, err := wire.ParseMAC("02:00:5e:10:00:ff")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "ParseMAC", m, wire.MAC{2, 0, 0x5e, 0x10, 0, 0xff})
	check(t, "String", m.String(), "02:00:5e:10:00:ff")
	if m2, err := wire.ParseMAC("02-00-5e-10-00-ff"); err != nil || m2 != m {
		t.Errorf("ParseMAC with '-' = %v, %v", m2, err)
	}
	for _, bad := range []string{"", "02:00:5e:10:00", "02:00:5e:10:00:fg", "02.00.5e.10.00.ff"} {
		if _, err := wire.ParseMAC(bad); err == nil {
			t.Errorf("ParseMAC(%q) succeeded", bad)
		}
	}
	check(t, "MulticastMACv4(224.0.0.22)", wire.MulticastMACv4([4]byte{224, 0, 0, 22}), wire.MAC(eth(goldenIGMPRA)[:6]))
	check(t, "MulticastMACv4(239.129.2.3)", wire.MulticastMACv4([4]byte{239, 129, 2, 3}), wire.MAC{1, 0, 0x5e, 1, 2, 3})
	check(t, "MulticastMACv6(ff02::2)", wire.MulticastMACv6([16]byte(goldenIPv6RS[38:54])), wire.MAC(goldenIPv6RS[:6]))
}

func TestVLANGolden(t *testing.T) {
	hdr, tags, typ, payload, err := wire.ParseEthernetFrame(goldenVLAN)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Ethernet.Type (TPID)", hdr.Type(), wire.EtherTypeVLAN)
	check(t, "tags.N", tags.N, 1)
	want := wire.VLANTag{TPID: wire.EtherTypeVLAN, TCI: wire.MakeTCI(5, false, 100)}
	check(t, "tag", tags.Tag[0], want)
	outer, ok := tags.Outer()
	check(t, "Outer", outer, want)
	check(t, "Outer ok", ok, true)
	inner, _ := tags.Inner()
	check(t, "Inner", inner, want)
	check(t, "type", typ, wire.EtherTypeIPv4)
	checkBytes(t, "payload", payload, ip(goldenUDP))

	v, err := wire.ParseVLAN(goldenVLAN[14:])
	if err != nil {
		t.Fatal(err)
	}
	check(t, "PCP", v.PCP(), 5)
	check(t, "DEI", v.DEI(), false)
	check(t, "VID", v.VID(), 100)
	check(t, "TCI", v.TCI(), wire.TCI(0xa064))
	check(t, "Type", v.Type(), wire.EtherTypeIPv4)
	checkBytes(t, "Payload", v.Payload(), ip(goldenUDP))
	check(t, "TCI.String", v.TCI().String(), "vlan 100 pcp 5")

	// Encode: Ethernet with the TPID, then the tag.
	ef := wire.EthernetFields{Dst: hdr.Dst(), Src: hdr.Src(), Type: wire.EtherTypeVLAN}
	vf := wire.VLANFields{PCP: 5, VID: 100, Type: wire.EtherTypeIPv4}
	b := filled(ef.Len() + vf.Len())
	ef.Encode(b)
	vf.Encode(b[ef.Len():])
	checkBytes(t, "Encode", b, goldenVLAN[:18])
}

func TestQinQGolden(t *testing.T) {
	hdr, tags, typ, payload, err := wire.ParseEthernetFrame(goldenQinQ)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Dst", hdr.Dst(), wire.BroadcastMAC)
	check(t, "tags.N", tags.N, 2)
	s, c := tags.Tag[0], tags.Tag[1]
	check(t, "S TPID", s.TPID, wire.EtherTypeQinQ)
	check(t, "S PCP", s.TCI.PCP(), 0)
	check(t, "S DEI", s.TCI.DEI(), true)
	check(t, "S VID", s.TCI.VID(), 200)
	check(t, "C TPID", c.TPID, wire.EtherTypeVLAN)
	check(t, "C PCP", c.TCI.PCP(), 3)
	check(t, "C DEI", c.TCI.DEI(), false)
	check(t, "C VID", c.TCI.VID(), wire.VLANMaxID)
	if in, _ := tags.Inner(); in != c {
		t.Errorf("Inner = %v, want %v", in, c)
	}
	check(t, "type", typ, wire.EtherTypeARP)
	checkBytes(t, "payload", payload, goldenARPRequest[14:])
	check(t, "S.String", s.TCI.String(), "vlan 200 pcp 0 dei")

	b := filled(22)
	(&wire.EthernetFields{Dst: wire.BroadcastMAC, Src: hdr.Src(), Type: wire.EtherTypeQinQ}).Encode(b)
	(&wire.VLANFields{DEI: true, VID: 200, Type: wire.EtherTypeVLAN}).Encode(b[14:])
	(&wire.VLANFields{PCP: 3, VID: 4094, Type: wire.EtherTypeARP}).Encode(b[18:])
	checkBytes(t, "Encode", b, goldenQinQ[:22])
}

func TestParseEthernetFrame(t *testing.T) {
	// Untagged.
	hdr, tags, typ, payload, err := wire.ParseEthernetFrame(goldenUDP)
	if err != nil || tags.N != 0 || typ != wire.EtherTypeIPv4 || len(hdr) == 0 || len(payload) != len(goldenUDP)-14 {
		t.Errorf("untagged: %v %+v %v %d", err, tags, typ, len(payload))
	}
	if _, ok := tags.Outer(); ok {
		t.Error("untagged: Outer ok")
	}
	if _, ok := tags.Inner(); ok {
		t.Error("untagged: Inner ok")
	}
	// Three tags: unsupported.
	three := append([]byte(nil), goldenQinQ[:18]...)
	three = append(three, 0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x08, 0x00)
	if _, _, _, _, err := wire.ParseEthernetFrame(three); !errors.Is(err, wire.ErrUnsupported) {
		t.Errorf("three tags: err = %v, want ErrUnsupported", err)
	}
	// Two 0x8100 tags (double-tagged without 802.1ad) are accepted.
	two := append([]byte(nil), goldenVLAN[:12]...)
	two = append(two, 0x81, 0x00, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x0b, 0x86, 0xdd)
	_, tags, typ, payload, err = wire.ParseEthernetFrame(two)
	if err != nil || tags.N != 2 || tags.Tag[0].TCI.VID() != 10 || tags.Tag[1].TCI.VID() != 11 || typ != wire.EtherTypeIPv6 || len(payload) != 0 {
		t.Errorf("two 802.1Q: %v %+v %v", err, tags, typ)
	}
	// A length field (802.3) comes back as it is.
	llc := append([]byte(nil), goldenVLAN[:12]...)
	llc = append(llc, 0x00, 0x26, 0x42, 0x42, 0x03)
	if _, _, typ, _, err := wire.ParseEthernetFrame(llc); err != nil || typ != 0x26 {
		t.Errorf("802.3: %v %v", typ, err)
	}
}

func TestTCIPacking(t *testing.T) {
	for _, tc := range []struct {
		pcp  uint8
		dei  bool
		vid  uint16
		want wire.TCI
	}{
		{0, false, 0, 0},
		{7, true, 4095, 0xffff},
		{5, false, 100, 0xa064},
		{9, false, 0x1001, 0x2001}, // out-of-range inputs are masked
	} {
		got := wire.MakeTCI(tc.pcp, tc.dei, tc.vid)
		if got != tc.want {
			t.Errorf("MakeTCI(%d, %v, %d) = %#04x, want %#04x", tc.pcp, tc.dei, tc.vid, got, tc.want)
		}
		if tc.pcp < 8 && tc.vid < 4096 && (got.PCP() != tc.pcp || got.DEI() != tc.dei || got.VID() != tc.vid) {
			t.Errorf("%#04x unpacks to %d %v %d", got, got.PCP(), got.DEI(), got.VID())
		}
	}
	check(t, "IsVLANTPID(0x8100)", wire.IsVLANTPID(0x8100), true)
	check(t, "IsVLANTPID(0x88a8)", wire.IsVLANTPID(0x88a8), true)
	check(t, "IsVLANTPID(0x0800)", wire.IsVLANTPID(0x0800), false)
	check(t, "EtherType.String", wire.EtherTypeQinQ.String(), "802.1ad")
	check(t, "EtherType.String other", wire.EtherType(0x88cc).String(), "0x88cc")
}

// TestEthernetPrefixes parses every prefix of the tagged and untagged
// golden frames: a prefix that cuts a header or tag must fail with
// ErrTruncated, never succeed or panic.
func TestEthernetPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		hdr   int // Ethernet header and tags
	}{
		{"untagged", goldenUDP, 14},
		{"802.1Q", goldenVLAN, 18},
		{"802.1ad", goldenQinQ, 22},
	} {
		for n := 0; n <= len(tc.frame); n++ {
			_, _, _, payload, err := wire.ParseEthernetFrame(tc.frame[:n])
			if n < tc.hdr {
				if !errors.Is(err, wire.ErrTruncated) {
					t.Errorf("%s[:%d]: err = %v, want ErrTruncated", tc.name, n, err)
				}
				continue
			}
			if err != nil || len(payload) != n-tc.hdr {
				t.Errorf("%s[:%d]: err = %v, payload %d", tc.name, n, err, len(payload))
			}
		}
	}
	for n := range 14 {
		if _, err := wire.ParseEthernet(goldenUDP[:n]); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("ParseEthernet[:%d]: %v", n, err)
		}
	}
	for n := range 4 {
		if _, err := wire.ParseVLAN(goldenVLAN[14 : 14+n]); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("ParseVLAN[:%d]: %v", n, err)
		}
	}
}

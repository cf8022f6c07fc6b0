package afpacket

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"ustack/buf"
	"ustack/link/offload"
)

func auxControl(status uint32, tci, tpid uint16) []byte {
	b := make([]byte, auxSpace)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_PACKET, unix.PACKET_AUXDATA
	h.SetLen(unix.CmsgLen(sizeofAuxdata))
	aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	aux.Status, aux.Vlan_tci, aux.Vlan_tpid = status, tci, tpid
	return b
}

func TestVLANFromControl(t *testing.T) {
	tests := []struct {
		name string
		ctl  []byte
		ok   bool
		tpid uint16
		tci  uint16
	}{
		{"no tag", auxControl(0, 5, 0x8100), false, 0, 0},
		{"tag, no tpid", auxControl(unix.TP_STATUS_VLAN_VALID, 5, 0), true, 0x8100, 5},
		{"802.1ad", auxControl(unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, 0x2007, 0x88a8), true, 0x88a8, 0x2007},
		{"empty", nil, false, 0, 0},
		{"truncated header", auxControl(unix.TP_STATUS_VLAN_VALID, 5, 0)[:8], false, 0, 0},
		{"bad length", func() []byte {
			b := auxControl(unix.TP_STATUS_VLAN_VALID, 5, 0)
			(*unix.Cmsghdr)(unsafe.Pointer(&b[0])).SetLen(4)
			return b
		}(), false, 0, 0},
	}
	for _, tc := range tests {
		tpid, tci, ok := vlanFromControl(tc.ctl)
		if ok != tc.ok || tpid != tc.tpid || tci != tc.tci {
			t.Errorf("%s: got %#x %#x %v, want %#x %#x %v", tc.name, tpid, tci, ok, tc.tpid, tc.tci, tc.ok)
		}
	}
}

func TestRestoreVLAN(t *testing.T) {
	var vh [offload.HeaderLen]byte
	vh[0] = 1 // NEEDS_CSUM
	binary.NativeEndian.PutUint16(vh[6:], 34)
	binary.NativeEndian.PutUint16(vh[8:], 6)
	macs := bytes.Repeat([]byte{0xaa}, 12)
	rest := []byte{0x08, 0x00, 0x45, 0, 0, 20}
	p := buf.FromBytes(append(append(vh[:], macs...), rest...))
	defer p.Release()
	if !restoreVLAN(p, 0x8100, 0x0005) {
		t.Fatal("restoreVLAN refused a frame")
	}
	got := p.ToBytes()
	want := append(append(append([]byte{}, vh[:]...), macs...), append([]byte{0x81, 0x00, 0x00, 0x05}, rest...)...)
	binary.NativeEndian.PutUint16(want[6:], 38)
	if !bytes.Equal(got, want) {
		t.Errorf("restored frame\n got %x\nwant %x", got, want)
	}
	short := buf.FromBytes(make([]byte, 15))
	defer short.Release()
	if restoreVLAN(short, 0x8100, 5) {
		t.Errorf("restoreVLAN accepted a runt")
	}
}

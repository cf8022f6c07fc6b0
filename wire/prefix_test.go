package wire_test

import (
	"testing"

	"ustack/wire"
)

// decodeFrame runs a frame through every parser down to its transport
// header, as a receive path would, and returns the first error.
func decodeFrame(b []byte) error {
	_, _, typ, p, err := wire.ParseEthernetFrame(b)
	if err != nil {
		return err
	}
	switch typ {
	case wire.EtherTypeARP:
		_, err := wire.ParseARP(p)
		return err
	case wire.EtherTypeIPv4:
	default:
		return wire.ErrUnsupported
	}
	h, err := wire.ParseIPv4(p)
	if err != nil {
		return err
	}
	if err := wire.ValidateIPv4Options(h.Options()); err != nil {
		return err
	}
	switch h.Protocol() {
	case wire.IPProtoUDP:
		_, err = wire.ParseUDP(h.Payload())
	case wire.IPProtoTCP:
		var s wire.TCP
		if s, err = wire.ParseTCP(h.Payload()); err == nil {
			_, err = s.ParseOptions()
		}
	case wire.IPProtoICMP:
		var m wire.ICMPv4
		if m, err = wire.ParseICMPv4(h.Payload()); err == nil && m.Type().IsError() {
			_, err = m.Quote()
		}
	}
	return err
}

// TestFramePrefixes decodes every prefix of every golden frame through all
// its layers: each proper prefix must fail cleanly somewhere, the whole
// frame must decode.
func TestFramePrefixes(t *testing.T) {
	for i, frame := range goldenFrames {
		if err := decodeFrame(frame); err != nil {
			t.Errorf("frame %d: %v", i, err)
		}
		for n := range len(frame) {
			if decodeFrame(frame[:n]) == nil {
				t.Errorf("frame %d cut to %d of %d bytes decoded", i, n, len(frame))
			}
		}
	}
}

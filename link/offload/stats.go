package offload

import "ustack/internal/stats"

// Stats count what a driver's offloads did, to tell whether large frames
// and coalescing were used. Drivers that use this package keep one.
type Stats struct {
	// TxGSOPackets and TxGSOBytes: large frames (Offload.GSO set) handed
	// to the device, which segments them.
	TxGSOPackets, TxGSOBytes stats.Counter
	// TxPartialCsum: frames handed over with a partial checksum.
	TxPartialCsum stats.Counter
	// TxSegmented: large frames from the stack cut in software before
	// the write, for a device that is to see only plain frames.
	TxSegmented stats.Counter
	// RxGSOPackets and RxGSOBytes: large frames the device delivered.
	RxGSOPackets, RxGSOBytes stats.Counter
	// RxSegmented: large frames cut in software because the stack does
	// not take them whole.
	RxSegmented stats.Counter
	// RxCompleted: partial checksums completed in software.
	RxCompleted stats.Counter
	// RxCoalesced: received segments merged into an earlier one (GRO);
	// RxGROPackets: packets made of more than one segment.
	RxCoalesced, RxGROPackets stats.Counter
}

// Visit reports the counters with the given name prefix.
func (s *Stats) Visit(prefix string, v stats.Visitor) {
	v(prefix+"tx.gso_packets", s.TxGSOPackets.Load())
	v(prefix+"tx.gso_bytes", s.TxGSOBytes.Load())
	v(prefix+"tx.partial_csum", s.TxPartialCsum.Load())
	v(prefix+"tx.segmented", s.TxSegmented.Load())
	v(prefix+"rx.gso_packets", s.RxGSOPackets.Load())
	v(prefix+"rx.gso_bytes", s.RxGSOBytes.Load())
	v(prefix+"rx.segmented", s.RxSegmented.Load())
	v(prefix+"rx.completed", s.RxCompleted.Load())
	v(prefix+"rx.coalesced", s.RxCoalesced.Load())
	v(prefix+"rx.gro_packets", s.RxGROPackets.Load())
}

package fdlink

import (
	"errors"
	"fmt"
	"sync"

	"ustack/buf"
	"ustack/link"
	"ustack/link/offload"
)

// SoftGSO does, for a device that is to see only plain frames, what the
// device would have done with offloads: it cuts each large frame into
// MTU-sized ones and completes partial checksums (offload.PrepareTx)
// just before the write, so the stack above still builds large segments
// and leaves checksums to the link (software GSO). The zero value is
// ready.
type SoftGSO struct {
	segs sync.Pool // of *[]*buf.Packet
}

// WriteBatch finishes each frame of pkts in software and hands the
// frames it makes to write (the driver's own WriteBatch, which takes
// ownership of them). It takes ownership of every packet and returns how
// many of pkts were written whole.
func (g *SoftGSO) WriteBatch(b *Base, pkts []*buf.Packet, write func([]*buf.Packet) (int, error)) (int, error) {
	s, _ := g.segs.Get().(*[]*buf.Packet)
	if s == nil {
		s = new([]*buf.Packet)
	}
	defer g.segs.Put(s)
	sent := 0
	var firstErr error
	for i, p := range pkts {
		large := p.Offload.GSO != buf.GSONone
		segs, err := offload.PrepareTx(p, b.Info.Type, 0, (*s)[:0])
		*s = segs[:0]
		if err != nil {
			b.Stats.TxErrors.Inc()
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", b.Info.Name, err)
			}
			continue
		}
		if large {
			b.Offload.TxSegmented.Inc()
		}
		n, err := write(segs)
		clear(segs)
		if n == len(segs) {
			sent++
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if errors.Is(err, link.ErrClosed) {
			b.Stats.TxDrops.Add(uint64(len(pkts) - i - 1))
			link.ReleaseAll(pkts, i+1)
			break
		}
	}
	return sent, firstErr
}

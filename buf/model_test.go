package buf

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestRandomOpsAgainstModel applies seeded random sequences of operations to
// a set of live packets that share storage (through Split, Clone and Concat)
// and checks after every step that every live packet still holds exactly
// the bytes of a plain []byte model. Writes go only through Prepend and
// Append, each with a fresh byte value, so a write into storage another
// packet sees is caught at once.
func TestRandomOpsAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		type live struct {
			p     *Packet
			model []byte
		}
		var ps []live
		stamp := byte(0)
		next := func() byte { stamp++; return stamp }
		rnd := func(n int) int { return r.IntN(n + 1) }
		for step := 0; step < 400; step++ {
			if len(ps) == 0 || (len(ps) < 8 && r.IntN(6) == 0) {
				b := fill(make([]byte, 1+r.IntN(3000)), next())
				var p *Packet
				switch r.IntN(3) {
				case 0:
					p = FromBytes(b)
				case 1:
					p = New(r.IntN(300), len(b))
					copy(p.Bytes(), b)
				default:
					p = Wrap(append([]byte(nil), b...))
				}
				ps = append(ps, live{p, b})
				continue
			}
			i := r.IntN(len(ps))
			x := &ps[i]
			op := r.IntN(10)
			switch op {
			case 0:
				n, v := r.IntN(300), next()
				fill(x.p.Prepend(n), v)
				x.model = append(fill(make([]byte, n), v), x.model...)
			case 1:
				n, v := r.IntN(300), next()
				fill(x.p.Append(n), v)
				x.model = append(x.model, fill(make([]byte, n), v)...)
			case 2:
				n := rnd(len(x.model))
				x.p.TrimFront(n)
				x.model = x.model[n:]
			case 3:
				n := rnd(len(x.model))
				x.p.Truncate(n)
				x.model = x.model[:n:n]
			case 4:
				off := rnd(len(x.model))
				q := x.p.Split(off)
				m := x.model
				x.model = m[:off:off]
				ps = append(ps, live{q, append([]byte(nil), m[off:]...)})
			case 5:
				ps = append(ps, live{x.p.Clone(), append([]byte(nil), x.model...)})
			case 6:
				ps = append(ps, live{x.p.DeepCopy(), append([]byte(nil), x.model...)})
			case 7:
				j := r.IntN(len(ps))
				if j == i {
					continue
				}
				x.p.Concat(ps[j].p)
				x.model = append(x.model, ps[j].model...)
				ps = append(ps[:j], ps[j+1:]...)
			case 8:
				n := rnd(len(x.model))
				if got := x.p.Pullup(n); !bytes.Equal(got, x.model[:n]) {
					t.Fatalf("seed %d step %d: Pullup(%d) = %x, want %x", seed, step, n, got, x.model[:n])
				}
			case 9:
				x.p.Release()
				ps = append(ps[:i], ps[i+1:]...)
			}
			for k := range ps {
				if got := ps[k].p.ToBytes(); !bytes.Equal(got, ps[k].model) {
					t.Fatalf("seed %d step %d op %d: packet %d holds %d bytes differing from its model (%d bytes)",
						seed, step, op, k, len(got), len(ps[k].model))
				}
				if ps[k].p.Contiguous() != (ps[k].p.Bytes() != nil || ps[k].p.Len() == 0) {
					t.Fatalf("seed %d step %d: Contiguous() disagrees with Bytes()", seed, step)
				}
			}
		}
		for _, x := range ps {
			x.p.Release()
		}
	}
}

// TestConcurrentSplitRelease splits packets in one goroutine and hands the
// pieces to others, which read, prepend into and release them while the
// siblings sharing their chunks are in use elsewhere. Run with -race.
func TestConcurrentSplitRelease(t *testing.T) {
	const workers, packets, pieces = 4, 200, 5
	type piece struct {
		p    *Packet
		want []byte
	}
	chs := make([]chan piece, workers)
	var wg sync.WaitGroup
	errs := make(chan string, 1)
	report := func(e string) {
		select {
		case errs <- e:
		default:
		}
	}
	for w := range chs {
		chs[w] = make(chan piece, 16)
		wg.Go(func() {
			for pc := range chs[w] {
				if !bytes.Equal(pc.p.ToBytes(), pc.want) {
					report("piece corrupted on arrival")
				}
				// Prepend may reuse the chunk's headroom only once the
				// siblings are released; either way they must not see it.
				fill(pc.p.Prepend(20), 0xff)
				fill(pc.p.Append(20), 0xfe)
				c := pc.p.Clone()
				pc.p.Release()
				want := append(append(fill(make([]byte, 20), 0xff), pc.want...), fill(make([]byte, 20), 0xfe)...)
				if !bytes.Equal(c.ToBytes(), want) {
					report("clone corrupted")
				}
				c.Release()
			}
		})
	}
	for i := range packets {
		data := seq(i, 1000+i)
		p := FromBytes(data)
		cut := len(data) / pieces
		for k := range pieces - 1 {
			q := p.Split(cut)
			chs[(i+k)%workers] <- piece{p, data[k*cut : (k+1)*cut]}
			p = q
		}
		chs[(i+pieces-1)%workers] <- piece{p, data[(pieces-1)*cut:]}
	}
	for _, ch := range chs {
		close(ch)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

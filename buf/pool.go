package buf

import (
	"sync"
	"sync/atomic"
)

// Chunk size classes. A frame of a 1500-byte MTU link with full headroom fits
// the smallest; a 64 KiB segment or datagram with headroom fits the largest.
// Larger requests are allocated and left to the garbage collector.
var classes = [...]int{2048, 16384, 65536 + 1024}

var chunkPools [len(classes)]sync.Pool

// chunk is a piece of pooled storage. refs counts the packets that hold it.
type chunk struct {
	data  []byte
	refs  atomic.Int32
	class int8 // index into classes, or -1 for unpooled
}

func (c *chunk) ref()         { c.refs.Add(1) }
func (c *chunk) shared() bool { return c.refs.Load() > 1 }
func (c *chunk) unref() {
	switch n := c.refs.Add(-1); {
	case n == 0:
		if c.class >= 0 {
			chunkPools[c.class].Put(c)
		}
	case n < 0:
		panic("buf: chunk reference count below zero")
	}
}

func getChunk(size int) *chunk {
	for i, cs := range classes {
		if size <= cs {
			c, _ := chunkPools[i].Get().(*chunk)
			if c == nil {
				c = &chunk{data: make([]byte, cs), class: int8(i)}
			}
			c.refs.Store(1)
			return c
		}
	}
	c := &chunk{data: make([]byte, size), class: -1}
	c.refs.Store(1)
	return c
}

var packetPool = sync.Pool{New: func() any {
	p := &Packet{}
	p.views = p.inViews[:0]
	p.chunks = p.inChunk[:0]
	return p
}}

func getPacket() *Packet {
	p := packetPool.Get().(*Packet)
	p.released = false
	return p
}

func putPacket(p *Packet) {
	// Keep grown slices (their capacity is reused), drop everything else.
	views, chunks := p.views[:0], p.chunks[:0]
	*p = Packet{}
	if cap(views) > len(p.inViews) {
		p.views = views
	} else {
		p.views = p.inViews[:0]
	}
	if cap(chunks) > len(p.inChunk) {
		p.chunks = chunks
	} else {
		p.chunks = p.inChunk[:0]
	}
	p.released = true
	packetPool.Put(p)
}

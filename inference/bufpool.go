package inference

import (
	"bytes"
	"math/bits"
	"sync"
)

// bufferPool keeps buffers for request and response bodies by size class,
// so that a request that needs a buffer of 600 KB (an image tensor) finds
// one of that size rather than a small one left by a response, which it
// would have to grow: a fresh buffer of that size is cleared memory, often
// new pages, and garbage to collect.
type bufferPool struct {
	classes [bufferClasses]sync.Pool
}

// Buffer size classes: class k holds buffers of capacity at least
// minBufferSize << k, from 4 KiB to maxPooledBuffer.
const (
	minBufferBits = 12
	minBufferSize = 1 << minBufferBits
	bufferClasses = 12 // 4 KiB << 11 = 8 MiB
)

// maxPooledBuffer is the largest buffer kept for reuse: bigger ones, from
// rare big requests, go to the garbage collector.
const maxPooledBuffer = minBufferSize << (bufferClasses - 1)

// get returns an empty buffer with room for at least size bytes (when
// size is at most maxPooledBuffer).
func (p *bufferPool) get(size int) *bytes.Buffer {
	k := classFor(size)
	if k >= bufferClasses {
		return bytes.NewBuffer(make([]byte, 0, size))
	}
	if b, ok := p.classes[k].Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return bytes.NewBuffer(make([]byte, 0, minBufferSize<<k))
}

// put gives b back: to the class of the sizes its capacity holds.
func (p *bufferPool) put(b *bytes.Buffer) {
	c := b.Cap()
	if c < minBufferSize || c > maxPooledBuffer {
		return
	}
	p.classes[classOf(c)].Put(b)
}

// classFor returns the smallest class whose buffers hold size bytes;
// bufferClasses or more when none does.
func classFor(size int) int {
	if size <= minBufferSize {
		return 0
	}
	return bits.Len(uint(size-1)) - minBufferBits
}

// classOf returns the class of a buffer of capacity c, at least
// minBufferSize: the largest class whose size it holds.
func classOf(c int) int {
	return bits.Len(uint(c)) - 1 - minBufferBits
}

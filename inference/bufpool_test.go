package inference

import "testing"

func TestBufferPool(t *testing.T) {
	var p bufferPool
	for _, size := range []int{0, 1, minBufferSize, minBufferSize + 1, 602734, 1 << 20, (1 << 20) + 1, maxPooledBuffer, maxPooledBuffer + 1} {
		b := p.get(size)
		if b.Len() != 0 || b.Cap() < size {
			t.Errorf("get(%d): length %d, capacity %d", size, b.Len(), b.Cap())
		}
		b.WriteString("x")
		p.put(b)
	}
}

// TestBufferClasses checks that a buffer goes back to a class whose
// requests it can hold, and that a request takes from a class whose
// buffers hold it.
func TestBufferClasses(t *testing.T) {
	for _, c := range []struct{ size, class int }{
		{0, 0}, {1, 0}, {4096, 0}, {4097, 1}, {8192, 1}, {8193, 2},
		{602734, 8}, {1 << 20, 8}, {1<<20 + 1, 9}, {maxPooledBuffer, bufferClasses - 1}, {maxPooledBuffer + 1, bufferClasses},
	} {
		if got := classFor(c.size); got != c.class {
			t.Errorf("classFor(%d) = %d, want %d", c.size, got, c.class)
		}
	}
	for _, c := range []struct{ capacity, class int }{
		{4096, 0}, {8191, 0}, {8192, 1}, {602734, 7}, {1 << 20, 8}, {maxPooledBuffer, bufferClasses - 1},
	} {
		got := classOf(c.capacity)
		if got != c.class {
			t.Errorf("classOf(%d) = %d, want %d", c.capacity, got, c.class)
		}
		if minBufferSize<<got > c.capacity {
			t.Errorf("a buffer of capacity %d would serve requests of %d bytes", c.capacity, minBufferSize<<got)
		}
	}
}

//go:build amd64 && !purego

package inference

import "unsafe"

// nonFiniteAVX512 returns the index of the first block of 64 of the n
// float32 values at p (n a multiple of 64) that holds a NaN or an
// infinity, or n. It needs AVX-512 F (see haveWide).
//
//go:noescape
func nonFiniteAVX512(p unsafe.Pointer, n int) int

// nonFiniteAVX2 is nonFiniteAVX512 with AVX2 (see haveAVX2).
//
//go:noescape
func nonFiniteAVX2(p unsafe.Pointer, n int) int

// nonFiniteBlocks returns where firstNonFinite32 goes on looking in d,
// when haveWide or haveAVX2: the start of the first block of 64 values
// that holds a NaN or an infinity or, when none does, the end of the
// last whole block.
// The assembly reads 16K values a call, so that a large tensor's scan
// does not hold off the scheduler.
func nonFiniteBlocks(d []float32) int {
	scan := nonFiniteAVX2
	if haveWide {
		scan = nonFiniteAVX512
	}
	whole := len(d) &^ 63
	for i := 0; i < whole; {
		n := min(whole-i, 16<<10)
		if j := scan(unsafe.Pointer(&d[i]), n); j < n {
			return i + j
		}
		i += n
	}
	return whole
}

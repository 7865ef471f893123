//go:build amd64 && !purego

package inference

import "unsafe"

// haveWide reports whether shortWideAVX512 and longWideAVX512 may run:
// they need AVX-512 F, DQ and BW and BMI2 (CPUID leaf 7, EBX bits 16, 17,
// 30 and 8) and an operating system that saves the opmask and ZMM
// registers (XCR0 bits 1, 2 and 5 to 7). Tests turn it off to check the
// paths that read the runs otherwise.
var haveWide = wideSupported()

func wideSupported() bool {
	const osxsave = 1 << 27
	if _, _, c, _ := cpuidLeaf(1, 0); c&osxsave == 0 {
		return false
	}
	if xgetbv0()&0xe6 != 0xe6 {
		return false
	}
	const f, dq, bw, bmi2 = 1 << 16, 1 << 17, 1 << 30, 1 << 8
	_, b, _, _ := cpuidLeaf(7, 0)
	return b&(f|dq|bw|bmi2) == f|dq|bw|bmi2
}

// haveAVX2 reports whether shortWideAVX2 and longWideAVX2 may run, where
// haveWide is false: they need AVX2 and BMI1 (CPUID leaf 7, EBX bits 5
// and 3), AVX and FMA (leaf 1, ECX bits 28 and 12) and an operating
// system that saves the YMM registers (XCR0 bits 1 and 2). Tests turn it
// off as haveWide.
var haveAVX2 = avx2Supported()

func avx2Supported() bool {
	const osxsave, avx, fma = 1 << 27, 1 << 28, 1 << 12
	if _, _, c, _ := cpuidLeaf(1, 0); c&(osxsave|avx|fma) != osxsave|avx|fma {
		return false
	}
	if xgetbv0()&0x6 != 0x6 {
		return false
	}
	const avx2, bmi1 = 1 << 5, 1 << 3
	_, b, _, _ := cpuidLeaf(7, 0)
	return b&(avx2|bmi1) == avx2|bmi1
}

func cpuidLeaf(eax, ecx uint32) (a, b, c, d uint32)

func xgetbv0() uint32

// shortWideAVX512 reads the numbers from p, eight at a time, into out up
// to outEnd. A number is of the form [-]d.d[d...], after at most one
// space and followed by a comma, all in 16 bytes (up to 13 fraction
// digits); its value is that of strconv.ParseFloat(text, 32). It stops
// at the first group of eight that holds another number (or a value near
// a float32 rounding tie), that needs a block of 64 bytes starting past
// end, or that out lacks the room for, and returns where that group
// starts (the number, or the space before it), the out address after the
// last value, and whether a number stopped it rather than end or outEnd.
// 80 bytes from end must be readable.
//
//go:noescape
func shortWideAVX512(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)

// longWideAVX512 is shortWideAVX512 for runs that also hold longer
// numbers (Python's 17 digits): a number may go on in digits past its 16
// bytes to the comma, and is then read from its first 12 to 14 digits
// after the point, when all values within 1.1e-12 of that round to the
// same float32. 96 bytes from end must be readable.
//
//go:noescape
func longWideAVX512(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)

// shortWideAVX2 is shortWideAVX512 with AVX2, four numbers at a time.
// 80 bytes from end must be readable.
//
//go:noescape
func shortWideAVX2(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)

// longWideAVX2 is longWideAVX512 with AVX2, four numbers at a time. 96
// bytes from end must be readable.
//
//go:noescape
func longWideAVX2(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)

// wideKernel is the signature of the kernels of shortRunWide.
type wideKernel func(p, end, out unsafe.Pointer, outEnd uintptr) (next, outNext uintptr, failed bool)

// wideKernels returns the kernels that shortRunWide runs on this CPU:
// the one for the shortest forms, the one that also takes longer
// numbers, and how many numbers they read at a time; or no kernel at
// all.
func wideKernels() (short, long wideKernel, group int) {
	switch {
	case haveWide:
		return shortWideAVX512, longWideAVX512, 8
	case haveAVX2:
		return shortWideAVX2, longWideAVX2, 4
	}
	return nil, nil, 0
}

// wideRoom is how many bytes before the end of the body the kernels' last
// block of 64 starts: they read 32 bytes past a block.
const wideRoom = 96

// shortRunWide reads a long run of FP32 numbers eight at a time with
// AVX-512, or four at a time with AVX2: each number gets a 16-byte lane,
// where a shuffle drops its sign and point, and its digits become an
// integer divided by 10^15. It starts with the kernel for numbers that
// end in their lane (the shortest forms), and goes on with the kernel
// that also takes longer ones (Python's 17 digits) from the first group
// that the first does not read. The numbers of a group that neither
// reads (exponents, values near a float32 rounding tie, the run's last)
// are read by laneFloat; it returns at the end of the run, or when four
// groups in a row hold such a number, for shortRunLanes and shortRun to
// read on. It returns what shortRun would: out with the values read, and
// the index of the first number left. Its values are those of
// strconv.ParseFloat(text, 32).
func shortRunWide(b []byte, i int, out []float32) ([]float32, int) {
	kernel, long, group := wideKernels()
	if kernel == nil || len(b)-i < shortLanesMin || (b[i] != '-' && b[i]-'0' > 9) {
		return out, i // the kernel would take a space here for the one after a comma
	}
	room := out[len(out):cap(out)]
	if len(room) == 0 {
		return out, i
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	obase := uintptr(unsafe.Pointer(unsafe.SliceData(room)))
	limit := len(b) - wideRoom
	k := 0
	misses := 0
loop:
	for i < limit && k < len(room) {
		end := min(limit, i+shortLanesChunk)
		next, onext, failed := kernel(unsafe.Pointer(&b[i]), unsafe.Pointer(&b[end]), unsafe.Pointer(&room[k]), obase+4*uintptr(len(room)))
		read := int(onext-obase)/4 - k
		if read > 0 {
			i, k = int(next-base), k+read
			if b[i] == ' ' {
				i++
			}
		}
		if !failed && read > 0 && end < limit {
			continue // the end of a chunk
		}
		switch {
		case read > 0:
			misses = 0
		case failed && long != nil:
			// A group with a longer number: the run is read on with the
			// kernel that takes those too.
			kernel, long = long, nil
			continue
		default:
			if misses++; misses == 4 || k == 0 {
				break loop // not a run of these forms, or no longer
			}
		}
		// A group with a number of another form, the run's end or the
		// body's, or the end of out: its numbers one by one.
		for range group {
			if !laneNext(b, &i, room, &k) {
				return out[:len(out)+k], i
			}
		}
	}
	return out[:len(out)+k], i
}

//go:build amd64 && !purego

package inference

import (
	"bytes"
	"unsafe"
)

// haveLanesSSE reports whether shortLanesSSE may run: it needs SSSE3
// (PMADDUBSW) and SSE4.1 (PACKUSDW), bits 9 and 19 of CPUID leaf 1's ECX.
// Tests turn it off to check the Go loop that reads the runs otherwise.
var haveLanesSSE = cpuidECX1()&(1<<9|1<<19) == 1<<9|1<<19

// cpuidECX1 returns ECX of CPUID leaf 1.
func cpuidECX1() uint32

// shortLanesSSE reads the numbers of two lanes side by side, on
// addresses: lane a reads from a into aOut while its numbers start
// before aEnd and aOut is before aOutEnd, lane b from b into bOut while
// they start at bLast or before and bOut is before bOutEnd. Once lane b
// reached its end, lane a goes on alone. shortRoomLanes bytes must be
// readable from each start. A number is of shortRun's form, followed by a
// comma and at most one space; its value is that of
// strconv.ParseFloat(text, 32). shortLanesSSE returns the addresses where
// the lanes stopped: at the first number that either lane does not read
// (failed is 1 for lane a, 2 for lane b), or when lane a reached its end
// (failed is 0).
//
//go:noescape
func shortLanesSSE(a, aEnd, aOut unsafe.Pointer, aOutEnd uintptr, b, bLast, bOut unsafe.Pointer, bOutEnd uintptr) (aNext, aOutNext, bNext, bOutNext uintptr, failed int)

// shortLanesMin is the length of a run from which shortRunLanes splits it.
const shortLanesMin = 1024

// shortRoomLanes is how many bytes shortLanesSSE reads from a number's
// start.
const shortRoomLanes = 32

// shortLanesChunk bounds the bytes of lane a that one call of
// shortLanesSSE reads (~30 µs): an assembly function cannot be preempted,
// and a stop of the world for the garbage collector waits for it.
const shortLanesChunk = 32 << 10

// shortRunLanes reads a long run of FP32 numbers in two lanes: it cuts
// the run in two at the first comma after its middle, and shortLanesSSE
// reads a number of each half at a time. Reading a number depends on
// where the one before it ended, so that one lane alone keeps the
// processor waiting; two lanes do not depend on one another, and their
// numbers are read side by side. Where the run ends is looked for only
// in the first half of the rest of the body: a longer run is cut at the
// middle of the rest of the body, since the data of a large tensor is
// most of its request (when that cut is past the run's end after all,
// lane a stops at the end and what lane b read is dropped). Lane b stops
// at the first number that no comma follows, as the run's last. Lane b's
// values go after as many values as lane a's half has commas. A number
// that shortLanesSSE leaves is read by fastFloat or strconv.ParseFloat,
// as the general path would. It returns what shortRun would: out with
// the values read, and the index of the first number left, or out and i
// as given when the run is short, the body does not split, or out lacks
// the room. Its values are those of strconv.ParseFloat(text, 32).
func shortRunLanes(b []byte, i int, out []float32) ([]float32, int) {
	if !haveLanesSSE || len(b)-i < shortLanesMin {
		return out, i
	}
	// A run that ends before the middle of the rest of the body (a row
	// of a nested array, say) is cut at its own middle.
	end := len(b)
	if e := bytes.IndexByte(b[i:i+(len(b)-i)/2], ']'); e >= 0 {
		if e < shortLanesMin {
			return out, i
		}
		end = i + e
	}
	m := i + (end-i)/2
	c := bytes.IndexByte(b[m:end], ',')
	if c < 0 {
		return out, i
	}
	mid := m + c + 1
	if mid < len(b) && b[mid] == ' ' {
		mid++
	}
	last := len(b) - shortRoomLanes // lane b's last start
	if mid-i < shortRoom || last <= mid {
		return out, i
	}
	room := out[len(out):cap(out)]
	na := bytes.Count(b[i:mid], []byte{','})
	if na >= len(room) {
		return out, i
	}
	base := uintptr(unsafe.Pointer(&b[0]))
	obase := uintptr(unsafe.Pointer(unsafe.SliceData(room)))
	ia, ka, ib, kb := i, 0, mid, na
	laneB := last // lane b's last start, 0 once lane b stopped
	for ia < mid {
		if kb >= len(room) {
			laneB = 0
		}
		aEnd := min(mid, ia+shortLanesChunk)
		pa, oa, pb, ob, failed := shortLanesSSE(unsafe.Pointer(&b[ia]), unsafe.Pointer(&b[aEnd]), unsafe.Pointer(&room[ka]), obase+4*uintptr(na),
			unsafe.Pointer(&b[ib]), unsafe.Pointer(&b[laneB]), unsafe.Pointer(&room[min(kb, len(room)-1)]), obase+4*uintptr(len(room)))
		ia, ka = int(pa-base), int(oa-obase)/4
		if laneB != 0 {
			ib, kb = int(pb-base), int(ob-obase)/4
		}
		switch failed {
		case 0:
			if ia < aEnd {
				// Lane a's na values end before mid: not a run of
				// numbers and commas, which the reading rules out.
				return out[:len(out)+ka], ia
			}
		case 1:
			if !laneNext(b, &ia, room[:na], &ka) {
				return out[:len(out)+ka], ia
			}
		case 2:
			if !laneNext(b, &ib, room, &kb) {
				laneB = 0
			}
		}
	}
	// Lane a read its half: lane b reads the rest alone, as the
	// kernel's lane a.
	for laneB != 0 && ib <= last && kb < len(room) {
		pb, ob, _, _, failed := shortLanesSSE(unsafe.Pointer(&b[ib]), unsafe.Pointer(&b[min(last+1, ib+shortLanesChunk)]), unsafe.Pointer(&room[kb]), obase+4*uintptr(len(room)),
			unsafe.Pointer(&b[ib]), unsafe.Pointer(&b[0]), unsafe.Pointer(&room[kb]), 0)
		ib, kb = int(pb-base), int(ob-obase)/4
		if failed == 1 && !laneNext(b, &ib, room, &kb) {
			break
		}
	}
	return out[:len(out)+kb], ib
}

// laneNext reads the number at b[*i:] with laneFloat into room[*k] and
// moves both on, or reports false.
func laneNext(b []byte, i *int, room []float32, k *int) bool {
	if *k >= len(room) {
		return false
	}
	f, next, ok := laneFloat(b, *i)
	if ok {
		room[*k] = f
		*i = next
		*k++
	}
	return ok
}

// laneFloat reads the number at b[i:] for shortRunLanes, when a comma and
// at most one space follow it: fastFloat, else parseJSONFloat on the
// number's text. It returns the value and the index after the comma (and
// space), or false and i for anything else: the end of the run, or what
// the general path reads or refuses.
func laneFloat(b []byte, i int) (float32, int, bool) {
	f, end, ok := fastFloat(b, i, 32)
	if !ok {
		var n number
		if end, ok = n.scan(b, i); !ok {
			return 0, i, false
		}
		if f, ok = parseJSONFloat(b[i:end], 32); !ok {
			return 0, i, false
		}
	}
	if end >= len(b) || b[end] != ',' {
		return 0, i, false
	}
	end++
	if end < len(b) && b[end] == ' ' {
		end++
	}
	return float32(f), end, true
}

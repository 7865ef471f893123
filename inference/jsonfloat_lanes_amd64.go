//go:build amd64 && !purego

package inference

import (
	"bytes"
	"strconv"
	"unsafe"
)

// haveLanesSSE reports whether shortLanesSSE may run: it needs SSSE3
// (PMADDUBSW) and SSE4.1 (PACKUSDW), bits 9 and 19 of CPUID leaf 1's ECX.
var haveLanesSSE = cpuidECX1()&(1<<9|1<<19) == 1<<9|1<<19

// cpuidECX1 returns ECX of CPUID leaf 1.
func cpuidECX1() uint32

// shortLanesSSE reads the numbers of two lanes side by side, on
// addresses: lane a reads from a into aOut while its numbers start
// before aEnd, lane b from b into bOut while they start at bLast or
// before; shortRoomLanes bytes must be readable from each start, and the
// outs must have room for the lanes' numbers. A number is of shortRun's
// form, followed by a comma and at most one space; its value is that of
// strconv.ParseFloat(text, 32). shortLanesSSE returns the addresses where
// the lanes stopped: at the first number that either lane does not read
// (failed is 1 for lane a, 2 for lane b), or when a lane reached its end
// (failed is 0).
//
//go:noescape
func shortLanesSSE(a, aEnd, aOut, b, bLast, bOut unsafe.Pointer) (aNext, aOutNext, bNext, bOutNext uintptr, failed int)

// shortLanesMin is the length of a run from which shortRunLanes splits it.
const shortLanesMin = 1024

// shortRoomLanes is how many bytes shortLanesSSE reads from a number's
// start.
const shortRoomLanes = 32

// shortRunLanes reads a long run of FP32 numbers, those of an array up to
// its first ']', in two lanes: it cuts the run in two at a comma, and
// shortLanesSSE reads a number of each half at a time. Reading a number
// depends on where the one before it ended, so that one lane alone keeps
// the processor waiting; two lanes do not depend on one another, and
// their numbers are read side by side. The second half's values go after
// as many values as the first half has commas. A number that
// shortLanesSSE leaves is read by fastFloat or strconv.ParseFloat, as the
// general path would. It returns what shortRun would: out with the values read, and
// the index of the first number left, or out and i as given when the run
// is short, does not split, or out lacks the room. Its values are those
// of strconv.ParseFloat(text, 32).
func shortRunLanes(b []byte, i int, out []float32) ([]float32, int) {
	if !haveLanesSSE || len(b)-i < shortLanesMin {
		return out, i
	}
	e := bytes.IndexByte(b[i:], ']')
	if e < 0 {
		return out, i
	}
	e += i
	m := i + (e-i)/2
	c := bytes.IndexByte(b[m:e], ',')
	if c < 0 {
		return out, i
	}
	mid := m + c + 1
	if b[mid] == ' ' {
		mid++
	}
	last := min(e, len(b)-shortRoomLanes) // lane b's last start
	if mid-i < shortRoom || last <= mid {
		return out, i
	}
	room := out[len(out):cap(out)]
	na := bytes.Count(b[i:mid], []byte{','})
	if na+bytes.Count(b[mid:e], []byte{','}) > len(room) {
		return out, i
	}
	base := uintptr(unsafe.Pointer(&b[0]))
	obase := uintptr(unsafe.Pointer(unsafe.SliceData(room)))
	ia, ka, ib, kb := i, 0, mid, na
	for ia < mid && ib <= last && kb < len(room) {
		pa, oa, pb, ob, failed := shortLanesSSE(unsafe.Pointer(&b[ia]), unsafe.Pointer(&b[mid]), unsafe.Pointer(&room[ka]),
			unsafe.Pointer(&b[ib]), unsafe.Pointer(&b[last]), unsafe.Pointer(&room[kb]))
		ia, ka = int(pa-base), int(oa-obase)/4
		ib, kb = int(pb-base), int(ob-obase)/4
		if failed == 1 {
			// Lane a's number is before mid, so a comma follows it.
			var ok bool
			if room[ka], ia, ok = laneFloat(b, ia); !ok {
				return out[:len(out)+ka], ia
			}
			ka++
		} else if failed == 2 {
			if !laneNext(b, &ib, room, &kb) {
				break
			}
		}
	}
	// One lane reached its end: the other one reads its last numbers.
	for ia < mid {
		var ok bool
		if room[ka], ia, ok = laneFloat(b, ia); !ok {
			return out[:len(out)+ka], ia
		}
		ka++
	}
	for ib <= last && laneNext(b, &ib, room, &kb) {
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
// at most one space follow it: fastFloat, else strconv.ParseFloat. It
// returns the value and the index after the comma (and space), or false
// and i for anything else: the end of the run, or what the general path
// reads or refuses.
func laneFloat(b []byte, i int) (float32, int, bool) {
	f, end, ok := fastFloat(b, i, 32)
	if !ok {
		var n number
		if end, ok = n.scan(b, i); !ok {
			return 0, i, false
		}
		v, err := strconv.ParseFloat(string(b[i:end]), 32)
		if err != nil {
			return 0, i, false
		}
		f = v
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

package inference

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
)

// The float reader of V2 JSON tensor data: a tensor of an image carries
// hundreds of thousands of floats, so reading them is most of the cost of
// a JSON request.

// Powers of ten.
var (
	pow10f32 = [...]float32{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}
	pow10f64 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
		1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}
	// pow10invf64 are the float64s nearest to 10^-k: not exact, so only
	// for the float32 reading, which allows for their error.
	pow10invf64 = [...]float64{1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10,
		1e-11, 1e-12, 1e-13, 1e-14, 1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22}
)

// fastFloat reads the JSON number at b[i:] when its value follows exactly
// from a short computation: at most 19 digits, and a power of ten that a
// float64 holds. It returns the value correctly rounded to bitSize (32 or
// 64) bits, as strconv.ParseFloat does, and the index after the number.
// ok is false for anything else: not a number, not a JSON number (the
// caller's general path reads it and says why), a longer number, a value
// that needs strconv.ParseFloat (far exponents, a float32 too close to a
// rounding tie, out of range).
func fastFloat(b []byte, i int, bitSize int) (f float64, end int, ok bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	var digits, exp int
	if i+25 <= len(b) {
		// The usual number, such as 0.12345679 or -1.7922626: digits,
		// a point and digits, read 8 bytes at a time without a branch
		// per digit.
		n, v := eightDigits(binary.LittleEndian.Uint64(b[i:]))
		switch {
		case n == 0 || (n > 1 && b[i] == '0'):
			return 0, 0, false // not a number, or a JSON error
		case n == 8:
			mant, digits, i = readDigits(b, i, 0)
			if i+9 > len(b) {
				return 0, 0, false // no room left to read a fraction 8 bytes at a time
			}
		default:
			mant, digits, i = v, n, i+n
		}
		if b[i] == '.' {
			n, v = eightDigits(binary.LittleEndian.Uint64(b[i+1:]))
			frac := n
			mant = mant*pow10u64[n] + v
			i += 1 + n
			if n == 8 {
				mant, n, i = readDigits(b, i, mant)
				frac += n
			}
			if frac == 0 {
				return 0, 0, false // JSON wants a digit after the point
			}
			digits += frac
			exp = -frac
		}
	} else {
		if i >= len(b) {
			return 0, 0, false
		}
		switch c := b[i]; {
		case c == '0':
			i++
		case c >= '1' && c <= '9':
			mant, digits, i = readDigits(b, i, 0)
		default:
			return 0, 0, false
		}
		if i < len(b) && b[i] == '.' {
			var n int
			mant, n, i = readDigits(b, i+1, mant)
			if n == 0 {
				return 0, 0, false
			}
			digits += n
			exp = -n
		}
	}
	if digits > 19 {
		return 0, 0, false // mant overflowed
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		start := i
		e := 0
		for i < len(b) && b[i]-'0' <= 9 {
			if e < 1000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start {
			return 0, 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if mant == 0 {
		if neg {
			return math.Copysign(0, -1), i, true
		}
		return 0, i, true
	}
	if exp < -22 || exp > 22 {
		return 0, 0, false
	}
	if bitSize == 64 {
		// Clinger's fast path: mant and 10^|exp| are exact float64s, so
		// one multiplication or division rounds once, correctly.
		if mant > 1<<53 {
			return 0, 0, false
		}
		f = float64(mant)
		if exp >= 0 {
			f *= pow10f64[exp]
		} else {
			f /= pow10f64[-exp]
		}
		if neg {
			f = -f
		}
		return f, i, true
	}
	// float32: the float64 mant * 10^exp, computed with at most three
	// roundings of relative error 2^-53 each (mant, the power of ten
	// when negative, the product), is within 3 float64 ulps of the exact
	// value, so rounding it to float32 is correct unless it lies near the
	// midpoint of two float32s (within 8 ulps, a float32 ulp being 2^29
	// float64 ulps), or out of float32's normal range. A multiplication
	// by 10^-k, rather than a division by 10^k, saves the division's
	// latency.
	f = float64(mant)
	if exp >= 0 {
		f *= pow10f64[exp]
	} else {
		f *= pow10invf64[-exp]
	}
	bits := math.Float64bits(f)
	if e := bits >> 52; e < 1023-126 || e > 1023+127 {
		return 0, 0, false
	}
	if low := int64(bits & (1<<29 - 1)); low >= 1<<28-8 && low <= 1<<28+8 {
		return 0, 0, false
	}
	g := float32(f)
	if math.Float32bits(g)&0x7f800000 == 0x7f800000 {
		return 0, 0, false // rounded up to infinity
	}
	if neg {
		g = -g
	}
	return float64(g), i, true
}

// shortRoom is how many bytes from its start shortRun reads of a number:
// a sign, a digit, a point, 16 fraction digits in two blocks of 8 bytes,
// and a third block of 8 for the 17th and 18th digits, which must end
// the number.
const shortRoom = 27

// shortRun reads the float32 values of the numbers at b[i:] that have the
// form in which clients write float tensor data, such as 0.12345679,
// -1.7922626 or -2.1179039301310043 (Python's repr of a float32 made a
// float64), each followed by a comma and at most one space, appending
// them to out. The form is: an optional minus sign, one digit, a point
// and 1 to 18 digits. It returns out and the index of the first number
// that it did not read, which is at i, or after the comma (and space) of
// the last number read. Its values are those of strconv.ParseFloat(text,
// 32); what it leaves, fastFloat or the general path reads, including a
// number within shortRoom bytes of the end of b.
//
// T is float32 (FP32 data); shortRun is generic only to fit floatRun.
//
// In tensor data the sign of a number and the number of its fraction
// digits (as 7, 8 or 9 in the shortest form) vary at random, and a branch
// on either would be mispredicted often: shortRun reads the sign as a 0
// or 1 and the first 16 fraction digits as two blocks of 8 bytes, the
// second one masked out unless the first is all digits. Its branches
// (the 17th and 18th digits, what follows a number, a rounding too close
// to call) go the same way for all the numbers of a tensor written by the
// same client.
func shortRun[T float32 | float64](b []byte, i int, out []T) ([]T, int) {
	// Writing into the room out has, rather than appending, keeps the
	// loop free of calls (to grow out).
	room := out[len(out):cap(out)]
	k := 0
	for k < len(room) && len(b)-i >= shortRoom {
		c := (*[shortRoom]byte)(b[i:])
		var neg uint32
		if c[0] == '-' {
			neg = 1
		}
		j := int(neg & 1)
		d0 := c[j] - '0'
		if d0 > 9 || c[j+1] != '.' {
			break
		}
		v1, n1 := paddedDigits(binary.LittleEndian.Uint64(c[j+2:]))
		v2, n2 := paddedDigits(binary.LittleEndian.Uint64(c[j+10:]))
		more := -uint64(n1 >> 3) // all ones when the first block is all digits
		frac := n1 + n2&int(more)
		// mant is the digits scaled to 19 (d0 and 18 after the point),
		// less than 10^19.
		mant := uint64(d0)*1e18 + v1*1e10 + v2&more*100
		if frac == 16 {
			v3, n3 := paddedDigits(binary.LittleEndian.Uint64(c[j+18:]))
			if n3 > 2 {
				break // too many digits for mant
			}
			frac += n3
			mant += v3 / 1e6
		}
		end := j + 2 + frac
		if frac == 0 || c[end] != ',' {
			break // no digit after the point (not JSON); an exponent, a space or the end of the run
		}
		// As in fastFloat, the float64 mant * 10^-18 is within 3 ulps of
		// the value, which is 0 or from 10^-18 to 10, in float32's range.
		f := float64(mant) * 1e-18
		if low := math.Float64bits(f) & (1<<29 - 1); low-(1<<28-8) <= 16 {
			break // too close to a midpoint of two float32s
		}
		room[k] = T(math.Float32frombits(math.Float32bits(float32(f)) | neg<<31))
		k++
		next := end + 1
		if c[next] == ' ' {
			next++
		}
		i += next
	}
	return out[:len(out)+k], i
}

// paddedDigits is eightDigits, with the value of the n digits followed
// by 8-n zeros: the digits are the first of 8.
func paddedDigits(v uint64) (uint64, int) {
	x := v ^ 0x3030303030303030
	// Unlike in eightDigits, a carry may cross from a byte that is not
	// a digit into the next, which does not change the first such byte.
	over := (x | (x + 0x7676767676767676)) & 0x8080808080808080
	n := bits.TrailingZeros64(over) >> 3
	x &= (over&-over)>>7 - 1 // the bytes before the first that is not a digit
	// One multiplication a step combines neighbours: digits into pairs,
	// pairs into fours, fours into the eight.
	x = x * (1 + 10<<8) >> 8
	x = x & 0x00ff00ff00ff00ff * (1 + 100<<16) >> 16
	x = x & 0x0000ffff0000ffff * (1 + 10000<<32) >> 32
	return x, n
}

// pow10u64 are the powers of ten up to 10^8.
var pow10u64 = [...]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// readDigits reads the decimal digits at b[i:] into mant (mant * 10 + the
// digit, for each) and returns mant, how many digits there were and the
// index after them. mant wraps around past 19 digits in all.
func readDigits(b []byte, i int, mant uint64) (uint64, int, int) {
	start := i
	for i+8 <= len(b) {
		n, v := eightDigits(binary.LittleEndian.Uint64(b[i:]))
		mant = mant*pow10u64[n] + v
		i += n
		if n < 8 {
			return mant, i - start, i
		}
	}
	for i < len(b) && b[i]-'0' <= 9 {
		mant = mant*10 + uint64(b[i]-'0')
		i++
	}
	return mant, i - start, i
}

// eightDigits returns how many of the 8 bytes of v (the first one in the
// low byte) are decimal digits before the first that is not, and their
// value, computing on all 8 bytes at once.
func eightDigits(v uint64) (int, uint64) {
	// Digits become bytes 0 to 9; a byte of x is above 9 when x+0x76
	// sets its high bit (computed on the low 7 bits, so that no carry
	// crosses bytes) or when its own high bit is set.
	x := v ^ 0x3030303030303030
	over := (x | (x&0x7f7f7f7f7f7f7f7f + 0x7676767676767676)) & 0x8080808080808080
	n := bits.TrailingZeros64(over) >> 3
	// The n digits move to the high bytes, zeros (leading zero digits)
	// fill the low ones; then pairs, quads and the eight combine.
	x <<= 64 - 8*uint(n)
	x = x*10 + x>>8
	x = ((x&0x000000ff000000ff)*(100+1000000<<32) + (x>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
	return n, x
}

// parseJSONFloat returns the value of text, which must be a whole JSON
// number, correctly rounded to bitSize (32 or 64) bits: the float reader
// of tensor data (fastFloat, then strconv.ParseFloat for what it leaves).
// It is false for text that is not a JSON number and for a value out of
// the range of bitSize (where strconv.ParseFloat gives ±Inf and an error).
func parseJSONFloat(text []byte, bitSize int) (float64, bool) {
	if f, end, ok := fastFloat(text, 0, bitSize); ok {
		return f, end == len(text)
	}
	var n number
	if end, ok := n.scan(text, 0); !ok || end != len(text) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(text), bitSize)
	return f, err == nil
}

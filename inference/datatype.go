package inference

import (
	"math"

	ort "github.com/yalue/onnxruntime_go"
)

// datatypes maps the ONNX Runtime tensor element types that abgate serves
// to their V2 datatypes. The element types missing here (complex, float8,
// 4-bit) have no V2 datatype: inputs of those types make a model
// unservable, outputs of those types are listed as not servable.
var datatypes = map[ort.TensorElementDataType]string{
	ort.TensorElementDataTypeBool:     DTBool,
	ort.TensorElementDataTypeUint8:    DTUint8,
	ort.TensorElementDataTypeUint16:   DTUint16,
	ort.TensorElementDataTypeUint32:   DTUint32,
	ort.TensorElementDataTypeUint64:   DTUint64,
	ort.TensorElementDataTypeInt8:     DTInt8,
	ort.TensorElementDataTypeInt16:    DTInt16,
	ort.TensorElementDataTypeInt32:    DTInt32,
	ort.TensorElementDataTypeInt64:    DTInt64,
	ort.TensorElementDataTypeFloat16:  DTFP16,
	ort.TensorElementDataTypeBFloat16: DTBF16,
	ort.TensorElementDataTypeFloat:    DTFP32,
	ort.TensorElementDataTypeDouble:   DTFP64,
	ort.TensorElementDataTypeString:   DTBytes,
}

// datatypeOf returns the V2 datatype of an ONNX Runtime element type, and
// false when it has none.
func datatypeOf(t ort.TensorElementDataType) (string, bool) {
	dt, ok := datatypes[t]
	return dt, ok
}

// elementTypeOf returns the ONNX Runtime element type of a V2 datatype,
// and false for a name that is not a V2 datatype.
func elementTypeOf(dt string) (ort.TensorElementDataType, bool) {
	switch dt {
	case DTBool:
		return ort.TensorElementDataTypeBool, true
	case DTUint8:
		return ort.TensorElementDataTypeUint8, true
	case DTUint16:
		return ort.TensorElementDataTypeUint16, true
	case DTUint32:
		return ort.TensorElementDataTypeUint32, true
	case DTUint64:
		return ort.TensorElementDataTypeUint64, true
	case DTInt8:
		return ort.TensorElementDataTypeInt8, true
	case DTInt16:
		return ort.TensorElementDataTypeInt16, true
	case DTInt32:
		return ort.TensorElementDataTypeInt32, true
	case DTInt64:
		return ort.TensorElementDataTypeInt64, true
	case DTFP16:
		return ort.TensorElementDataTypeFloat16, true
	case DTBF16:
		return ort.TensorElementDataTypeBFloat16, true
	case DTFP32:
		return ort.TensorElementDataTypeFloat, true
	case DTFP64:
		return ort.TensorElementDataTypeDouble, true
	case DTBytes:
		return ort.TensorElementDataTypeString, true
	}
	return ort.TensorElementDataTypeUndefined, false
}

// ValidDatatype reports whether dt is a V2 datatype that abgate serves.
func ValidDatatype(dt string) bool {
	_, ok := elementTypeOf(dt)
	return ok
}

// DatatypeSize returns the bytes one element of dt takes in a binary
// tensor: 1 for BOOL, UINT8, INT8; 2 for the 16-bit types; 4 and 8 for
// the wider ones; 0 for BYTES (variable) and for an unknown datatype.
func DatatypeSize(dt string) int {
	switch dt {
	case DTBool, DTUint8, DTInt8:
		return 1
	case DTUint16, DTInt16, DTFP16, DTBF16:
		return 2
	case DTUint32, DTInt32, DTFP32:
		return 4
	case DTUint64, DTInt64, DTFP64:
		return 8
	}
	return 0
}

// allDatatypes lists the V2 datatypes in the order of error messages.
const allDatatypes = "BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64, BYTES"

// MakeData returns a zeroed data slice of n elements of the Go type that
// Tensor documents for dt, or nil for an unknown datatype.
func MakeData(dt string, n int) any {
	switch dt {
	case DTBool:
		return make([]bool, n)
	case DTUint8:
		return make([]uint8, n)
	case DTUint16, DTFP16, DTBF16:
		return make([]uint16, n)
	case DTUint32:
		return make([]uint32, n)
	case DTUint64:
		return make([]uint64, n)
	case DTInt8:
		return make([]int8, n)
	case DTInt16:
		return make([]int16, n)
	case DTInt32:
		return make([]int32, n)
	case DTInt64:
		return make([]int64, n)
	case DTFP32:
		return make([]float32, n)
	case DTFP64:
		return make([]float64, n)
	case DTBytes:
		return make([]string, n)
	}
	return nil
}

// DataLen returns the number of elements of a tensor data slice, and false
// when data is not a slice of a Tensor data type, or not the one of dt.
func DataLen(dt string, data any) (int, bool) {
	switch d := data.(type) {
	case []bool:
		return len(d), dt == DTBool
	case []uint8:
		return len(d), dt == DTUint8
	case []uint16:
		return len(d), dt == DTUint16 || dt == DTFP16 || dt == DTBF16
	case []uint32:
		return len(d), dt == DTUint32
	case []uint64:
		return len(d), dt == DTUint64
	case []int8:
		return len(d), dt == DTInt8
	case []int16:
		return len(d), dt == DTInt16
	case []int32:
		return len(d), dt == DTInt32
	case []int64:
		return len(d), dt == DTInt64
	case []float32:
		return len(d), dt == DTFP32
	case []float64:
		return len(d), dt == DTFP64
	case []string:
		return len(d), dt == DTBytes
	}
	return 0, false
}

// goTypeName names the Go type that Tensor.Data must have for dt.
func goTypeName(dt string) string {
	switch dt {
	case DTBool:
		return "[]bool"
	case DTUint8:
		return "[]uint8"
	case DTUint16, DTFP16, DTBF16:
		return "[]uint16"
	case DTUint32:
		return "[]uint32"
	case DTUint64:
		return "[]uint64"
	case DTInt8:
		return "[]int8"
	case DTInt16:
		return "[]int16"
	case DTInt32:
		return "[]int32"
	case DTInt64:
		return "[]int64"
	case DTFP32:
		return "[]float32"
	case DTFP64:
		return "[]float64"
	case DTBytes:
		return "[]string"
	}
	return "nothing"
}

// Float16ToFloat32 returns the value of the IEEE 754 half-precision bit
// pattern h. Every half is exactly a float32.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN; keep the NaN payload's top bits
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant * 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToFloat16 returns the IEEE 754 half-precision bit pattern nearest
// to f (round half to even); values beyond the half range become ±Inf and
// a NaN stays a (quiet) NaN.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half or zero: shift the mantissa with its implicit
		// bit into place and round half to even.
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rest := m & (1<<shift - 1)
		if rest > half || (rest == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rest := mant & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to Inf: that is right
	}
	return sign | uint16(r)
}

// BFloat16ToFloat32 returns the value of the bfloat16 bit pattern h: the
// upper half of a float32.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBFloat16 returns the bfloat16 bit pattern nearest to f (round
// half to even); a NaN stays a (quiet) NaN.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7f800000 == 0x7f800000 && b&0x7fffff != 0 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

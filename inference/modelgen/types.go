package modelgen

import (
	"fmt"
	"strconv"
)

// ElemType is the element type of an ONNX tensor: the value of
// TensorProto.DataType in onnx.proto. The zero value is Undefined, which no
// tensor may have.
type ElemType int32

// Element types, numbered as in onnx.proto (ONNX 1.18). The names follow
// onnx.proto's upper-case names in Go's mixed case: Float is FLOAT, Uint8 is
// UINT8, and so on.
const (
	Undefined      ElemType = 0
	Float          ElemType = 1  // float32
	Uint8          ElemType = 2  // uint8
	Int8           ElemType = 3  // int8
	Uint16         ElemType = 4  // uint16
	Int16          ElemType = 5  // int16
	Int32          ElemType = 6  // int32
	Int64          ElemType = 7  // int64
	String         ElemType = 8  // UTF-8 or raw bytes, stored in string_data
	Bool           ElemType = 9  // one byte per element, 0 or 1
	Float16        ElemType = 10 // IEEE 754 half, bits as uint16
	Double         ElemType = 11 // float64
	Uint32         ElemType = 12 // uint32
	Uint64         ElemType = 13 // uint64
	Complex64      ElemType = 14 // two float32: real, imaginary
	Complex128     ElemType = 15 // two float64: real, imaginary
	BFloat16       ElemType = 16 // upper half of a float32, bits as uint16
	Float8E4M3FN   ElemType = 17
	Float8E4M3FNUZ ElemType = 18
	Float8E5M2     ElemType = 19
	Float8E5M2FNUZ ElemType = 20
	Uint4          ElemType = 21 // two per byte, first in the low nibble
	Int4           ElemType = 22 // two per byte, first in the low nibble
	Float4E2M1     ElemType = 23 // two per byte, first in the low nibble
)

var elemTypeNames = [...]string{
	Undefined:      "UNDEFINED",
	Float:          "FLOAT",
	Uint8:          "UINT8",
	Int8:           "INT8",
	Uint16:         "UINT16",
	Int16:          "INT16",
	Int32:          "INT32",
	Int64:          "INT64",
	String:         "STRING",
	Bool:           "BOOL",
	Float16:        "FLOAT16",
	Double:         "DOUBLE",
	Uint32:         "UINT32",
	Uint64:         "UINT64",
	Complex64:      "COMPLEX64",
	Complex128:     "COMPLEX128",
	BFloat16:       "BFLOAT16",
	Float8E4M3FN:   "FLOAT8E4M3FN",
	Float8E4M3FNUZ: "FLOAT8E4M3FNUZ",
	Float8E5M2:     "FLOAT8E5M2",
	Float8E5M2FNUZ: "FLOAT8E5M2FNUZ",
	Uint4:          "UINT4",
	Int4:           "INT4",
	Float4E2M1:     "FLOAT4E2M1",
}

// String returns the name of t in onnx.proto, such as "FLOAT" or "INT64", or
// "ElemType(N)" for a number this package does not know.
func (t ElemType) String() string {
	if t >= 0 && int(t) < len(elemTypeNames) {
		return elemTypeNames[t]
	}
	return "ElemType(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is a known element type other than Undefined.
func (t ElemType) Valid() bool {
	return t > Undefined && int(t) < len(elemTypeNames)
}

// Size returns the number of bytes one element of type t takes in raw_data.
// It returns 0 for String (stored as string_data), for the 4-bit types (two
// elements per byte) and for invalid types.
func (t ElemType) Size() int {
	switch t {
	case Uint8, Int8, Bool, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float, Int32, Uint32:
		return 4
	case Int64, Uint64, Double, Complex64:
		return 8
	case Complex128:
		return 16
	}
	return 0
}

// rawLen returns the length of raw_data for n elements of type t, or -1 if
// t has no raw representation.
func rawLen(t ElemType, n int64) int64 {
	switch t {
	case Uint4, Int4, Float4E2M1:
		return (n + 1) / 2
	}
	if s := t.Size(); s > 0 {
		return n * int64(s)
	}
	return -1
}

// dim is one axis of a tensor shape: a fixed size (value), a named dynamic
// axis (param, such as "batch"), or an anonymous unknown axis (unknown).
type dim struct {
	value   int64
	param   string
	unknown bool
}

// Type is the type of a graph input, output or intermediate value: a tensor
// of an element type and a shape, a sequence of a type, or a map from an
// element type to a type. Build one with TensorOf, TensorAnyRank, SequenceOf
// or MapOf; the zero Type is invalid.
type Type struct {
	kind   typeKind
	elem   ElemType // tensor element type or map key type
	dims   []dim    // tensor shape
	ranked bool     // the tensor has a shape (possibly rank 0)
	inner  *Type    // sequence element or map value
	err    error
}

type typeKind int

const (
	kindInvalid typeKind = iota
	kindTensor
	kindSequence
	kindMap
)

// TensorOf returns the type of a tensor of elem with the given shape. Each
// dim is an integer (int, int32 or int64, at least 0) for a fixed axis, a
// non-empty string for a named dynamic axis (dim_param, such as "batch"), or
// nil for an anonymous unknown axis. No dims means a scalar (rank 0). An
// invalid dim makes the type invalid; the error comes back from the Graph
// method that uses it.
func TensorOf(elem ElemType, dims ...any) Type {
	t := Type{kind: kindTensor, elem: elem, ranked: true}
	if !elem.Valid() {
		t.err = fmt.Errorf("invalid element type %v", elem)
		return t
	}
	t.dims = make([]dim, len(dims))
	for i, d := range dims {
		var v int64
		switch d := d.(type) {
		case nil:
			t.dims[i] = dim{unknown: true}
			continue
		case string:
			if d == "" {
				t.err = fmt.Errorf("dim %d: empty dim_param", i)
				return t
			}
			t.dims[i] = dim{param: d}
			continue
		case int:
			v = int64(d)
		case int32:
			v = int64(d)
		case int64:
			v = d
		default:
			t.err = fmt.Errorf("dim %d: %T is neither an integer, a string nor nil", i, d)
			return t
		}
		if v < 0 {
			t.err = fmt.Errorf("dim %d: negative size %d", i, v)
			return t
		}
		t.dims[i] = dim{value: v}
	}
	return t
}

// TensorAnyRank returns the type of a tensor of elem whose shape, even its
// rank, is unknown.
func TensorAnyRank(elem ElemType) Type {
	t := Type{kind: kindTensor, elem: elem}
	if !elem.Valid() {
		t.err = fmt.Errorf("invalid element type %v", elem)
	}
	return t
}

// SequenceOf returns the type of a sequence whose elements have type elem,
// such as the output of SequenceConstruct.
func SequenceOf(elem Type) Type {
	return Type{kind: kindSequence, inner: &elem, err: elem.check()}
}

// MapOf returns the type of a map from keys of element type key (an integer
// type or String) to values of type value, such as the maps in ZipMap's
// output.
func MapOf(key ElemType, value Type) Type {
	t := Type{kind: kindMap, elem: key, inner: &value, err: value.check()}
	switch key {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Uint32, Uint64, String:
	default:
		t.err = fmt.Errorf("invalid map key type %v", key)
	}
	return t
}

// check returns the first error in t or in the types it contains.
func (t Type) check() error {
	if t.err != nil {
		return t.err
	}
	if t.kind == kindInvalid {
		return fmt.Errorf("zero Type")
	}
	if t.inner != nil {
		return t.inner.check()
	}
	return nil
}

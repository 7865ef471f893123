package inference

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"abgate"
)

// The binary tensor data extension of KServe and Triton: a request or
// response body starts with a JSON header of InferenceHeaderContentLength
// bytes, followed by the raw bytes of the tensors whose JSON entries carry
// "parameters": {"binary_data_size": N}, in the order of those entries.
// Elements are little-endian; BOOL is one byte (0 or 1) per element; each
// BYTES element is a 4-byte little-endian length followed by its bytes;
// FP16 and BF16 are their 2-byte bit patterns.

// InferenceHeaderContentLength is the HTTP header that gives the length of
// the JSON part of a binary tensor request or response.
const InferenceHeaderContentLength = "Inference-Header-Content-Length"

// SplitBinaryRequest splits a body in the binary tensor format into its
// JSON header (the first headerLen bytes) and the blob of tensor data that
// follows it. Both share body's array. A headerLen that is not positive or
// is larger than the body is an EINVALID error.
func SplitBinaryRequest(body []byte, headerLen int) (header []byte, blob []byte, err error) {
	if headerLen <= 0 {
		return nil, nil, abgate.Errorf(abgate.EINVALID, "%s must be a positive number of bytes, not %d", InferenceHeaderContentLength, headerLen)
	}
	if headerLen > len(body) {
		return nil, nil, abgate.Errorf(abgate.EINVALID, "%s is %d but the body holds only %d bytes", InferenceHeaderContentLength, headerLen, len(body))
	}
	return body[:headerLen:headerLen], body[headerLen:], nil
}

// TakeBinaryData cuts the next size bytes off blob for tensor name: it
// returns them and the rest of blob. Call it for each tensor with a
// binary_data_size, in order; rest should be empty after the last one. A
// negative size or one beyond the bytes left is an EINVALID error naming
// the tensor.
func TakeBinaryData(blob []byte, name string, size int64) (data, rest []byte, err error) {
	if size < 0 {
		return nil, blob, abgate.Errorf(abgate.EINVALID, "tensor %q: binary_data_size must not be negative, got %d", name, size)
	}
	if size > int64(len(blob)) {
		return nil, blob, abgate.Errorf(abgate.EINVALID, "tensor %q: binary_data_size is %d but only %d bytes of binary data are left", name, size, len(blob))
	}
	return blob[:size:size], blob[size:], nil
}

// binaryElemSize returns the size in bytes of one element of datatype in
// the binary format; false for BYTES (variable) and unknown datatypes.
func binaryElemSize(datatype string) (int64, bool) {
	switch datatype {
	case DTBool, DTUint8, DTInt8:
		return 1, true
	case DTUint16, DTInt16, DTFP16, DTBF16:
		return 2, true
	case DTUint32, DTInt32, DTFP32:
		return 4, true
	case DTUint64, DTInt64, DTFP64:
		return 8, true
	}
	return 0, false
}

// DecodeBinaryTensor decodes raw, the binary data of one tensor, into a
// Tensor of the given name, datatype and shape, with Data of the Go type
// that Tensor documents. Data never aliases raw. A negative or oversized
// shape, an unknown datatype, a length of raw that is not the element count
// times the element size, a BOOL byte other than 0 or 1 and malformed BYTES
// elements are EINVALID errors that name the tensor and say what was
// expected and what was given.
func DecodeBinaryTensor(name, datatype string, shape []int64, raw []byte) (Tensor, error) {
	n, err := ElementCount(shape)
	if err != nil {
		return Tensor{}, abgate.Errorf(abgate.EINVALID, "tensor %q: %v", name, err)
	}
	t := Tensor{Name: name, Datatype: datatype, Shape: shape}
	if datatype == DTBytes {
		t.Data, err = decodeBinaryBytes(name, shape, n, raw)
		if err != nil {
			return Tensor{}, err
		}
		return t, nil
	}
	size, ok := binaryElemSize(datatype)
	if !ok {
		return Tensor{}, abgate.Errorf(abgate.EINVALID, "tensor %q: datatype %q is not one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64, BYTES", name, datatype)
	}
	if want := n * size; int64(len(raw)) != want {
		return Tensor{}, abgate.Errorf(abgate.EINVALID, "tensor %q: binary data holds %d bytes, but shape %v of %s needs %d (%d elements x %d bytes)", name, len(raw), shape, datatype, want, n, size)
	}
	switch datatype {
	case DTBool:
		for i, c := range raw {
			if c > 1 {
				return Tensor{}, abgate.Errorf(abgate.EINVALID, "tensor %q: BOOL element %d is byte %d; 0 or 1 expected", name, i, c)
			}
		}
		t.Data = decodeLE[bool](raw, int(n))
	case DTUint8:
		t.Data = decodeLE[uint8](raw, int(n))
	case DTInt8:
		t.Data = decodeLE[int8](raw, int(n))
	case DTUint16, DTFP16, DTBF16:
		t.Data = decodeLE[uint16](raw, int(n))
	case DTInt16:
		t.Data = decodeLE[int16](raw, int(n))
	case DTUint32:
		t.Data = decodeLE[uint32](raw, int(n))
	case DTInt32:
		t.Data = decodeLE[int32](raw, int(n))
	case DTFP32:
		t.Data = decodeLE[float32](raw, int(n))
	case DTUint64:
		t.Data = decodeLE[uint64](raw, int(n))
	case DTInt64:
		t.Data = decodeLE[int64](raw, int(n))
	case DTFP64:
		t.Data = decodeLE[float64](raw, int(n))
	}
	return t, nil
}

// fixedElem is an element type with a fixed-size binary form.
type fixedElem interface {
	~bool | ~uint8 | ~int8 | ~uint16 | ~int16 | ~uint32 | ~int32 | ~uint64 | ~int64 | ~float32 | ~float64
}

// hostLittleEndian reports whether the machine stores numbers
// little-endian, in which case the binary format is the memory layout of a
// Go slice and decoding is one copy.
func hostLittleEndian() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}

// decodeLE returns the n little-endian elements of raw, whose length is n
// times the element size (and, for bool, whose bytes are 0 or 1).
func decodeLE[T fixedElem](raw []byte, n int) []T {
	out := make([]T, n)
	if n == 0 {
		return out
	}
	if hostLittleEndian() {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(raw)), raw)
		return out
	}
	decodeLEPortable(raw, out)
	return out
}

// decodeLEPortable decodes without relying on the memory layout.
func decodeLEPortable[T fixedElem](raw []byte, out []T) {
	if b, ok := any(out).([]bool); ok {
		for i, c := range raw {
			b[i] = c != 0
		}
		return
	}
	_, _ = binary.Decode(raw, binary.LittleEndian, out)
}

// decodeBinaryBytes decodes n BYTES elements, each a 4-byte little-endian
// length and its bytes, filling raw exactly.
func decodeBinaryBytes(name string, shape []int64, n int64, raw []byte) ([]string, error) {
	if least := 4 * n; int64(len(raw)) < least {
		return nil, abgate.Errorf(abgate.EINVALID, "tensor %q: binary data holds %d bytes, but shape %v of BYTES needs at least %d (%d elements x a 4-byte length)", name, len(raw), shape, least, n)
	}
	out := make([]string, n)
	all := string(raw) // one allocation; the elements are substrings of it
	off := 0
	for i := range out {
		if len(raw)-off < 4 {
			return nil, abgate.Errorf(abgate.EINVALID, "tensor %q: BYTES element %d: its 4-byte length is cut off after %d bytes", name, i, len(raw)-off)
		}
		l := binary.LittleEndian.Uint32(raw[off:])
		off += 4
		if uint64(l) > uint64(len(raw)-off) {
			return nil, abgate.Errorf(abgate.EINVALID, "tensor %q: BYTES element %d has length %d but only %d bytes are left", name, i, l, len(raw)-off)
		}
		out[i] = all[off : off+int(l)]
		off += int(l)
	}
	if off != len(raw) {
		return nil, abgate.Errorf(abgate.EINVALID, "tensor %q: binary data holds %d bytes, but the %d BYTES elements of shape %v end at byte %d", name, len(raw), n, shape, off)
	}
	return out, nil
}

// EncodeBinaryTensor returns the binary form of t's data, for a response
// output that the client asked for with "binary_data": true; its length
// goes into the output's "binary_data_size" parameter. Data of a Go type
// other than the one Tensor documents for t.Datatype, or of a length other
// than the shape's element count, is an error (an internal one: outputs
// come from the server).
func EncodeBinaryTensor(t Tensor) ([]byte, error) {
	size, err := BinaryTensorSize(t)
	if err != nil {
		return nil, err
	}
	return AppendBinaryTensor(make([]byte, 0, size), t)
}

// BinaryTensorSize returns the length of the binary form of t, with the
// errors of EncodeBinaryTensor.
func BinaryTensorSize(t Tensor) (int, error) {
	n, err := checkBinaryData(t)
	if err != nil {
		return 0, err
	}
	if t.Datatype == DTBytes {
		size := 4 * n
		for _, s := range t.Data.([]string) {
			size += len(s)
		}
		return size, nil
	}
	size, _ := binaryElemSize(t.Datatype)
	return n * int(size), nil
}

// AppendBinaryTensor appends the binary form of t to dst, so that a
// response's tensors can be written into one buffer. Errors are those of
// EncodeBinaryTensor; dst is returned unchanged with them.
func AppendBinaryTensor(dst []byte, t Tensor) ([]byte, error) {
	if _, err := checkBinaryData(t); err != nil {
		return dst, err
	}
	switch d := t.Data.(type) {
	case []bool:
		return appendLE(dst, d), nil
	case []uint8:
		return append(dst, d...), nil
	case []int8:
		return appendLE(dst, d), nil
	case []uint16:
		return appendLE(dst, d), nil
	case []int16:
		return appendLE(dst, d), nil
	case []uint32:
		return appendLE(dst, d), nil
	case []int32:
		return appendLE(dst, d), nil
	case []float32:
		return appendLE(dst, d), nil
	case []uint64:
		return appendLE(dst, d), nil
	case []int64:
		return appendLE(dst, d), nil
	case []float64:
		return appendLE(dst, d), nil
	case []string:
		for _, s := range d {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
			dst = append(dst, s...)
		}
		return dst, nil
	}
	return dst, fmt.Errorf("tensor %q: cannot encode data of type %T", t.Name, t.Data)
}

// checkBinaryData checks that t's Data has the Go type of its datatype and
// the element count of its shape, and returns that count.
func checkBinaryData(t Tensor) (int, error) {
	n, err := ElementCount(t.Shape)
	if err != nil {
		return 0, fmt.Errorf("tensor %q: %v", t.Name, err)
	}
	var ok bool
	length := -1
	switch d := t.Data.(type) {
	case []bool:
		ok, length = t.Datatype == DTBool, len(d)
	case []uint8:
		ok, length = t.Datatype == DTUint8, len(d)
	case []int8:
		ok, length = t.Datatype == DTInt8, len(d)
	case []uint16:
		ok, length = t.Datatype == DTUint16 || t.Datatype == DTFP16 || t.Datatype == DTBF16, len(d)
	case []int16:
		ok, length = t.Datatype == DTInt16, len(d)
	case []uint32:
		ok, length = t.Datatype == DTUint32, len(d)
	case []int32:
		ok, length = t.Datatype == DTInt32, len(d)
	case []float32:
		ok, length = t.Datatype == DTFP32, len(d)
	case []uint64:
		ok, length = t.Datatype == DTUint64, len(d)
	case []int64:
		ok, length = t.Datatype == DTInt64, len(d)
	case []float64:
		ok, length = t.Datatype == DTFP64, len(d)
	case []string:
		ok, length = t.Datatype == DTBytes, len(d)
		for i, s := range d {
			if uint64(len(s)) > math.MaxUint32 {
				return 0, fmt.Errorf("tensor %q: BYTES element %d is longer than 4 GiB", t.Name, i)
			}
		}
	}
	if !ok {
		return 0, fmt.Errorf("tensor %q: data of type %T does not hold datatype %s", t.Name, t.Data, t.Datatype)
	}
	if int64(length) != n {
		return 0, fmt.Errorf("tensor %q: data holds %d elements but shape %v needs %d", t.Name, length, t.Shape, n)
	}
	return int(n), nil
}

// appendLE appends the little-endian bytes of s to dst.
func appendLE[T fixedElem](dst []byte, s []T) []byte {
	if len(s) == 0 {
		return dst
	}
	if hostLittleEndian() {
		return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))...)
	}
	return appendLEPortable(dst, s)
}

// appendLEPortable encodes without relying on the memory layout.
func appendLEPortable[T fixedElem](dst []byte, s []T) []byte {
	if b, ok := any(s).([]bool); ok {
		for _, v := range b {
			if v {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		}
		return dst
	}
	out, _ := binary.Append(dst, binary.LittleEndian, s)
	return out
}

package inference

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
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
	return decodeBinaryTensor(name, datatype, shape, raw, false)
}

// decodeBinaryTensor is DecodeBinaryTensor; with alias, the Data of a
// fixed-size datatype may be raw itself (see leData).
func decodeBinaryTensor(name, datatype string, shape []int64, raw []byte, alias bool) (Tensor, error) {
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
		return Tensor{}, abgate.Errorf(abgate.EINVALID, "tensor %q: binary data holds %d bytes, but shape %s of %s needs %d (%d elements x %d bytes)", name, len(raw), formatShape(shape), datatype, want, n, size)
	}
	switch datatype {
	case DTBool:
		for i, c := range raw {
			if c > 1 {
				return Tensor{}, abgate.Errorf(abgate.EINVALID, "tensor %q: BOOL element %d is byte %d; 0 or 1 expected", name, i, c)
			}
		}
		t.Data = leData[bool](raw, int(n), alias)
	case DTUint8:
		t.Data = leData[uint8](raw, int(n), alias)
	case DTInt8:
		t.Data = leData[int8](raw, int(n), alias)
	case DTUint16, DTFP16, DTBF16:
		t.Data = leData[uint16](raw, int(n), alias)
	case DTInt16:
		t.Data = leData[int16](raw, int(n), alias)
	case DTUint32:
		t.Data = leData[uint32](raw, int(n), alias)
	case DTInt32:
		t.Data = leData[int32](raw, int(n), alias)
	case DTFP32:
		t.Data = leData[float32](raw, int(n), alias)
	case DTUint64:
		t.Data = leData[uint64](raw, int(n), alias)
	case DTInt64:
		t.Data = leData[int64](raw, int(n), alias)
	case DTFP64:
		t.Data = leData[float64](raw, int(n), alias)
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

// leData returns the n little-endian elements of raw, whose length is n
// times the element size: raw itself, without copying, when alias is set,
// the machine is little-endian and raw is aligned for T; else a copy
// (decodeLE).
func leData[T fixedElem](raw []byte, n int, alias bool) []T {
	if alias && n > 0 && hostLittleEndian() && uintptr(unsafe.Pointer(&raw[0]))%unsafe.Alignof(*new(T)) == 0 {
		return unsafe.Slice((*T)(unsafe.Pointer(&raw[0])), n)
	}
	return decodeLE[T](raw, n)
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
		return nil, abgate.Errorf(abgate.EINVALID, "tensor %q: binary data holds %d bytes, but shape %s of BYTES needs at least %d (%d elements x a 4-byte length)", name, len(raw), formatShape(shape), least, n)
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
		return nil, abgate.Errorf(abgate.EINVALID, "tensor %q: binary data holds %d bytes, but the %d BYTES elements of shape %s end at byte %d", name, len(raw), n, formatShape(shape), off)
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

// Parameters of the binary tensor data extension.
const (
	// ParamBinaryDataSize is the tensor parameter that gives the length of
	// the tensor's data in the binary part of a body.
	ParamBinaryDataSize = "binary_data_size"
	// ParamBinaryData is the requested-output parameter that asks for the
	// output as binary data (true) or JSON (false).
	ParamBinaryData = "binary_data"
	// ParamBinaryDataOutput is the request parameter that asks for every
	// output as binary data, unless an output says otherwise.
	ParamBinaryDataOutput = "binary_data_output"
)

// DecodeBinaryInferRequest decodes a V2 inference request in the binary
// tensor format: the JSON header of headerLen bytes (the value of the
// Inference-Header-Content-Length header), then the data of the inputs
// whose parameters give a binary_data_size, in their order; inputs with
// "data" in the JSON may come between them. The errors are EINVALID: those
// of SplitBinaryRequest and DecodeInferRequest; a binary_data_size that is
// not a whole number of bytes, or beside "data"; binary data that is
// shorter than the sizes announce, or longer (bytes left over), or whose
// length does not fit the tensor's shape and datatype (DecodeBinaryTensor).
// Each names the tensor. The result does not refer to body.
func DecodeBinaryInferRequest(body []byte, headerLen int) (*InferRequest, error) {
	return decodeBinaryInferRequest(body, headerLen, false)
}

// decodeBinaryInferRequest is DecodeBinaryInferRequest; with alias, the
// data of the binary inputs of fixed-size datatypes may be parts of body,
// without copying, so body must outlive the request and not change.
func decodeBinaryInferRequest(body []byte, headerLen int, alias bool) (*InferRequest, error) {
	header, blob, err := SplitBinaryRequest(body, headerLen)
	if err != nil {
		return nil, err
	}
	req, err := DecodeInferRequest(header)
	if err != nil {
		if msg := abgate.ErrorMessage(err); strings.HasPrefix(msg, "malformed JSON") {
			return nil, abgate.Errorf(abgate.EINVALID, "%s (the JSON header is the first %d bytes of the body, as %s says)", msg, headerLen, InferenceHeaderContentLength)
		}
		return nil, err
	}
	last := ""
	for i := range req.Inputs {
		in := &req.Inputs[i]
		v, ok := in.Parameters[ParamBinaryDataSize]
		if !ok {
			continue
		}
		field := "inputs." + in.Name
		if in.Data != nil {
			return nil, abgate.FieldErrorf(field, `input %q has both "data" and a %s parameter; send one`, in.Name, ParamBinaryDataSize)
		}
		size, ok := wholeNumber(v)
		if !ok {
			return nil, abgate.FieldErrorf(field, "input %q: %s is %v; it must be a whole number of bytes", in.Name, ParamBinaryDataSize, jsonText(v))
		}
		raw, rest, err := TakeBinaryData(blob, in.Name, size)
		if err != nil {
			return nil, withField(err, field)
		}
		blob = rest
		t, err := decodeBinaryTensor(in.Name, in.Datatype, in.Shape, raw, alias)
		if err != nil {
			return nil, withField(err, field)
		}
		in.Data = t.Data
		last = in.Name
	}
	if len(blob) > 0 {
		if last == "" {
			return nil, abgate.Errorf(abgate.EINVALID, "the body carries %d bytes of binary data after its %d-byte JSON header, but no input has a %s parameter", len(blob), headerLen, ParamBinaryDataSize)
		}
		return nil, abgate.FieldErrorf("inputs."+last, "the body carries %d bytes of binary data left over after the last binary input %q; the %s parameters must add up to the binary data", len(blob), last, ParamBinaryDataSize)
	}
	return req, nil
}

// wholeNumber returns v, a JSON number decoded as float64, as an int64
// when it is a whole number.
func wholeNumber(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// jsonText shows a JSON parameter value in a message.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// withField names field in err when it is an *abgate.Error without a field.
func withField(err error, field string) error {
	var e *abgate.Error
	if errors.As(err, &e) && e.Field == "" {
		return e.WithField(field)
	}
	return err
}

// AppendBinaryInferRequest appends req to dst in the binary tensor format,
// every input that has Data travelling as binary data, and returns the
// body and the length of its JSON header (the value of the
// Inference-Header-Content-Length header). req is not changed. Errors are
// those of EncodeBinaryTensor.
func AppendBinaryInferRequest(dst []byte, req *InferRequest) ([]byte, int, error) {
	hdr := *req
	hdr.Inputs = make([]InferInput, len(req.Inputs))
	for i, in := range req.Inputs {
		hdr.Inputs[i] = in
		if in.Data == nil {
			continue
		}
		size, err := BinaryTensorSize(in.Tensor)
		if err != nil {
			return dst, 0, err
		}
		hdr.Inputs[i].Data = nil
		hdr.Inputs[i].Parameters = withParam(in.Parameters, ParamBinaryDataSize, size)
	}
	start := len(dst)
	dst = AppendInferRequest(dst, &hdr)
	headerLen := len(dst) - start
	for _, in := range req.Inputs {
		if in.Data == nil {
			continue
		}
		var err error
		if dst, err = AppendBinaryTensor(dst, in.Tensor); err != nil {
			return dst[:start], 0, err
		}
	}
	return dst, headerLen, nil
}

// AppendBinaryInferResponse appends resp to dst in the binary tensor
// format: the outputs i for which binary[i] is true travel as binary data,
// with their binary_data_size in their parameters; the others as JSON. It
// returns the body and the length of its JSON header (the value of the
// Inference-Header-Content-Length header). resp is not changed. Errors are
// those of EncodeBinaryTensor.
func AppendBinaryInferResponse(dst []byte, resp *InferResponse, binary []bool) ([]byte, int, error) {
	hdr := *resp
	hdr.Outputs = make([]InferOutput, len(resp.Outputs))
	for i, o := range resp.Outputs {
		hdr.Outputs[i] = o
		if i >= len(binary) || !binary[i] {
			continue
		}
		size, err := BinaryTensorSize(o.Tensor)
		if err != nil {
			return dst, 0, err
		}
		hdr.Outputs[i].Data = nil
		hdr.Outputs[i].Parameters = withParam(o.Parameters, ParamBinaryDataSize, size)
	}
	start := len(dst)
	dst = AppendInferResponse(dst, &hdr)
	headerLen := len(dst) - start
	for i, o := range resp.Outputs {
		if i >= len(binary) || !binary[i] {
			continue
		}
		var err error
		if dst, err = AppendBinaryTensor(dst, o.Tensor); err != nil {
			return dst[:start], 0, err
		}
	}
	return dst, headerLen, nil
}

// DecodeBinaryInferResponse decodes a V2 inference response in the binary
// tensor format, the outputs with a binary_data_size taking their data from
// the binary part in order, with the rules and errors of
// DecodeBinaryInferRequest.
func DecodeBinaryInferResponse(body []byte, headerLen int) (*InferResponse, error) {
	header, blob, err := SplitBinaryRequest(body, headerLen)
	if err != nil {
		return nil, err
	}
	resp, err := DecodeInferResponse(header)
	if err != nil {
		return nil, err
	}
	for i := range resp.Outputs {
		o := &resp.Outputs[i]
		v, ok := o.Parameters[ParamBinaryDataSize]
		if !ok {
			continue
		}
		if o.Data != nil {
			return nil, abgate.FieldErrorf("outputs."+o.Name, `output %q has both "data" and a %s parameter`, o.Name, ParamBinaryDataSize)
		}
		size, ok := wholeNumber(v)
		if !ok {
			return nil, abgate.FieldErrorf("outputs."+o.Name, "output %q: %s is %v; it must be a whole number of bytes", o.Name, ParamBinaryDataSize, jsonText(v))
		}
		raw, rest, err := TakeBinaryData(blob, o.Name, size)
		if err != nil {
			return nil, err
		}
		blob = rest
		t, err := DecodeBinaryTensor(o.Name, o.Datatype, o.Shape, raw)
		if err != nil {
			return nil, err
		}
		o.Data = t.Data
	}
	if len(blob) > 0 {
		return nil, abgate.Errorf(abgate.EINVALID, "the response carries %d bytes of binary data left over", len(blob))
	}
	return resp, nil
}

// withParam returns a copy of p with key set to v.
func withParam(p map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(p)+1)
	for k, x := range p {
		out[k] = x
	}
	out[key] = v
	return out
}

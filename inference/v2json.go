package inference

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"abgate"
)

// InferRequest is a V2 (Open Inference Protocol) inference request:
//
//	{"id"?, "parameters"?, "inputs": [tensor...], "outputs"?: [{"name", "parameters"?}]}
type InferRequest struct {
	ID         string
	Parameters map[string]any
	Inputs     []InferInput
	Outputs    []RequestedOutput
}

// InferInput is an input tensor of a request with its parameters. Data is
// nil when the tensor travels as binary data (parameter binary_data_size).
// Parameters, here and in the other types, hold JSON values as
// encoding/json decodes them into an any: numbers are float64.
type InferInput struct {
	Tensor
	Parameters map[string]any
}

// RequestedOutput names an output that a request asks for, with its
// parameters (for example binary_data).
type RequestedOutput struct {
	Name       string
	Parameters map[string]any
}

// InferResponse is a V2 inference response:
//
//	{"model_name", "model_version", "id", "parameters"?, "outputs": [tensor...]}
type InferResponse struct {
	ModelName    string
	ModelVersion string
	ID           string
	Parameters   map[string]any
	Outputs      []InferOutput
}

// InferOutput is an output tensor of a response with its parameters.
type InferOutput struct {
	Tensor
	Parameters map[string]any
}

// DecodeInferRequest decodes the JSON of a V2 inference request. Tensor
// data is decoded straight into slices of the datatype's Go type (see
// Tensor); it may be flat or nested row-major arrays, which are flattened.
// Float data (FP16, BF16, FP32, FP64) may hold the strings "NaN",
// "Infinity" and "-Infinity" (the protobuf JSON mapping, which
// AppendInferResponse writes). Integers must be integer literals within
// their type's range. Unknown and repeated keys, a missing name, shape,
// datatype or data (data may be missing only when the input's parameters
// have binary_data_size), an unknown datatype and a data length that does
// not match the shape are EINVALID errors that name the tensor and say
// what was expected and given. The result does not refer to b.
func DecodeInferRequest(b []byte) (*InferRequest, error) {
	return decodeInferRequest(b, nil)
}

// decodeInferRequest is DecodeInferRequest, where floats (when not nil)
// may give the room of large FP32 tensors' data.
func decodeInferRequest(b []byte, floats func(n int) []float32) (*InferRequest, error) {
	room := &requestRoom{}
	s := scanner{b: b, floats: floats, room: room}
	req := &room.req
	req.Inputs = room.inputs[:0:len(room.inputs)]
	var seen seenKeys
	err := s.object("request", func(key []byte) error {
		switch string(key) {
		case "id":
			if err := seen.once(&s, "id"); err != nil {
				return err
			}
			id, err := s.stringValue("id")
			req.ID = id
			return err
		case "parameters":
			if err := seen.once(&s, "parameters"); err != nil {
				return err
			}
			p, err := s.parameters("parameters")
			req.Parameters = p
			return err
		case "inputs":
			if err := seen.once(&s, "inputs"); err != nil {
				return err
			}
			return s.array("inputs", func(i int) error {
				in, err := s.tensor(elementPath("inputs", i), true)
				if err == nil {
					req.Inputs = append(req.Inputs, InferInput{Tensor: in.Tensor, Parameters: in.params})
				}
				return err
			})
		case "outputs":
			if err := seen.once(&s, "outputs"); err != nil {
				return err
			}
			return s.array("outputs", func(i int) error {
				o, err := s.requestedOutput(elementPath("outputs", i))
				if err == nil {
					req.Outputs = append(req.Outputs, o)
				}
				return err
			})
		}
		return s.unknownKey(key)
	})
	if err != nil {
		return nil, err
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	if !seen.has("inputs") {
		return nil, abgate.FieldErrorf("inputs", `the request has no "inputs"`)
	}
	for i, in := range req.Inputs {
		for _, prev := range req.Inputs[:i] {
			if prev.Name == in.Name {
				return nil, abgate.FieldErrorf("inputs."+in.Name, "input %q is given twice", in.Name)
			}
		}
	}
	return req, nil
}

// DecodeInferResponse decodes the JSON of a V2 inference response, with
// the rules of DecodeInferRequest for its output tensors.
func DecodeInferResponse(b []byte) (*InferResponse, error) {
	s := scanner{b: b}
	resp := &InferResponse{}
	var seen seenKeys
	err := s.object("response", func(key []byte) error {
		k := string(key)
		if err := seen.once(&s, k); err != nil {
			return err
		}
		var err error
		switch k {
		case "model_name":
			resp.ModelName, err = s.stringValue(k)
		case "model_version":
			resp.ModelVersion, err = s.stringValue(k)
		case "id":
			resp.ID, err = s.stringValue(k)
		case "parameters":
			resp.Parameters, err = s.parameters(k)
		case "outputs":
			err = s.array("outputs", func(i int) error {
				o, err := s.tensor(elementPath("outputs", i), false)
				if err == nil {
					resp.Outputs = append(resp.Outputs, InferOutput{Tensor: o.Tensor, Parameters: o.params})
				}
				return err
			})
		default:
			err = s.unknownKey(key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	return resp, nil
}

// AppendInferRequest appends the JSON of req to dst. Inputs whose Data is
// nil are written without "data".
func AppendInferRequest(dst []byte, req *InferRequest) []byte {
	dst = append(dst, '{')
	if req.ID != "" {
		dst = append(dst, `"id":`...)
		dst = appendJSONString(dst, req.ID)
		dst = append(dst, ',')
	}
	dst = appendParameters(dst, req.Parameters)
	dst = append(dst, `"inputs":[`...)
	for i := range req.Inputs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendTensor(dst, &req.Inputs[i].Tensor, req.Inputs[i].Parameters)
	}
	dst = append(dst, ']')
	if len(req.Outputs) > 0 {
		dst = append(dst, `,"outputs":[`...)
		for i, o := range req.Outputs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			dst = appendParameters(dst, o.Parameters)
			dst = append(dst, `"name":`...)
			dst = appendJSONString(dst, o.Name)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// AppendInferResponse appends the JSON of resp to dst. Floats are written
// in their shortest form that reads back to the same value; NaN, +Inf and
// -Inf, which JSON numbers cannot hold, are written as the strings "NaN",
// "Infinity" and "-Infinity", as in the protobuf JSON mapping (V2 over
// gRPC-JSON) and as DecodeInferRequest reads them. FP16 and BF16 are
// written as their values, not their bit patterns. Outputs whose Data is
// nil are written without "data".
func AppendInferResponse(dst []byte, resp *InferResponse) []byte {
	dst = append(dst, `{"model_name":`...)
	dst = appendJSONString(dst, resp.ModelName)
	dst = append(dst, `,"model_version":`...)
	dst = appendJSONString(dst, resp.ModelVersion)
	if resp.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendJSONString(dst, resp.ID)
	}
	dst = append(dst, ',')
	dst = appendParameters(dst, resp.Parameters)
	dst = append(dst, `"outputs":[`...)
	for i := range resp.Outputs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendTensor(dst, &resp.Outputs[i].Tensor, resp.Outputs[i].Parameters)
	}
	return append(dst, "]}"...)
}

// appendParameters appends `"parameters":{...},` when p is not empty.
func appendParameters(dst []byte, p map[string]any) []byte {
	if len(p) == 0 {
		return dst
	}
	b, err := json.Marshal(p)
	if err != nil {
		return dst // values that JSON cannot hold are dropped
	}
	dst = append(dst, `"parameters":`...)
	dst = append(dst, b...)
	return append(dst, ',')
}

// appendTensor appends {"name","datatype","shape","parameters"?,"data"?}.
func appendTensor(dst []byte, t *Tensor, params map[string]any) []byte {
	dst = append(dst, `{"name":`...)
	dst = appendJSONString(dst, t.Name)
	dst = append(dst, `,"datatype":`...)
	dst = appendJSONString(dst, t.Datatype)
	dst = append(dst, `,"shape":[`...)
	for i, d := range t.Shape {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, d, 10)
	}
	dst = append(dst, ']')
	if len(params) > 0 {
		dst = append(dst, ',')
		dst = appendParameters(dst, params)
		dst = dst[:len(dst)-1]
	}
	if t.Data != nil {
		dst = append(dst, `,"data":`...)
		dst = appendData(dst, t.Datatype, t.Data)
	}
	return append(dst, '}')
}

// appendData appends a flat JSON array of tensor data.
func appendData(dst []byte, dt string, data any) []byte {
	dst = append(dst, '[')
	switch d := data.(type) {
	case []bool:
		for i, v := range d {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendBool(dst, v)
		}
	case []uint8:
		dst = appendUints(dst, d)
	case []uint16:
		switch dt {
		case DTFP16:
			for i, v := range d {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendFloat(dst, float64(Float16ToFloat32(v)), 32)
			}
		case DTBF16:
			for i, v := range d {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendFloat(dst, float64(BFloat16ToFloat32(v)), 32)
			}
		default:
			dst = appendUints(dst, d)
		}
	case []uint32:
		dst = appendUints(dst, d)
	case []uint64:
		dst = appendUints(dst, d)
	case []int8:
		dst = appendInts(dst, d)
	case []int16:
		dst = appendInts(dst, d)
	case []int32:
		dst = appendInts(dst, d)
	case []int64:
		dst = appendInts(dst, d)
	case []float32:
		for i, v := range d {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendFloat(dst, float64(v), 32)
		}
	case []float64:
		for i, v := range d {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendFloat(dst, v, 64)
		}
	case []string:
		for i, v := range d {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, v)
		}
	}
	return append(dst, ']')
}

func appendUints[T uint8 | uint16 | uint32 | uint64](dst []byte, d []T) []byte {
	for i, v := range d {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, uint64(v), 10)
	}
	return dst
}

func appendInts[T int8 | int16 | int32 | int64](dst []byte, d []T) []byte {
	for i, v := range d {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(v), 10)
	}
	return dst
}

// appendFloat appends f in its shortest form for bitSize, or one of the
// strings "NaN", "Infinity", "-Infinity".
func appendFloat(dst []byte, f float64, bitSize int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bitSize)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// scanner is a hand-written JSON scanner over a request body: it decodes
// the few objects of the V2 protocol and the numeric data arrays straight
// into typed slices, without building generic values.
type scanner struct {
	b []byte
	i int

	// floats, when set, may give the room of a large FP32 tensor's data
	// (an empty slice with room for n values), or nil.
	floats func(n int) []float32

	// room, when set, holds the small parts of what is decoded.
	room *requestRoom
}

// requestRoom is memory for the parts of a small inference request, taken
// in one allocation rather than one each: the request, its first input,
// the first dimensions of its shapes and the first FP32 values of its
// data, and the decoder of each data array in turn.
type requestRoom struct {
	req    InferRequest
	inputs [1]InferInput
	dims   [8]int64
	ndims  int
	floats [16]float32
	nfloat int
	dec    dataDecoder
}

// int64s returns an empty slice for up to n dimensions, in the room when
// it has them.
func (r *requestRoom) int64s(n int) []int64 {
	if r == nil || len(r.dims)-r.ndims < n {
		return make([]int64, 0, n)
	}
	d := r.dims[r.ndims : r.ndims : r.ndims+n]
	r.ndims += n
	return d
}

// float32s returns an empty slice for n FP32 values, in the room when it
// has them, else nil.
func (r *requestRoom) float32s(n int) []float32 {
	if r == nil || len(r.floats)-r.nfloat < n {
		return nil
	}
	f := r.floats[r.nfloat : r.nfloat : r.nfloat+n]
	r.nfloat += n
	return f
}

// decoder returns a data decoder, the room's when there is one.
func (r *requestRoom) decoder() *dataDecoder {
	if r == nil {
		return new(dataDecoder)
	}
	return &r.dec
}

// seenKeys records the keys of an object seen so far, to refuse repeats.
// The first keys go into a fixed array: the objects of the protocol have
// a handful.
type seenKeys struct {
	first [6]string
	n     int
	more  []string
}

func (k *seenKeys) once(s *scanner, key string) error {
	if k.has(key) {
		return s.errorf(key, "the key %q appears twice", key)
	}
	if k.n < len(k.first) {
		k.first[k.n] = key
		k.n++
	} else {
		k.more = append(k.more, key)
	}
	return nil
}

func (k *seenKeys) has(key string) bool {
	for _, s := range k.first[:k.n] {
		if s == key {
			return true
		}
	}
	for _, s := range k.more {
		if s == key {
			return true
		}
	}
	return false
}

func (s *scanner) errorf(field, format string, args ...any) error {
	return abgate.FieldErrorf(field, format, args...)
}

// syntax returns the error for malformed JSON at the scanner's position.
func (s *scanner) syntax(what string) error {
	if s.i >= len(s.b) {
		return abgate.Errorf(abgate.EINVALID, "malformed JSON: unexpected end of input, expected %s", what)
	}
	end := min(s.i+16, len(s.b))
	found := s.b[s.i:end]
	if !utf8.Valid(found) {
		return abgate.Errorf(abgate.EINVALID, "malformed JSON at byte %d: expected %s", s.i, what)
	}
	return abgate.Errorf(abgate.EINVALID, "malformed JSON at byte %d: expected %s, found %q", s.i, what, found)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end checks that only white space follows the value.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return abgate.Errorf(abgate.EINVALID, "malformed JSON at byte %d: data after the end of the request", s.i)
	}
	return nil
}

// peek returns the next non-space byte, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// literal consumes the literal word (true, false, null) if it is next.
func (s *scanner) literal(word string) bool {
	s.ws()
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// object reads an object whose key/value pairs fn consumes: fn is called
// with the scanner after the colon and must read the value.
func (s *scanner) object(what string, fn func(key []byte) error) error {
	if s.peek() != '{' {
		return s.kindError(what, "an object")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.syntax("a key string")
		}
		key, err := s.rawString()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.syntax("':'")
		}
		s.i++
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.syntax("',' or '}'")
		}
	}
}

// array reads an array whose elements fn consumes.
func (s *scanner) array(what string, fn func(i int) error) error {
	if s.peek() != '[' {
		return s.kindError(what, "an array")
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for i := 0; ; i++ {
		if err := fn(i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.syntax("',' or ']'")
		}
	}
}

// kindError says that what must be of kind but is something else.
func (s *scanner) kindError(what, kind string) error {
	c := s.peek()
	if c == 0 {
		return s.syntax(kind)
	}
	return s.errorf(what, "%s must be %s, not %s", what, kind, jsonKind(c))
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	case c == 0:
		return "the end of the input"
	}
	return fmt.Sprintf("%q", c)
}

// rawString reads a string and returns its content: a slice of the input
// when it has no escapes (valid only until the input changes), else the
// decoded bytes.
func (s *scanner) rawString() ([]byte, error) {
	start := s.i
	i := s.i + 1
	ascii, escaped := true, false
	for ; i < len(s.b); i++ {
		c := s.b[i]
		switch {
		case c == '"':
			s.i = i + 1
			content := s.b[start+1 : i]
			if escaped || (!ascii && !utf8.Valid(content)) {
				var str string
				if err := json.Unmarshal(s.b[start:s.i], &str); err != nil {
					s.i = start
					return nil, s.syntax("a valid string")
				}
				return []byte(str), nil
			}
			return content, nil
		case c == '\\':
			escaped = true
			i++
		case c < 0x20:
			s.i = i
			return nil, s.syntax("a string without control characters")
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	s.i = len(s.b)
	return nil, s.syntax("the end of a string")
}

// stringValue reads a string value.
func (s *scanner) stringValue(what string) (string, error) {
	if s.peek() != '"' {
		return "", s.kindError(what, "a string")
	}
	b, err := s.rawString()
	return string(b), err
}

// skip reads any value, nested to any depth.
func (s *scanner) skip() error {
	var buf [16]byte
	stack := buf[:0] // the open containers, '{' or '['
	for {
		// A value.
		switch c := s.peek(); c {
		case '{', '[':
			s.i++
			if n := s.peek(); (c == '{' && n == '}') || (c == '[' && n == ']') {
				s.i++
				break // an empty container is a whole value
			}
			stack = append(stack, c)
			if c == '{' {
				if err := s.skipKey(); err != nil {
					return err
				}
			}
			continue
		case '"':
			if _, err := s.rawString(); err != nil {
				return err
			}
		case 't', 'f', 'n':
			if !s.literal("true") && !s.literal("false") && !s.literal("null") {
				return s.syntax("a value")
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return s.syntax("a value")
			}
			var n number
			end, ok := n.scan(s.b, s.i)
			s.i = end
			if !ok {
				return s.syntax("a valid number")
			}
		}
		// After a value: the end, ',' (and in an object the next key), or
		// the end of the innermost container.
		for {
			if len(stack) == 0 {
				return nil
			}
			top := stack[len(stack)-1]
			c := s.peek()
			if c == ',' {
				s.i++
				if top == '{' {
					if err := s.skipKey(); err != nil {
						return err
					}
				}
				break
			}
			if (top == '{' && c == '}') || (top == '[' && c == ']') {
				s.i++
				stack = stack[:len(stack)-1]
				continue
			}
			return s.syntax("',' or the end of the container")
		}
	}
}

// skipKey reads `"key":`.
func (s *scanner) skipKey() error {
	if s.peek() != '"' {
		return s.syntax("a key string")
	}
	if _, err := s.rawString(); err != nil {
		return err
	}
	if s.peek() != ':' {
		return s.syntax("':'")
	}
	s.i++
	return nil
}

// parameters reads a parameters object: string keys to any JSON values,
// numbers as float64. An empty object is nil, as when the key is absent
// (AppendInferRequest writes neither).
func (s *scanner) parameters(what string) (map[string]any, error) {
	if s.peek() != '{' {
		return nil, s.kindError(what, "an object")
	}
	start := s.i
	if p, ok := s.flatParameters(); ok {
		return p, nil
	}
	// Nested values, and anything that is not valid JSON, go through
	// encoding/json, which decides and words the errors.
	s.i = start
	if err := s.skip(); err != nil {
		return nil, err
	}
	var p map[string]any
	if err := json.Unmarshal(s.b[start:s.i], &p); err != nil {
		return nil, s.errorf(what, "%s: %v", what, err)
	}
	if len(p) == 0 {
		return nil, nil
	}
	return p, nil
}

// flatParameters reads, at a '{', a parameters object whose values are
// strings, numbers, booleans or null, as the protocol's own parameters
// (binary_data_size, binary_data, classification, ...) are, into what
// encoding/json would decode (numbers as float64, nil for an empty
// object), in a fraction of its time: a binary request carries such an
// object per tensor. It returns false, at an undefined position, for any
// other object, valid or not.
func (s *scanner) flatParameters() (map[string]any, bool) {
	s.i++ // '{'
	if s.peek() == '}' {
		s.i++
		return nil, true
	}
	var p map[string]any
	for {
		if s.peek() != '"' {
			return nil, false
		}
		key, err := s.rawString()
		if err != nil || s.peek() != ':' {
			return nil, false
		}
		s.i++
		var v any
		switch c := s.peek(); {
		case c == '"':
			b, err := s.rawString()
			if err != nil {
				return nil, false
			}
			v = string(b)
		case s.literal("true"):
			v = true
		case s.literal("false"):
			v = false
		case s.literal("null"):
			v = nil
		case c == '-' || (c >= '0' && c <= '9'):
			var n number
			end, ok := n.scan(s.b, s.i)
			if !ok {
				return nil, false
			}
			f, err := strconv.ParseFloat(string(s.b[s.i:end]), 64)
			if err != nil {
				return nil, false // out of float64's range
			}
			v, s.i = f, end
		default:
			return nil, false
		}
		if p == nil {
			p = make(map[string]any, 1)
		}
		p[paramKey(key)] = v
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return p, true
		default:
			return nil, false
		}
	}
}

// paramKey returns key as a string, without a copy for the protocol's
// own parameters.
func paramKey(key []byte) string {
	switch string(key) {
	case ParamBinaryDataSize:
		return ParamBinaryDataSize
	case ParamBinaryData:
		return ParamBinaryData
	}
	return string(key)
}

// unknownKey is the error for a key the protocol does not have.
func (s *scanner) unknownKey(key []byte) error {
	return abgate.FieldErrorf(string(key), "unknown field %q", key)
}

// requestedOutput reads {"name", "parameters"?}.
func (s *scanner) requestedOutput(what string) (RequestedOutput, error) {
	var o RequestedOutput
	var seen seenKeys
	err := s.object(what, func(key []byte) error {
		k := string(key)
		if err := seen.once(s, k); err != nil {
			return err
		}
		var err error
		switch k {
		case "name":
			o.Name, err = s.stringValue(what + ".name")
		case "parameters":
			o.Parameters, err = s.parameters(what + ".parameters")
		default:
			err = s.unknownKey(key)
		}
		return err
	})
	if err == nil && o.Name == "" {
		err = s.errorf(what, `%s has no "name"`, what)
	}
	return o, err
}

// elementPaths are the paths of the first elements of "inputs" and
// "outputs", made once: requests rarely have more tensors.
var elementPaths = func() map[string][]string {
	m := map[string][]string{}
	for _, list := range []string{"inputs", "outputs"} {
		for i := range 8 {
			m[list] = append(m[list], list+"["+strconv.Itoa(i)+"]")
		}
	}
	return m
}()

// elementPath returns the path of element i of the list "inputs" or
// "outputs", as error messages name it.
func elementPath(list string, i int) string {
	if paths := elementPaths[list]; i < len(paths) {
		return paths[i]
	}
	return list + "[" + strconv.Itoa(i) + "]"
}

// tensorKey returns key as a string, without a copy for the keys of a
// tensor object.
func tensorKey(key []byte) string {
	switch string(key) {
	case "name":
		return "name"
	case "datatype":
		return "datatype"
	case "shape":
		return "shape"
	case "data":
		return "data"
	case "parameters":
		return "parameters"
	}
	return string(key)
}

// decodedTensor is a tensor of a request or response with its parameters.
type decodedTensor struct {
	Tensor
	params map[string]any
}

// tensor reads {"name", "datatype", "shape", "data", "parameters"?}. The
// data is decoded where it stands when the name and datatype came before
// it (the usual order), else after the object.
func (s *scanner) tensor(what string, input bool) (decodedTensor, error) {
	var t decodedTensor
	var seen seenKeys
	dataStart := -1
	kind := "input"
	if !input {
		kind = "output"
	}
	err := s.object(what, func(key []byte) error {
		k := tensorKey(key)
		if err := seen.once(s, k); err != nil {
			return err
		}
		var err error
		switch k {
		case "name":
			if s.peek() != '"' {
				return s.kindError(what+".name", "a string")
			}
			t.Name, err = s.stringValue("")
		case "datatype":
			if s.peek() != '"' {
				return s.kindError(what+".datatype", "a string")
			}
			var b []byte
			b, err = s.rawString()
			t.Datatype = datatypeString(b)
		case "shape":
			t.Shape, err = s.shape(what)
		case "parameters":
			t.params, err = s.parameters(what + ".parameters")
		case "data":
			if t.Name != "" && t.Datatype != "" {
				if err := s.checkDatatype(kind, &t.Tensor); err != nil {
					return err
				}
				t.Data, err = s.data(kind, &t.Tensor)
				return err
			}
			dataStart = s.i
			err = s.skip()
		default:
			err = s.unknownKey(key)
		}
		return err
	})
	if err != nil {
		return t, err
	}
	switch {
	case t.Name == "":
		return t, s.errorf(what, `%s has no "name"`, what)
	case !seen.has("datatype"):
		return t, s.errorf(kind+"s."+t.Name, `%s %q has no "datatype"`, kind, t.Name)
	case !seen.has("shape"):
		return t, s.errorf(kind+"s."+t.Name, `%s %q has no "shape"`, kind, t.Name)
	}
	if err := s.checkDatatype(kind, &t.Tensor); err != nil {
		return t, err
	}
	if dataStart >= 0 {
		end := s.i
		s.i = dataStart
		t.Data, err = s.data(kind, &t.Tensor)
		s.i = end
		if err != nil {
			return t, err
		}
	}
	if !seen.has("data") {
		if _, ok := t.params["binary_data_size"]; ok {
			return t, nil
		}
		return t, s.errorf(kind+"s."+t.Name, `%s %q has no "data" (nor a binary_data_size parameter)`, kind, t.Name)
	}
	n, _ := DataLen(t.Datatype, t.Data)
	count, err := ElementCount(t.Shape)
	if err != nil {
		return t, s.errorf(kind+"s."+t.Name, "%s %q: %v", kind, t.Name, err)
	}
	if int64(n) != count {
		return t, s.errorf(kind+"s."+t.Name, "%s %q: %d data elements given, shape %s needs %d", kind, t.Name, n, formatShape(t.Shape), count)
	}
	return t, nil
}

// datatypeString returns b as a string: the constant of a V2 datatype
// without a copy, else a copy.
func datatypeString(b []byte) string {
	switch string(b) {
	case DTBool:
		return DTBool
	case DTUint8:
		return DTUint8
	case DTUint16:
		return DTUint16
	case DTUint32:
		return DTUint32
	case DTUint64:
		return DTUint64
	case DTInt8:
		return DTInt8
	case DTInt16:
		return DTInt16
	case DTInt32:
		return DTInt32
	case DTInt64:
		return DTInt64
	case DTFP16:
		return DTFP16
	case DTBF16:
		return DTBF16
	case DTFP32:
		return DTFP32
	case DTFP64:
		return DTFP64
	case DTBytes:
		return DTBytes
	}
	return string(b)
}

func (s *scanner) checkDatatype(kind string, t *Tensor) error {
	if !ValidDatatype(t.Datatype) {
		return s.errorf(kind+"s."+t.Name, "%s %q: datatype %q is not a V2 datatype (%s)", kind, t.Name, t.Datatype, allDatatypes)
	}
	return nil
}

// shape reads an array of dimensions, each a non-negative integer; [] is
// the shape of a scalar.
func (s *scanner) shape(what string) ([]int64, error) {
	if s.peek() != '[' {
		// Said here, so that the path is put together only for the
		// error.
		return nil, s.kindError(what+".shape", "an array")
	}
	shape := s.room.int64s(4)
	err := s.array("", func(i int) error {
		c := s.peek()
		if c != '-' && (c < '0' || c > '9') {
			return s.errorf(what+".shape", "%s.shape[%d] must be a number, not %s", what, i, jsonKind(c))
		}
		var n number
		start := s.i
		end, ok := n.scan(s.b, s.i)
		s.i = end
		if !ok {
			return s.syntax("a valid number")
		}
		d, ok := n.int64(s.b[start:end])
		if !ok || d < 0 {
			return s.errorf(what+".shape", "%s.shape[%d] is %s; a dimension must be an integer of 0 or more", what, i, s.b[start:end])
		}
		shape = append(shape, d)
		return nil
	})
	return shape[:len(shape):len(shape)], err
}

// data reads the data array of t, whose name and datatype are known, into
// a slice of the datatype's Go type.
func (s *scanner) data(kind string, t *Tensor) (any, error) {
	if s.peek() != '[' {
		return nil, s.errorf(kind+"s."+t.Name, "%s %q: data must be an array, not %s", kind, t.Name, jsonKind(s.peek()))
	}
	// Room for the elements the shape announces, but never more than
	// the rest of the input can hold (two bytes an element), so that a
	// lying shape cannot make us allocate much.
	hint := 0
	if t.Shape != nil {
		if n, err := ElementCount(t.Shape); err == nil {
			hint = int(min(n, int64((len(s.b)-s.i)/2+1)))
		}
	}
	if !ValidDatatype(t.Datatype) {
		return nil, s.errorf(kind+"s."+t.Name, "%s %q: datatype %q is not a V2 datatype (%s)", kind, t.Name, t.Datatype, allDatatypes)
	}
	// The decoder escapes to the heap (decodeData calls the element
	// readers through function values): it works on copies of the
	// scanner and of the tensor's header, so that it does not take the
	// caller's scanner and tensor there with it.
	d := s.room.decoder()
	*d = dataDecoder{kind: kind, scan: *s, tensor: Tensor{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}}
	d.s, d.t = &d.scan, &d.tensor
	data, err := d.decode(hint)
	s.i = d.scan.i
	switch t.Datatype {
	case DTFP32, DTFP64:
		t.finite = err == nil && !d.nonFinite
	}
	return data, err
}

// decode reads the data array at the scanner's position into a slice of
// the datatype's Go type with room for hint elements; the datatype is
// valid.
func (d *dataDecoder) decode(hint int) (any, error) {
	switch d.t.Datatype {
	case DTFP32:
		var out []float32
		if d.s.floats != nil {
			out = d.s.floats(hint)
		}
		if out == nil {
			out = d.s.room.float32s(hint)
		}
		if out == nil {
			out = make([]float32, 0, hint)
		}
		return decodeData(d, out, func(d *dataDecoder, out []float32) ([]float32, error) { return floatRun(d, out, 32) })
	case DTFP64:
		return decodeData(d, make([]float64, 0, hint), func(d *dataDecoder, out []float64) ([]float64, error) { return floatRun(d, out, 64) })
	case DTFP16:
		return decodeData(d, make([]uint16, 0, hint), each((*dataDecoder).float16))
	case DTBF16:
		return decodeData(d, make([]uint16, 0, hint), each((*dataDecoder).bfloat16))
	case DTInt8:
		return decodeData(d, make([]int8, 0, hint), each(signed[int8]))
	case DTInt16:
		return decodeData(d, make([]int16, 0, hint), each(signed[int16]))
	case DTInt32:
		return decodeData(d, make([]int32, 0, hint), each(signed[int32]))
	case DTInt64:
		return decodeData(d, make([]int64, 0, hint), each(signed[int64]))
	case DTUint8:
		return decodeData(d, make([]uint8, 0, hint), each(unsigned[uint8]))
	case DTUint16:
		return decodeData(d, make([]uint16, 0, hint), each(unsigned[uint16]))
	case DTUint32:
		return decodeData(d, make([]uint32, 0, hint), each(unsigned[uint32]))
	case DTUint64:
		return decodeData(d, make([]uint64, 0, hint), each(unsigned[uint64]))
	case DTBool:
		return decodeData(d, make([]bool, 0, hint), each((*dataDecoder).bool))
	}
	return decodeData(d, make([]string, 0, hint), each((*dataDecoder).string))
}

// dataDecoder decodes the elements of one tensor's data.
type dataDecoder struct {
	s         *scanner
	kind      string
	t         *Tensor
	n         int  // index of the element being decoded
	nonFinite bool // a "NaN", "Infinity" or "-Infinity" was decoded

	scan   scanner // what s points to: a copy of the request's scanner
	tensor Tensor  // what t points to: the tensor's name, datatype and shape
}

// elemError is the error for the element being decoded.
func (d *dataDecoder) elemError(format string, args ...any) error {
	return abgate.FieldErrorf(d.kind+"s."+d.t.Name, "%s %q (%s): element %d: %s", d.kind, d.t.Name, d.t.Datatype, d.n, fmt.Sprintf(format, args...))
}

// found describes the value at the scanner's position for errors.
func (d *dataDecoder) found() string {
	s := d.s
	c := s.peek()
	if c == '-' || (c >= '0' && c <= '9') {
		var n number
		end, _ := n.scan(s.b, s.i)
		return string(s.b[s.i:end])
	}
	return jsonKind(c)
}

// decodeData reads a possibly nested array at the scanner's position,
// appending the leaves that elems decodes to out: at each leaf, elems
// reads one or more elements (see floatRun and each).
func decodeData[T any](d *dataDecoder, out []T, elems func(*dataDecoder, []T) ([]T, error)) ([]T, error) {
	s := d.s
	b := s.b
	i := s.i + 1 // after '['
	depth, open := 1, true
	for {
		// A value, or ']' right after '['.
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			s.i = i
			return nil, s.syntax("a value")
		}
		c := b[i]
		if c == '[' {
			depth++
			i++
			open = true
			continue
		}
		if c == ']' && open {
			depth--
			i++
			if depth == 0 {
				s.i = i
				return out, nil
			}
		} else {
			s.i = i
			var err error
			if out, err = elems(d, out); err != nil {
				return nil, err
			}
			i = s.i
		}
		// ',' or ']'.
		for {
			for i < len(b) && isSpace(b[i]) {
				i++
			}
			if i >= len(b) {
				s.i = i
				return nil, s.syntax("',' or ']'")
			}
			if b[i] == ',' {
				i++
				open = false
				break
			}
			if b[i] != ']' {
				s.i = i
				return nil, s.syntax("',' or ']'")
			}
			i++
			depth--
			if depth == 0 {
				s.i = i
				return out, nil
			}
		}
	}
}

// each returns the elems function of decodeData that reads one element
// with elem.
func each[T any](elem func(*dataDecoder) (T, error)) func(*dataDecoder, []T) ([]T, error) {
	return func(d *dataDecoder, out []T) ([]T, error) {
		v, err := elem(d)
		if err != nil {
			return out, err
		}
		d.n++
		return append(out, v), nil
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t'
}

// number is a JSON number being scanned: its decimal mantissa (up to 19
// significant digits) and exponent.
type number struct {
	mant    uint64
	exp     int  // the value is mant * 10^exp (when !trunc)
	neg     bool // a leading minus sign
	trunc   bool // more significant digits than mant holds
	integer bool // no fraction nor exponent
}

// scan reads a JSON number at b[i:], returning the index after it and
// whether it follows the JSON grammar.
func (n *number) scan(b []byte, i int) (int, bool) {
	*n = number{integer: true}
	if i < len(b) && b[i] == '-' {
		n.neg = true
		i++
	}
	if i >= len(b) {
		return i, false
	}
	nd := 0 // significant digits taken into mant
	digit := func(c byte) {
		if nd < 19 {
			n.mant = n.mant*10 + uint64(c-'0')
			if n.mant != 0 {
				nd++
			}
		} else {
			n.trunc = true
			n.exp++
		}
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			digit(b[i])
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		n.integer = false
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if nd < 19 {
				n.mant = n.mant*10 + uint64(b[i]-'0')
				if n.mant != 0 {
					nd++
				}
				n.exp--
			} else {
				n.trunc = true
			}
			i++
		}
		if i == start {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		n.integer = false
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		start := i
		e := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start {
			return i, false
		}
		if eneg {
			e = -e
		}
		n.exp += e
	}
	return i, true
}

// int64 returns the value of an integer number; text is its JSON text.
func (n *number) int64(text []byte) (int64, bool) {
	if !n.integer {
		return 0, false
	}
	if !n.trunc && n.mant <= math.MaxInt64 {
		if n.neg {
			return -int64(n.mant), true
		}
		return int64(n.mant), true
	}
	v, err := strconv.ParseInt(unsafe.String(&text[0], len(text)), 10, 64)
	return v, err == nil
}

// uint64 returns the value of a non-negative integer number.
func (n *number) uint64(text []byte) (uint64, bool) {
	if !n.integer || (n.neg && n.mant != 0) {
		return 0, false
	}
	if !n.trunc {
		return n.mant, true
	}
	v, err := strconv.ParseUint(unsafe.String(&text[0], len(text)), 10, 64)
	return v, err == nil
}

// float returns the value of the number at the scanner's position
// correctly rounded to bitSize (32 or 64) bits, taking the non-finite
// strings too. It fails with an element error.
func (d *dataDecoder) float(bitSize int) (float64, error) {
	s := d.s
	b := s.b
	c := s.peek()
	if f, end, ok := fastFloat(b, s.i, bitSize); ok {
		s.i = end
		return f, nil
	}
	if c == '"' {
		str, err := s.rawString()
		if err != nil {
			return 0, err
		}
		switch string(str) {
		case "NaN":
			d.nonFinite = true
			return math.NaN(), nil
		case "Infinity":
			d.nonFinite = true
			return math.Inf(1), nil
		case "-Infinity":
			d.nonFinite = true
			return math.Inf(-1), nil
		}
		return 0, d.elemError("%q is not a number (the only strings allowed are \"NaN\", \"Infinity\" and \"-Infinity\")", str)
	}
	if c != '-' && (c < '0' || c > '9') {
		return 0, d.elemError("a number is expected, not %s", jsonKind(c))
	}
	var n number
	start := s.i
	end, ok := n.scan(b, start)
	s.i = end
	if !ok {
		return 0, s.syntax("a valid number")
	}
	f, err := strconv.ParseFloat(unsafe.String(&b[start], end-start), bitSize)
	if err != nil {
		return 0, d.elemError("%s is out of the range of %s", b[start:end], d.t.Datatype)
	}
	return f, nil
}

// floatRun decodes a run of float elements: the element at the scanner's
// position and those that follow it after a comma, up to the first thing
// that is not a number (the end of the array, a nested array, a string),
// appending them to out; it leaves the scanner after the last element
// read. It reads a run in one loop, where decodeData would make a call
// per element, and for FP32 the numbers of the usual form with shortRun.
func floatRun[T float32 | float64](d *dataDecoder, out []T, bitSize int) ([]T, error) {
	s := d.s
	b := s.b
	i := s.i
	comma := -1 // index of the comma before i, when i follows one
	if bitSize == 32 && len(b)-i >= shortLanesMin {
		// A long run: eight numbers at a time, then in two lanes, once
		// each, then as below.
		o := any(out).([]float32)
		n := len(o)
		o, i = shortRunWide(b, i, o)
		o, i = shortRunLanes(b, i, o)
		if len(o) > n {
			d.n += len(o) - n
			if comma = i - 1; b[comma] == ' ' {
				comma--
			}
			out = any(o).([]T)
		}
	}
	for {
		if bitSize == 32 {
			n := len(out)
			if out, i = shortRun(b, i, out); len(out) > n {
				d.n += len(out) - n
				if comma = i - 1; b[comma] == ' ' {
					comma--
				}
			}
		}
		if comma >= 0 {
			for i < len(b) && isSpace(b[i]) {
				i++
			}
			if i >= len(b) || (b[i] != '-' && b[i]-'0' > 9) {
				s.i = comma // not a number: the run ends before the comma
				return out, nil
			}
		}
		f, end, ok := fastFloat(b, i, bitSize)
		if !ok {
			s.i = i
			var err error
			if f, err = d.float(bitSize); err != nil {
				return out, err
			}
			end = s.i
		}
		out = append(out, T(f))
		d.n++
		// Another number after a comma continues the run.
		comma = end
		for comma < len(b) && isSpace(b[comma]) {
			comma++
		}
		if comma >= len(b) || b[comma] != ',' {
			s.i = end
			return out, nil
		}
		i = comma + 1
	}
}

func (d *dataDecoder) float16() (uint16, error) {
	f, err := d.float(32)
	if err != nil {
		return 0, err
	}
	h := Float32ToFloat16(float32(f))
	if h&0x7fff == 0x7c00 && !math.IsInf(f, 0) {
		return 0, d.elemError("%v is out of the range of FP16 (±65504)", f)
	}
	return h, nil
}

func (d *dataDecoder) bfloat16() (uint16, error) {
	f, err := d.float(32)
	if err != nil {
		return 0, err
	}
	h := Float32ToBFloat16(float32(f))
	if h&0x7fff == 0x7f80 && !math.IsInf(f, 0) {
		return 0, d.elemError("%v is out of the range of BF16", f)
	}
	return h, nil
}

// integer scans an integer element, returning its text.
func (d *dataDecoder) integer() (number, []byte, error) {
	s := d.s
	var n number
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return n, nil, d.elemError("an integer is expected, not %s", jsonKind(c))
	}
	start := s.i
	end, ok := n.scan(s.b, start)
	s.i = end
	if !ok {
		return n, nil, s.syntax("a valid number")
	}
	text := s.b[start:end]
	if !n.integer {
		return n, nil, d.elemError("%s is not an integer", text)
	}
	return n, text, nil
}

// signed decodes an element of a signed integer type.
func signed[T int8 | int16 | int32 | int64](d *dataDecoder) (T, error) {
	n, text, err := d.integer()
	if err != nil {
		return 0, err
	}
	v, ok := n.int64(text)
	if !ok || int64(T(v)) != v {
		return 0, d.elemError("%s is out of the range of %s", text, d.t.Datatype)
	}
	return T(v), nil
}

// unsigned decodes an element of an unsigned integer type.
func unsigned[T uint8 | uint16 | uint32 | uint64](d *dataDecoder) (T, error) {
	n, text, err := d.integer()
	if err != nil {
		return 0, err
	}
	v, ok := n.uint64(text)
	if !ok || uint64(T(v)) != v {
		return 0, d.elemError("%s is out of the range of %s", text, d.t.Datatype)
	}
	return T(v), nil
}

func (d *dataDecoder) bool() (bool, error) {
	s := d.s
	switch {
	case s.literal("true"):
		return true, nil
	case s.literal("false"):
		return false, nil
	}
	return false, d.elemError("true or false is expected, not %s", d.found())
}

func (d *dataDecoder) string() (string, error) {
	s := d.s
	if s.peek() != '"' {
		return "", d.elemError("a string is expected, not %s", d.found())
	}
	b, err := s.rawString()
	return string(b), err
}

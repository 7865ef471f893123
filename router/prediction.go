package router

// This file holds the extraction of the predicted label and confidence
// from a backend's answer, which the exposure log records. Every routed
// answer passes through it, so V2 answers are read by a scanner over the
// bytes that decodes nothing but the outputs it needs; whatever that
// scanner is not sure to read exactly as encoding/json would (escaped
// keys, keys that match only case-insensitively, duplicate fields, nulls
// where values are expected, numbers out of range) goes to the
// encoding/json decoding, which defines the result.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// extractPrediction returns the predicted label and confidence of an
// answer, nil when it has none: for V2, the first element of the output
// named "label", else the argmax of the first row of "probabilities"
// (whose maximum is the confidence); for the image API, label (else
// predicted_class) and confidence of the first prediction. Binary tensor
// answers are not read.
func extractPrediction(kind proxyKind, h http.Header, body []byte) (*string, *float32) {
	if len(body) == 0 || body[0] != '{' || h.Get("Inference-Header-Content-Length") != "" {
		return nil, nil
	}
	if kind == proxyV2 {
		if label, conf, ok := extractV2Fast(body); ok {
			return label, conf
		}
		return extractV2(body)
	}
	return extractImage(body)
}

// v2Output is the part of a V2 output tensor that extraction reads.
type v2Output struct {
	Name  string          `json:"name"`
	Shape []int64         `json:"shape"`
	Data  json.RawMessage `json:"data"`
}

// extractV2 reads a V2 answer with encoding/json. Its result is the
// reference of extractV2Fast.
func extractV2(body []byte) (*string, *float32) {
	var resp struct {
		Outputs []v2Output `json:"outputs"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return nil, nil
	}
	var label *string
	var conf *float32
	for _, o := range resp.Outputs {
		switch o.Name {
		case "label":
			var data []any
			if json.Unmarshal(o.Data, &data) == nil && len(data) > 0 {
				if s, ok := targetString(data[0]); ok {
					label = &s
				}
			}
		case "probabilities":
			var data []float64
			if json.Unmarshal(o.Data, &data) != nil || len(data) == 0 {
				continue
			}
			k := len(data)
			if len(o.Shape) > 0 && o.Shape[len(o.Shape)-1] > 0 && int(o.Shape[len(o.Shape)-1]) < k {
				k = int(o.Shape[len(o.Shape)-1])
			}
			best := 0
			for i := 1; i < k; i++ {
				if data[i] > data[best] {
					best = i
				}
			}
			c := float32(data[best])
			conf = &c
			if label == nil {
				s := strconv.Itoa(best)
				label = &s
			}
		}
	}
	return label, conf
}

// extractV2Fast reads a V2 answer like extractV2 without decoding it: ok
// is false when the answer holds anything it does not read exactly as
// extractV2 would, invalid JSON included, and the caller must then use
// extractV2. It allocates only the label and confidence it returns.
func extractV2Fast(body []byte) (label *string, conf *float32, ok bool) {
	s := v2Scan{b: body}
	if s.next() != '{' {
		return nil, nil, false
	}
	s.i++
	var (
		seenOutputs bool
		haveLabel   bool
		labelStr    string
		haveConf    bool
		confVal     float32
	)
	if s.next() == '}' {
		s.i++
	} else {
		for {
			key, ok := s.key()
			if !ok {
				return nil, nil, false
			}
			switch {
			case string(key) == "outputs":
				if seenOutputs || s.next() != '[' {
					return nil, nil, false
				}
				seenOutputs = true
				s.i++
				if s.next() == ']' {
					s.i++
					break
				}
				for {
					o, ok := s.output()
					if !ok {
						return nil, nil, false
					}
					switch string(o.name) {
					case "label":
						l, set, ok := v2LabelData(o.data)
						if !ok {
							return nil, nil, false
						}
						if set {
							haveLabel, labelStr = true, l
						}
					case "probabilities":
						best, c, set, ok := v2ProbabilitiesData(o.data, o.lastDim)
						if !ok {
							return nil, nil, false
						}
						if set {
							haveConf, confVal = true, c
							if !haveLabel {
								haveLabel, labelStr = true, strconv.Itoa(best)
							}
						}
					}
					if !s.more(']') {
						if s.err {
							return nil, nil, false
						}
						break
					}
				}
			case v2FoldsTo(key, "outputs"):
				return nil, nil, false
			default:
				if !s.skip(0, false) {
					return nil, nil, false
				}
			}
			if !s.more('}') {
				if s.err {
					return nil, nil, false
				}
				break
			}
		}
	}
	if !s.end() { // trailing data
		return nil, nil, false
	}
	if haveLabel {
		label = &labelStr
	}
	if haveConf {
		conf = &confVal
	}
	return label, conf, true
}

// v2ScanOutput is what the scanner keeps of one V2 output tensor.
type v2ScanOutput struct {
	name    []byte
	data    []byte // the raw value; nil when absent
	lastDim int64  // the last dimension of the shape; 0 when there is none
}

// v2LabelData reads the data of a label output as extractV2 does: set
// reports whether its first element gives a label.
func v2LabelData(data []byte) (label string, set, ok bool) {
	if data == nil {
		return "", false, true // absent: encoding/json fails, no label
	}
	s := v2Scan{b: data}
	if s.next() != '[' {
		return "", false, false
	}
	s.i++
	if s.next() == ']' {
		return "", false, true
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		raw, escaped, ok := s.str()
		if !ok || escaped || !utf8.Valid(raw) {
			return "", false, false
		}
		label = string(raw)
	case c == '-' || (c >= '0' && c <= '9'):
		raw, ok := s.number()
		if !ok {
			return "", false, false
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return "", false, false
		}
		label = strconv.FormatFloat(f, 'f', -1, 64)
	case c == 't' || c == 'f':
		if !s.skip(0, false) {
			return "", false, false
		}
		label = string(s.b[start:s.i])
	default: // null, objects and arrays give no label
		return "", false, false
	}
	// The other elements must decode too (numbers in range).
	for s.more(']') {
		if !s.skip(0, true) {
			return "", false, false
		}
	}
	if s.err || !s.end() {
		return "", false, false
	}
	return label, true, true
}

// v2ProbabilitiesData reads the data of a probabilities output as
// extractV2 does: the argmax of its first lastDim values (of all when
// lastDim is not less than their number, or not positive) and its value;
// set is false when there is no value.
func v2ProbabilitiesData(data []byte, lastDim int64) (best int, conf float32, set, ok bool) {
	if data == nil {
		return 0, 0, false, true
	}
	s := v2Scan{b: data}
	switch s.next() {
	case 'n':
		if !s.literal("null") || !s.end() {
			return 0, 0, false, false
		}
		return 0, 0, false, true
	case '[':
	default:
		return 0, 0, false, false
	}
	s.i++
	if s.next() == ']' {
		return 0, 0, false, true
	}
	var bestV float64
	for n := 0; ; n++ {
		raw, ok := s.number()
		if !ok {
			return 0, 0, false, false
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return 0, 0, false, false
		}
		if n == 0 || ((lastDim <= 0 || int64(n) < lastDim) && f > bestV) {
			best, bestV = n, f
		}
		if !s.more(']') {
			break
		}
	}
	if s.err || !s.end() {
		return 0, 0, false, false
	}
	return best, float32(bestV), true, true
}

// v2FoldsTo reports whether key may match name the way encoding/json
// matches field names (case-insensitively, with Unicode folding): any
// non-ASCII key may.
func v2FoldsTo(key []byte, name string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return bytes.EqualFold(key, []byte(name))
}

// v2Scan is a cursor over JSON for extractV2Fast. It accepts a subset of
// valid JSON; anything else makes its methods fail.
type v2Scan struct {
	b   []byte
	i   int
	err bool // set by more on a byte that is neither ',' nor the end
}

// next skips white space and returns the next byte, 0 at the end.
func (s *v2Scan) next() byte {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// end skips white space and reports whether nothing else is left.
func (s *v2Scan) end() bool {
	s.next()
	return s.i == len(s.b)
}

// more consumes the ',' before another member or element and reports
// true, or consumes end and reports false; on anything else it sets err
// and reports false.
func (s *v2Scan) more(end byte) bool {
	switch s.next() {
	case ',':
		s.i++
		return true
	case end:
		s.i++
		return false
	}
	s.err = true
	return false
}

// key reads an object key without escapes and the colon after it.
func (s *v2Scan) key() ([]byte, bool) {
	if s.next() != '"' {
		return nil, false
	}
	k, escaped, ok := s.str()
	if !ok || escaped || s.next() != ':' {
		return nil, false
	}
	s.i++
	return k, true
}

// str reads a string at s.i and returns its bytes between the quotes,
// still escaped; escaped reports a backslash in it.
func (s *v2Scan) str() (raw []byte, escaped, ok bool) {
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return s.b[start:i], escaped, true
		case c == '\\':
			escaped = true
			i++
			if i >= len(s.b) {
				return nil, false, false
			}
			switch s.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.b) {
					return nil, false, false
				}
				for _, h := range s.b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return nil, false, false
					}
				}
				i += 4
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		}
	}
	return nil, false, false
}

// number reads a number in JSON's grammar at the next byte.
func (s *v2Scan) number() ([]byte, bool) {
	s.next()
	b, start, i := s.b, s.i, s.i
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	s.i = i
	return b[start:i], true
}

// literal reads the literal lit (true, false, null).
func (s *v2Scan) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// v2MaxDepth bounds the nesting the scanner skips; deeper answers go to
// encoding/json.
const v2MaxDepth = 64

// skip reads one value of any kind. With floats, every number in it must
// parse as a float64, as when decoding into interface values.
func (s *v2Scan) skip(depth int, floats bool) bool {
	if depth > v2MaxDepth {
		return false
	}
	switch c := s.next(); {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		s.i++
		if s.next() == '}' {
			s.i++
			return true
		}
		for {
			if _, ok := s.key(); !ok || !s.skip(depth+1, floats) {
				return false
			}
			if !s.more('}') {
				return !s.err
			}
		}
	case c == '[':
		s.i++
		if s.next() == ']' {
			s.i++
			return true
		}
		for {
			if !s.skip(depth+1, floats) {
				return false
			}
			if !s.more(']') {
				return !s.err
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		raw, ok := s.number()
		if ok && floats {
			_, err := strconv.ParseFloat(string(raw), 64)
			ok = err == nil
		}
		return ok
	}
	return false
}

// output reads one V2 output tensor object: its name, the raw value of
// its data and the last dimension of its shape.
func (s *v2Scan) output() (v2ScanOutput, bool) {
	var o v2ScanOutput
	if s.next() != '{' {
		return o, false
	}
	s.i++
	if s.next() == '}' {
		s.i++
		return o, true
	}
	var seenName, seenShape, seenData bool
	for {
		key, ok := s.key()
		if !ok {
			return o, false
		}
		switch {
		case string(key) == "name":
			if seenName || s.next() != '"' {
				return o, false
			}
			seenName = true
			var escaped bool
			if o.name, escaped, ok = s.str(); !ok || escaped {
				return o, false
			}
		case string(key) == "shape":
			if seenShape || s.next() != '[' {
				return o, false
			}
			seenShape = true
			s.i++
			if s.next() == ']' {
				s.i++
				break
			}
			for {
				raw, ok := s.number()
				if !ok {
					return o, false
				}
				d, err := strconv.ParseInt(string(raw), 10, 64)
				if err != nil {
					return o, false
				}
				o.lastDim = d
				if !s.more(']') {
					if s.err {
						return o, false
					}
					break
				}
			}
		case string(key) == "data":
			if seenData {
				return o, false
			}
			seenData = true
			s.next()
			from := s.i
			if !s.skip(0, false) {
				return o, false
			}
			o.data = s.b[from:s.i]
		case v2FoldsTo(key, "name"), v2FoldsTo(key, "shape"), v2FoldsTo(key, "data"):
			return o, false
		default:
			if !s.skip(0, false) {
				return o, false
			}
		}
		if !s.more('}') {
			return o, !s.err
		}
	}
}

// imagePrediction is the part of an image API answer that extraction
// reads.
type imagePrediction struct {
	PredictedClass *int              `json:"predicted_class"`
	Label          *string           `json:"label"`
	Confidence     *float32          `json:"confidence"`
	Predictions    []imagePrediction `json:"predictions"`
}

func extractImage(body []byte) (*string, *float32) {
	var p imagePrediction
	if json.Unmarshal(bytes.TrimSpace(body), &p) != nil {
		return nil, nil
	}
	if p.Label == nil && p.PredictedClass == nil && len(p.Predictions) > 0 {
		p = p.Predictions[0]
	}
	label := p.Label
	if label == nil && p.PredictedClass != nil {
		s := strconv.Itoa(*p.PredictedClass)
		label = &s
	}
	return label, p.Confidence
}

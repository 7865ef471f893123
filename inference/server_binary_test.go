package inference

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"abgate"
	"abgate/inference/modelgen"
)

// postBinary posts req in the binary tensor format and returns the
// response and its body.
func (ts *testServer) postBinary(t testing.TB, path string, req *InferRequest) (*http.Response, []byte) {
	t.Helper()
	body, n, err := AppendBinaryInferRequest(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	return ts.post(t, path, map[string]string{InferenceHeaderContentLength: strconv.Itoa(n), "Content-Type": "application/octet-stream"}, body)
}

// decodeAnswer decodes a 200 answer in JSON or, with the header, binary.
func decodeAnswer(t testing.TB, resp *http.Response, b []byte) *InferResponse {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var r *InferResponse
	var err error
	if h := resp.Header.Get(InferenceHeaderContentLength); h != "" {
		if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("binary answer of Content-Type %q, want application/octet-stream", ct)
		}
		n, _ := strconv.Atoi(h)
		r, err = DecodeBinaryInferResponse(b, n)
	} else {
		r, err = DecodeInferResponse(b)
	}
	if err != nil {
		t.Fatalf("%v in %q", err, b)
	}
	return r
}

// cnnImage returns a random 1x3x224x224 input for the demo CNN.
func cnnImage(seed uint64) Tensor {
	const n = modelgen.CNNChannels * modelgen.CNNSize * modelgen.CNNSize
	r := rand.New(rand.NewPCG(seed, 1))
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	return Tensor{Name: "input", Datatype: DTFP32, Shape: []int64{1, modelgen.CNNChannels, modelgen.CNNSize, modelgen.CNNSize}, Data: data}
}

// TestInferBinaryCNN: a binary FP32 request to the CNN answers what the
// JSON request answers, and outputs come back as binary data when asked.
func TestInferBinaryCNN(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	cnn, _ := modelgen.CNN()
	writeTestModel(t, dir, "cnn", "1", cnn, "instances: 1\n")
	ts := newTestServerWith(t, dir, Options{MaxBodyBytes: 8 << 20})
	img := cnnImage(7)
	req := &InferRequest{ID: "j", Inputs: []InferInput{{Tensor: img}}}

	resp, b := ts.post(t, "/v2/models/cnn/infer", nil, AppendInferRequest(nil, req))
	want := decodeAnswer(t, resp, b)
	if len(want.Outputs) != 2 {
		t.Fatalf("JSON answer %+v", want)
	}

	t.Run("binary input", func(t *testing.T) {
		resp, b := ts.postBinary(t, "/v2/models/cnn/infer", req)
		if resp.Header.Get(InferenceHeaderContentLength) != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("answer to a request without binary outputs: headers %v", resp.Header)
		}
		got := decodeAnswer(t, resp, b)
		for i := range want.Outputs {
			if !sameTensor(got.Outputs[i].Tensor, want.Outputs[i].Tensor) {
				t.Errorf("output %d = %+v, want %+v", i, got.Outputs[i].Tensor, want.Outputs[i].Tensor)
			}
		}
	})
	t.Run("versioned route", func(t *testing.T) {
		resp, b := ts.postBinary(t, "/v2/models/cnn/versions/1/infer", req)
		got := decodeAnswer(t, resp, b)
		if !sameTensor(got.Outputs[1].Tensor, want.Outputs[1].Tensor) {
			t.Errorf("probabilities = %v, want %v", got.Outputs[1].Data, want.Outputs[1].Data)
		}
	})
	t.Run("binary outputs", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			params map[string]any
			outs   []RequestedOutput
			binary []bool // of the answer's outputs
		}{
			{"one output asked binary", nil, []RequestedOutput{{Name: "probabilities", Parameters: map[string]any{"binary_data": true}}, {Name: "logits"}}, []bool{true, false}},
			{"all by the request parameter", map[string]any{"binary_data_output": true}, nil, []bool{true, true}},
			{"request parameter, one output not", map[string]any{"binary_data_output": true}, []RequestedOutput{{Name: "logits", Parameters: map[string]any{"binary_data": false}}, {Name: "probabilities"}}, []bool{false, true}},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := &InferRequest{Parameters: c.params, Inputs: req.Inputs, Outputs: c.outs}
				resp, b := ts.postBinary(t, "/v2/models/cnn/infer", r)
				h := resp.Header.Get(InferenceHeaderContentLength)
				n, err := strconv.Atoi(h)
				if err != nil || n <= 0 || n >= len(b) {
					t.Fatalf("%s %q with a body of %d bytes: %s", InferenceHeaderContentLength, h, len(b), b)
				}
				header := string(b[:n])
				got := decodeAnswer(t, resp, b)
				for i, o := range got.Outputs {
					w := want.Outputs[0].Tensor
					if o.Name == "probabilities" {
						w = want.Outputs[1].Tensor
					}
					if !sameTensor(o.Tensor, w) {
						t.Errorf("output %q = %+v, want %+v", o.Name, o.Tensor, w)
					}
					_, isBinary := o.Parameters["binary_data_size"]
					if isBinary != c.binary[i] {
						t.Errorf("output %q binary %v, want %v; header %s", o.Name, isBinary, c.binary[i], header)
					}
					if isBinary && o.Parameters["binary_data_size"] != float64(4*modelgen.CNNClasses) {
						t.Errorf("output %q binary_data_size %v, want %d", o.Name, o.Parameters["binary_data_size"], 4*modelgen.CNNClasses)
					}
				}
			})
		}
	})
}

// TestInferBinaryDatatypes round-trips every datatype through the Identity
// models in binary, both ways.
func TestInferBinaryDatatypes(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	for _, c := range identityCases {
		model, err := modelgen.Identity(c.elem)
		if err != nil {
			t.Fatal(err)
		}
		writeTestModel(t, dir, "identity_"+strings.ToLower(c.dt), "1", model, "instances: 1\n")
	}
	ts := newTestServer(t, dir)
	for _, c := range identityCases {
		t.Run(c.dt, func(t *testing.T) {
			x := Tensor{Name: "x", Datatype: c.dt, Shape: []int64{2, 3}, Data: c.want}
			req := &InferRequest{Inputs: []InferInput{{Tensor: x}}, Parameters: map[string]any{"binary_data_output": true}}
			resp, b := ts.postBinary(t, "/v2/models/identity_"+strings.ToLower(c.dt)+"/infer", req)
			got := decodeAnswer(t, resp, b)
			if want := (Tensor{Name: "y", Datatype: c.dt, Shape: []int64{2, 3}, Data: c.want}); !sameTensor(got.Outputs[0].Tensor, want) {
				t.Errorf("y = %+v, want %+v", got.Outputs[0].Tensor, want)
			}
		})
	}
}

// TestInferBinaryMixed: binary and JSON inputs in one request.
func TestInferBinaryMixed(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "multi", "1", modelgen.MultiIO(), "instances: 1\n")
	ts := newTestServer(t, dir)
	raw := binary.LittleEndian.AppendUint32(nil, math.Float32bits(1))
	raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(2))
	raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(3))
	header := `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}},{"name":"b","shape":[1,3],"datatype":"FP32","data":[10,20,30]}],"outputs":[{"name":"sum"}]}`
	resp, b := ts.post(t, "/v2/models/multi/infer", map[string]string{InferenceHeaderContentLength: strconv.Itoa(len(header))}, append([]byte(header), raw...))
	got := decodeAnswer(t, resp, b)
	if want := (Tensor{Name: "sum", Datatype: DTFP32, Shape: []int64{1, 3}, Data: []float32{11, 22, 33}}); len(got.Outputs) != 1 || !sameTensor(got.Outputs[0].Tensor, want) {
		t.Errorf("outputs %+v, want %+v", got.Outputs, want)
	}
}

// TestInferBinaryBadInput: each malformed binary request is a 400 whose
// message names the tensor (or the header at fault).
func TestInferBinaryBadInput(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	logreg, _ := modelgen.LogReg()
	writeTestModel(t, dir, "classifier", "1", logreg, "instances: 1\n")
	ts := newTestServer(t, dir)
	f32 := func(vs ...float32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	features := func(size int) string {
		return `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":` + strconv.Itoa(size) + `}}]}`
	}
	good := features(16)
	block := make([]float32, 64)
	for i := range block {
		block[i] = float32(i)
	}
	block[45] = float32(math.Inf(1))
	cases := []struct {
		name      string
		headerLen string // "" = the length of header
		header    string
		blob      []byte
		field     string
		want      []string
	}{
		{"header length not a number", "abc", good, f32(1, 2, 3, 4), "", []string{InferenceHeaderContentLength, `"abc"`}},
		{"header length zero", "0", good, f32(1, 2, 3, 4), "", []string{InferenceHeaderContentLength, "positive"}},
		{"header length beyond the body", "9999", good, f32(1, 2, 3, 4), "", []string{InferenceHeaderContentLength, "is 9999", "holds only"}},
		{"header length cuts the JSON", "20", good, f32(1, 2, 3, 4), "", []string{"malformed JSON", "the first 20 bytes of the body"}},
		{"short blob", "", good, f32(1, 2, 3), "inputs.features", []string{`"features"`, "binary_data_size is 16", "only 12 bytes"}},
		{"leftover bytes", "", good, f32(1, 2, 3, 4, 5), "inputs.features", []string{`"features"`, "4 bytes of binary data left over"}},
		{"size mismatch", "", features(12), f32(1, 2, 3), "inputs.features", []string{`"features"`, "holds 12 bytes", "needs 16"}},
		{"size not a whole number", "", `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":15.5}}]}`, f32(1, 2, 3, 4), "inputs.features", []string{`"features"`, "binary_data_size is 15.5", "whole number"}},
		{"binary data and no binary input", "", `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, f32(1), "", []string{"4 bytes of binary data", "no input has a binary_data_size"}},
		{"data and binary_data_size", "", `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4],"parameters":{"binary_data_size":16}}]}`, f32(1, 2, 3, 4), "inputs.features", []string{`"features"`, "both"}},
		{"NaN", "", good, f32(1, float32(math.NaN()), 3, 4), "inputs.features", []string{`input "features"`, "element 1 is NaN"}},
		// 16 rows: the check reads the 64 values as one AVX-512 block
		// where the CPU has it.
		{"Inf in a block of 64", "", `{"inputs":[{"name":"features","shape":[16,4],"datatype":"FP32","parameters":{"binary_data_size":256}}]}`,
			f32(block...), "inputs.features", []string{`input "features"`, "element 45 is +Inf"}},
		{"wrong shape", "", `{"inputs":[{"name":"features","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}]}`, f32(1, 2, 3), "inputs.features", []string{`input "features"`, "shape [1,3] given, [-1,4] expected"}},
		{"binary_data not a bool", "", `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"label","parameters":{"binary_data":"yes"}}]}`, nil, "outputs.label", []string{`output "label"`, "binary_data", "true or false"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := c.headerLen
			if n == "" {
				n = strconv.Itoa(len(c.header))
			}
			resp, b := ts.post(t, "/v2/models/classifier/infer", map[string]string{InferenceHeaderContentLength: n}, append([]byte(c.header), c.blob...))
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, b)
			}
			e := errorBody(t, b)
			if e.Code != abgate.EINVALID || (c.field != "" && e.Field != c.field) {
				t.Errorf("error %+v, want invalid with field %q", e, c.field)
			}
			for _, w := range c.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not contain %q", e.Message, w)
				}
			}
		})
	}
}

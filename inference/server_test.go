package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"abgate"
	"abgate/inference/modelgen"
)

// testServer is an inference server over HTTP on a repository in a
// temporary directory.
type testServer struct {
	*Server
	repo *Repository
	dir  string
	url  string
	reg  *prometheus.Registry
}

// newTestServer scans the repository in dir and serves it until t ends,
// with a body limit of 1 MiB.
func newTestServer(t testing.TB, dir string) *testServer {
	t.Helper()
	return newTestServerWith(t, dir, Options{MaxBodyBytes: 1 << 20})
}

// newTestServerWith is newTestServer with options (version "test").
func newTestServerWith(t testing.TB, dir string, opts Options) *testServer {
	t.Helper()
	needORT(t)
	repo := NewRepository(dir, nil)
	if err := repo.Scan(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Close)
	reg := prometheus.NewRegistry()
	opts.Version = "test"
	s := NewServer(repo, opts, nil, reg)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	s.Mount(r)
	hs := httptest.NewUnstartedServer(r)
	WaitForBodies(hs.Config)
	hs.Start()
	t.Cleanup(hs.Close)
	return &testServer{Server: s, repo: repo, dir: dir, url: hs.URL, reg: reg}
}

// do sends a request and returns the status and body.
func (ts *testServer) do(t testing.TB, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// post sends a POST with headers and returns the response, its body read.
func (ts *testServer) post(t testing.TB, path string, header map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", ts.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// infer posts a V2 request to model and decodes the answer, failing t
// unless it is 200.
func (ts *testServer) infer(t testing.TB, model, body string) *InferResponse {
	t.Helper()
	status, b := ts.do(t, "POST", "/v2/models/"+model+"/infer", body)
	if status != http.StatusOK {
		t.Fatalf("infer %s: %d %s", model, status, b)
	}
	if !json.Valid(b) {
		t.Fatalf("infer %s: invalid JSON %s", model, b)
	}
	resp, err := DecodeInferResponse(b)
	if err != nil {
		t.Fatalf("infer %s: %v in %s", model, err, b)
	}
	return resp
}

// errorBody decodes an error answer.
func errorBody(t testing.TB, b []byte) abgate.ErrorDetail {
	t.Helper()
	var body abgate.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Code == "" {
		t.Fatalf("not an error body: %s", b)
	}
	return body.Error
}

// identityCases are the data of every datatype that the Identity models
// round-trip through HTTP JSON, a [2, 3] tensor each.
var identityCases = []struct {
	elem modelgen.ElemType
	dt   string
	json string
	want any
}{
	{modelgen.Bool, DTBool, `[true,false,false,true,true,false]`, []bool{true, false, false, true, true, false}},
	{modelgen.Uint8, DTUint8, `[0,1,2,127,128,255]`, []uint8{0, 1, 2, 127, 128, 255}},
	{modelgen.Uint16, DTUint16, `[0,1,256,32768,65535,7]`, []uint16{0, 1, 256, 32768, 65535, 7}},
	{modelgen.Uint32, DTUint32, `[0,1,2147483648,4294967295,65536,7]`, []uint32{0, 1, 1 << 31, math.MaxUint32, 65536, 7}},
	{modelgen.Uint64, DTUint64, `[0,1,9223372036854775808,18446744073709551615,4294967296,7]`, []uint64{0, 1, 1 << 63, math.MaxUint64, 1 << 32, 7}},
	{modelgen.Int8, DTInt8, `[0,1,-1,127,-128,42]`, []int8{0, 1, -1, 127, -128, 42}},
	{modelgen.Int16, DTInt16, `[0,-1,256,32767,-32768,7]`, []int16{0, -1, 256, math.MaxInt16, math.MinInt16, 7}},
	{modelgen.Int32, DTInt32, `[0,-1,1048576,2147483647,-2147483648,7]`, []int32{0, -1, 1 << 20, math.MaxInt32, math.MinInt32, 7}},
	{modelgen.Int64, DTInt64, `[0,-1,1099511627776,9223372036854775807,-9223372036854775808,7]`, []int64{0, -1, 1 << 40, math.MaxInt64, math.MinInt64, 7}},
	{modelgen.Float16, DTFP16, `[1,-2,0.5,65504,5.9604645e-08,-0]`, []uint16{0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000}},
	{modelgen.BFloat16, DTBF16, `[1,-2,0.5,3.3895314e+38,1.5,-0]`, []uint16{0x3f80, 0xc000, 0x3f00, 0x7f7f, 0x3fc0, 0x8000}},
	{modelgen.Float, DTFP32, `[0,1.5,-2.25,3.4028235e+38,1e-45,0.1]`, []float32{0, 1.5, -2.25, math.MaxFloat32, math.SmallestNonzeroFloat32, 0.1}},
	{modelgen.Double, DTFP64, `[0,1e-300,-2.5,1.7976931348623157e+308,3.141592653589793,0.1]`, []float64{0, 1e-300, -2.5, math.MaxFloat64, math.Pi, 0.1}},
	{modelgen.String, DTBytes, `["","a","héllo wörld","日本語","with \"quotes\"\n","🙂"]`, []string{"", "a", "héllo wörld", "日本語", "with \"quotes\"\n", "🙂"}},
}

// TestInferEveryDatatype round-trips every datatype through HTTP JSON
// with the Identity models.
func TestInferEveryDatatype(t *testing.T) {
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
			name := "identity_" + strings.ToLower(c.dt)
			status, b := ts.do(t, "GET", "/v2/models/"+name, "")
			var md ModelMetadata
			if status != http.StatusOK || json.Unmarshal(b, &md) != nil {
				t.Fatalf("metadata: %d %s", status, b)
			}
			wantIO := []IOSpec{{Name: "x", Datatype: c.dt, Shape: []int64{-1, 3}, Servable: true}}
			if !reflect.DeepEqual(md.Inputs, wantIO) || md.Outputs[0].Datatype != c.dt || md.Platform != Platform || !slices.Equal(md.Versions, []string{"1"}) {
				t.Errorf("metadata %+v, want input %+v", md, wantIO)
			}
			resp := ts.infer(t, name, fmt.Sprintf(`{"id":"q","inputs":[{"name":"x","shape":[2,3],"datatype":%q,"data":%s}]}`, c.dt, c.json))
			if resp.ModelName != name || resp.ModelVersion != "1" || resp.ID != "q" || len(resp.Outputs) != 1 {
				t.Fatalf("response %+v", resp)
			}
			want := Tensor{Name: "y", Datatype: c.dt, Shape: []int64{2, 3}, Data: c.want}
			if got := resp.Outputs[0].Tensor; !sameTensor(got, want) {
				t.Errorf("y = %+v, want %+v", got, want)
			}
		})
	}
}

// TestInferModels runs scalars, dynamic axes, several inputs with a subset
// of outputs and a model with a sequence output through HTTP, and
// checks the classifier against the logistic regression done by hand.
func TestInferModels(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	logreg, lw := modelgen.LogReg()
	writeTestModel(t, dir, "classifier", "1", logreg, "instances: 1\n")
	writeTestModel(t, dir, "scalar", "1", modelgen.Scalar(), "instances: 1\n")
	writeTestModel(t, dir, "dynamic", "1", modelgen.AllDynamic(), "instances: 1\n")
	writeTestModel(t, dir, "multi", "1", modelgen.MultiIO(), "instances: 1\n")
	writeTestModel(t, dir, "sequence", "1", modelgen.SequenceOutput(), "instances: 1\n")
	ts := newTestServer(t, dir)

	t.Run("classifier by hand", func(t *testing.T) {
		features := tabularRows(3)
		data, _ := json.Marshal(features)
		resp := ts.infer(t, "classifier", `{"inputs":[{"name":"features","shape":[3,4],"datatype":"FP32","data":`+string(data)+`}]}`)
		probs, labels := tabularByHand(lw, features)
		if o := resp.Outputs[0]; o.Name != "probabilities" || !closeTo(o.Data.([]float32), probs, 1e-5) {
			t.Errorf("probabilities = %+v, want %v", o, probs)
		}
		if o := resp.Outputs[1]; o.Name != "label" || !slices.Equal(o.Data.([]int64), labels) {
			t.Errorf("label = %+v, want %v", o, labels)
		}
	})
	t.Run("scalar", func(t *testing.T) {
		resp := ts.infer(t, "scalar", `{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[3.5]}]}`)
		if got, want := resp.Outputs[0].Tensor, (Tensor{Name: "y", Datatype: DTFP32, Shape: []int64{}, Data: []float32{7}}); !sameTensor(got, want) {
			t.Errorf("y = %+v, want %+v", got, want)
		}
	})
	t.Run("dynamic axes", func(t *testing.T) {
		for _, shape := range []string{"[1,2,2]", "[2,1,2]", "[4,1,1]"} {
			resp := ts.infer(t, "dynamic", `{"inputs":[{"name":"x","shape":`+shape+`,"datatype":"FP32","data":[[[1,2]],[[3,4]]]}]}`)
			want := Tensor{Name: "y", Datatype: DTFP32, Shape: parseShape(t, shape), Data: []float32{2, 3, 4, 5}}
			if got := resp.Outputs[0].Tensor; !sameTensor(got, want) {
				t.Errorf("shape %s: y = %+v, want %+v", shape, got, want)
			}
		}
	})
	t.Run("several inputs, subset of outputs", func(t *testing.T) {
		resp := ts.infer(t, "multi", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[4,5,6]}],"outputs":[{"name":"product"},{"name":"sum"}]}`)
		if len(resp.Outputs) != 2 || !sameTensor(resp.Outputs[0].Tensor, Tensor{Name: "product", Datatype: DTFP32, Shape: []int64{1, 3}, Data: []float32{4, 10, 18}}) ||
			!sameTensor(resp.Outputs[1].Tensor, Tensor{Name: "sum", Datatype: DTFP32, Shape: []int64{1, 3}, Data: []float32{5, 7, 9}}) {
			t.Errorf("outputs %+v, want product and sum", resp.Outputs)
		}
	})
	t.Run("sequence output", func(t *testing.T) {
		status, b := ts.do(t, "GET", "/v2/models/sequence", "")
		var md ModelMetadata
		if status != http.StatusOK || json.Unmarshal(b, &md) != nil {
			t.Fatalf("metadata: %d %s", status, b)
		}
		if o := md.Outputs[0]; o.Name != "pair" || o.Servable || !strings.Contains(o.Reason, "sequence") {
			t.Errorf("pair metadata %+v, want not servable with a reason", o)
		}
		if !strings.Contains(string(b), `"servable":false`) {
			t.Errorf("metadata %s lacks \"servable\": false", b)
		}
		resp := ts.infer(t, "sequence", `{"inputs":[{"name":"a","shape":[1,2],"datatype":"FP32","data":[1,2]},{"name":"b","shape":[1,2],"datatype":"FP32","data":[3,4]}]}`)
		if len(resp.Outputs) != 1 || !sameTensor(resp.Outputs[0].Tensor, Tensor{Name: "sum", Datatype: DTFP32, Shape: []int64{1, 2}, Data: []float32{4, 6}}) {
			t.Errorf("outputs %+v, want sum only", resp.Outputs)
		}
	})
	t.Run("version addressed", func(t *testing.T) {
		status, b := ts.do(t, "POST", "/v2/models/scalar/versions/1/infer", `{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[1]}]}`)
		if status != http.StatusOK || !strings.Contains(string(b), `"model_version":"1"`) {
			t.Errorf("infer version 1: %d %s", status, b)
		}
	})
	t.Run("in process", func(t *testing.T) {
		resp, err := ts.Infer(context.Background(), "scalar", "", &InferRequest{Inputs: []InferInput{{Tensor: Tensor{Name: "x", Datatype: DTFP32, Shape: []int64{}, Data: []float32{2}}}}})
		if err != nil || resp.Outputs[0].Data.([]float32)[0] != 4 {
			t.Errorf("Infer = %+v, %v", resp, err)
		}
	})
}

func parseShape(t testing.TB, s string) []int64 {
	var shape []int64
	if err := json.Unmarshal([]byte(s), &shape); err != nil {
		t.Fatal(err)
	}
	return shape
}

// TestInferBadInput: each bad request is a 4xx whose message names the
// tensor and says what was expected and what was given.
func TestInferBadInput(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	logreg, _ := modelgen.LogReg()
	writeTestModel(t, dir, "classifier", "1", logreg, "instances: 1\n")
	ts := newTestServer(t, dir)
	features := func(fields string) string { return `{"inputs":[{` + fields + `}]}` }
	cases := []struct {
		name   string
		path   string
		body   string
		status int
		want   []string
	}{
		{"wrong name", "classifier", features(`"name":"feature","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]`), 400,
			[]string{`unknown input "feature"`, `"features" FP32 [-1,4]`}},
		{"wrong datatype", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]`), 400,
			[]string{`input "features"`, "datatype FP64 given, FP32 expected"}},
		{"unknown datatype", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FLOAT32","data":[1,2,3,4]`), 400,
			[]string{`input "features"`, `datatype "FLOAT32" is not a V2 datatype`}},
		{"wrong rank", "classifier", features(`"name":"features","shape":[4],"datatype":"FP32","data":[1,2,3,4]`), 400,
			[]string{`input "features"`, "shape [4] of rank 1 given, rank 2 expected: [-1,4]"}},
		{"wrong shape", "classifier", features(`"name":"features","shape":[1,3],"datatype":"FP32","data":[1,2,3]`), 400,
			[]string{`input "features"`, "shape [1,3] given, [-1,4] expected"}},
		{"wrong data length", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3]`), 400,
			[]string{`input "features"`, "3 data elements given, shape [1,4] needs 4"}},
		{"NaN", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FP32","data":[1,"NaN",3,4]`), 400,
			[]string{`input "features"`, "element 1 is NaN", "not allowed"}},
		{"Inf", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,"Infinity",4]`), 400,
			[]string{`input "features"`, "element 2 is +Inf", "not allowed"}},
		{"-Inf after a long run", "classifier", features(`"name":"features","shape":[300,4],"datatype":"FP32","data":[` + strings.Repeat("0.5, ", 1001) + `"-Infinity",` + strings.Repeat("0.5,", 197) + `1]`), 400,
			[]string{`input "features"`, "element 1001 is -Inf", "not allowed"}},
		{"number out of range", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,1e300]`), 400,
			[]string{`input "features" (FP32): element 3`, "1e300 is out of the range of FP32"}},
		{"not a number", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,"4"]`), 400,
			[]string{`input "features" (FP32): element 3`, `"4" is not a number`}},
		{"binary data without the binary extension", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}`), 400,
			[]string{`input "features" has no data`}},
		{"missing input", "classifier", `{"inputs":[]}`, 400,
			[]string{`missing input "features" FP32 [-1,4]`}},
		{"unknown output", "classifier", `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"probs"}]}`, 400,
			[]string{`unknown output "probs"`, `"probabilities", "label"`}},
		{"malformed JSON", "classifier", `{"inputs":[{"name":`, 400, []string{"malformed JSON"}},
		{"empty body", "classifier", ``, 400, []string{"request body is empty"}},
		{"unknown model", "nope", features(`"name":"x","shape":[1],"datatype":"FP32","data":[1]`), 404, []string{`model "nope" not found`}},
		{"unknown version", "classifier/versions/7", features(`"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]`), 404,
			[]string{`model "classifier" has no version "7"`}},
		{"oversize body", "classifier", features(`"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4` + strings.Repeat(",0", 600000) + `]`), 413,
			[]string{"larger than the limit of 1048576 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, b := ts.do(t, "POST", "/v2/models/"+c.path+"/infer", c.body)
			if status != c.status {
				t.Errorf("status %d, want %d: %s", status, c.status, b)
			}
			e := errorBody(t, b)
			for _, w := range c.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not contain %q", e.Message, w)
				}
			}
		})
	}
	// The failures of the requests that reached the classifier count.
	if got := counterValue(t, ts.reg, "abgate_inference_failures_total", map[string]string{"model": "classifier", "code": abgate.EINVALID}); got < 10 {
		t.Errorf("failures counted %v, want at least 10", got)
	}
}

// counterValue returns the sum of the values of a metric's series whose
// labels include labels.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func TestServerEndpoints(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	logreg, _ := modelgen.LogReg()
	writeTestModel(t, dir, "classifier", "1", logreg, "instances: 1\n")
	writeTestModel(t, dir, "broken", "1", []byte("not onnx"), "")
	ts := newTestServer(t, dir)
	get := func(path string) (int, string) {
		status, b := ts.do(t, "GET", path, "")
		return status, string(b)
	}
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/v2/health/live", 200, `{"live":true}`},
		{"/v2/health/ready", 200, `{"ready":true}`},
		{"/v2", 200, `{"extensions":["model_repository","binary_tensor_data"],"name":"abgate","version":"test"}`},
		{"/v2/models/classifier/ready", 200, `{"name":"classifier","ready":true,"version":"1"}`},
		{"/v2/models/classifier/versions/1/ready", 200, `{"name":"classifier","ready":true,"version":"1"}`},
		{"/v2/models/broken/ready", 404, `model \"broken\" is not available: model \"broken\" version 1: onnx runtime cannot load model.onnx`},
		{"/v2/models/nope/ready", 404, `model \"nope\" not found`},
		{"/v2/models/classifier/versions/1", 200, `"inputs":[{"name":"features","datatype":"FP32","shape":[-1,4],"servable":true}]`},
	} {
		status, body := get(c.path)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("GET %s = %d %s, want %d with %s", c.path, status, body, c.status, c.want)
		}
	}

	status, b := ts.do(t, "POST", "/v2/repository/index", "")
	var idx []IndexEntry
	if status != 200 || json.Unmarshal(b, &idx) != nil || len(idx) != 2 ||
		idx[0].Name != "broken" || idx[0].State != StateUnavailable || idx[0].Reason == "" ||
		idx[1] != (IndexEntry{Name: "classifier", Version: "1", State: StateReady}) {
		t.Errorf("index: %d %s", status, b)
	}
	status, b = ts.do(t, "POST", "/v2/repository/index", `{"ready":true}`)
	if status != 200 || string(b) != `[{"name":"classifier","version":"1","state":"READY"}]` {
		t.Errorf("ready index: %d %s", status, b)
	}
	status, b = ts.do(t, "POST", "/v2/repository/models/classifier/unload", "")
	if status != 200 {
		t.Errorf("unload: %d %s", status, b)
	}
	if status, b = ts.do(t, "POST", "/v2/models/classifier/infer", `{"inputs":[]}`); status != 404 || !strings.Contains(errorBody(t, b).Message, "unloaded") {
		t.Errorf("infer after unload: %d %s", status, b)
	}
	status, b = ts.do(t, "POST", "/v2/repository/models/classifier/load", "")
	if status != 200 || string(b) != `{"name":"classifier","version":"1","state":"READY"}` {
		t.Errorf("load: %d %s", status, b)
	}
	status, b = ts.do(t, "POST", "/v2/repository/models/broken/load", "")
	if status != 400 || !strings.Contains(errorBody(t, b).Message, "onnx runtime cannot load model.onnx") {
		t.Errorf("load broken: %d %s", status, b)
	}
	for _, path := range []string{"/v2/repository/models/nope/load", "/v2/repository/models/nope/unload", "/v2/repository/models/..%2f..%2fetc/load"} {
		if status, b = ts.do(t, "POST", path, ""); status != 404 {
			t.Errorf("POST %s: %d %s, want 404", path, status, b)
		}
	}

	// Metrics of a good request.
	ts.infer(t, "classifier", `{"inputs":[{"name":"features","shape":[2,4],"datatype":"FP32","data":[30,50000,12,2,40,60000,24,3]}]}`)
	labels := map[string]string{"model": "classifier", "version": "1"}
	for name, want := range map[string]float64{
		"abgate_inference_requests_total":  1,
		"abgate_inference_queue_seconds":   1,
		"abgate_inference_compute_seconds": 1,
		"abgate_inference_request_seconds": 1,
		"abgate_inference_batch_size":      1,
	} {
		if got := counterValue(t, ts.reg, name, labels); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestInferConcurrent runs many requests at once on a pool of two
// sessions (with -race, the server's and the pool's locking is checked).
func TestInferConcurrent(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	logreg, lw := modelgen.LogReg()
	writeTestModel(t, dir, "classifier", "1", logreg, "instances: 2\n")
	ts := newTestServer(t, dir)
	features := tabularRows(1)
	data, _ := json.Marshal(features)
	body := `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":` + string(data) + `}],"outputs":[{"name":"label"}]}`
	_, labels := tabularByHand(lw, features)
	errs := make(chan error, 64)
	for range 64 {
		go func() {
			resp, err := http.Post(ts.url+"/v2/models/classifier/infer", "application/json", bytes.NewReader([]byte(body)))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			want := fmt.Sprintf(`"data":[%d]`, labels[0])
			if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
				errs <- fmt.Errorf("%d %s, want %s", resp.StatusCode, b, want)
				return
			}
			errs <- nil
		}()
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestInferLargeJSONConcurrent sends JSON FP32 tensors large enough to be
// decoded into pooled buffers, from several clients at once and again, so
// that buffers of finished requests are reused while others wait in the
// batcher's queue: every answer is its own input plus one.
func TestInferLargeJSONConcurrent(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "dynamic", "1", modelgen.AllDynamic(), "instances: 1\nmax_batch_size: 8\nmax_queue_delay_us: 20000\n")
	ts := newTestServer(t, dir)
	const n = 2 * pooledFloatsMin
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for round := range 4 {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(g*1000+round) + float32(i%97)/8
				}
				data, _ := json.Marshal(x)
				body := `{"inputs":[{"name":"x","shape":[1,1,` + strconv.Itoa(n) + `],"datatype":"FP32","data":` + string(data) + `}]}`
				resp, err := http.Post(ts.url+"/v2/models/dynamic/infer", "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got, err := DecodeInferResponse(b)
				if resp.StatusCode != 200 || err != nil {
					errs <- fmt.Errorf("%d %.200s: %v", resp.StatusCode, b, err)
					return
				}
				y := got.Outputs[0].Data.([]float32)
				for i := range x {
					if y[i] != x[i]+1 {
						errs <- fmt.Errorf("client %d round %d: y[%d] = %v, want %v", g, round, i, y[i], x[i]+1)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkServeInferTabular serves V2 JSON requests of one row to the
// demo tabular model, through Gin without a network: the server's share
// of a request, beside HTTP.
func BenchmarkServeInferTabular(b *testing.B) {
	r := benchTabularServer(b, "")
	b.ReportAllocs()
	for b.Loop() {
		if err := serveTabular(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeInferTabularBatched serves the requests of
// BenchmarkServeInferTabular from 32 goroutines at once to the tabular
// model configured as `abgate bench inference` configures it, so that
// they queue and run in batches.
func BenchmarkServeInferTabularBatched(b *testing.B) {
	r := benchTabularServer(b, "batch_when_busy: true\nmax_queue_delay_us: 150\n")
	b.ReportAllocs()
	b.SetParallelism(16) // 32 goroutines on 2 CPUs
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := serveTabular(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchTabularServer returns a Gin engine serving the demo models, the
// tabular one with extra added to its config.yaml.
func benchTabularServer(b *testing.B, extra string) *gin.Engine {
	needORT(b)
	dir := b.TempDir()
	if _, err := WriteDemoModels(dir); err != nil {
		b.Fatal(err)
	}
	if extra != "" {
		f, err := os.OpenFile(filepath.Join(dir, DemoClassifierV1, ConfigFile), os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(extra)
			f.Close()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	repo := NewRepository(dir, nil)
	if err := repo.Scan(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(repo.Close)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	NewServer(repo, Options{}, nil, prometheus.NewRegistry()).Mount(r)
	return r
}

// serveTabular serves one request of one row to the tabular demo model.
func serveTabular(r *gin.Engine) error {
	const body = `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[35,52000,12,2.5]}]}`
	req := httptest.NewRequest(http.MethodPost, "/v2/models/"+DemoClassifierV1+"/infer", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", w.Code, w.Body)
	}
	return nil
}

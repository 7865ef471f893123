package inference

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"abgate"
	"abgate/inference/modelgen"
)

// writeTestModel writes model as <repo>/<name>/<version>/model.onnx, and
// config, unless empty, as <repo>/<name>/config.yaml.
func writeTestModel(t testing.TB, repo, name, version string, model []byte, config string) {
	t.Helper()
	dir := filepath.Join(repo, name, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ModelFile), model, 0o644); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(repo, name, ConfigFile), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadTestModel loads model with config (YAML, "" = defaults, one
// instance), closing it when t ends.
func loadTestModel(t testing.TB, model []byte, config string) *Model {
	t.Helper()
	needORT(t)
	if config == "" {
		config = "instances: 1\n"
	}
	cfg, err := ParseConfig([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ModelFile), model, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel("test", "1", dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// tabularByHand computes what a modelgen tabular classifier gives for
// rows of features: probabilities (softmax of the logits) and labels
// (argmax), in float64.
func tabularByHand(w modelgen.Tabular, features []float32) ([]float64, []int64) {
	nf := len(w.FeatureNames)
	var probs []float64
	var labels []int64
	for r := 0; r < len(features)/nf; r++ {
		x := make([]float64, nf)
		for j := range x {
			x[j] = (float64(features[r*nf+j]) - float64(w.Mean[j])) / float64(w.Scale[j])
		}
		for li, l := range w.Layers {
			y := make([]float64, l.Out)
			for o := range y {
				y[o] = float64(l.B[o])
				for i := range l.In {
					y[o] += x[i] * float64(l.W[i*l.Out+o])
				}
				if li < len(w.Layers)-1 {
					y[o] = max(y[o], 0)
				}
			}
			x = y
		}
		p, best := softmax(x)
		probs = append(probs, p...)
		labels = append(labels, int64(best))
	}
	return probs, labels
}

// softmax returns the softmax of logits and the index of the largest.
func softmax(logits []float64) ([]float64, int) {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	sum := 0.0
	p := make([]float64, len(logits))
	for i, v := range logits {
		p[i] = math.Exp(v - logits[best])
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p, best
}

// tabularRows returns n rows of plausible feature values.
func tabularRows(n int) []float32 {
	r := rand.New(rand.NewPCG(3, 4))
	rows := make([]float32, 0, 4*n)
	for range n {
		rows = append(rows, float32(18+r.IntN(60)), float32(20000+r.IntN(100000)), float32(r.IntN(72)), float32(r.Float64()*10))
	}
	return rows
}

func closeTo(got []float32, want []float64, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > tol {
			return false
		}
	}
	return true
}

func TestTabularModelsByHand(t *testing.T) {
	logreg, lw := modelgen.LogReg()
	mlp, mw := modelgen.MLP()
	for _, c := range []struct {
		name  string
		model []byte
		w     modelgen.Tabular
	}{{"logreg", logreg, lw}, {"mlp", mlp, mw}} {
		t.Run(c.name, func(t *testing.T) {
			m := loadTestModel(t, c.model, "")
			if got, want := m.Config.Labels, c.w.Labels; !slices.Equal(got, want) {
				t.Errorf("labels from the model's metadata = %q, want %q", got, want)
			}
			if got, want := m.Config.FeatureNames, c.w.FeatureNames; !slices.Equal(got, want) {
				t.Errorf("feature names = %q, want %q", got, want)
			}
			features := tabularRows(16)
			out, err := m.Run(context.Background(), []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{16, 4}, Data: features}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantProbs, wantLabels := tabularByHand(c.w, features)
			if len(out) != 2 || out[0].Name != "probabilities" || out[1].Name != "label" {
				t.Fatalf("outputs %+v, want probabilities and label", out)
			}
			if !slices.Equal(out[0].Shape, []int64{16, 2}) || !closeTo(out[0].Data.([]float32), wantProbs, 1e-5) {
				t.Errorf("probabilities = %v %v, want [16 2] %v", out[0].Shape, out[0].Data, wantProbs)
			}
			if out[1].Datatype != DTInt64 || !slices.Equal(out[1].Shape, []int64{16}) || !slices.Equal(out[1].Data.([]int64), wantLabels) {
				t.Errorf("label = %s %v %v, want INT64 [16] %v", out[1].Datatype, out[1].Shape, out[1].Data, wantLabels)
			}
		})
	}
}

// TestCNNByHand runs the demo CNN on one image and compares with the
// convolution, ReLU, average pool, linear layer and softmax done in Go.
func TestCNNByHand(t *testing.T) {
	model, w := modelgen.CNN()
	m := loadTestModel(t, model, "instances: 1\nimage: {input: input}\n")
	const c, n = modelgen.CNNChannels, modelgen.CNNSize
	r := rand.New(rand.NewPCG(5, 6))
	img := make([]float32, c*n*n)
	for i := range img {
		img[i] = float32(r.Float64()*4 - 2)
	}
	out, err := m.Run(context.Background(), []Tensor{{Name: "input", Datatype: DTFP32, Shape: []int64{1, c, n, n}, Data: img}}, []string{"probabilities", "logits"})
	if err != nil {
		t.Fatal(err)
	}
	logits := cnnByHand(w, img)
	probs, _ := softmax(logits)
	if out[0].Name != "probabilities" || !closeTo(out[0].Data.([]float32), probs, 1e-4) {
		t.Errorf("probabilities = %v, want %v", out[0].Data, probs)
	}
	if out[1].Name != "logits" || !closeTo(out[1].Data.([]float32), logits, 1e-3) {
		t.Errorf("logits = %v, want %v", out[1].Data, logits)
	}
}

// cnnByHand returns the logits of the demo CNN for one image of 3x224x224
// floats: the convolution, ReLU, average pool and linear layer in Go.
func cnnByHand(w modelgen.CNNWeights, img []float32) []float64 {
	const c, n, f = modelgen.CNNChannels, modelgen.CNNSize, modelgen.CNNFilters
	features := make([]float64, f)
	for k := range f {
		sum := 0.0
		for y := range n {
			for x := range n {
				v := float64(w.ConvB[k])
				for ch := range c {
					for dy := -1; dy <= 1; dy++ {
						for dx := -1; dx <= 1; dx++ {
							yy, xx := y+dy, x+dx
							if yy < 0 || yy >= n || xx < 0 || xx >= n {
								continue
							}
							v += float64(img[(ch*n+yy)*n+xx]) * float64(w.ConvW[((k*c+ch)*3+dy+1)*3+dx+1])
						}
					}
				}
				sum += max(v, 0)
			}
		}
		features[k] = sum / (n * n)
	}
	logits := make([]float64, modelgen.CNNClasses)
	for o := range logits {
		logits[o] = float64(w.FCB[o])
		for k := range f {
			logits[o] += features[k] * float64(w.FCW[o*f+k])
		}
	}
	return logits
}

// TestTensorElements counts the elements of TensorProtos whose dims are
// packed or not, as parseModelProto does for the parameter count.
func TestTensorElements(t *testing.T) {
	unpacked := protowire.AppendTag(nil, tensorDims, protowire.VarintType)
	unpacked = protowire.AppendVarint(unpacked, 3)
	unpacked = protowire.AppendTag(unpacked, 8, protowire.BytesType) // name
	unpacked = protowire.AppendBytes(unpacked, []byte("w"))
	unpacked = protowire.AppendTag(unpacked, tensorDims, protowire.VarintType)
	unpacked = protowire.AppendVarint(unpacked, 5)
	packed := protowire.AppendTag(nil, tensorDims, protowire.BytesType)
	packed = protowire.AppendBytes(packed, protowire.AppendVarint(protowire.AppendVarint(nil, 4), 6))
	huge := protowire.AppendTag(nil, tensorDims, protowire.BytesType)
	huge = protowire.AppendBytes(huge, protowire.AppendVarint(protowire.AppendVarint(nil, 1<<40), 1<<40))
	for _, c := range []struct {
		name string
		b    []byte
		want int64
	}{
		{"unpacked", unpacked, 15},
		{"packed", packed, 24},
		{"scalar", nil, 1},
		{"overflow", huge, 0},
	} {
		if got, err := tensorElements(c.b); err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	if _, err := tensorElements([]byte{0x0a, 0x05}); err == nil {
		t.Error("truncated: no error")
	}
	logreg, _ := modelgen.LogReg()
	if info, err := parseModelProto(logreg); err != nil || info.parameters != 4+4+4*2+2 {
		t.Errorf("logreg parameters %d, %v; want 18", info.parameters, err)
	}
}

func TestModelMetadata(t *testing.T) {
	logreg, _ := modelgen.LogReg()
	m := loadTestModel(t, logreg, "")
	wantIn := []IOSpec{{Name: "features", Datatype: DTFP32, Shape: []int64{-1, 4}, Servable: true}}
	wantOut := []IOSpec{
		{Name: "probabilities", Datatype: DTFP32, Shape: []int64{-1, 2}, Servable: true},
		{Name: "label", Datatype: DTInt64, Shape: []int64{-1}, Servable: true},
	}
	checkSpecs(t, "inputs", m.Inputs, wantIn)
	checkSpecs(t, "outputs", m.Outputs, wantOut)
	if m.Inputs[0].dimNames[0] != "batch" {
		t.Errorf("dynamic axis name %q, want batch", m.Inputs[0].dimNames[0])
	}
	if m.Size == 0 || m.Path == "" || m.LoadedAt.IsZero() || !strings.Contains(m.Description, "logistic regression") {
		t.Errorf("model %+v lacks its file facts or description", m)
	}
}

func checkSpecs(t *testing.T, what string, got, want []IOSpec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Datatype != w.Datatype || !slices.Equal(g.Shape, w.Shape) || (g.Shape == nil) != (w.Shape == nil) ||
			g.Servable != w.Servable || !strings.Contains(g.Reason, w.Reason) {
			t.Errorf("%s[%d] = %+v, want %+v", what, i, g, w)
		}
	}
}

func TestScalarModel(t *testing.T) {
	m := loadTestModel(t, modelgen.Scalar(), "")
	checkSpecs(t, "inputs", m.Inputs, []IOSpec{{Name: "x", Datatype: DTFP32, Shape: []int64{}, Servable: true}})
	for _, x := range []float32{3.5, -1, 0} {
		out, err := m.Run(context.Background(), []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{}, Data: []float32{x}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0]; len(got.Shape) != 0 || got.Shape == nil || !slices.Equal(got.Data.([]float32), []float32{2 * x}) {
			t.Errorf("y(%v) = %v %v, want [] [%v]", x, got.Shape, got.Data, 2*x)
		}
	}
}

func TestAllDynamicModel(t *testing.T) {
	m := loadTestModel(t, modelgen.AllDynamic(), "")
	checkSpecs(t, "inputs", m.Inputs, []IOSpec{{Name: "x", Datatype: DTFP32, Shape: []int64{-1, -1, -1}, Servable: true}})
	for _, shape := range [][]int64{{2, 3, 4}, {1, 5, 1}, {3, 1, 2}, {0, 2, 2}} {
		n, _ := ElementCount(shape)
		x := make([]float32, n)
		want := make([]float32, n)
		for i := range x {
			x[i] = float32(i) - 2.5
			want[i] = x[i] + 1
		}
		out, err := m.Run(context.Background(), []Tensor{{Name: "x", Datatype: DTFP32, Shape: shape, Data: x}}, nil)
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if !slices.Equal(out[0].Shape, shape) || !slices.Equal(out[0].Data.([]float32), want) {
			t.Errorf("shape %v: y = %v %v, want %v", shape, out[0].Shape, out[0].Data, want)
		}
	}
}

func TestMultiIOSubset(t *testing.T) {
	m := loadTestModel(t, modelgen.MultiIO(), "")
	a := []float32{1, 2, 3, 4, 5, 6}
	b := []float32{6, 5, 4, 3, 2, 1}
	// Inputs in another order than the model's, a subset of the outputs
	// in another order too.
	in := []Tensor{{Name: "b", Datatype: DTFP32, Shape: []int64{2, 3}, Data: b}, {Name: "a", Datatype: DTFP32, Shape: []int64{2, 3}, Data: a}}
	out, err := m.Run(context.Background(), in, []string{"difference", "sum"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Name != "difference" || out[1].Name != "sum" {
		t.Fatalf("outputs %+v, want difference and sum", out)
	}
	for i := range a {
		if d, s := out[0].Data.([]float32)[i], out[1].Data.([]float32)[i]; d != a[i]-b[i] || s != a[i]+b[i] {
			t.Errorf("element %d: difference %v, sum %v; want %v, %v", i, d, s, a[i]-b[i], a[i]+b[i])
		}
	}
	all, err := m.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if names := []string{all[0].Name, all[1].Name, all[2].Name}; !slices.Equal(names, []string{"sum", "product", "difference"}) {
		t.Errorf("all outputs %v, want the model's order", names)
	}
}

// TestNonTensorOutputs: a sequence or map output is listed as not
// servable, with the reason, and the model's tensor outputs work.
func TestNonTensorOutputs(t *testing.T) {
	t.Run("sequence", func(t *testing.T) {
		m := loadTestModel(t, modelgen.SequenceOutput(), "")
		checkSpecs(t, "outputs", m.Outputs, []IOSpec{
			{Name: "pair", Shape: nil, Servable: false, Reason: "it is a sequence, not a tensor"},
			{Name: "sum", Datatype: DTFP32, Shape: []int64{-1, 2}, Servable: true},
		})
		in := []Tensor{{Name: "a", Datatype: DTFP32, Shape: []int64{1, 2}, Data: []float32{1, 2}}, {Name: "b", Datatype: DTFP32, Shape: []int64{1, 2}, Data: []float32{10, 20}}}
		out, err := m.Run(context.Background(), in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || out[0].Name != "sum" || !slices.Equal(out[0].Data.([]float32), []float32{11, 22}) {
			t.Errorf("outputs %+v, want sum [11 22]", out)
		}
		_, err = m.Run(context.Background(), in, []string{"pair"})
		if abgate.ErrorCode(err) != abgate.EINVALID || !strings.Contains(abgate.ErrorMessage(err), `output "pair" cannot be served: it is a sequence`) {
			t.Errorf("asking for pair: %v", err)
		}
	})
	t.Run("map", func(t *testing.T) {
		m := loadTestModel(t, modelgen.MapOutput(), "")
		checkSpecs(t, "outputs", m.Outputs, []IOSpec{
			{Name: "label", Datatype: DTInt64, Shape: []int64{-1}, Servable: true},
			{Name: "output_probability", Servable: false, Reason: "not a tensor"},
		})
		out, err := m.Run(context.Background(), []Tensor{{Name: "probabilities", Datatype: DTFP32, Shape: []int64{2, 2}, Data: []float32{0.9, 0.1, 0.3, 0.7}}}, []string{"label"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out[0].Data.([]int64), []int64{0, 1}) {
			t.Errorf("label = %v, want [0 1]", out[0].Data)
		}
	})
}

// TestUnservableModels: a model that cannot be served says why on load.
func TestUnservableModels(t *testing.T) {
	needORT(t)
	float8, err := modelgen.Identity(modelgen.Float8E4M3FN)
	if err != nil {
		t.Fatal(err)
	}
	seqIn := modelgen.NewGraph("sequence_input")
	seqIn.InputOf("s", modelgen.SequenceOf(modelgen.TensorOf(modelgen.Float, 2)))
	seqIn.Node("SequenceLength", []string{"s"}, []string{"n"})
	seqIn.Output("n", modelgen.Int64)
	seqModel, err := modelgen.Model(seqIn).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cnn, _ := modelgen.CNN()
	lg := modelgen.NewGraph("labeller")
	lg.Input("x", modelgen.Float, "batch", 3, 2, 2)
	lg.Node("GlobalAveragePool", []string{"x"}, []string{"pool"})
	lg.Node("Flatten", []string{"pool"}, []string{"scores"}, modelgen.AttrInt("axis", 1))
	lg.Node("ArgMax", []string{"scores"}, []string{"label"}, modelgen.AttrInt("axis", 1), modelgen.AttrInt("keepdims", 0))
	lg.Output("label", modelgen.Int64, "batch")
	labeller, err := modelgen.Model(lg).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		model  []byte
		config string
		want   string
	}{
		{"float8 input", float8, "", `input "x" cannot be served: its element type FLOAT8E4M3FN has no V2 datatype`},
		{"sequence input", seqModel, "", `input "s" cannot be served: it is a sequence`},
		{"not onnx", []byte("this is not a model"), "", "onnx runtime cannot load model.onnx"},
		{"image input missing", modelgen.MultiIO(), "image: {input: pixels}\n", `image.input "pixels" is not an input of the model`},
		{"image size not the input's", cnn, "image: {size: [100, 120]}\n", `image.size [100 120] with layout NCHW makes images of shape [-1,3,100,120], but input "input" is [-1,3,224,224]`},
		{"image layout not the input's", cnn, "image: {layout: NHWC}\n", `makes images of shape [-1,224,224,3], but input "input" is [-1,3,224,224]`},
		{"image output missing", cnn, "image: {output: scores}\n", `image.output: model "bad" has no output "scores" (its outputs are "logits", "probabilities")`},
		{"image output not float", labeller, "image: {size: [2, 2], output: label}\n", `image.output: output "label" of model "bad" is INT64 [-1]; class scores must be a servable float output`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ModelFile), c.model, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := ParseConfig([]byte(c.config))
			if err != nil {
				t.Fatal(err)
			}
			m, err := LoadModel("bad", "1", dir, cfg)
			if err == nil {
				m.Close()
				t.Fatal("loaded")
			}
			if abgate.ErrorCode(err) != abgate.EINVALID || !strings.Contains(abgate.ErrorMessage(err), c.want) {
				t.Errorf("err = %v, want EINVALID containing %q", err, c.want)
			}
			if msg := abgate.ErrorMessage(err); !strings.HasPrefix(msg, `model "bad" version 1: `) {
				t.Errorf("message %q does not name the model and version", msg)
			}
		})
	}
}

// TestRunInvalidInputs: each bad input is EINVALID, names the tensor and
// says what was expected and what was given.
func TestRunInvalidInputs(t *testing.T) {
	logreg, _ := modelgen.LogReg()
	m := loadTestModel(t, logreg, "")
	multi := loadTestModel(t, modelgen.MultiIO(), "")
	f := func(shape []int64, data ...float32) []Tensor {
		return []Tensor{{Name: "features", Datatype: DTFP32, Shape: shape, Data: data}}
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	cases := []struct {
		name    string
		m       *Model
		inputs  []Tensor
		outputs []string
		want    []string
	}{
		{"wrong name", m, []Tensor{{Name: "feature", Datatype: DTFP32, Shape: []int64{1, 4}, Data: make([]float32, 4)}}, nil,
			[]string{`unknown input "feature"`, `"features" FP32 [-1,4]`}},
		{"wrong datatype", m, []Tensor{{Name: "features", Datatype: DTFP64, Shape: []int64{1, 4}, Data: make([]float64, 4)}}, nil,
			[]string{`input "features"`, "datatype FP64 given, FP32 expected"}},
		{"data of another type", m, []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{1, 4}, Data: make([]float64, 4)}}, nil,
			[]string{`input "features"`, "[]float64 given, []float32 expected"}},
		{"wrong rank", m, f([]int64{4}, 1, 2, 3, 4), nil,
			[]string{`input "features"`, "shape [4] of rank 1 given, rank 2 expected: [-1,4]"}},
		{"wrong shape", m, f([]int64{1, 3}, 1, 2, 3), nil,
			[]string{`input "features"`, "shape [1,3] given, [-1,4] expected: dimension 1 must be 4"}},
		{"wrong data length", m, f([]int64{2, 4}, 1, 2, 3, 4), nil,
			[]string{`input "features"`, "4 data elements given, shape [2,4] needs 8"}},
		{"NaN", m, f([]int64{1, 4}, 1, nan, 3, 4), nil,
			[]string{`input "features"`, "element 1 is NaN", "allow_non_finite"}},
		{"Inf", m, f([]int64{1, 4}, 1, 2, 3, inf), nil,
			[]string{`input "features"`, "element 3 is -Inf"}},
		{"missing input", multi, []Tensor{{Name: "a", Datatype: DTFP32, Shape: []int64{1, 3}, Data: make([]float32, 3)}}, nil,
			[]string{`missing input "b" FP32 [-1,3]`}},
		{"batch sizes disagree", multi, []Tensor{{Name: "a", Datatype: DTFP32, Shape: []int64{1, 3}, Data: make([]float32, 3)}, {Name: "b", Datatype: DTFP32, Shape: []int64{2, 3}, Data: make([]float32, 6)}}, nil,
			[]string{`input "b"`, `dimension 0 (batch) must equal "a"'s batch = 1`}},
		{"input twice", m, append(f([]int64{1, 4}, 1, 2, 3, 4), f([]int64{1, 4}, 1, 2, 3, 4)...), nil,
			[]string{`input "features" is given twice`}},
		{"unknown output", m, f([]int64{1, 4}, 1, 2, 3, 4), []string{"prob"},
			[]string{`unknown output "prob"`, `"probabilities", "label"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.m.Run(context.Background(), c.inputs, c.outputs)
			if abgate.ErrorCode(err) != abgate.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			for _, w := range c.want {
				if msg := abgate.ErrorMessage(err); !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
	t.Run("non-finite allowed", func(t *testing.T) {
		m := loadTestModel(t, modelgen.AllDynamic(), "instances: 1\nallow_non_finite: true\n")
		out, err := m.Run(context.Background(), []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{1, 1, 2}, Data: []float32{nan, inf}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := out[0].Data.([]float32); d[0] == d[0] || !math.IsInf(float64(d[1]), -1) {
			t.Errorf("y = %v, want [NaN -Inf]", d)
		}
	})
}

// TestRunCancelAndClose: a run whose context is done fails EUNAVAILABLE;
// Close waits for runs in progress; runs after Close fail EUNAVAILABLE.
func TestRunCancelAndClose(t *testing.T) {
	logreg, _ := modelgen.LogReg()
	m := loadTestModel(t, logreg, "instances: 1\n")
	in := []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{2, 4}, Data: tabularRows(2)}}

	// Hold the only session so that the next run waits for it.
	s, err := m.pool.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = m.Run(ctx, in, nil)
	if abgate.ErrorCode(err) != abgate.EUNAVAILABLE || !strings.Contains(abgate.ErrorMessage(err), "deadline") {
		t.Errorf("run waiting past its deadline: %v, want EUNAVAILABLE", err)
	}
	m.pool.put(s)

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			_, err := m.Run(context.Background(), in, nil)
			errs <- err
		})
	}
	time.Sleep(time.Millisecond)
	m.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && abgate.ErrorCode(err) != abgate.EUNAVAILABLE {
			t.Errorf("run during Close: %v", err)
		}
	}
	_, err = m.Run(context.Background(), in, nil)
	if abgate.ErrorCode(err) != abgate.EUNAVAILABLE || !strings.Contains(abgate.ErrorMessage(err), "unloaded") {
		t.Errorf("run after Close: %v, want EUNAVAILABLE unloaded", err)
	}
	if _, err := m.pool.get(context.Background()); !errors.Is(err, errUnloaded) {
		t.Errorf("get after close: %v, want errUnloaded", err)
	}
}

// TestFirstNonFinite32 checks the word-wise scan against a value-by-value
// one: every position of NaN, ±Inf and the largest finite values, in
// slices of every length up to 70 and at both alignments.
func TestFirstNonFinite32(t *testing.T) {
	plain := func(d []float32) int {
		for i, f := range d {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return i
			}
		}
		return -1
	}
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00001), math.Float32frombits(0xff800001)}
	finite := []float32{math.MaxFloat32, -math.MaxFloat32, math.Float32frombits(0x7f7fffff), math.SmallestNonzeroFloat32, 0, -1.5}
	// Sizes around the blocks of 64, with each assembly loop and
	// without.
	for _, w := range append(wideSettings(), wideSetting{"none", false, false}) {
		t.Run(w.name, func(t *testing.T) {
			w.use(t)
			checkFirstNonFinite32(t, plain, specials, finite)
		})
	}
}

func checkFirstNonFinite32(t *testing.T, plain func([]float32) int, specials, finite []float32) {
	t.Helper()
	backing := make([]float32, 210)
	for _, off := range []int{0, 1} {
		for n := 0; n <= 200; n++ {
			d := backing[off : off+n]
			for i := range d {
				d[i] = finite[i%len(finite)]
			}
			if got := firstNonFinite32(d); got != -1 {
				t.Fatalf("offset %d, %d finite values: got %d, want -1", off, n, got)
			}
			for pos := 0; pos < n; pos++ {
				for _, sp := range specials {
					d[pos] = sp
					if got, want := firstNonFinite32(d), plain(d); got != want || want != pos {
						t.Fatalf("AVX-512 %v, AVX2 %v, offset %d, n %d, %v at %d: got %d, want %d", haveWide, haveAVX2, off, n, sp, pos, got, want)
					}
					if pos+3 < n {
						d[pos+3] = sp
						if got := firstNonFinite32(d); got != pos {
							t.Fatalf("offset %d, n %d, two at %d and %d: got %d", off, n, pos, pos+3, got)
						}
						d[pos+3] = finite[(pos+3)%len(finite)]
					}
				}
				d[pos] = finite[pos%len(finite)]
			}
		}
	}
}

// FuzzFirstNonFinite32 reads the fuzzed bytes as float32 values, from
// each of the first four offsets: firstNonFinite32 must find what a plain
// loop finds, with each assembly loop and without.
func FuzzFirstNonFinite32(f *testing.F) {
	nan := math.Float32bits(float32(math.NaN()))
	seed := make([]byte, 4*300)
	for i := 0; i < len(seed); i += 4 {
		binary.LittleEndian.PutUint32(seed[i:], math.Float32bits(float32(i)))
	}
	f.Add(seed)
	binary.LittleEndian.PutUint32(seed[4*200:], nan)
	f.Add(slices.Clone(seed))
	binary.LittleEndian.PutUint32(seed[4*70:], 0xff800000)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		all := make([]float32, len(b)/4)
		for i := range all {
			all[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		haveW, haveA := haveWide, haveAVX2
		defer func() { haveWide, haveAVX2 = haveW, haveA }()
		for off := range min(4, len(all)+1) {
			d := all[off:]
			want := -1
			for i, v := range d {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					want = i
					break
				}
			}
			for _, w := range append(wideSettings(), wideSetting{"none", false, false}) {
				haveWide, haveAVX2 = w.avx512, w.avx2
				if got := firstNonFinite32(d); got != want {
					t.Fatalf("%s, offset %d of %d values: got %d, want %d", w.name, off, len(all), got, want)
				}
			}
		}
	})
}

func BenchmarkFirstNonFinite32(b *testing.B) {
	d := make([]float32, 3*224*224)
	for i := range d {
		d[i] = float32(i%255)/255 - 0.5
	}
	b.SetBytes(int64(4 * len(d)))
	for b.Loop() {
		if firstNonFinite32(d) != -1 {
			b.Fatal("finite data reported")
		}
	}
}

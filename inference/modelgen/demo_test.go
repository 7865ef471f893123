package modelgen_test

import (
	"bytes"
	"math"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"abgate/inference/modelgen"
)

// closeTo reports whether got is within abs + rel*|want| of want.
func closeTo(got float32, want float64, abs, rel float64) bool {
	return math.Abs(float64(got)-want) <= abs+rel*math.Abs(want)
}

// softmax returns the softmax of z.
func softmax(z []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, v)
	}
	var sum float64
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = math.Exp(v - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func argmax(z []float64) int64 {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return int64(best)
}

func TestDemoModelsDeterministic(t *testing.T) {
	for _, c := range []struct {
		name string
		make func() []byte
	}{
		{"CNN", func() []byte { b, _ := modelgen.CNN(); return b }},
		{"LogReg", func() []byte { b, _ := modelgen.LogReg(); return b }},
		{"MLP", func() []byte { b, _ := modelgen.MLP(); return b }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if a, b := c.make(), c.make(); !bytes.Equal(a, b) {
				t.Error("two calls return different bytes")
			}
		})
	}
}

// cnnImage returns a deterministic [n, 3, 224, 224] image batch in [0, 1]:
// a texture in a different colour for each image.
func cnnImage(n int) []float32 {
	const s = modelgen.CNNSize
	gains := [][3]float32{{1, 0.5, 0.2}, {0.2, 0.6, 1}, {0.7, 0.7, 0.7}}
	x := make([]float32, n*modelgen.CNNChannels*s*s)
	i := 0
	for b := range n {
		for c := range modelgen.CNNChannels {
			for h := range s {
				for w := range s {
					x[i] = gains[b%len(gains)][c] * float32((b*31+c*7+h*3+w*5+h*w/16)%23) / 22
					i++
				}
			}
		}
	}
	return x
}

// cnnForward computes the CNN on image x ([n, 3, 224, 224]) directly from
// its weights: a zero-padded 3x3 convolution, Relu, mean over the image,
// then the dense layer. It returns the logits, [n][10].
func cnnForward(x []float32, n int, w modelgen.CNNWeights) [][]float64 {
	const (
		s  = modelgen.CNNSize
		ci = modelgen.CNNChannels
		co = modelgen.CNNFilters
	)
	logits := make([][]float64, n)
	pooled := make([]float64, co)
	for b := range n {
		img := x[b*ci*s*s : (b+1)*ci*s*s]
		for f := range co {
			kern := w.ConvW[f*ci*9 : (f+1)*ci*9]
			var sum float64
			for h := range s {
				for v := range s {
					acc := float64(w.ConvB[f])
					for c := range ci {
						for kh := range 3 {
							y := h + kh - 1
							if y < 0 || y >= s {
								continue
							}
							row := img[c*s*s+y*s : c*s*s+(y+1)*s]
							for kw := range 3 {
								z := v + kw - 1
								if z < 0 || z >= s {
									continue
								}
								acc += float64(kern[c*9+kh*3+kw]) * float64(row[z])
							}
						}
					}
					sum += max(acc, 0)
				}
			}
			pooled[f] = sum / (s * s)
		}
		logits[b] = make([]float64, modelgen.CNNClasses)
		for k := range modelgen.CNNClasses {
			acc := float64(w.FCB[k])
			for f := range co {
				acc += float64(w.FCW[k*co+f]) * pooled[f]
			}
			logits[b][k] = acc
		}
	}
	return logits
}

func TestCNN(t *testing.T) {
	needORT(t)
	model, w := modelgen.CNN()
	f := ort.TensorElementDataType(ort.TensorElementDataTypeFloat)
	checkIO(t, model,
		[]ioSpec{tensorSpec("input", f, -1, 3, 224, 224)},
		[]ioSpec{tensorSpec("logits", f, -1, 10), tensorSpec("probabilities", f, -1, 10)})
	if len(w.ConvW) != 32*3*3*3 || len(w.ConvB) != 32 || len(w.FCW) != 10*32 || len(w.FCB) != 10 {
		t.Fatalf("weight sizes %d %d %d %d", len(w.ConvW), len(w.ConvB), len(w.FCW), len(w.FCB))
	}

	const n = 2
	x := cnnImage(n)
	s := session(t, model, []string{"input"}, []string{"logits", "probabilities"})
	out := run(t, s, []ort.Value{newTensor(t, ort.NewShape(n, 3, 224, 224), x)}, []ort.Value{nil, nil})
	checkShape(t, "logits", out[0], n, 10)
	checkShape(t, "probabilities", out[1], n, 10)
	gotLogits := tensorData[float32](t, out[0])
	gotProbs := tensorData[float32](t, out[1])

	want := cnnForward(x, n, w)
	for b := range n {
		probs := softmax(want[b])
		for k := range modelgen.CNNClasses {
			if got := gotLogits[b*10+k]; !closeTo(got, want[b][k], 1e-5, 1e-4) {
				t.Errorf("logits[%d][%d] = %v, want %v", b, k, got, want[b][k])
			}
			if got := gotProbs[b*10+k]; !closeTo(got, probs[k], 1e-6, 1e-4) {
				t.Errorf("probabilities[%d][%d] = %v, want %v", b, k, got, probs[k])
			}
		}
	}
	// The weights must make a classifier worth demonstrating: images of
	// different colours get different classes, and no class takes all the
	// probability.
	if argmax(want[0]) == argmax(want[1]) {
		t.Errorf("both images are class %d", argmax(want[0]))
	}
	for b := range n {
		for _, p := range softmax(want[b]) {
			if p > 0.99 {
				t.Errorf("image %d: a class has probability %v", b, p)
			}
		}
	}
}

// tabularRows are raw customers: age, income, tenure_months,
// sessions_per_week, and the class that the demo's hand-set logistic
// regression should give them (0 stay, 1 churn).
var tabularRows = []struct {
	name     string
	features [4]float32
	logreg   int64
}{
	{"new inactive customer", [4]float32{22, 28000, 1, 0.5}, 1},
	{"loyal active customer", [4]float32{58, 125000, 96, 7}, 0},
	{"average customer", [4]float32{40, 60000, 24, 3}, 0},
	{"established customer gone quiet", [4]float32{45, 70000, 30, 0}, 1},
	{"new very active customer", [4]float32{30, 45000, 2, 12}, 0},
}

// tabularForward computes a tabular demo model on one raw row directly from
// its weights.
func tabularForward(w modelgen.Tabular, row [4]float32) []float64 {
	x := make([]float64, len(row))
	for i, v := range row {
		x[i] = (float64(v) - float64(w.Mean[i])) / float64(w.Scale[i])
	}
	for li, l := range w.Layers {
		y := make([]float64, l.Out)
		for o := range l.Out {
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
	return x
}

func TestTabular(t *testing.T) {
	needORT(t)
	logreg, logregW := modelgen.LogReg()
	mlp, mlpW := modelgen.MLP()
	for _, c := range []struct {
		name       string
		model      []byte
		w          modelgen.Tabular
		wantLayers int
		checkLabel bool // the row table's labels hold for this model
	}{
		{"LogReg", logreg, logregW, 1, true},
		{"MLP", mlp, mlpW, 2, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := c.w
			wantNames := []string{"age", "income", "tenure_months", "sessions_per_week"}
			if len(w.FeatureNames) != 4 || len(w.Labels) != 2 || len(w.Layers) != c.wantLayers {
				t.Fatalf("weights: %d features, %d labels, %d layers", len(w.FeatureNames), len(w.Labels), len(w.Layers))
			}
			for i, n := range wantNames {
				if w.FeatureNames[i] != n {
					t.Errorf("FeatureNames = %v, want %v", w.FeatureNames, wantNames)
				}
			}
			f := ort.TensorElementDataType(ort.TensorElementDataTypeFloat)
			checkIO(t, c.model,
				[]ioSpec{tensorSpec("features", f, -1, 4)},
				[]ioSpec{tensorSpec("probabilities", f, -1, 2), tensorSpec("label", ort.TensorElementDataTypeInt64, -1)})
			checkMetadata(t, c.model, map[string]string{
				"feature_names": "age,income,tenure_months,sessions_per_week",
				"labels":        "stay,churn",
			})

			x := make([]float32, 0, 4*len(tabularRows))
			for _, r := range tabularRows {
				x = append(x, r.features[:]...)
			}
			s := session(t, c.model, []string{"features"}, []string{"probabilities", "label"})
			out := run(t, s, []ort.Value{newTensor(t, ort.NewShape(int64(len(tabularRows)), 4), x)}, []ort.Value{nil, nil})
			checkShape(t, "probabilities", out[0], int64(len(tabularRows)), 2)
			checkShape(t, "label", out[1], int64(len(tabularRows)))
			probs := tensorData[float32](t, out[0])
			labels := tensorData[int64](t, out[1])
			var churn int
			for i, r := range tabularRows {
				logits := tabularForward(w, r.features)
				want := softmax(logits)
				for k := range 2 {
					if got := probs[2*i+k]; !closeTo(got, want[k], 1e-6, 1e-5) {
						t.Errorf("%s: probabilities[%d] = %v, want %v", r.name, k, got, want[k])
					}
				}
				if got, want := labels[i], argmax(logits); got != want {
					t.Errorf("%s: label = %d, want %d (logits %v)", r.name, got, want, logits)
				}
				if c.checkLabel && labels[i] != r.logreg {
					t.Errorf("%s: label = %d, want %d", r.name, labels[i], r.logreg)
				}
				churn += int(labels[i])
			}
			t.Logf("%d of %d rows predicted churn", churn, len(tabularRows))
		})
	}
}

// checkMetadata fails t unless ONNX Runtime reads the producer "abgate" and
// the wanted custom metadata from model.
func checkMetadata(t *testing.T, model []byte, want map[string]string) {
	t.Helper()
	md, err := ort.GetModelMetadataWithONNXData(model)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Destroy()
	if p, err := md.GetProducerName(); err != nil || p != modelgen.Producer {
		t.Errorf("producer = %q, %v; want %q", p, err, modelgen.Producer)
	}
	for k, v := range want {
		got, ok, err := md.LookupCustomMetadataMap(k)
		if err != nil || !ok || got != v {
			t.Errorf("metadata %q = %q, %v, %v; want %q", k, got, ok, err, v)
		}
	}
}

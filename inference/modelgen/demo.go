package modelgen

import (
	"math"
	"strconv"
	"strings"
)

// Shape of the CNN demo model.
const (
	CNNChannels = 3   // input channels (RGB)
	CNNSize     = 224 // input height and width
	CNNFilters  = 32  // 3x3 convolution filters
	CNNClasses  = 10  // output classes
)

// CNNWeights are the fixed weights of the CNN demo model, in the layouts of
// the ONNX operators that use them.
type CNNWeights struct {
	// ConvW is the convolution kernel, [CNNFilters][CNNChannels][3][3]
	// (output channel, input channel, row, column), row-major.
	ConvW []float32
	// ConvB is the convolution bias, [CNNFilters].
	ConvB []float32
	// FCW is the classifier's weight matrix, [CNNClasses][CNNFilters]
	// (output, input): Gemm multiplies by its transpose (transB=1).
	FCW []float32
	// FCB is the classifier's bias, [CNNClasses].
	FCB []float32
}

// CNN returns the seed's example image classifier and its weights:
//
//	input  "input"  FLOAT [batch, 3, 224, 224]
//	Conv 3->32, kernel 3x3, pads 1, strides 1, with bias; Relu
//	GlobalAveragePool; Flatten -> [batch, 32]
//	Gemm 32->10 (transB=1) -> output "logits"        FLOAT [batch, 10]
//	Softmax(axis=1)         -> output "probabilities" FLOAT [batch, 10]
//
// The weights are drawn from a fixed-seed generator with He-uniform bounds,
// so every call returns the same bytes.
func CNN() ([]byte, CNNWeights) {
	const k = 3
	w := CNNWeights{
		ConvW: uniform(1, CNNFilters*CNNChannels*k*k, heBound(CNNChannels*k*k)),
		ConvB: uniform(2, CNNFilters, 0.1),
		FCW:   uniform(3, CNNClasses*CNNFilters, heBound(CNNFilters)),
		FCB:   uniform(4, CNNClasses, 0.1),
	}
	g := NewGraph("abgate_demo_cnn")
	g.Input("input", Float, "batch", CNNChannels, CNNSize, CNNSize)
	g.Initializer("conv.weight", Float, []int64{CNNFilters, CNNChannels, k, k}, w.ConvW)
	g.Initializer("conv.bias", Float, []int64{CNNFilters}, w.ConvB)
	g.Initializer("fc.weight", Float, []int64{CNNClasses, CNNFilters}, w.FCW)
	g.Initializer("fc.bias", Float, []int64{CNNClasses}, w.FCB)
	g.Node("Conv", []string{"input", "conv.weight", "conv.bias"}, []string{"conv"},
		AttrInts("kernel_shape", k, k),
		AttrInts("pads", 1, 1, 1, 1),
		AttrInts("strides", 1, 1),
		AttrInts("dilations", 1, 1),
		AttrInt("group", 1))
	g.Node("Relu", []string{"conv"}, []string{"relu"})
	g.Node("GlobalAveragePool", []string{"relu"}, []string{"pool"})
	g.Node("Flatten", []string{"pool"}, []string{"features"}, AttrInt("axis", 1))
	g.Node("Gemm", []string{"features", "fc.weight", "fc.bias"}, []string{"logits"},
		AttrFloat("alpha", 1), AttrFloat("beta", 1), AttrInt("transB", 1))
	g.Node("Softmax", []string{"logits"}, []string{"probabilities"}, AttrInt("axis", 1))
	g.Output("logits", Float, "batch", CNNClasses)
	g.Output("probabilities", Float, "batch", CNNClasses)
	m := Model(g)
	m.DocString = "abgate demo CNN: Conv3x3(3->32)+Relu, global average pool, Gemm(32->10), Softmax; fixed weights"
	return mustBytes(m), w
}

// Tabular are the fixed weights of the tabular demo classifiers LogReg and
// MLP. Each input row is standardized, (x - Mean) / Scale, then passes
// through Layers, with Relu between two layers; the last layer's output are
// the logits of Labels.
type Tabular struct {
	// FeatureNames name the columns of the input "features", in order.
	FeatureNames []string
	// Labels name the classes, in the order of the probabilities.
	Labels []string
	// Mean and Scale standardize the features, one value per feature.
	Mean, Scale []float32
	// Layers are the dense layers, first to last.
	Layers []Dense
}

// Dense is a fully connected layer: y = x W + B.
type Dense struct {
	// In and Out are the numbers of inputs and outputs.
	In, Out int
	// W is the weight matrix, [In][Out] row-major (the MatMul layout).
	W []float32
	// B is the bias, [Out].
	B []float32
}

// newTabular returns the tabular weights around layers, in fresh slices so
// that no caller can change what another gets.
func newTabular(layers ...Dense) Tabular {
	return Tabular{
		FeatureNames: []string{"age", "income", "tenure_months", "sessions_per_week"},
		Labels:       []string{"stay", "churn"},
		Mean:         []float32{40, 60000, 24, 3},
		Scale:        []float32{12, 25000, 18, 2.5},
		Layers:       layers,
	}
}

// LogReg returns a churn classifier on four tabular features (age, income,
// tenure_months, sessions_per_week) by logistic regression, and its weights:
//
//	input  "features"      FLOAT [batch, 4]  raw feature values
//	standardize; MatMul [4,2]; Add [2] -> logits
//	output "probabilities" FLOAT [batch, 2]  Softmax(logits), stay/churn
//	output "label"         INT64 [batch]     ArgMax(logits), 0 stay, 1 churn
//
// The model's metadata holds "feature_names" and "labels", comma-separated.
func LogReg() ([]byte, Tabular) {
	w := newTabular(Dense{
		In: 4, Out: 2,
		// Columns stay, churn: younger, poorer, newer and less active
		// customers churn more.
		W: []float32{
			0.10, -0.25, // age
			0.05, -0.15, // income
			0.60, -0.80, // tenure_months
			0.70, -0.90, // sessions_per_week
		},
		B: []float32{0.2, -0.2},
	})
	return tabularModel("abgate_demo_logreg", "abgate demo logistic regression (churn); fixed weights", w), w
}

// MLP returns a churn classifier with the inputs and outputs of LogReg and
// one hidden layer of 8 units with Relu, and its weights. The weights are
// drawn from a fixed-seed generator with He-uniform bounds.
func MLP() ([]byte, Tabular) {
	const hidden = 8
	w := newTabular(
		Dense{In: 4, Out: hidden, W: uniform(11, 4*hidden, heBound(4)), B: uniform(12, hidden, 0.1)},
		Dense{In: hidden, Out: 2, W: uniform(13, hidden*2, heBound(hidden)), B: uniform(14, 2, 0.1)},
	)
	return tabularModel("abgate_demo_mlp", "abgate demo MLP 4-8-2 (churn); fixed weights", w), w
}

// tabularModel builds the graph that w describes.
func tabularModel(name, doc string, w Tabular) []byte {
	nf := int64(len(w.FeatureNames))
	g := NewGraph(name)
	g.Input("features", Float, "batch", nf)
	g.Initializer("mean", Float, []int64{nf}, w.Mean)
	g.Initializer("scale", Float, []int64{nf}, w.Scale)
	g.Node("Sub", []string{"features", "mean"}, []string{"centered"})
	g.Node("Div", []string{"centered", "scale"}, []string{"x0"})
	x := "x0"
	for i, l := range w.Layers {
		p := "dense" + strconv.Itoa(i)
		g.Initializer(p+".weight", Float, []int64{int64(l.In), int64(l.Out)}, l.W)
		g.Initializer(p+".bias", Float, []int64{int64(l.Out)}, l.B)
		g.Node("MatMul", []string{x, p + ".weight"}, []string{p + ".matmul"})
		out := p + ".out"
		if i == len(w.Layers)-1 {
			out = "logits"
		}
		g.Node("Add", []string{p + ".matmul", p + ".bias"}, []string{out})
		x = out
		if i < len(w.Layers)-1 {
			x = p + ".relu"
			g.Node("Relu", []string{out}, []string{x})
		}
	}
	g.Node("Softmax", []string{"logits"}, []string{"probabilities"}, AttrInt("axis", 1))
	g.Node("ArgMax", []string{"logits"}, []string{"label"}, AttrInt("axis", 1), AttrInt("keepdims", 0))
	g.Output("probabilities", Float, "batch", int64(len(w.Labels)))
	g.Output("label", Int64, "batch")
	m := Model(g)
	m.DocString = doc
	m.Metadata = map[string]string{
		"feature_names": strings.Join(w.FeatureNames, ","),
		"labels":        strings.Join(w.Labels, ","),
	}
	return mustBytes(m)
}

// mustBytes serializes a model built by this package from constants; an
// error is a bug in this package, which the tests would catch.
func mustBytes(m *ModelProto) []byte {
	b, err := m.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

// heBound is the He-uniform bound sqrt(6 / fanIn).
func heBound(fanIn int) float32 {
	return float32(math.Sqrt(6 / float64(fanIn)))
}

// uniform returns n values in [-bound, bound) from a SplitMix64 generator
// seeded with seed. It is written out rather than taken from math/rand so
// that the weights never change with the Go version.
func uniform(seed uint64, n int, bound float32) []float32 {
	out := make([]float32, n)
	s := seed * 0x9e3779b97f4a7c15
	for i := range out {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		u := float64(z>>11) / (1 << 53) // [0, 1)
		out[i] = float32((2*u - 1) * float64(bound))
	}
	return out
}

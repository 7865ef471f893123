package modelgen_test

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"abgate/inference/modelgen"
)

// identityCase runs the Identity model of one element type on a [2, 3]
// tensor and checks that the output equals the input.
type identityCase struct {
	elem modelgen.ElemType
	want ort.TensorElementDataType
	run  func(t *testing.T, s *ort.DynamicAdvancedSession)
}

// roundtrip returns an identityCase body for a type that ort.Tensor holds.
func roundtrip[T ort.TensorData](data []T) func(*testing.T, *ort.DynamicAdvancedSession) {
	return func(t *testing.T, s *ort.DynamicAdvancedSession) {
		x := newTensor(t, ort.NewShape(2, modelgen.IdentityWidth), data)
		out := run(t, s, []ort.Value{x}, []ort.Value{nil})
		checkShape(t, "y", out[0], 2, modelgen.IdentityWidth)
		if got := tensorData[T](t, out[0]); !slices.Equal(got, data) {
			t.Errorf("y = %v, want %v", got, data)
		}
	}
}

// rawRoundtrip returns an identityCase body for a type that ort.Tensor
// cannot hold, passed as raw little-endian bytes.
func rawRoundtrip(elem ort.TensorElementDataType, raw []byte) func(*testing.T, *ort.DynamicAdvancedSession) {
	return func(t *testing.T, s *ort.DynamicAdvancedSession) {
		shape := ort.NewShape(2, modelgen.IdentityWidth)
		x, err := ort.NewCustomDataTensor(shape, raw, elem)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Destroy() })
		// The caller allocates the output: for a type without a Go type,
		// onnxruntime_go v1.27.0 allocates one byte per element, and the
		// run fails for FLOAT16 and BFLOAT16 ("not enough space").
		y, err := ort.NewCustomDataTensor(shape, make([]byte, len(raw)), elem)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { y.Destroy() })
		if err := s.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
			t.Fatal(err)
		}
		if got := y.GetData(); !slices.Equal(got, raw) {
			t.Errorf("y = % x, want % x", got, raw)
		}
	}
}

// le16 returns the little-endian bytes of 16-bit patterns.
func le16(bits ...uint16) []byte {
	var b []byte
	for _, v := range bits {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

func TestIdentityEveryType(t *testing.T) {
	needORT(t)
	cases := []identityCase{
		{modelgen.Float, ort.TensorElementDataTypeFloat, roundtrip([]float32{0, 1.5, -2.25, math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.Inf(-1))})},
		{modelgen.Uint8, ort.TensorElementDataTypeUint8, roundtrip([]uint8{0, 1, 2, 127, 128, 255})},
		{modelgen.Int8, ort.TensorElementDataTypeInt8, roundtrip([]int8{0, 1, -1, 127, -128, 42})},
		{modelgen.Uint16, ort.TensorElementDataTypeUint16, roundtrip([]uint16{0, 1, 256, 32768, 65535, 7})},
		{modelgen.Int16, ort.TensorElementDataTypeInt16, roundtrip([]int16{0, -1, 256, math.MaxInt16, math.MinInt16, 7})},
		{modelgen.Int32, ort.TensorElementDataTypeInt32, roundtrip([]int32{0, -1, 1 << 20, math.MaxInt32, math.MinInt32, 7})},
		{modelgen.Int64, ort.TensorElementDataTypeInt64, roundtrip([]int64{0, -1, 1 << 40, math.MaxInt64, math.MinInt64, 7})},
		{modelgen.Bool, ort.TensorElementDataTypeBool, roundtrip([]bool{true, false, false, true, true, false})},
		{modelgen.Double, ort.TensorElementDataTypeDouble, roundtrip([]float64{0, 1e-300, -2.5, math.MaxFloat64, math.Pi, math.Inf(1)})},
		{modelgen.Uint32, ort.TensorElementDataTypeUint32, roundtrip([]uint32{0, 1, 1 << 31, math.MaxUint32, 65536, 7})},
		{modelgen.Uint64, ort.TensorElementDataTypeUint64, roundtrip([]uint64{0, 1, 1 << 63, math.MaxUint64, 1 << 32, 7})},
		{modelgen.String, ort.TensorElementDataTypeString, func(t *testing.T, s *ort.DynamicAdvancedSession) {
			data := []string{"", "a", "héllo wörld", "日本語", "with space", "🙂"}
			x, err := ort.NewStringTensor(ort.NewShape(2, modelgen.IdentityWidth))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { x.Destroy() })
			if err := x.SetContents(data); err != nil {
				t.Fatal(err)
			}
			out := run(t, s, []ort.Value{x}, []ort.Value{nil})
			y, ok := out[0].(*ort.StringTensor)
			if !ok {
				t.Fatalf("y is %T, want *ort.StringTensor", out[0])
			}
			got, err := y.GetContents()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, data) {
				t.Errorf("y = %q, want %q", got, data)
			}
		}},
		// 1, -2, 0.5, 65504 (max), smallest subnormal, -0.
		{modelgen.Float16, ort.TensorElementDataTypeFloat16, rawRoundtrip(ort.TensorElementDataTypeFloat16, le16(0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000))},
		// 1, -2, 0.5, 3.39e38 (max), NaN, -0.
		{modelgen.BFloat16, ort.TensorElementDataTypeBFloat16, rawRoundtrip(ort.TensorElementDataTypeBFloat16, le16(0x3f80, 0xc000, 0x3f00, 0x7f7f, 0x7fc0, 0x8000))},
		{modelgen.Float8E4M3FN, ort.TensorElementDataTypeFloat8E4M3FN, rawRoundtrip(ort.TensorElementDataTypeFloat8E4M3FN, []byte{0x38, 0xc0, 0x30, 0x7e, 0x01, 0x80})},
		{modelgen.Float8E4M3FNUZ, ort.TensorElementDataTypeFloat8E4M3FNUZ, rawRoundtrip(ort.TensorElementDataTypeFloat8E4M3FNUZ, []byte{0x40, 0xc8, 0x38, 0x7f, 0x01, 0x00})},
		{modelgen.Float8E5M2, ort.TensorElementDataTypeFloat8E5M2, rawRoundtrip(ort.TensorElementDataTypeFloat8E5M2, []byte{0x3c, 0xc0, 0x38, 0x7b, 0x01, 0x80})},
		{modelgen.Float8E5M2FNUZ, ort.TensorElementDataTypeFloat8E5M2FNUZ, rawRoundtrip(ort.TensorElementDataTypeFloat8E5M2FNUZ, []byte{0x40, 0xc4, 0x3c, 0x7f, 0x01, 0x00})},
	}
	for _, c := range cases {
		t.Run(c.elem.String(), func(t *testing.T) {
			model, err := modelgen.Identity(c.elem)
			if err != nil {
				t.Fatal(err)
			}
			checkIO(t, model,
				[]ioSpec{tensorSpec("x", c.want, -1, modelgen.IdentityWidth)},
				[]ioSpec{tensorSpec("y", c.want, -1, modelgen.IdentityWidth)})
			c.run(t, session(t, model, []string{"x"}, []string{"y"}))
		})
	}
}

func TestIdentityInvalidType(t *testing.T) {
	for _, elem := range []modelgen.ElemType{modelgen.Undefined, -1, 99} {
		if _, err := modelgen.Identity(elem); err == nil {
			t.Errorf("Identity(%v): no error", elem)
		}
	}
}

func TestScalar(t *testing.T) {
	needORT(t)
	model := modelgen.Scalar()
	checkIO(t, model,
		[]ioSpec{tensorSpec("x", ort.TensorElementDataTypeFloat)},
		[]ioSpec{tensorSpec("y", ort.TensorElementDataTypeFloat)})
	s := session(t, model, []string{"x"}, []string{"y"})
	for _, x := range []float32{3.5, -1, 0} {
		in, err := ort.NewScalar(x)
		if err != nil {
			t.Fatal(err)
		}
		// onnxruntime_go cannot allocate a rank-0 output itself (its
		// Shape.Validate rejects an empty shape), so the caller does.
		out, err := ort.NewEmptyScalar[float32]()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
			t.Fatal(err)
		}
		if got, want := out.GetData(), 2*x; got != want {
			t.Errorf("y(%v) = %v, want %v", x, got, want)
		}
		in.Destroy()
		out.Destroy()
	}
}

func TestMultiIO(t *testing.T) {
	needORT(t)
	model := modelgen.MultiIO()
	f := ort.TensorElementDataType(ort.TensorElementDataTypeFloat)
	checkIO(t, model,
		[]ioSpec{tensorSpec("a", f, -1, 3), tensorSpec("b", f, -1, 3)},
		[]ioSpec{tensorSpec("sum", f, -1, 3), tensorSpec("product", f, -1, 3), tensorSpec("difference", f, -1, 3)})
	a := []float32{1, 2, 3, 4, 5, 6, -1, 0.5, 8}
	b := []float32{6, 5, 4, 3, 2, 1, 2, 0.25, -8}
	// Outputs asked for in another order than the model declares them.
	s := session(t, model, []string{"a", "b"}, []string{"difference", "sum", "product"})
	out := run(t, s, []ort.Value{newTensor(t, ort.NewShape(3, 3), a), newTensor(t, ort.NewShape(3, 3), b)}, make([]ort.Value, 3))
	ops := []struct {
		name string
		f    func(x, y float32) float32
	}{
		{"difference", func(x, y float32) float32 { return x - y }},
		{"sum", func(x, y float32) float32 { return x + y }},
		{"product", func(x, y float32) float32 { return x * y }},
	}
	for i, op := range ops {
		checkShape(t, op.name, out[i], 3, 3)
		want := make([]float32, len(a))
		for j := range a {
			want[j] = op.f(a[j], b[j])
		}
		if got := tensorData[float32](t, out[i]); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", op.name, got, want)
		}
	}
}

func TestAllDynamic(t *testing.T) {
	needORT(t)
	model := modelgen.AllDynamic()
	f := ort.TensorElementDataType(ort.TensorElementDataTypeFloat)
	checkIO(t, model,
		[]ioSpec{tensorSpec("x", f, -1, -1, -1)},
		[]ioSpec{tensorSpec("y", f, -1, -1, -1)})
	s := session(t, model, []string{"x"}, []string{"y"})
	for _, shape := range []ort.Shape{{2, 3, 4}, {1, 5, 1}, {3, 1, 2}} {
		x := make([]float32, shape.FlattenedSize())
		want := make([]float32, len(x))
		for i := range x {
			x[i] = float32(i) - 2.5
			want[i] = x[i] + 1
		}
		out := run(t, s, []ort.Value{newTensor(t, shape, x)}, []ort.Value{nil})
		checkShape(t, "y", out[0], shape...)
		if got := tensorData[float32](t, out[0]); !slices.Equal(got, want) {
			t.Errorf("shape %v: y = %v, want %v", shape, got, want)
		}
	}
}

func TestSequenceOutput(t *testing.T) {
	needORT(t)
	model := modelgen.SequenceOutput()
	f := ort.TensorElementDataType(ort.TensorElementDataTypeFloat)
	checkIO(t, model,
		[]ioSpec{tensorSpec("a", f, -1, 2), tensorSpec("b", f, -1, 2)},
		[]ioSpec{{Name: "pair", Kind: ort.ONNXTypeSequence}, tensorSpec("sum", f, -1, 2)})
	a := []float32{1, 2, 3, 4}
	b := []float32{10, 20, 30, 40}
	inputs := []ort.Value{newTensor(t, ort.NewShape(2, 2), a), newTensor(t, ort.NewShape(2, 2), b)}

	t.Run("tensor output only", func(t *testing.T) {
		s := session(t, model, []string{"a", "b"}, []string{"sum"})
		out := run(t, s, inputs, []ort.Value{nil})
		if got, want := tensorData[float32](t, out[0]), []float32{11, 22, 33, 44}; !slices.Equal(got, want) {
			t.Errorf("sum = %v, want %v", got, want)
		}
	})
	t.Run("both outputs", func(t *testing.T) {
		s := session(t, model, []string{"a", "b"}, []string{"pair", "sum"})
		out := run(t, s, inputs, []ort.Value{nil, nil})
		seq, ok := out[0].(*ort.Sequence)
		if !ok {
			t.Fatalf("pair is %T, want *ort.Sequence", out[0])
		}
		vals, err := seq.GetValues()
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) != 2 {
			t.Fatalf("pair has %d elements, want 2", len(vals))
		}
		for i, want := range [][]float32{a, b} {
			checkShape(t, "pair element", vals[i], 2, 2)
			if got := tensorData[float32](t, vals[i]); !slices.Equal(got, want) {
				t.Errorf("pair[%d] = %v, want %v", i, got, want)
			}
		}
	})
}

func TestMapOutput(t *testing.T) {
	needORT(t)
	model := modelgen.MapOutput()
	checkIO(t, model,
		[]ioSpec{tensorSpec("probabilities", ort.TensorElementDataTypeFloat, -1, 2)},
		[]ioSpec{tensorSpec("label", ort.TensorElementDataTypeInt64, -1), {Name: "output_probability", Kind: ort.ONNXTypeSequence}})
	probs := []float32{0.9, 0.1, 0.25, 0.75, 0.4, 0.6}
	s := session(t, model, []string{"probabilities"}, []string{"label", "output_probability"})
	out := run(t, s, []ort.Value{newTensor(t, ort.NewShape(3, 2), probs)}, []ort.Value{nil, nil})
	if got, want := tensorData[int64](t, out[0]), []int64{0, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("label = %v, want %v", got, want)
	}
	seq, ok := out[1].(*ort.Sequence)
	if !ok {
		t.Fatalf("output_probability is %T, want *ort.Sequence", out[1])
	}
	rows, err := seq.GetValues()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d maps, want 3", len(rows))
	}
	for i, r := range rows {
		m, ok := r.(*ort.Map)
		if !ok {
			t.Fatalf("row %d is %T, want *ort.Map", i, r)
		}
		k, v, err := m.GetKeysAndValues()
		if err != nil {
			t.Fatal(err)
		}
		keys, err := k.(*ort.StringTensor).GetContents()
		if err != nil {
			t.Fatal(err)
		}
		got := make(map[string]float32)
		for j, key := range keys {
			got[key] = tensorData[float32](t, v)[j]
		}
		want := map[string]float32{"stay": probs[2*i], "churn": probs[2*i+1]}
		if len(got) != len(want) || got["stay"] != want["stay"] || got["churn"] != want["churn"] {
			t.Errorf("row %d = %v, want %v", i, got, want)
		}
	}
}

// TestIdentityRejectedTypes pins what Identity's doc says ONNX Runtime 1.24
// does not load, so that the doc changes when a new runtime does.
func TestIdentityRejectedTypes(t *testing.T) {
	needORT(t)
	for _, elem := range []modelgen.ElemType{modelgen.Complex64, modelgen.Complex128, modelgen.Uint4, modelgen.Int4, modelgen.Float4E2M1} {
		t.Run(elem.String(), func(t *testing.T) {
			model, err := modelgen.Identity(elem)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{"x"}, []string{"y"}, nil)
			if err == nil {
				s.Destroy()
				t.Fatalf("ONNX Runtime %s loads Identity(%v); update Identity's doc", ort.GetVersion(), elem)
			}
			t.Logf("rejected as documented: %v", err)
		})
	}
}

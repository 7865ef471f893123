package modelgen_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// ortErr says why ONNX Runtime is not available to the tests; nil when it
// is. TestMain sets it once per test binary.
var ortErr error

// TestMain initializes ONNX Runtime once for every test that needs it. The
// shared library comes from $ABGATE_ORT_LIB, else ../../lib (where `make
// lib` puts it).
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	lib := os.Getenv("ABGATE_ORT_LIB")
	if lib == "" {
		lib = filepath.Join("..", "..", "lib", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(lib); err != nil {
		ortErr = fmt.Errorf("ONNX Runtime library not found (%v); `make lib` fetches it, or set ABGATE_ORT_LIB", err)
		return m.Run()
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		// A library that is there but does not load is a failure, not a
		// reason to skip.
		fmt.Fprintf(os.Stderr, "modelgen tests: initialize ONNX Runtime from %s: %v\n", lib, err)
		return 1
	}
	defer ort.DestroyEnvironment()
	return m.Run()
}

// needORT skips t when ONNX Runtime is not available, or fails it when the
// environment variable CI is set: CI must run these tests.
func needORT(t testing.TB) {
	t.Helper()
	if ortErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(ortErr)
	}
	t.Skip(ortErr)
}

// session loads model into a session with the given input and output names,
// destroyed when t ends.
func session(t testing.TB, model []byte, inputs, outputs []string) *ort.DynamicAdvancedSession {
	t.Helper()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, nil)
	if err != nil {
		t.Fatalf("load model: %v", err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

// run runs s on inputs and returns its outputs. A nil entry of outputs is
// allocated by ONNX Runtime; every output is destroyed when t ends.
func run(t testing.TB, s *ort.DynamicAdvancedSession, inputs []ort.Value, outputs []ort.Value) []ort.Value {
	t.Helper()
	if err := s.Run(inputs, outputs); err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		for _, v := range outputs {
			if v != nil {
				v.Destroy()
			}
		}
	})
	return outputs
}

// newTensor returns a tensor destroyed when t ends.
func newTensor[T ort.TensorData](t testing.TB, shape ort.Shape, data []T) *ort.Tensor[T] {
	t.Helper()
	v, err := ort.NewTensor(shape, data)
	if err != nil {
		t.Fatalf("new tensor %v: %v", shape, err)
	}
	t.Cleanup(func() { v.Destroy() })
	return v
}

// ioSpec is what ONNX Runtime reports about an input or output; Dims is -1
// for a dynamic axis.
type ioSpec struct {
	Name string
	Kind ort.ONNXType
	Elem ort.TensorElementDataType
	Dims ort.Shape
}

func tensorSpec(name string, elem ort.TensorElementDataType, dims ...int64) ioSpec {
	return ioSpec{Name: name, Kind: ort.ONNXTypeTensor, Elem: elem, Dims: dims}
}

// checkIO compares the inputs and outputs that ONNX Runtime reads from
// model with the wanted ones.
func checkIO(t testing.TB, model []byte, wantIn, wantOut []ioSpec) {
	t.Helper()
	in, out, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		t.Fatalf("input/output info: %v", err)
	}
	compareIO(t, "input", in, wantIn)
	compareIO(t, "output", out, wantOut)
}

func compareIO(t testing.TB, what string, got []ort.InputOutputInfo, want []ioSpec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d %ss, want %d: %v", len(got), what, len(want), got)
	}
	for i, g := range got {
		w := want[i]
		gs := ioSpec{Name: g.Name, Kind: g.OrtValueType}
		if g.OrtValueType == ort.ONNXTypeTensor {
			gs.Elem, gs.Dims = g.DataType, g.Dimensions
		}
		if gs.Name != w.Name || gs.Kind != w.Kind || gs.Elem != w.Elem || !slices.Equal(gs.Dims, w.Dims) {
			t.Errorf("%s %d: got %s %v %v %v, want %s %v %v %v", what, i,
				gs.Name, gs.Kind, gs.Elem, gs.Dims, w.Name, w.Kind, w.Elem, w.Dims)
		}
	}
}

// tensorData returns the data of a float32 output.
func tensorData[T ort.TensorData](t testing.TB, v ort.Value) []T {
	t.Helper()
	tt, ok := v.(*ort.Tensor[T])
	if !ok {
		t.Fatalf("output is %T, want *ort.Tensor[%T]", v, *new(T))
	}
	return tt.GetData()
}

// checkShape fails t if v does not have the wanted shape.
func checkShape(t testing.TB, name string, v ort.Value, want ...int64) {
	t.Helper()
	if got := v.GetShape(); !slices.Equal(got, want) {
		t.Errorf("%s shape %v, want %v", name, got, want)
	}
}

package modelgen_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"

	"abgate/inference/modelgen"
)

// field is one decoded protobuf field: v for varint and fixed32 fields, b
// for length-delimited ones.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// msg is a decoded protobuf message, its fields in wire order.
type msg []field

// decode walks the fields of the protobuf message b, failing t if b is not
// well formed.
func decode(t testing.TB, b []byte) msg {
	t.Helper()
	var m msg
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		m = append(m, f)
	}
	return m
}

// all returns the fields numbered num.
func (m msg) all(num protowire.Number) []field {
	var out []field
	for _, f := range m {
		if f.num == num {
			out = append(out, f)
		}
	}
	return out
}

// one returns the only field numbered num, failing t if there is not
// exactly one.
func (m msg) one(t testing.TB, num protowire.Number) field {
	t.Helper()
	fs := m.all(num)
	if len(fs) != 1 {
		t.Fatalf("%d fields numbered %d, want 1", len(fs), num)
	}
	return fs[0]
}

func (m msg) str(t testing.TB, num protowire.Number) string {
	t.Helper()
	return string(m.one(t, num).b)
}

func (m msg) strs(num protowire.Number) []string {
	var out []string
	for _, f := range m.all(num) {
		out = append(out, string(f.b))
	}
	return out
}

func (m msg) sub(t testing.TB, num protowire.Number) msg {
	t.Helper()
	return decode(t, m.one(t, num).b)
}

func (m msg) subs(t testing.TB, num protowire.Number) []msg {
	t.Helper()
	var out []msg
	for _, f := range m.all(num) {
		out = append(out, decode(t, f.b))
	}
	return out
}

// doubleModel is the model of the package example.
func doubleModel() *modelgen.ModelProto {
	g := modelgen.NewGraph("double")
	g.Input("x", modelgen.Float, "batch", 4)
	g.Initializer("two", modelgen.Float, nil, []float32{2})
	g.Node("Mul", []string{"x", "two"}, []string{"y"})
	g.Output("y", modelgen.Float, "batch", 4)
	m := modelgen.Model(g)
	m.Metadata = map[string]string{"owner": "ml-team", "labels": "a,b"}
	return m
}

// Field numbers below are written out from onnx.proto, independently of
// writer.go.
func TestBytesDecode(t *testing.T) {
	b, err := doubleModel().Bytes()
	if err != nil {
		t.Fatal(err)
	}
	model := decode(t, b)
	if got := model.one(t, 1).v; got != 8 {
		t.Errorf("ir_version = %d, want 8", got)
	}
	if got := model.str(t, 2); got != "abgate" {
		t.Errorf("producer_name = %q", got)
	}
	opsets := model.subs(t, 8)
	if len(opsets) != 1 || opsets[0].one(t, 2).v != 17 {
		t.Errorf("opset_import = %v, want one default-domain opset 17", opsets)
	}
	if d := opsets[0].strs(1); len(d) > 0 && d[0] != "" {
		t.Errorf("opset domain = %q, want empty", d)
	}
	var meta []string
	for _, e := range model.subs(t, 14) {
		meta = append(meta, e.str(t, 1)+"="+e.str(t, 2))
	}
	if want := []string{"labels=a,b", "owner=ml-team"}; !slices.Equal(meta, want) {
		t.Errorf("metadata_props = %q, want %q", meta, want)
	}

	graph := model.sub(t, 7)
	if got := graph.str(t, 2); got != "double" {
		t.Errorf("graph name = %q", got)
	}
	node := graph.sub(t, 1)
	if got, want := node.strs(1), []string{"x", "two"}; !slices.Equal(got, want) {
		t.Errorf("node inputs = %q, want %q", got, want)
	}
	if got := node.strs(2); !slices.Equal(got, []string{"y"}) {
		t.Errorf("node outputs = %q", got)
	}
	if got := node.str(t, 4); got != "Mul" {
		t.Errorf("op_type = %q", got)
	}
	if got := node.str(t, 3); got != "Mul_0" {
		t.Errorf("node name = %q", got)
	}
	if len(node.all(7)) != 0 {
		t.Errorf("default-domain node has a domain field")
	}

	init := graph.sub(t, 5)
	if got := init.str(t, 8); got != "two" {
		t.Errorf("initializer name = %q", got)
	}
	if len(init.all(1)) != 0 {
		t.Errorf("scalar initializer has dims %v", init.all(1))
	}
	if got := init.one(t, 2).v; got != 1 {
		t.Errorf("initializer data_type = %d, want 1 (FLOAT)", got)
	}
	if got, want := init.one(t, 9).b, []byte{0, 0, 0, 0x40}; !bytes.Equal(got, want) {
		t.Errorf("raw_data = % x, want % x (2.0 little-endian)", got, want)
	}

	for _, c := range []struct {
		num  protowire.Number
		name string
	}{{11, "x"}, {12, "y"}} {
		vi := graph.sub(t, c.num)
		if got := vi.str(t, 1); got != c.name {
			t.Errorf("value info name = %q, want %q", got, c.name)
		}
		tensorType := vi.sub(t, 2).sub(t, 1)
		if got := tensorType.one(t, 1).v; got != 1 {
			t.Errorf("%s elem_type = %d, want 1", c.name, got)
		}
		dims := tensorType.sub(t, 2).subs(t, 1)
		if len(dims) != 2 {
			t.Fatalf("%s has %d dims, want 2", c.name, len(dims))
		}
		if got := dims[0].str(t, 2); got != "batch" {
			t.Errorf("%s dim 0 dim_param = %q, want batch", c.name, got)
		}
		if got := dims[1].one(t, 1).v; got != 4 {
			t.Errorf("%s dim 1 dim_value = %d, want 4", c.name, got)
		}
	}
}

func TestBytesDecodeMapOutput(t *testing.T) {
	model := decode(t, modelgen.MapOutput())
	opsets := make(map[string]uint64)
	for _, o := range model.subs(t, 8) {
		d := ""
		if ds := o.strs(1); len(ds) > 0 {
			d = ds[0]
		}
		opsets[d] = o.one(t, 2).v
	}
	if len(opsets) != 2 || opsets[""] != 17 || opsets["ai.onnx.ml"] != 3 {
		t.Errorf("opsets = %v, want default 17 and ai.onnx.ml 3", opsets)
	}
	graph := model.sub(t, 7)
	nodes := graph.subs(t, 1)
	if len(nodes) != 2 {
		t.Fatalf("%d nodes, want 2", len(nodes))
	}
	argMax, zipMap := nodes[0], nodes[1]
	if got := zipMap.str(t, 7); got != "ai.onnx.ml" {
		t.Errorf("ZipMap domain = %q", got)
	}
	attr := zipMap.sub(t, 5)
	if attr.str(t, 1) != "classlabels_strings" || attr.one(t, 20).v != 8 {
		t.Errorf("ZipMap attribute = %q type %d, want classlabels_strings type 8 (STRINGS)", attr.str(t, 1), attr.one(t, 20).v)
	}
	if got := attr.strs(9); !slices.Equal(got, []string{"stay", "churn"}) {
		t.Errorf("strings = %q", got)
	}
	var ints []string
	for _, a := range argMax.subs(t, 5) {
		if a.one(t, 20).v != 2 {
			t.Errorf("ArgMax attribute %q type %d, want 2 (INT)", a.str(t, 1), a.one(t, 20).v)
		}
		ints = append(ints, fmt.Sprintf("%s=%d", a.str(t, 1), a.one(t, 3).v))
	}
	if want := []string{"axis=1", "keepdims=0"}; !slices.Equal(ints, want) {
		t.Errorf("ArgMax attributes %q, want %q", ints, want)
	}

	outputs := graph.subs(t, 12)
	if len(outputs) != 2 || outputs[1].str(t, 1) != "output_probability" {
		t.Fatalf("outputs %v", outputs)
	}
	// sequence_type(4).elem_type(1) = map_type(5){key_type(1), value_type(2)}
	mapType := outputs[1].sub(t, 2).sub(t, 4).sub(t, 1).sub(t, 5)
	if got := mapType.one(t, 1).v; got != 8 {
		t.Errorf("map key_type = %d, want 8 (STRING)", got)
	}
	value := mapType.sub(t, 2).sub(t, 1)
	if got := value.one(t, 1).v; got != 1 {
		t.Errorf("map value elem_type = %d, want 1", got)
	}
	if len(value.all(2)) != 0 {
		t.Error("map value of unknown rank has a shape")
	}
}

func TestBytesDecodeAttributes(t *testing.T) {
	b, _ := modelgen.CNN()
	nodes := decode(t, b).sub(t, 7).subs(t, 1)
	attrs := func(op string) map[string]msg {
		for _, n := range nodes {
			if n.str(t, 4) == op {
				out := make(map[string]msg)
				for _, a := range n.subs(t, 5) {
					out[a.str(t, 1)] = a
				}
				return out
			}
		}
		t.Fatalf("no %s node", op)
		return nil
	}
	pads := attrs("Conv")["pads"]
	if got := pads.one(t, 20).v; got != 7 {
		t.Errorf("pads type = %d, want 7 (INTS)", got)
	}
	ints := pads.all(8)
	if len(ints) != 4 {
		t.Fatalf("pads has %d ints, want 4", len(ints))
	}
	for _, f := range ints {
		if f.typ != protowire.VarintType || f.v != 1 {
			t.Errorf("pads element %+v, want varint 1 (proto2, unpacked)", f)
		}
	}
	alpha := attrs("Gemm")["alpha"]
	if alpha.one(t, 20).v != 1 || alpha.one(t, 2).typ != protowire.Fixed32Type || math.Float32frombits(uint32(alpha.one(t, 2).v)) != 1 {
		t.Errorf("alpha = %+v, want FLOAT 1.0 as fixed32", alpha)
	}
	if got := attrs("Gemm")["transB"].one(t, 3).v; got != 1 {
		t.Errorf("transB = %d", got)
	}
}

func TestTensorEncoding(t *testing.T) {
	f32 := func(vs ...float32) []byte {
		var b []byte
		for _, v := range vs {
			b = protowire.AppendFixed32(b, math.Float32bits(v))
		}
		return b
	}
	for _, c := range []struct {
		name    string
		elem    modelgen.ElemType
		dims    []int64
		data    any
		wantRaw []byte
		wantStr []string
	}{
		{"float", modelgen.Float, []int64{2}, []float32{1, -2}, f32(1, -2), nil},
		{"double", modelgen.Double, []int64{1}, []float64{1}, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, nil},
		{"int8", modelgen.Int8, []int64{2}, []int8{-1, 2}, []byte{0xff, 2}, nil},
		{"uint8", modelgen.Uint8, []int64{2}, []uint8{255, 2}, []byte{0xff, 2}, nil},
		{"int16", modelgen.Int16, []int64{1}, []int16{-2}, []byte{0xfe, 0xff}, nil},
		{"uint16", modelgen.Uint16, []int64{1}, []uint16{0x1234}, []byte{0x34, 0x12}, nil},
		{"int32", modelgen.Int32, []int64{1}, []int32{-2}, []byte{0xfe, 0xff, 0xff, 0xff}, nil},
		{"uint32", modelgen.Uint32, []int64{1}, []uint32{0x01020304}, []byte{4, 3, 2, 1}, nil},
		{"int64", modelgen.Int64, []int64{1}, []int64{-1}, bytes.Repeat([]byte{0xff}, 8), nil},
		{"uint64", modelgen.Uint64, []int64{1}, []uint64{1}, []byte{1, 0, 0, 0, 0, 0, 0, 0}, nil},
		{"bool", modelgen.Bool, []int64{3}, []bool{true, false, true}, []byte{1, 0, 1}, nil},
		{"float16 bits", modelgen.Float16, []int64{1}, []uint16{0x3c00}, []byte{0, 0x3c}, nil},
		{"bfloat16 bits", modelgen.BFloat16, []int64{1}, []uint16{0x3f80}, []byte{0x80, 0x3f}, nil},
		{"complex64", modelgen.Complex64, []int64{1}, []complex64{complex(1, -2)}, f32(1, -2), nil},
		{"raw int4", modelgen.Int4, []int64{3}, []byte{0x21, 0x03}, []byte{0x21, 0x03}, nil},
		{"raw float8", modelgen.Float8E4M3FN, []int64{2}, []byte{0x38, 0xc0}, []byte{0x38, 0xc0}, nil},
		{"string", modelgen.String, []int64{3}, []string{"a", "", "日本"}, nil, []string{"a", "", "日本"}},
		{"empty", modelgen.Float, []int64{0, 3}, []float32{}, []byte{}, nil},
		{"matrix", modelgen.Int32, []int64{2, 2}, []int32{1, 2, 3, 4}, []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := modelgen.NewGraph("g")
			g.Initializer("w", c.elem, c.dims, c.data)
			g.Output("w", c.elem, anyDims(c.dims)...)
			b, err := modelgen.Model(g).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			init := decode(t, b).sub(t, 7).sub(t, 5)
			var dims []int64
			for _, f := range init.all(1) {
				dims = append(dims, int64(f.v))
			}
			if !slices.Equal(dims, c.dims) {
				t.Errorf("dims = %v, want %v", dims, c.dims)
			}
			if got := modelgen.ElemType(init.one(t, 2).v); got != c.elem {
				t.Errorf("data_type = %v, want %v", got, c.elem)
			}
			if c.elem == modelgen.String {
				if got := init.strs(6); !slices.Equal(got, c.wantStr) || len(init.all(9)) != 0 {
					t.Errorf("string_data = %q (raw_data %d fields), want %q", got, len(init.all(9)), c.wantStr)
				}
				return
			}
			if got := init.one(t, 9).b; !bytes.Equal(got, c.wantRaw) {
				t.Errorf("raw_data = % x, want % x", got, c.wantRaw)
			}
		})
	}
}

func anyDims(dims []int64) []any {
	out := make([]any, len(dims))
	for i, d := range dims {
		out[i] = d
	}
	return out
}

func TestTypeEncoding(t *testing.T) {
	g := modelgen.NewGraph("types")
	g.InputOf("scalar", modelgen.TensorOf(modelgen.Float))
	g.InputOf("anyrank", modelgen.TensorAnyRank(modelgen.Int64))
	g.InputOf("anon", modelgen.TensorOf(modelgen.Float, nil, int32(2)))
	g.Node("Identity", []string{"scalar"}, []string{"out"})
	g.Output("out", modelgen.Float)
	b, err := modelgen.Model(g).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	inputs := decode(t, b).sub(t, 7).subs(t, 11)
	tensorType := func(i int) msg { return inputs[i].sub(t, 2).sub(t, 1) }
	if shape := tensorType(0).one(t, 2); len(shape.b) != 0 {
		t.Errorf("scalar shape = % x, want an empty TensorShapeProto", shape.b)
	}
	if n := len(tensorType(1).all(2)); n != 0 {
		t.Errorf("unknown rank: %d shape fields, want none", n)
	}
	dims := tensorType(2).sub(t, 2).subs(t, 1)
	if len(dims) != 2 || len(dims[0]) != 0 || dims[1].one(t, 1).v != 2 {
		t.Errorf("dims = %v, want an empty Dimension then dim_value 2", dims)
	}
}

func TestBuilderErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(g *modelgen.Graph)
		want  string
	}{
		{"undefined element type", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Undefined, 1)
		}, "invalid element type"},
		{"float dim", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1.5)
		}, "neither an integer"},
		{"negative dim", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, -1)
		}, "negative"},
		{"empty dim_param", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, "")
		}, "empty dim_param"},
		{"zero Type", func(g *modelgen.Graph) {
			g.InputOf("x", modelgen.Type{})
		}, "zero Type"},
		{"float map key", func(g *modelgen.Graph) {
			g.OutputOf("y", modelgen.MapOf(modelgen.Float, modelgen.TensorOf(modelgen.Float)))
		}, "map key"},
		{"input twice", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1)
			g.Input("x", modelgen.Float, 1)
		}, "added twice"},
		{"initializer too short", func(g *modelgen.Graph) {
			g.Initializer("w", modelgen.Float, []int64{2, 2}, []float32{1, 2, 3})
		}, "3 elements for shape [2 2], want 4"},
		{"initializer of the wrong Go type", func(g *modelgen.Graph) {
			g.Initializer("w", modelgen.Float, []int64{1}, []float64{1})
		}, "cannot hold FLOAT"},
		{"initializer of an unknown Go type", func(g *modelgen.Graph) {
			g.Initializer("w", modelgen.Float, []int64{1}, []int{1})
		}, "cannot hold FLOAT"},
		{"raw data of the wrong length", func(g *modelgen.Graph) {
			g.Initializer("w", modelgen.Float16, []int64{3}, []byte{1, 2, 3, 4})
		}, "want 6"},
		{"bad tensor attribute", func(g *modelgen.Graph) {
			g.Node("Constant", nil, []string{"c"}, modelgen.AttrTensor("value", modelgen.Float, []int64{2}, []float32{1}))
		}, `attribute "value"`},
		{"read before definition", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1)
			g.Node("Relu", []string{"h"}, []string{"y"})
			g.Node("Relu", []string{"x"}, []string{"h"})
			g.Output("y", modelgen.Float, 1)
		}, `reads "h" before`},
		{"value written twice", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1)
			g.Node("Relu", []string{"x"}, []string{"y"})
			g.Node("Neg", []string{"x"}, []string{"y"})
			g.Output("y", modelgen.Float, 1)
		}, "already defined"},
		{"output of nothing", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1)
			g.Output("y", modelgen.Float, 1)
		}, `nothing produces output "y"`},
		{"no output", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1)
		}, "no output"},
		{"domain not imported", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1)
			g.Node("Custom", []string{"x"}, []string{"y"}).Domain = "com.example"
			g.Output("y", modelgen.Float, 1)
		}, `domain "com.example"`},
		{"zero attribute", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1)
			g.Node("Relu", []string{"x"}, []string{"y"}, modelgen.Attribute{})
		}, "zero Attribute"},
		{"attribute without a name", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, 1)
			g.Node("Flatten", []string{"x"}, []string{"y"}, modelgen.AttrInt("", 1))
		}, "empty name"},
		{"empty op_type", func(g *modelgen.Graph) {
			g.Node("", nil, []string{"y"})
		}, "empty op_type"},
		{"first error kept", func(g *modelgen.Graph) {
			g.Input("x", modelgen.Float, -1)
			g.Input("", modelgen.Float, 1)
			// Nodes added after an error are detached, not nil.
			g.Node("Relu", []string{"x"}, []string{"y"}).Domain = "com.example"
		}, "negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := modelgen.NewGraph("g")
			c.build(g)
			_, err := modelgen.Model(g).Bytes()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Bytes() error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestModelOpsets(t *testing.T) {
	build := func(opsets ...modelgen.Opset) ([]byte, error) {
		g := modelgen.NewGraph("g")
		g.Input("x", modelgen.Float, 1)
		g.Node("Relu", []string{"x"}, []string{"y"})
		g.Output("y", modelgen.Float, 1)
		return modelgen.Model(g, opsets...).Bytes()
	}
	b, err := build(modelgen.Opset{Version: 13}, modelgen.Opset{Domain: "com.example", Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range decode(t, b).subs(t, 8) {
		d := o.strs(1)
		got = append(got, fmt.Sprintf("%s:%d", strings.Join(d, ""), o.one(t, 2).v))
	}
	if want := []string{":13", "com.example:2"}; !slices.Equal(got, want) {
		t.Errorf("opsets = %q, want %q", got, want)
	}
	if _, err := build(modelgen.Opset{Version: 13}, modelgen.Opset{Domain: "ai.onnx", Version: 13}); err == nil {
		t.Error("default domain imported twice: no error")
	}
	if _, err := build(modelgen.Opset{Version: 0}); err == nil {
		t.Error("opset version 0: no error")
	}
	if _, err := (&modelgen.ModelProto{}).Bytes(); err == nil {
		t.Error("model without a graph: no error")
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	m := doubleModel()
	if err := os.WriteFile(path, []byte("old contents"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, _ := m.Bytes()
	if !bytes.Equal(got, wantBytes) {
		t.Error("file differs from Bytes()")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only model.onnx", len(entries))
	}

	bad := modelgen.NewGraph("bad")
	bad.Input("x", modelgen.Float, -1)
	if err := modelgen.Model(bad).WriteFile(filepath.Join(dir, "bad.onnx")); err == nil {
		t.Error("invalid graph written without error")
	}
	if err := m.WriteFile(filepath.Join(dir, "missing", "model.onnx")); err == nil {
		t.Error("write into a missing directory: no error")
	}

	t.Run("ONNX Runtime loads the file", func(t *testing.T) {
		needORT(t)
		in, out, err := ort.GetInputOutputInfo(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(in) != 1 || in[0].Name != "x" || len(out) != 1 || out[0].Name != "y" {
			t.Fatalf("inputs %v outputs %v", in, out)
		}
		s, err := ort.NewDynamicAdvancedSession(path, []string{"x"}, []string{"y"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		x := newTensor(t, ort.NewShape(2, 4), []float32{1, 2, 3, 4, -1, -2, 0.5, 0})
		res := run(t, s, []ort.Value{x}, []ort.Value{nil})
		if got, want := tensorData[float32](t, res[0]), []float32{2, 4, 6, 8, -2, -4, 1, 0}; !slices.Equal(got, want) {
			t.Errorf("y = %v, want %v", got, want)
		}
		checkMetadata(t, wantBytes, map[string]string{"owner": "ml-team", "labels": "a,b"})
	})
}

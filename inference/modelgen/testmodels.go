package modelgen

import "fmt"

// IdentityWidth is the fixed second axis of the Identity models.
const IdentityWidth = 3

// Identity returns a model that copies a tensor of element type elem:
//
//	input  "x" elem [batch, IdentityWidth]
//	output "y" elem [batch, IdentityWidth]   y = Identity(x)
//
// The model imports the default domain at DefaultOpset with IRVersion, or,
// for the types that came later, at the first opset whose Identity takes
// them: 19 (IR 9) for the float8 types, 21 (IR 10) for Uint4 and Int4, 23
// (IR 11) for Float4E2M1. It fails only if elem is not a valid element type.
// ONNX Runtime 1.24 on CPU loads it for every type but Complex64,
// Complex128, Uint4, Int4 and Float4E2M1.
func Identity(elem ElemType) ([]byte, error) {
	if !elem.Valid() {
		return nil, fmt.Errorf("modelgen: invalid element type %v", elem)
	}
	g := NewGraph("identity_" + elem.String())
	g.Input("x", elem, "batch", IdentityWidth)
	g.Node("Identity", []string{"x"}, []string{"y"})
	g.Output("y", elem, "batch", IdentityWidth)
	ir, opset := int64(IRVersion), int64(DefaultOpset)
	switch elem {
	case Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ:
		ir, opset = 9, 19
	case Uint4, Int4:
		ir, opset = 10, 21
	case Float4E2M1:
		ir, opset = 11, 23
	}
	m := Model(g, Opset{Version: opset})
	m.IRVersion = ir
	return m.Bytes()
}

// Scalar returns a model on rank-0 tensors:
//
//	input  "x" FLOAT []
//	output "y" FLOAT []   y = x * 2
func Scalar() []byte {
	g := NewGraph("scalar")
	g.Input("x", Float)
	g.Initializer("two", Float, nil, []float32{2})
	g.Node("Mul", []string{"x", "two"}, []string{"y"})
	g.Output("y", Float)
	return mustBytes(Model(g))
}

// MultiIO returns a model with two inputs and three outputs:
//
//	inputs  "a", "b"                       FLOAT [batch, 3]
//	outputs "sum", "product", "difference" FLOAT [batch, 3]
//	        a + b, a * b, a - b
func MultiIO() []byte {
	g := NewGraph("multi_io")
	g.Input("a", Float, "batch", 3)
	g.Input("b", Float, "batch", 3)
	g.Node("Add", []string{"a", "b"}, []string{"sum"})
	g.Node("Mul", []string{"a", "b"}, []string{"product"})
	g.Node("Sub", []string{"a", "b"}, []string{"difference"})
	g.Output("sum", Float, "batch", 3)
	g.Output("product", Float, "batch", 3)
	g.Output("difference", Float, "batch", 3)
	return mustBytes(Model(g))
}

// AllDynamic returns a model whose every axis is dynamic:
//
//	input  "x" FLOAT [d0, d1, d2]
//	output "y" FLOAT [d0, d1, d2]   y = x + 1
func AllDynamic() []byte {
	g := NewGraph("all_dynamic")
	g.Input("x", Float, "d0", "d1", "d2")
	g.Initializer("one", Float, nil, []float32{1})
	g.Node("Add", []string{"x", "one"}, []string{"y"})
	g.Output("y", Float, "d0", "d1", "d2")
	return mustBytes(Model(g))
}

// SequenceOutput returns a model with a sequence output beside a tensor
// output:
//
//	inputs "a", "b" FLOAT [batch, 2]
//	output "pair"   sequence of FLOAT [batch, 2]   SequenceConstruct(a, b)
//	output "sum"    FLOAT [batch, 2]               a + b
func SequenceOutput() []byte {
	g := NewGraph("sequence_output")
	g.Input("a", Float, "batch", 2)
	g.Input("b", Float, "batch", 2)
	g.Node("SequenceConstruct", []string{"a", "b"}, []string{"pair"})
	g.Node("Add", []string{"a", "b"}, []string{"sum"})
	g.OutputOf("pair", SequenceOf(TensorOf(Float, "batch", 2)))
	g.Output("sum", Float, "batch", 2)
	return mustBytes(Model(g))
}

// MapOutput returns a classifier head with the outputs that sklearn-onnx
// classifiers have, a label tensor and a sequence of maps made by ZipMap
// (domain ai.onnx.ml):
//
//	input  "probabilities"      FLOAT [batch, 2]
//	output "label"              INT64 [batch]   ArgMax(axis=1)
//	output "output_probability" sequence of map STRING -> FLOAT,
//	                            one map per row, keys "stay" and "churn"
func MapOutput() []byte {
	g := NewGraph("map_output")
	g.Input("probabilities", Float, "batch", 2)
	g.Node("ArgMax", []string{"probabilities"}, []string{"label"}, AttrInt("axis", 1), AttrInt("keepdims", 0))
	g.Node("ZipMap", []string{"probabilities"}, []string{"output_probability"},
		AttrStrings("classlabels_strings", "stay", "churn")).Domain = DomainML
	g.Output("label", Int64, "batch")
	g.OutputOf("output_probability", SequenceOf(MapOf(String, TensorAnyRank(Float))))
	return mustBytes(Model(g))
}

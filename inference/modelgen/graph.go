// Package modelgen writes ONNX model files (ModelProto) with fixed weights:
// the demo models that abgate serves out of the box and the small models
// that the inference server's tests load. It encodes the protobuf messages
// by hand with protowire, so it needs neither protoc nor ONNX's Python
// package, and it imports no ONNX Runtime.
//
// A model is built as a graph:
//
//	g := modelgen.NewGraph("double")
//	g.Input("x", modelgen.Float, "batch", 4)
//	g.Initializer("two", modelgen.Float, nil, []float32{2})
//	g.Node("Mul", []string{"x", "two"}, []string{"y"})
//	g.Output("y", modelgen.Float, "batch", 4)
//	err := modelgen.Model(g).WriteFile("models/double/1/model.onnx")
//
// The builder methods record the first error in the graph and ignore the
// calls after it; Graph.Err, ModelProto.Bytes and ModelProto.WriteFile return
// it.
package modelgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Versions written when a model does not say otherwise.
const (
	// IRVersion is the ONNX IR version of the models: 8 (ONNX 1.10), the
	// version that goes with opset 17.
	IRVersion = 8
	// DefaultOpset is the version of the default ONNX operator set.
	DefaultOpset = 17
	// DomainML is the domain of the traditional-ML operators (ZipMap,
	// LinearClassifier, TreeEnsemble...).
	DomainML = "ai.onnx.ml"
	// DefaultMLOpset is the version of DomainML imported when a node uses it
	// and the model names no version.
	DefaultMLOpset = 3
	// Producer is the producer_name of the models.
	Producer = "abgate"
)

// Graph is an ONNX graph under construction: its inputs, outputs,
// initializers (fixed weights) and nodes in topological order. Make one with
// NewGraph; the zero Graph is not usable.
type Graph struct {
	name         string
	inputs       []valueInfo
	outputs      []valueInfo
	valueInfos   []valueInfo
	initializers []tensor
	nodes        []*Node
	err          error
}

type valueInfo struct {
	name string
	typ  Type
}

// NewGraph returns an empty graph called name.
func NewGraph(name string) *Graph {
	return &Graph{name: name}
}

// Err returns the first error that a builder method met, or nil.
func (g *Graph) Err() error { return g.err }

func (g *Graph) fail(err error) {
	if g.err == nil {
		g.err = fmt.Errorf("graph %q: %w", g.name, err)
	}
}

// Input adds a tensor input called name of element type elem and the given
// dims (see TensorOf).
func (g *Graph) Input(name string, elem ElemType, dims ...any) {
	g.InputOf(name, TensorOf(elem, dims...))
}

// InputOf adds an input called name of type t.
func (g *Graph) InputOf(name string, t Type) {
	g.inputs = g.addValue(g.inputs, "input", name, t)
}

// Output adds a tensor output called name of element type elem and the given
// dims (see TensorOf). A node or an input must produce name.
func (g *Graph) Output(name string, elem ElemType, dims ...any) {
	g.OutputOf(name, TensorOf(elem, dims...))
}

// OutputOf adds an output called name of type t, which may be a sequence or
// a map. A node or an input must produce name.
func (g *Graph) OutputOf(name string, t Type) {
	g.outputs = g.addValue(g.outputs, "output", name, t)
}

// ValueInfo declares the type of the intermediate value called name. ONNX
// Runtime infers these types itself; declaring them is optional.
func (g *Graph) ValueInfo(name string, t Type) {
	g.valueInfos = g.addValue(g.valueInfos, "value_info", name, t)
}

func (g *Graph) addValue(list []valueInfo, what, name string, t Type) []valueInfo {
	if g.err != nil {
		return list
	}
	if name == "" {
		g.fail(fmt.Errorf("%s with an empty name", what))
		return list
	}
	for _, v := range list {
		if v.name == name {
			g.fail(fmt.Errorf("%s %q added twice", what, name))
			return list
		}
	}
	if err := t.check(); err != nil {
		g.fail(fmt.Errorf("%s %q: %w", what, name, err))
		return list
	}
	return append(list, valueInfo{name: name, typ: t})
}

// Initializer adds a constant tensor (a weight) called name of element type
// elem and shape dims (nil for a scalar). data holds the elements in
// row-major order as a slice of the matching Go type: []float32 for Float,
// []float64 for Double, []int8, []uint8, []int16, []uint16, []int32,
// []uint32, []int64, []uint64 for the integer types, []bool for Bool,
// []string for String, []complex64 and []complex128 for the complex types,
// and []uint16 bit patterns for Float16 and BFloat16. A []byte is taken as
// the little-endian raw_data of any type but String.
func (g *Graph) Initializer(name string, elem ElemType, dims []int64, data any) {
	if g.err != nil {
		return
	}
	if name == "" {
		g.fail(errors.New("initializer with an empty name"))
		return
	}
	for _, t := range g.initializers {
		if t.name == name {
			g.fail(fmt.Errorf("initializer %q added twice", name))
			return
		}
	}
	t, err := newTensor(name, elem, dims, data)
	if err != nil {
		g.fail(fmt.Errorf("initializer %q: %w", name, err))
		return
	}
	g.initializers = append(g.initializers, t)
}

// Node is one operator call in a graph. Graph.Node adds it and returns it so
// that the caller may set Name or Domain; the other fields should not change
// after that.
type Node struct {
	// OpType is the operator, such as "Conv" or "ZipMap".
	OpType string
	// Domain is the operator set of OpType; empty means the default ONNX
	// domain. A node in DomainML makes the model import it.
	Domain string
	// Name names the node in ONNX Runtime's errors and profiles. Graph.Node
	// sets it to OpType and the node's index, such as "Conv_0".
	Name string
	// Inputs and Outputs name the values the node reads and writes. An empty
	// name stands for an omitted optional input or output.
	Inputs, Outputs []string
	// Attrs are the node's attributes.
	Attrs []Attribute
}

// Node appends a node that applies op to inputs, writes outputs and has the
// given attributes. Nodes must be added in topological order: each input
// must be a graph input, an initializer or an output of an earlier node. It
// returns the node; after an error, the node it returns is not in the graph.
func (g *Graph) Node(op string, inputs, outputs []string, attrs ...Attribute) *Node {
	if g.err != nil {
		return &Node{OpType: op}
	}
	if op == "" {
		g.fail(errors.New("node with an empty op_type"))
		return &Node{}
	}
	for _, a := range attrs {
		err := a.err
		if err == nil && a.typ == 0 {
			err = errors.New("zero Attribute")
		}
		if err == nil && a.name == "" {
			err = errors.New("attribute with an empty name")
		}
		if err != nil {
			g.fail(fmt.Errorf("node %d (%s): %w", len(g.nodes), op, err))
			return &Node{OpType: op}
		}
	}
	n := &Node{
		OpType:  op,
		Name:    fmt.Sprintf("%s_%d", op, len(g.nodes)),
		Inputs:  append([]string(nil), inputs...),
		Outputs: append([]string(nil), outputs...),
		Attrs:   append([]Attribute(nil), attrs...),
	}
	g.nodes = append(g.nodes, n)
	return n
}

// check verifies what ONNX Runtime would reject with a less clear message:
// values defined twice, values used before they are defined, and outputs
// that nothing produces.
func (g *Graph) check() error {
	if g.err != nil {
		return g.err
	}
	defined := make(map[string]string) // value name -> what defines it
	for _, v := range g.inputs {
		defined[v.name] = "input"
	}
	for _, t := range g.initializers {
		if what, ok := defined[t.name]; ok && what != "input" {
			return fmt.Errorf("graph %q: initializer %q is also a %s", g.name, t.name, what)
		}
		// An initializer may share its name with an input: the input
		// then has a default value (IR version 4 and later).
		defined[t.name] = "initializer"
	}
	for _, n := range g.nodes {
		if n.OpType == "" {
			return fmt.Errorf("graph %q: node %q has an empty op_type", g.name, n.Name)
		}
		for _, in := range n.Inputs {
			if _, ok := defined[in]; in != "" && !ok {
				return fmt.Errorf("graph %q: node %q reads %q before anything defines it", g.name, n.Name, in)
			}
		}
		for _, out := range n.Outputs {
			if out == "" {
				continue
			}
			if what, ok := defined[out]; ok {
				return fmt.Errorf("graph %q: node %q writes %q, already defined by %s", g.name, n.Name, out, what)
			}
			defined[out] = fmt.Sprintf("node %q", n.Name)
		}
	}
	if len(g.outputs) == 0 {
		return fmt.Errorf("graph %q has no output", g.name)
	}
	for _, v := range g.outputs {
		if _, ok := defined[v.name]; !ok {
			return fmt.Errorf("graph %q: nothing produces output %q", g.name, v.name)
		}
	}
	return nil
}

// Attribute is a named attribute of a node. Make one with AttrInt,
// AttrFloat, AttrString, AttrInts, AttrFloats, AttrStrings or AttrTensor.
type Attribute struct {
	name   string
	typ    attrType
	f      float32
	i      int64
	s      string
	floats []float32
	ints   []int64
	strs   []string
	t      *tensor
	err    error
}

// attrType is AttributeProto.AttributeType.
type attrType int32

const (
	attrFloat   attrType = 1
	attrInt     attrType = 2
	attrString  attrType = 3
	attrTensor  attrType = 4
	attrFloats  attrType = 6
	attrInts    attrType = 7
	attrStrings attrType = 8
)

// AttrInt returns an INT attribute, such as Flatten's axis.
func AttrInt(name string, v int64) Attribute {
	return Attribute{name: name, typ: attrInt, i: v}
}

// AttrFloat returns a FLOAT attribute, such as Gemm's alpha.
func AttrFloat(name string, v float32) Attribute {
	return Attribute{name: name, typ: attrFloat, f: v}
}

// AttrString returns a STRING attribute, such as Conv's auto_pad.
func AttrString(name, v string) Attribute {
	return Attribute{name: name, typ: attrString, s: v}
}

// AttrInts returns an INTS attribute, such as Conv's pads.
func AttrInts(name string, v ...int64) Attribute {
	return Attribute{name: name, typ: attrInts, ints: append([]int64(nil), v...)}
}

// AttrFloats returns a FLOATS attribute.
func AttrFloats(name string, v ...float32) Attribute {
	return Attribute{name: name, typ: attrFloats, floats: append([]float32(nil), v...)}
}

// AttrStrings returns a STRINGS attribute, such as ZipMap's
// classlabels_strings.
func AttrStrings(name string, v ...string) Attribute {
	return Attribute{name: name, typ: attrStrings, strs: append([]string(nil), v...)}
}

// AttrTensor returns a TENSOR attribute, such as Constant's value, holding a
// tensor of element type elem and shape dims; data is as for
// Graph.Initializer.
func AttrTensor(name string, elem ElemType, dims []int64, data any) Attribute {
	t, err := newTensor("", elem, dims, data)
	if err != nil {
		return Attribute{name: name, err: fmt.Errorf("attribute %q: %w", name, err)}
	}
	return Attribute{name: name, typ: attrTensor, t: &t}
}

// Opset is an operator set that a model imports: a domain (empty for the
// default ONNX domain) and its version.
type Opset struct {
	Domain  string
	Version int64
}

// ModelProto is an ONNX model: a graph and the metadata around it. Model
// fills it in; the fields may be changed before Bytes or WriteFile.
type ModelProto struct {
	// IRVersion is the ONNX IR version; Model sets IRVersion.
	IRVersion int64
	// ProducerName and ProducerVersion say what wrote the file; Model sets
	// ProducerName to Producer.
	ProducerName, ProducerVersion string
	// Domain and ModelVersion identify the model, as in onnx.proto.
	Domain       string
	ModelVersion int64
	// DocString describes the model.
	DocString string
	// Opsets are the imported operator sets. Bytes always imports the
	// default domain, at DefaultOpset unless Opsets names it, and adds
	// DomainML at DefaultMLOpset when a node uses it and Opsets does not.
	Opsets []Opset
	// Metadata becomes metadata_props, which ONNX Runtime returns as the
	// custom metadata map; written in key order.
	Metadata map[string]string
	// Graph is the model's graph.
	Graph *Graph
}

// Model returns a model of graph g importing the given operator sets (the
// default ONNX domain at DefaultOpset if none is given).
func Model(g *Graph, opsets ...Opset) *ModelProto {
	return &ModelProto{
		IRVersion:    IRVersion,
		ProducerName: Producer,
		Opsets:       append([]Opset(nil), opsets...),
		Graph:        g,
	}
}

// opsets returns m.Opsets completed with the defaults, or an error if a
// domain is imported twice or a node's domain is not imported and has no
// default.
func (m *ModelProto) opsets() ([]Opset, error) {
	norm := func(d string) string {
		if d == "ai.onnx" {
			return ""
		}
		return d
	}
	out := make([]Opset, 0, len(m.Opsets)+2)
	seen := make(map[string]bool)
	for _, o := range m.Opsets {
		d := norm(o.Domain)
		if seen[d] {
			return nil, fmt.Errorf("opset of domain %q imported twice", o.Domain)
		}
		if o.Version < 1 {
			return nil, fmt.Errorf("opset of domain %q: version %d", o.Domain, o.Version)
		}
		seen[d] = true
		out = append(out, o)
	}
	if !seen[""] {
		out = append([]Opset{{Domain: "", Version: DefaultOpset}}, out...)
		seen[""] = true
	}
	for _, n := range m.Graph.nodes {
		d := norm(n.Domain)
		if seen[d] {
			continue
		}
		if d != DomainML {
			return nil, fmt.Errorf("node %q uses domain %q, which the model does not import", n.Name, n.Domain)
		}
		out = append(out, Opset{Domain: DomainML, Version: DefaultMLOpset})
		seen[d] = true
	}
	return out, nil
}

// Bytes returns the serialized model, or the first error of its graph, or
// an error if the graph is inconsistent (a value used before it is defined,
// an output nothing produces, a domain not imported).
func (m *ModelProto) Bytes() ([]byte, error) {
	if m.Graph == nil {
		return nil, errors.New("modelgen: model without a graph")
	}
	if err := m.Graph.check(); err != nil {
		return nil, fmt.Errorf("modelgen: %w", err)
	}
	opsets, err := m.opsets()
	if err != nil {
		return nil, fmt.Errorf("modelgen: %w", err)
	}
	return appendModel(nil, m, opsets), nil
}

// WriteFile writes the serialized model to path, creating or replacing it
// with mode 0644. It writes a temporary file in the same directory and
// renames it, so a reader never sees half a model.
func (m *ModelProto) WriteFile(path string) error {
	b, err := m.Bytes()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".modelgen-*.onnx")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

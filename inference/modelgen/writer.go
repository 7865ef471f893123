package modelgen

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto (ONNX 1.18). onnx.proto is proto2: repeated
// scalars without [packed = true] are written one tag per element, as
// ONNX's own serializer writes them.
const (
	// ModelProto
	modelIRVersion       protowire.Number = 1
	modelProducerName    protowire.Number = 2
	modelProducerVersion protowire.Number = 3
	modelDomain          protowire.Number = 4
	modelModelVersion    protowire.Number = 5
	modelDocString       protowire.Number = 6
	modelGraph           protowire.Number = 7
	modelOpsetImport     protowire.Number = 8
	modelMetadataProps   protowire.Number = 14

	// OperatorSetIdProto
	opsetDomain  protowire.Number = 1
	opsetVersion protowire.Number = 2

	// StringStringEntryProto
	entryKey   protowire.Number = 1
	entryValue protowire.Number = 2

	// GraphProto
	graphNode        protowire.Number = 1
	graphName        protowire.Number = 2
	graphInitializer protowire.Number = 5
	graphInput       protowire.Number = 11
	graphOutput      protowire.Number = 12
	graphValueInfo   protowire.Number = 13

	// NodeProto
	nodeInput     protowire.Number = 1
	nodeOutput    protowire.Number = 2
	nodeName      protowire.Number = 3
	nodeOpType    protowire.Number = 4
	nodeAttribute protowire.Number = 5
	nodeDomain    protowire.Number = 7

	// AttributeProto
	attrName    protowire.Number = 1
	attrF       protowire.Number = 2
	attrI       protowire.Number = 3
	attrS       protowire.Number = 4
	attrT       protowire.Number = 5
	attrFloatsN protowire.Number = 7
	attrIntsN   protowire.Number = 8
	attrStrsN   protowire.Number = 9
	attrTypeN   protowire.Number = 20

	// TensorProto
	tensorDims       protowire.Number = 1
	tensorDataType   protowire.Number = 2
	tensorStringData protowire.Number = 6
	tensorName       protowire.Number = 8
	tensorRawData    protowire.Number = 9

	// ValueInfoProto
	valueInfoName protowire.Number = 1
	valueInfoType protowire.Number = 2

	// TypeProto
	typeTensor   protowire.Number = 1
	typeSequence protowire.Number = 4
	typeMap      protowire.Number = 5

	// TypeProto.Tensor
	tensorTypeElemType protowire.Number = 1
	tensorTypeShape    protowire.Number = 2

	// TypeProto.Sequence
	sequenceElemType protowire.Number = 1

	// TypeProto.Map
	mapKeyType   protowire.Number = 1
	mapValueType protowire.Number = 2

	// TensorShapeProto
	shapeDim protowire.Number = 1

	// TensorShapeProto.Dimension
	dimValue protowire.Number = 1
	dimParam protowire.Number = 2
)

// tensor is a TensorProto: a constant of a graph or an attribute, its data
// already encoded.
type tensor struct {
	name string
	elem ElemType
	dims []int64
	raw  []byte   // little-endian raw_data, for every type but String
	strs []string // string_data, for String
}

// newTensor encodes data (see Graph.Initializer for the accepted types) as
// a tensor of element type elem and shape dims.
func newTensor(name string, elem ElemType, dims []int64, data any) (tensor, error) {
	t := tensor{name: name, elem: elem, dims: slices.Clone(dims)}
	if !elem.Valid() {
		return t, fmt.Errorf("invalid element type %v", elem)
	}
	n := int64(1)
	for i, d := range dims {
		if d < 0 {
			return t, fmt.Errorf("dim %d: negative size %d", i, d)
		}
		n *= d
	}
	if raw, ok := data.([]byte); ok && elem != String {
		if want := rawLen(elem, n); int64(len(raw)) != want {
			return t, fmt.Errorf("%d bytes of raw data for %d elements of %v, want %d", len(raw), n, elem, want)
		}
		t.raw = slices.Clone(raw)
		return t, nil
	}
	var count int
	var ok bool
	switch d := data.(type) {
	case []float32:
		count, ok = len(d), elem == Float
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint32(t.raw, math.Float32bits(v))
		}
	case []float64:
		count, ok = len(d), elem == Double
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint64(t.raw, math.Float64bits(v))
		}
	case []int8:
		count, ok = len(d), elem == Int8
		for _, v := range d {
			t.raw = append(t.raw, byte(v))
		}
	case []int16:
		count, ok = len(d), elem == Int16
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint16(t.raw, uint16(v))
		}
	case []uint16:
		count, ok = len(d), elem == Uint16 || elem == Float16 || elem == BFloat16
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint16(t.raw, v)
		}
	case []int32:
		count, ok = len(d), elem == Int32
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint32(t.raw, uint32(v))
		}
	case []uint32:
		count, ok = len(d), elem == Uint32
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint32(t.raw, v)
		}
	case []int64:
		count, ok = len(d), elem == Int64
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint64(t.raw, uint64(v))
		}
	case []uint64:
		count, ok = len(d), elem == Uint64
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint64(t.raw, v)
		}
	case []bool:
		count, ok = len(d), elem == Bool
		for _, v := range d {
			var b byte
			if v {
				b = 1
			}
			t.raw = append(t.raw, b)
		}
	case []complex64:
		count, ok = len(d), elem == Complex64
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint32(t.raw, math.Float32bits(real(v)))
			t.raw = binary.LittleEndian.AppendUint32(t.raw, math.Float32bits(imag(v)))
		}
	case []complex128:
		count, ok = len(d), elem == Complex128
		for _, v := range d {
			t.raw = binary.LittleEndian.AppendUint64(t.raw, math.Float64bits(real(v)))
			t.raw = binary.LittleEndian.AppendUint64(t.raw, math.Float64bits(imag(v)))
		}
	case []string:
		count, ok = len(d), elem == String
		t.strs = slices.Clone(d)
	default:
		return t, fmt.Errorf("data of type %T cannot hold %v elements", data, elem)
	}
	if !ok {
		return t, fmt.Errorf("data of type %T cannot hold %v elements", data, elem)
	}
	if int64(count) != n {
		return t, fmt.Errorf("%d elements for shape %v, want %d", count, dims, n)
	}
	if t.raw == nil && elem != String {
		t.raw = []byte{} // a zero-size tensor still says where its data is
	}
	return t, nil
}

// appendModel appends the ModelProto m with the given opset imports to b.
func appendModel(b []byte, m *ModelProto, opsets []Opset) []byte {
	b = appendVarintField(b, modelIRVersion, uint64(m.IRVersion))
	b = appendStringField(b, modelProducerName, m.ProducerName)
	b = appendStringField(b, modelProducerVersion, m.ProducerVersion)
	b = appendStringField(b, modelDomain, m.Domain)
	if m.ModelVersion != 0 {
		b = appendVarintField(b, modelModelVersion, uint64(m.ModelVersion))
	}
	b = appendStringField(b, modelDocString, m.DocString)
	b = appendMessage(b, modelGraph, appendGraph(nil, m.Graph))
	for _, o := range opsets {
		var ob []byte
		// The default domain is written as an empty string, as ONNX does.
		if o.Domain != "" {
			ob = appendStringField(ob, opsetDomain, o.Domain)
		}
		ob = appendVarintField(ob, opsetVersion, uint64(o.Version))
		b = appendMessage(b, modelOpsetImport, ob)
	}
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var eb []byte
		eb = appendStringAlways(eb, entryKey, k)
		eb = appendStringAlways(eb, entryValue, m.Metadata[k])
		b = appendMessage(b, modelMetadataProps, eb)
	}
	return b
}

// appendGraph appends the fields of the GraphProto g to b.
func appendGraph(b []byte, g *Graph) []byte {
	for _, n := range g.nodes {
		b = appendMessage(b, graphNode, appendNode(nil, n))
	}
	b = appendStringField(b, graphName, g.name)
	for i := range g.initializers {
		b = appendMessage(b, graphInitializer, appendTensor(nil, &g.initializers[i]))
	}
	for _, v := range g.inputs {
		b = appendMessage(b, graphInput, appendValueInfo(nil, v))
	}
	for _, v := range g.outputs {
		b = appendMessage(b, graphOutput, appendValueInfo(nil, v))
	}
	for _, v := range g.valueInfos {
		b = appendMessage(b, graphValueInfo, appendValueInfo(nil, v))
	}
	return b
}

// appendNode appends the fields of the NodeProto n to b.
func appendNode(b []byte, n *Node) []byte {
	for _, in := range n.Inputs {
		b = appendStringAlways(b, nodeInput, in)
	}
	for _, out := range n.Outputs {
		b = appendStringAlways(b, nodeOutput, out)
	}
	b = appendStringField(b, nodeName, n.Name)
	b = appendStringAlways(b, nodeOpType, n.OpType)
	for i := range n.Attrs {
		b = appendMessage(b, nodeAttribute, appendAttribute(nil, &n.Attrs[i]))
	}
	b = appendStringField(b, nodeDomain, n.Domain)
	return b
}

// appendAttribute appends the fields of the AttributeProto a to b.
func appendAttribute(b []byte, a *Attribute) []byte {
	b = appendStringAlways(b, attrName, a.name)
	switch a.typ {
	case attrFloat:
		b = protowire.AppendTag(b, attrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendVarintField(b, attrI, uint64(a.i))
	case attrString:
		b = appendStringAlways(b, attrS, a.s)
	case attrTensor:
		b = appendMessage(b, attrT, appendTensor(nil, a.t))
	case attrFloats:
		for _, f := range a.floats {
			b = protowire.AppendTag(b, attrFloatsN, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	case attrInts:
		for _, i := range a.ints {
			b = appendVarintField(b, attrIntsN, uint64(i))
		}
	case attrStrings:
		for _, s := range a.strs {
			b = appendStringAlways(b, attrStrsN, s)
		}
	}
	return appendVarintField(b, attrTypeN, uint64(a.typ))
}

// appendTensor appends the fields of the TensorProto t to b.
func appendTensor(b []byte, t *tensor) []byte {
	for _, d := range t.dims {
		b = appendVarintField(b, tensorDims, uint64(d))
	}
	b = appendVarintField(b, tensorDataType, uint64(t.elem))
	for _, s := range t.strs {
		b = appendStringAlways(b, tensorStringData, s)
	}
	b = appendStringField(b, tensorName, t.name)
	if t.raw != nil {
		b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
		b = protowire.AppendBytes(b, t.raw)
	}
	return b
}

// appendValueInfo appends the fields of a ValueInfoProto to b.
func appendValueInfo(b []byte, v valueInfo) []byte {
	b = appendStringAlways(b, valueInfoName, v.name)
	return appendMessage(b, valueInfoType, appendType(nil, v.typ))
}

// appendType appends the fields of the TypeProto t to b.
func appendType(b []byte, t Type) []byte {
	switch t.kind {
	case kindTensor:
		var tb []byte
		tb = appendVarintField(tb, tensorTypeElemType, uint64(t.elem))
		if t.ranked {
			var sb []byte // an empty TensorShapeProto is a scalar
			for _, d := range t.dims {
				var db []byte
				switch {
				case d.unknown:
				case d.param != "":
					db = appendStringAlways(db, dimParam, d.param)
				default:
					db = appendVarintField(db, dimValue, uint64(d.value))
				}
				sb = appendMessage(sb, shapeDim, db)
			}
			tb = appendMessage(tb, tensorTypeShape, sb)
		}
		b = appendMessage(b, typeTensor, tb)
	case kindSequence:
		b = appendMessage(b, typeSequence,
			appendMessage(nil, sequenceElemType, appendType(nil, *t.inner)))
	case kindMap:
		var mb []byte
		mb = appendVarintField(mb, mapKeyType, uint64(t.elem))
		mb = appendMessage(mb, mapValueType, appendType(nil, *t.inner))
		b = appendMessage(b, typeMap, mb)
	}
	return b
}

// appendVarintField appends field num as a varint.
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendStringField appends field num unless s is empty.
func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendStringAlways(b, num, s)
}

// appendStringAlways appends field num even if s is empty, as repeated
// strings and required names need.
func appendStringAlways(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendMessage appends the encoded message msg as field num.
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

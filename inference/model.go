package inference

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"

	"abgate"
)

// ModelFile is the file name of a model version: <repo>/<name>/<version>/model.onnx.
const ModelFile = "model.onnx"

// Platform is the V2 platform name of the models abgate serves.
const Platform = "onnxruntime_onnx"

// IOSpec describes an input or output of a model as its V2 metadata shows
// it. Shape has -1 for a dynamic axis and is empty for a scalar; it is nil
// when the model does not say the rank. Servable is false, with a Reason,
// for an output that abgate cannot return (a sequence, a map, an element
// type without a V2 datatype); the model's other outputs still work.
type IOSpec struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
	Servable bool    `json:"servable"`
	Reason   string  `json:"reason,omitempty"`

	dimNames  []string // the symbolic name of each axis, "" when static or unnamed
	rankKnown bool     // false when the model gives no shape at all
	elem      ort.TensorElementDataType
	prealloc  bool // abgate allocates this output (see needsPrealloc)
	// sized: the output's shape follows from the inputs' (every axis
	// static or named like an input axis), so abgate may allocate it in
	// Go before a run and save ONNX Runtime's allocation and a copy.
	sized     bool
	batchAxis bool // the first axis is dynamic: rows of a batch (see batchableInputs)
}

// Model is one loaded version of a model: its metadata, its configuration
// and a pool of ONNX Runtime sessions. It is safe for concurrent use.
type Model struct {
	Name        string
	Version     string
	Path        string // the model.onnx file
	Size        int64  // bytes of model.onnx
	Config      Config
	Inputs      []IOSpec
	Outputs     []IOSpec
	Producer    string            // producer_name of the ONNX file
	Description string            // doc_string of the ONNX file
	Metadata    map[string]string // metadata_props of the ONNX file
	Parameters  int64             // elements of the graph's initializers (the weights)
	LoadedAt    time.Time

	inputIndex  map[string]int // name -> index in Inputs
	outputIndex map[string]int // name -> index in Outputs
	runOutputs  []int          // indices of the servable outputs, the session's outputs
	runSlot     []int          // index in Outputs -> index in runOutputs, -1 if not servable
	pool        *sessionPool
	batcher     *Batcher    // the dynamic batcher in front of the pool
	batchable   bool        // requests may share a run: max_batch_size > 1 and batchableInputs
	closing     atomic.Bool // Close was called
	// unsized is set when a run failed with its sized outputs
	// allocated from their declared shapes and succeeded without: the
	// model's outputs do not follow their declarations, and ONNX Runtime
	// allocates them from then on.
	unsized atomic.Bool
	obs     *atomic.Pointer[metrics]     // the collectors of the repository's server; nil outside a repository
	metrics atomic.Pointer[modelMetrics] // this version's collectors, from obs

	imageOnce sync.Once
	image     *imageSetup // how the image API feeds the model; nil with imageErr
	imageErr  error

	// beforeRun, when set (by tests, before the first request), is called
	// at the start of each run of the batcher.
	beforeRun func(ctx context.Context)
}

// LoadModel loads <dir>/model.onnx as version version of model name with
// configuration cfg: it reads the inputs and outputs from the model and
// opens cfg.Instances ONNX Runtime sessions. Errors are EINVALID with the
// reason the model cannot be served (an unreadable or invalid file, an
// input that is not a tensor or whose type has no V2 datatype, no servable
// output, a config.yaml that does not fit the model).
func LoadModel(name, version, dir string, cfg Config) (*Model, error) {
	if !runtimeReady() {
		return nil, abgate.Errorf(abgate.EUNAVAILABLE, "%s", errNoRuntime)
	}
	path := filepath.Join(dir, ModelFile)
	fail := func(format string, args ...any) error {
		return abgate.Errorf(abgate.EINVALID, "model %q version %s: %s", name, version, fmt.Sprintf(format, args...))
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fail("no %s: %v", ModelFile, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail("read %s: %v", ModelFile, err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, fail("onnx runtime cannot load %s: %s", ModelFile, ortMessage(err))
	}
	info, err := parseModelProto(data)
	if err != nil {
		// ONNX Runtime loaded it, so it is a valid model that this small
		// parser does not follow; the shapes that ONNX Runtime reports
		// are enough, without the names of the dynamic axes.
		info = protoInfo{}
	}
	m := &Model{
		Name:        name,
		Version:     version,
		Path:        path,
		Size:        st.Size(),
		Config:      cfg,
		Producer:    info.producer,
		Description: info.doc,
		Metadata:    info.metadata,
		inputIndex:  make(map[string]int, len(ins)),
		outputIndex: make(map[string]int, len(outs)),
	}
	for _, io := range ins {
		spec := newIOSpec(io, info.shapes[io.Name])
		if !spec.Servable {
			return nil, fail("input %q cannot be served: %s", spec.Name, spec.Reason)
		}
		if len(spec.Shape) == 0 && spec.rankKnown && (spec.Datatype == DTFP16 || spec.Datatype == DTBF16 || spec.Datatype == DTBytes) {
			return nil, fail("input %q cannot be served: onnxruntime_go cannot make a rank-0 %s tensor", spec.Name, spec.Datatype)
		}
		m.inputIndex[spec.Name] = len(m.Inputs)
		m.Inputs = append(m.Inputs, spec)
	}
	inputDims := map[string]bool{}
	for _, in := range m.Inputs {
		for _, d := range in.dimNames {
			if d != "" {
				inputDims[d] = true
			}
		}
	}
	for _, io := range outs {
		spec := newIOSpec(io, info.shapes[io.Name])
		if spec.Servable {
			checkOutputAllocation(&spec, inputDims)
			spec.sized = shapeFollows(&spec, inputDims)
		}
		m.outputIndex[spec.Name] = len(m.Outputs)
		m.runSlot = append(m.runSlot, -1)
		if spec.Servable {
			m.runSlot[len(m.Outputs)] = len(m.runOutputs)
			m.runOutputs = append(m.runOutputs, len(m.Outputs))
		}
		m.Outputs = append(m.Outputs, spec)
	}
	if len(m.runOutputs) == 0 {
		reasons := make([]string, len(m.Outputs))
		for i, o := range m.Outputs {
			reasons[i] = fmt.Sprintf("%q: %s", o.Name, o.Reason)
		}
		return nil, fail("no output can be served (%s)", strings.Join(reasons, "; "))
	}
	if err := m.fitConfig(); err != nil {
		return nil, fail("%s: %s", ConfigFile, abgate.ErrorMessage(err))
	}
	inNames := make([]string, len(m.Inputs))
	for i, in := range m.Inputs {
		inNames[i] = in.Name
	}
	outNames := make([]string, len(m.runOutputs))
	for i, o := range m.runOutputs {
		outNames[i] = m.Outputs[o].Name
	}
	m.pool, err = newSessionPool(path, inNames, outNames, m.Config)
	if err != nil {
		return nil, fail("%s", err)
	}
	m.Parameters = info.parameters
	m.batchable = m.Config.MaxBatchSize > 1 && batchableInputs(m.Inputs)
	m.startBatcher()
	m.LoadedAt = time.Now()
	return m, nil
}

// newIOSpec combines what ONNX Runtime says of an input or output with the
// shape read from the model file, when there is one.
func newIOSpec(io ort.InputOutputInfo, ps *protoShape) IOSpec {
	spec := IOSpec{Name: io.Name, Shape: []int64{}, rankKnown: true}
	switch io.OrtValueType {
	case ort.ONNXTypeTensor:
	default:
		spec.Reason = fmt.Sprintf("it is %s, not a tensor; the V2 protocol carries tensors only", valueKind(io.OrtValueType))
		spec.Shape, spec.rankKnown = nil, false
		return spec
	}
	spec.elem = io.DataType
	spec.Shape = append(spec.Shape, io.Dimensions...)
	spec.dimNames = make([]string, len(spec.Shape))
	if ps != nil {
		switch {
		case !ps.known && len(spec.Shape) == 0:
			spec.Shape, spec.rankKnown, spec.dimNames = nil, false, nil
		case len(ps.names) == len(spec.Shape):
			copy(spec.dimNames, ps.names)
		}
	}
	for i, d := range spec.Shape {
		if d < 0 {
			spec.Shape[i] = -1
		} else {
			spec.dimNames[i] = ""
		}
	}
	dt, ok := datatypeOf(io.DataType)
	if !ok {
		spec.Reason = fmt.Sprintf("its element type %s has no V2 datatype", elemName(io.DataType))
		return spec
	}
	spec.Datatype = dt
	spec.Servable = true
	spec.batchAxis = spec.rankKnown && len(spec.Shape) > 0 && spec.Shape[0] < 0
	return spec
}

// valueKind names a kind of ONNX value that is not a tensor.
func valueKind(t ort.ONNXType) string {
	switch t {
	case ort.ONNXTypeSequence:
		return "a sequence"
	case ort.ONNXTypeMap:
		return "a map"
	case ort.ONNXTypeOptional:
		return "an optional"
	case ort.ONNXTypeSparseTensor:
		return "a sparse tensor"
	case ort.ONNXTypeOpaque:
		return "an opaque value"
	}
	return "a value of an unknown kind"
}

// checkOutputAllocation marks the outputs that abgate must allocate before
// a run: onnxruntime_go v1.27.0 cannot return rank-0 outputs, nor FP16 and
// BF16 outputs, that ONNX Runtime allocated. Such an output is servable
// only when its shape follows from the inputs' (every axis static or named
// like an input axis); else it is marked not servable with the reason.
func checkOutputAllocation(spec *IOSpec, inputDims map[string]bool) {
	half := spec.Datatype == DTFP16 || spec.Datatype == DTBF16
	scalar := spec.rankKnown && len(spec.Shape) == 0
	if !half && !scalar {
		return
	}
	spec.prealloc = true
	switch {
	case scalar && (half || spec.Datatype == DTBytes):
		spec.Servable, spec.Reason = false, fmt.Sprintf("onnxruntime_go cannot return a rank-0 %s tensor", spec.Datatype)
	case !spec.rankKnown:
		spec.Servable, spec.Reason = false, fmt.Sprintf("its rank is unknown, and onnxruntime_go can return %s outputs only when abgate allocates them from their shape", spec.Datatype)
	default:
		for i, d := range spec.Shape {
			if d < 0 && !inputDims[spec.dimNames[i]] {
				spec.Servable, spec.Reason = false, fmt.Sprintf("axis %d is dynamic and not named like an input axis, and onnxruntime_go can return %s outputs only when abgate allocates them from their shape", i, spec.Datatype)
				return
			}
		}
	}
}

// shapeFollows reports whether the shape of an output, of a numeric
// datatype, follows from the inputs' shapes: its rank is known and every
// axis is static or named like an input axis.
func shapeFollows(spec *IOSpec, inputDims map[string]bool) bool {
	if !spec.rankKnown || spec.Datatype == DTBytes {
		return false
	}
	for i, d := range spec.Shape {
		if d < 0 && (spec.dimNames[i] == "" || !inputDims[spec.dimNames[i]]) {
			return false
		}
	}
	return true
}

// fitConfig checks the configuration against the model: the image input
// must be a float input of rank 4 (an empty image.input names the only
// input), and labels come from the model's metadata when config.yaml has
// none.
func (m *Model) fitConfig() error {
	if len(m.Config.Labels) == 0 && m.Metadata["labels"] != "" {
		m.Config.Labels = strings.Split(m.Metadata["labels"], ",")
	}
	if len(m.Config.FeatureNames) == 0 && m.Metadata["feature_names"] != "" {
		m.Config.FeatureNames = strings.Split(m.Metadata["feature_names"], ",")
	}
	im := m.Config.Image
	if im == nil {
		return nil
	}
	cp := *im
	m.Config.Image = &cp
	if cp.Input == "" {
		if len(m.Inputs) != 1 {
			return abgate.FieldErrorf("image.input", "image.input is empty and the model has %d inputs (%s): name the image input", len(m.Inputs), m.inputList())
		}
		cp.Input = m.Inputs[0].Name
	}
	i, ok := m.inputIndex[cp.Input]
	if !ok {
		return abgate.FieldErrorf("image.input", "image.input %q is not an input of the model (inputs: %s)", cp.Input, m.inputList())
	}
	in := m.Inputs[i]
	if in.Datatype != DTFP32 || (in.rankKnown && len(in.Shape) != 4) {
		return abgate.FieldErrorf("image.input", "image.input %q is %s %s; an image input must be FP32 of rank 4", cp.Input, in.Datatype, formatShape(in.Shape))
	}
	if in.rankKnown {
		want := append([]int64{in.Shape[0]}, cp.Spec().Shape()...)
		for a, d := range in.Shape {
			if d >= 0 && d != want[a] {
				return abgate.FieldErrorf("image.size", "image.size %v with layout %s makes images of shape %s, but input %q is %s", cp.Size, cp.Layout, formatShape(want), cp.Input, formatShape(in.Shape))
			}
		}
	}
	if cp.Output != "" {
		if _, err := m.scoresOutput(cp.Output); err != nil {
			return abgate.FieldErrorf("image.output", "image.output: %s", abgate.ErrorMessage(err))
		}
	}
	return nil
}

// inputList describes the model's inputs for error messages:
// "features" FP32 [-1,4], ...
func (m *Model) inputList() string {
	parts := make([]string, len(m.Inputs))
	for i, in := range m.Inputs {
		parts[i] = in.describe()
	}
	return strings.Join(parts, ", ")
}

// outputList names the servable outputs for error messages.
func (m *Model) outputList() string {
	var parts []string
	for _, o := range m.runOutputs {
		parts = append(parts, strconv.Quote(m.Outputs[o].Name))
	}
	return strings.Join(parts, ", ")
}

// describe returns `"name" DATATYPE [shape]`.
func (s *IOSpec) describe() string {
	return fmt.Sprintf("%q %s %s", s.Name, s.Datatype, formatShape(s.Shape))
}

// Input returns the spec of the named input, and false if there is none.
func (m *Model) Input(name string) (IOSpec, bool) {
	i, ok := m.inputIndex[name]
	if !ok {
		return IOSpec{}, false
	}
	return m.Inputs[i], true
}

// Output returns the spec of the named output, and false if there is none.
func (m *Model) Output(name string) (IOSpec, bool) {
	i, ok := m.outputIndex[name]
	if !ok {
		return IOSpec{}, false
	}
	return m.Outputs[i], true
}

// Close stops the model's batcher, which first runs the requests queued in
// it, then closes the model's sessions once the runs in progress finish.
// Runs that start later fail with EUNAVAILABLE. Close is idempotent.
func (m *Model) Close() {
	m.closing.Store(true)
	if m.batcher != nil {
		m.batcher.Close()
	}
	m.pool.close()
}

// isClosed reports whether Close was called.
func (m *Model) isClosed() bool { return m.closing.Load() }

// formatShape writes a shape as JSON: [2,-1,4]; "[?]" for an unknown rank.
func formatShape(shape []int64) string {
	if shape == nil {
		return "[?]"
	}
	b := []byte{'['}
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return string(append(b, ']'))
}

// elemName names an ONNX Runtime element type for messages.
func elemName(t ort.TensorElementDataType) string {
	return strings.TrimPrefix(t.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_")
}

// ortMessage returns the useful part of an onnxruntime_go error: its first
// line, without the wrappers' prefixes.
func ortMessage(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	for _, p := range []string{"Error creating C session: ", "Error creating C session from file: ", "Error running network: ", "Error creating ORT session: "} {
		if i := strings.Index(msg, p); i >= 0 {
			msg = msg[i+len(p):]
		}
	}
	return strings.TrimSpace(msg)
}

// protoInfo is what parseModelProto reads from an ONNX file.
type protoInfo struct {
	producer   string
	doc        string
	metadata   map[string]string
	shapes     map[string]*protoShape // graph inputs and outputs by name
	parameters int64                  // elements of the graph's initializers
}

// protoShape is the declared shape of a tensor input or output: known is
// false when the model gives no shape; names holds each axis's dim_param.
type protoShape struct {
	known bool
	names []string
}

// Field numbers of onnx.proto.
const (
	modelProducerName  = 2
	modelDocString     = 6
	modelGraph         = 7
	modelMetadataProps = 14
	graphInitializer   = 5
	graphInput         = 11
	graphOutput        = 12
	tensorDims         = 1
	valueInfoName      = 1
	valueInfoType      = 2
	typeTensor         = 1
	tensorTypeShape    = 2
	shapeDim           = 1
	dimParam           = 2
	entryKey           = 1
	entryValue         = 2
)

// parseModelProto reads the producer, doc string, metadata, the shapes of
// the graph's inputs and outputs and the number of weights (the elements of
// the initializers, from their dims) from an ONNX ModelProto, skipping all
// else (the weights' data included) without copying. ONNX Runtime gives the
// shapes too, but not the names of the dynamic axes, which tell how an
// output's shape follows from the inputs'.
func parseModelProto(b []byte) (protoInfo, error) {
	info := protoInfo{metadata: map[string]string{}, shapes: map[string]*protoShape{}}
	err := eachField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case modelProducerName:
			info.producer = string(v)
		case modelDocString:
			info.doc = string(v)
		case modelMetadataProps:
			var k, val string
			err := eachField(v, func(n protowire.Number, f []byte) error {
				switch n {
				case entryKey:
					k = string(f)
				case entryValue:
					val = string(f)
				}
				return nil
			})
			if err != nil {
				return err
			}
			info.metadata[k] = val
		case modelGraph:
			return eachField(v, func(n protowire.Number, f []byte) error {
				switch n {
				case graphInput, graphOutput:
					return parseValueInfo(f, info.shapes)
				case graphInitializer:
					c, err := tensorElements(f)
					if err == nil && c <= math.MaxInt64-info.parameters {
						info.parameters += c
					}
					return err
				}
				return nil
			})
		}
		return nil
	})
	return info, err
}

func parseValueInfo(b []byte, shapes map[string]*protoShape) error {
	var name string
	ps := &protoShape{}
	err := eachField(b, func(n protowire.Number, f []byte) error {
		switch n {
		case valueInfoName:
			name = string(f)
		case valueInfoType:
			return eachField(f, func(n protowire.Number, f []byte) error {
				if n != typeTensor {
					return nil
				}
				return eachField(f, func(n protowire.Number, f []byte) error {
					if n != tensorTypeShape {
						return nil
					}
					ps.known = true
					return eachField(f, func(n protowire.Number, f []byte) error {
						if n != shapeDim {
							return nil
						}
						var param string
						err := eachField(f, func(n protowire.Number, f []byte) error {
							if n == dimParam {
								param = string(f)
							}
							return nil
						})
						ps.names = append(ps.names, param)
						return err
					})
				})
			})
		}
		return nil
	})
	if err == nil && name != "" {
		shapes[name] = ps
	}
	return err
}

// tensorElements returns the element count of an ONNX TensorProto from its
// dims, packed or not; 0 for an absurd count.
func tensorElements(b []byte) (int64, error) {
	n := int64(1)
	mul := func(d uint64) {
		if d > 0 && n > 0 && d <= math.MaxInt64/uint64(n) {
			n *= int64(d)
		} else {
			n = 0
		}
	}
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return 0, protowire.ParseError(k)
		}
		b = b[k:]
		switch {
		case num == tensorDims && typ == protowire.VarintType:
			d, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return 0, protowire.ParseError(k)
			}
			mul(d)
			b = b[k:]
		case num == tensorDims && typ == protowire.BytesType:
			packed, k := protowire.ConsumeBytes(b)
			if k < 0 {
				return 0, protowire.ParseError(k)
			}
			for len(packed) > 0 {
				d, j := protowire.ConsumeVarint(packed)
				if j < 0 {
					return 0, protowire.ParseError(j)
				}
				mul(d)
				packed = packed[j:]
			}
			b = b[k:]
		default:
			k = protowire.ConsumeFieldValue(num, typ, b)
			if k < 0 {
				return 0, protowire.ParseError(k)
			}
			b = b[k:]
		}
	}
	return n, nil
}

// eachField calls fn with each length-delimited field of the protobuf
// message b, skipping fields of the other wire types.
func eachField(b []byte, fn func(num protowire.Number, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if err := fn(num, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// checkInputs validates the inputs of a run against the model's inputs and
// returns them in the model's order with the sizes of the named axes.
// Errors are EINVALID and name the tensor, what was expected and what was
// given. Without scan, the values are not looked at (NaN, ±Inf): the
// batcher's runs are of inputs checked before they were queued.
//
// The results are appended to ordered and dims, empty slices whose
// arrays the caller may hold in its frame (see checkBuffers): a request
// is checked twice, before it queues and in its run, and these would
// otherwise be two allocations each time.
func (m *Model) checkInputs(inputs []Tensor, scan bool, ordered []*Tensor, dims axisSizes) ([]*Tensor, axisSizes, error) {
	if cap(ordered) < len(m.Inputs) {
		ordered = make([]*Tensor, len(m.Inputs))
	} else {
		ordered = ordered[:len(m.Inputs)]
		clear(ordered)
	}
	dims = dims[:0]
	for k := range inputs {
		t := &inputs[k]
		i, ok := m.inputIndex[t.Name]
		if !ok {
			return nil, nil, inputErrorf(t.Name, "unknown input %q: the model's inputs are %s", t.Name, m.inputList())
		}
		if ordered[i] != nil {
			return nil, nil, inputErrorf(t.Name, "input %q is given twice", t.Name)
		}
		spec := &m.Inputs[i]
		if t.Datatype != spec.Datatype {
			return nil, nil, inputErrorf(t.Name, "input %q: datatype %s given, %s expected", t.Name, t.Datatype, spec.Datatype)
		}
		n, ok := DataLen(t.Datatype, t.Data)
		if !ok {
			return nil, nil, inputErrorf(t.Name, "input %q: data of Go type %T given, %s expected for %s", t.Name, t.Data, goTypeName(t.Datatype), t.Datatype)
		}
		if spec.rankKnown && len(t.Shape) != len(spec.Shape) {
			return nil, nil, inputErrorf(t.Name, "input %q: shape %s of rank %d given, rank %d expected: %s", t.Name, formatShape(t.Shape), len(t.Shape), len(spec.Shape), formatShape(spec.Shape))
		}
		for a, d := range t.Shape {
			if d < 0 {
				return nil, nil, inputErrorf(t.Name, "input %q: shape %s given, with a negative dimension", t.Name, formatShape(t.Shape))
			}
			if !spec.rankKnown {
				continue
			}
			if want := spec.Shape[a]; want >= 0 && d != want {
				return nil, nil, inputErrorf(t.Name, "input %q: shape %s given, %s expected: dimension %d must be %d", t.Name, formatShape(t.Shape), formatShape(spec.Shape), a, want)
			}
			name := spec.dimNames[a]
			if name == "" {
				continue
			}
			if prev, ok := dims.find(name); ok {
				if prev.size != d {
					return nil, nil, inputErrorf(t.Name, "input %q: shape %s given, but dimension %d (%s) must equal %s's %s = %d", t.Name, formatShape(t.Shape), a, name, strconv.Quote(prev.from), name, prev.size)
				}
				continue
			}
			dims = append(dims, axisSize{name: name, size: d, from: t.Name})
		}
		count, err := ElementCount(t.Shape)
		if err != nil {
			return nil, nil, inputErrorf(t.Name, "input %q: %v", t.Name, err)
		}
		if int64(n) != count {
			return nil, nil, inputErrorf(t.Name, "input %q: %d data elements given, shape %s needs %d", t.Name, n, formatShape(t.Shape), count)
		}
		if scan && !m.Config.AllowNonFinite && !t.finite {
			if k, v := firstNonFinite(t.Datatype, t.Data); k >= 0 {
				return nil, nil, inputErrorf(t.Name, "input %q: element %d is %s; NaN and ±Inf are not allowed (allow_non_finite: true in the model's config.yaml allows them)", t.Name, k, v)
			}
		}
		ordered[i] = t
	}
	for i, t := range ordered {
		if t == nil {
			return nil, nil, inputErrorf(m.Inputs[i].Name, "missing input %s; the model's inputs are %s", m.Inputs[i].describe(), m.inputList())
		}
	}
	return ordered, dims, nil
}

// checkBuffers is the room of checkInputs' results that a caller keeps
// in its frame: models have a few inputs and named axes, and checkInputs
// allocates only beyond these.
const checkBuffers = 8

// axisSizes are the sizes of the named axes of a run's inputs.
type axisSizes []axisSize

// axisSize is the size of a named axis, and the input it was first read
// from.
type axisSize struct {
	name string
	size int64
	from string
}

// find returns the size of the named axis, and false if no input has it.
func (a axisSizes) find(name string) (axisSize, bool) {
	for _, x := range a {
		if x.name == name {
			return x, true
		}
	}
	return axisSize{}, false
}

// inputErrorf returns an EINVALID error whose Field names the input.
func inputErrorf(name, format string, args ...any) error {
	return abgate.FieldErrorf("inputs."+name, format, args...)
}

// firstNonFinite returns the index and the text of the first NaN or ±Inf
// of float data, or -1.
func firstNonFinite(dt string, data any) (int, string) {
	switch d := data.(type) {
	case []float32:
		if i := firstNonFinite32(d); i >= 0 {
			return i, nonFiniteName(float64(d[i]))
		}
	case []float64:
		for i, f := range d {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return i, nonFiniteName(f)
			}
		}
	case []uint16:
		var mask uint16
		switch dt {
		case DTFP16:
			mask = 0x7c00
		case DTBF16:
			mask = 0x7f80
		default:
			return -1, ""
		}
		for i, h := range d {
			if h&mask == mask {
				f := Float16ToFloat32(h)
				if dt == DTBF16 {
					f = BFloat16ToFloat32(h)
				}
				return i, nonFiniteName(float64(f))
			}
		}
	}
	return -1, ""
}

// firstNonFinite32 returns the index of the first NaN or ±Inf of d, or -1.
func firstNonFinite32(d []float32) int {
	base := 0
	if (haveWide || haveAVX2) && len(d) >= 64 {
		// With AVX-512 or AVX2, blocks of 64 values at a time up to the
		// one that holds the first value not finite, which the loop below
		// finds.
		base = nonFiniteBlocks(d)
	}
	if i := firstNonFinite32SWAR(d[base:]); i >= 0 {
		return base + i
	}
	return -1
}

// firstNonFinite32SWAR is firstNonFinite32 in Go. It reads two values per
// 64-bit word and a block of 16 values between branches: a value is not
// finite when its exponent bits are all ones, that is when adding one to
// the exponent field carries into the sign bit. The carries of the two
// halves of a word cannot meet, since each half's sum is at most
// 0x80000000.
func firstNonFinite32SWAR(d []float32) int {
	const (
		exp   = 0x7f800000_7f800000
		one   = 0x00800000_00800000
		carry = 0x80000000_80000000
	)
	i := 0
	if len(d) > 0 && uintptr(unsafe.Pointer(&d[0]))%8 != 0 {
		// Words are read 8-byte aligned.
		if math.Float32bits(d[0])&0x7f800000 == 0x7f800000 {
			return 0
		}
		i = 1
	}
	if len(d)-i >= 16 {
		words := unsafe.Slice((*uint64)(unsafe.Pointer(&d[i])), (len(d)-i)/2)
		for base := i; i+16 <= len(d); i += 16 {
			k := (i - base) / 2
			w := words[k : k+8 : k+8]
			acc := (w[0]&exp + one) | (w[1]&exp + one) | (w[2]&exp + one) | (w[3]&exp + one) |
				(w[4]&exp + one) | (w[5]&exp + one) | (w[6]&exp + one) | (w[7]&exp + one)
			if acc&carry != 0 {
				break
			}
		}
	}
	for ; i < len(d); i++ {
		if math.Float32bits(d[i])&0x7f800000 == 0x7f800000 {
			return i
		}
	}
	return -1
}

func nonFiniteName(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case f > 0:
		return "+Inf"
	}
	return "-Inf"
}

// checkOutputs resolves the names of the outputs a run asks for; none means
// every servable output, in the model's order. Errors are EINVALID.
func (m *Model) checkOutputs(names []string) ([]int, error) {
	if len(names) == 0 {
		return m.runOutputs, nil
	}
	out := make([]int, len(names))
	for k, name := range names {
		i, ok := m.outputIndex[name]
		if !ok {
			return nil, abgate.FieldErrorf("outputs."+name, "unknown output %q: the model's outputs are %s", name, m.outputList())
		}
		if spec := m.Outputs[i]; !spec.Servable {
			return nil, abgate.FieldErrorf("outputs."+name, "output %q cannot be served: %s", name, spec.Reason)
		}
		for _, prev := range names[:k] {
			if prev == name {
				return nil, abgate.FieldErrorf("outputs."+name, "output %q is asked for twice", name)
			}
		}
		out[k] = i
	}
	return out, nil
}

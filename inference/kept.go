package inference

import (
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// Values a session keeps between runs. Making an ONNX Runtime value and
// releasing it after the run costs a few calls into ONNX Runtime each, as
// much as the run itself of a tiny model: a session therefore keeps, per
// input and output, the values of its recent runs when those tensors were
// small, over memory of its own, one per shape (batches of a varying
// number of rows have a shape each), up to keptPerSlot values and
// keptSlotBytes bytes. A run with a kept shape copies its inputs into the
// kept values and copies its outputs out of them.

// keptValueBytes is the size of the largest tensor whose value a session
// keeps. Bigger tensors (images) are wrapped in place, as copying them
// would cost more than making their value. A variable for the benchmark
// that compares with values made per run.
var keptValueBytes int64 = 16 << 10

// The bounds of the values a session keeps for one input or output: as
// many as a batcher's row counts of a tiny model, a few of a bigger one.
const (
	keptPerSlot   = 32
	keptSlotBytes = 64 << 10
)

// keptValue is a value that a session owns, with its shape and size.
type keptValue struct {
	v     ort.Value
	shape []int64
	bytes int64
}

// destroy releases the value.
func (k *keptValue) destroy() {
	if k.v != nil {
		k.v.Destroy()
	}
	*k = keptValue{}
}

// keptSet is the values kept for one input or output, oldest first.
type keptSet []keptValue

// find returns the kept value of shape, or nil.
func (ks keptSet) find(shape []int64) ort.Value {
	for i := range ks {
		if slices.Equal(ks[i].shape, shape) {
			return ks[i].v
		}
	}
	return nil
}

// add keeps v, of shape and the given size in bytes, which the set then
// owns, releasing the oldest values that the bounds leave no room for.
func (ks *keptSet) add(v ort.Value, shape []int64, size int64) {
	total := size
	for _, k := range *ks {
		total += k.bytes
	}
	drop := 0
	for drop < len(*ks) && (len(*ks)-drop >= keptPerSlot || total > keptSlotBytes) {
		total -= (*ks)[drop].bytes
		(*ks)[drop].destroy()
		drop++
	}
	*ks = append((*ks)[:0], (*ks)[drop:]...)
	*ks = append(*ks, keptValue{v: v, shape: shape, bytes: size})
}

// destroy releases every value of the set.
func (ks *keptSet) destroy() {
	for i := range *ks {
		(*ks)[i].destroy()
	}
	*ks = (*ks)[:0]
}

// keepable reports whether a tensor of datatype and shape is small enough
// to keep and of a kind kept: a numeric tensor of rank >= 1 with at least
// one element (scalars, FP16 and BF16 values and strings are made per
// run).
func keepable(datatype string, shape []int64) bool {
	_, ok := keptSize(datatype, shape)
	return ok
}

// keptSize returns the size in bytes of a tensor of datatype and shape,
// and whether it is keepable.
func keptSize(datatype string, shape []int64) (int64, bool) {
	if len(shape) == 0 || datatype == DTFP16 || datatype == DTBF16 {
		return 0, false
	}
	size, ok := binaryElemSize(datatype)
	if !ok {
		return 0, false
	}
	n, err := ElementCount(shape)
	return n * size, err == nil && n > 0 && n*size <= keptValueBytes
}

// inputValue returns the value of input slot for t, a checked input, and
// whether the caller owns it (and must destroy it after the run): the kept
// value with t's data copied in when it has t's shape, else a new one,
// which is kept when t is keepable.
func (s *session) inputValue(slot int, t *Tensor) (ort.Value, bool, error) {
	ks := &s.ins[slot]
	if v := ks.find(t.Shape); v != nil && fillValue(v, t.Data) {
		return v, false, nil
	}
	// A kept value of t's shape that fillValue refused (data of another
	// Go type) stays; t then gets a value of its own.
	if size, ok := keptSize(t.Datatype, t.Shape); ok && ks.find(t.Shape) == nil {
		if v := copiedValue(t); v != nil {
			ks.add(v, slices.Clone(t.Shape), size)
			return v, false, nil
		}
	}
	v, err := newInputValue(t)
	return v, true, err
}

// outputValue returns the value that output slot, of the given spec, is
// computed into, shaped by the inputs' axes in dims, and whether the
// caller owns it: the kept value when it has that shape, else a new one,
// which is kept when keepable.
func (s *session) outputValue(slot int, spec *IOSpec, dims axisSizes) (ort.Value, bool, error) {
	shape, err := outputShape(spec, dims)
	if err != nil {
		return nil, false, err
	}
	ks := &s.outs[slot]
	if v := ks.find(shape); v != nil {
		return v, false, nil
	}
	v, err := newOutputValue(spec, shape)
	if err != nil {
		return nil, false, err
	}
	if size, ok := keptSize(spec.Datatype, shape); ok {
		ks.add(v, shape, size)
		return v, false, nil
	}
	return v, true, nil
}

// destroyKept releases the values that s keeps.
func (s *session) destroyKept() {
	for i := range s.ins {
		s.ins[i].destroy()
	}
	for i := range s.outs {
		s.outs[i].destroy()
	}
}

// fillValue copies data into v when v is a tensor of data's element type
// and length, and reports whether it did.
func fillValue(v ort.Value, data any) bool {
	switch d := data.(type) {
	case []bool:
		return fill(v, d)
	case []uint8:
		return fill(v, d)
	case []uint16:
		return fill(v, d)
	case []uint32:
		return fill(v, d)
	case []uint64:
		return fill(v, d)
	case []int8:
		return fill(v, d)
	case []int16:
		return fill(v, d)
	case []int32:
		return fill(v, d)
	case []int64:
		return fill(v, d)
	case []float32:
		return fill(v, d)
	case []float64:
		return fill(v, d)
	}
	return false
}

func fill[T ort.TensorData](v ort.Value, data []T) bool {
	t, ok := v.(*ort.Tensor[T])
	if !ok {
		return false
	}
	dst := t.GetData()
	if len(dst) != len(data) {
		return false
	}
	copy(dst, data)
	return true
}

// copiedValue returns a tensor over a copy of t's data, or nil when t's
// data is not numeric or ONNX Runtime refuses it (the caller then makes
// the value the usual way, which says why).
func copiedValue(t *Tensor) ort.Value {
	switch d := t.Data.(type) {
	case []bool:
		return copied(t.Shape, d)
	case []uint8:
		return copied(t.Shape, d)
	case []uint16:
		return copied(t.Shape, d)
	case []uint32:
		return copied(t.Shape, d)
	case []uint64:
		return copied(t.Shape, d)
	case []int8:
		return copied(t.Shape, d)
	case []int16:
		return copied(t.Shape, d)
	case []int32:
		return copied(t.Shape, d)
	case []int64:
		return copied(t.Shape, d)
	case []float32:
		return copied(t.Shape, d)
	case []float64:
		return copied(t.Shape, d)
	}
	return nil
}

func copied[T ort.TensorData](shape []int64, data []T) ort.Value {
	v, err := ort.NewTensor(ort.Shape(slices.Clone(shape)), slices.Clone(data))
	if err != nil {
		return nil
	}
	return v
}

// cloneData returns a copy of numeric tensor data, for outputs read out of
// a kept value; other data is returned as is.
func cloneData(data any) any {
	switch d := data.(type) {
	case []bool:
		return slices.Clone(d)
	case []uint8:
		return slices.Clone(d)
	case []uint16:
		return slices.Clone(d)
	case []uint32:
		return slices.Clone(d)
	case []uint64:
		return slices.Clone(d)
	case []int8:
		return slices.Clone(d)
	case []int16:
		return slices.Clone(d)
	case []int32:
		return slices.Clone(d)
	case []int64:
		return slices.Clone(d)
	case []float32:
		return slices.Clone(d)
	case []float64:
		return slices.Clone(d)
	}
	return data
}

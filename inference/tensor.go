// Package inference is the model-serving slice of abgate: a Triton-like
// model repository of ONNX models, pooled ONNX Runtime sessions, a dynamic
// batcher, the Open Inference Protocol V2 (JSON and binary tensors) and the
// seed image API (/predict).
package inference

import (
	"fmt"
	"math"
)

// Datatype names of the V2 protocol.
const (
	DTBool   = "BOOL"
	DTUint8  = "UINT8"
	DTUint16 = "UINT16"
	DTUint32 = "UINT32"
	DTUint64 = "UINT64"
	DTInt8   = "INT8"
	DTInt16  = "INT16"
	DTInt32  = "INT32"
	DTInt64  = "INT64"
	DTFP16   = "FP16"
	DTBF16   = "BF16"
	DTFP32   = "FP32"
	DTFP64   = "FP64"
	DTBytes  = "BYTES"
)

// Tensor is a named, typed, shaped array, the unit of the V2 protocol.
// Data is a slice in row-major order whose Go type follows Datatype:
// BOOL []bool, UINT8 []uint8, UINT16 []uint16, UINT32 []uint32, UINT64
// []uint64, INT8 []int8, INT16 []int16, INT32 []int32, INT64 []int64, FP32
// []float32, FP64 []float64, FP16 and BF16 []uint16 (IEEE bit patterns),
// BYTES []string. A scalar has an empty (non-nil or nil) Shape and one
// element.
type Tensor struct {
	Name     string
	Datatype string
	Shape    []int64
	Data     any

	// finite says that Data is known to hold no NaN or ±Inf, as the V2
	// JSON decoder knows of the float data it read: the check of a
	// model's inputs then need not look at every element again.
	finite bool
}

// ElementCount returns the number of elements shape describes, or an error
// for a negative dimension or an overflowing product.
func ElementCount(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > math.MaxInt32/d {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

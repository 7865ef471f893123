package inference

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"abgate"
)

// session is one ONNX Runtime session of a pool, with the run options that
// let a cancelled request stop its run.
type session struct {
	s    *ort.DynamicAdvancedSession
	opts *ort.RunOptions

	// ins and outs are the values kept between runs, by input and
	// output slot (see keptSet).
	ins, outs []keptSet

	// stops stops the run when its context is done; runCtx is that
	// context (nil between runs, written by the run's goroutine under
	// stops.mu) and stopped whether stops terminated the run (guarded by
	// stops.mu).
	stops   *runStops
	runCtx  context.Context
	stopped bool
}

// sessionPool holds the sessions of a model version. A run takes a free
// session and gives it back; close waits for the runs in progress, then
// destroys the sessions.
type sessionPool struct {
	free  chan *session
	all   []*session
	stops *runStops // stops the runs whose context is done

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// newSessionPool opens cfg.Instances sessions of the model file at path,
// each with cfg.Threads() intra-op threads.
func newSessionPool(path string, inputs, outputs []string, cfg Config) (*sessionPool, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %s", ortMessage(err))
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(cfg.Threads()); err != nil {
		return nil, fmt.Errorf("intra_op_threads: %s", ortMessage(err))
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("inter-op threads: %s", ortMessage(err))
	}
	p := &sessionPool{free: make(chan *session, cfg.Instances), stops: &runStops{}}
	for range cfg.Instances {
		s, err := ort.NewDynamicAdvancedSession(path, inputs, outputs, opts)
		if err != nil {
			p.destroy()
			return nil, fmt.Errorf("onnx runtime cannot load %s: %s", ModelFile, ortMessage(err))
		}
		ro, err := ort.NewRunOptions()
		if err != nil {
			s.Destroy()
			p.destroy()
			return nil, fmt.Errorf("run options: %s", ortMessage(err))
		}
		ss := &session{s: s, opts: ro, ins: make([]keptSet, len(inputs)), outs: make([]keptSet, len(outputs)), stops: p.stops}
		p.all = append(p.all, ss)
		p.free <- ss
	}
	return p, nil
}

// errUnloaded is the cause of runs on a closed pool.
var errUnloaded = errors.New("model version unloaded")

// get takes a free session, waiting for one until ctx is done. It fails
// with errUnloaded once the pool is closed.
func (p *sessionPool) get(ctx context.Context) (*session, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errUnloaded
	}
	p.inflight.Add(1)
	p.mu.Unlock()
	select {
	case s := <-p.free:
		return s, nil
	default:
	}
	select {
	case s := <-p.free:
		return s, nil
	case <-ctx.Done():
		p.inflight.Done()
		return nil, ctx.Err()
	}
}

// put gives back a session that get returned.
func (p *sessionPool) put(s *session) {
	p.free <- s
	p.inflight.Done()
}

// close refuses new runs, waits for the runs in progress and destroys the
// sessions. It is idempotent.
func (p *sessionPool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.inflight.Wait()
	p.destroy()
}

// isClosed reports whether close was called.
func (p *sessionPool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *sessionPool) destroy() {
	for _, s := range p.all {
		s.destroyKept()
		s.opts.Destroy()
		s.s.Destroy()
	}
	p.all = nil
}

// runTiming is how long a run waited for a session and how long ONNX
// Runtime computed.
type runTiming struct {
	Queue, Compute time.Duration
}

// Run runs the model on inputs and returns the outputs named by outputs,
// in that order, or every servable output in the model's order when
// outputs is empty. Inputs are checked against the model's inputs first:
// an unknown, missing or repeated input, a wrong datatype, rank, shape or
// data length, and NaN or ±Inf in a float input (unless the config allows
// them) are EINVALID errors that name the tensor and say what was expected
// and given; so is an unknown output or one that cannot be served. Run
// waits for a free session until ctx is done (EUNAVAILABLE), and a ctx
// done during the run stops it (within about a millisecond, at the end of
// the operator that runs; see runStops). A run on a closed model is
// EUNAVAILABLE.
// The output tensors own their data; Run does not keep or change the
// inputs' data.
//
// Run is one run, beside the model's dynamic batcher: the server's
// requests (Server.Infer, the HTTP endpoints) go through the batcher.
func (m *Model) Run(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
	out, _, err := m.run(ctx, inputs, outputs, true)
	return out, err
}

// run is Run, which also returns the timing; without scan, the inputs'
// values are not checked (see checkInputs).
func (m *Model) run(ctx context.Context, inputs []Tensor, outputs []string, scan bool) ([]Tensor, runTiming, error) {
	var timing runTiming
	var orderedBuf [checkBuffers]*Tensor
	var dimsBuf [checkBuffers]axisSize
	ordered, dims, err := m.checkInputs(inputs, scan, orderedBuf[:0], dimsBuf[:0])
	if err != nil {
		return nil, timing, err
	}
	want, err := m.checkOutputs(outputs)
	if err != nil {
		return nil, timing, err
	}
	start := time.Now()
	s, err := m.pool.get(ctx)
	timing.Queue = time.Since(start)
	if err != nil {
		return nil, timing, m.unavailable(err)
	}
	defer m.pool.put(s)

	// The values made for this run, which it destroys; those that the
	// session keeps are not owned.
	inVals := make([]ort.Value, len(ordered))
	outVals := make([]ort.Value, len(m.runOutputs))
	inOwned := make([]bool, len(ordered))
	outOwned := make([]bool, len(m.runOutputs))
	defer func() {
		for i, v := range inVals {
			if v != nil && inOwned[i] {
				v.Destroy()
			}
		}
		for i, v := range outVals {
			if v != nil && outOwned[i] {
				v.Destroy()
			}
		}
	}()
	for i, t := range ordered {
		if inVals[i], inOwned[i], err = s.inputValue(i, t); err != nil {
			return nil, timing, abgate.Errorf(abgate.EINVALID, "input %q: %s", t.Name, ortMessage(err))
		}
	}
	sized := !m.unsized.Load()
	allocate := func() error {
		for slot, o := range m.runOutputs {
			spec := &m.Outputs[o]
			if !spec.prealloc && !(sized && spec.sized) {
				continue
			}
			if outVals[slot], outOwned[slot], err = s.outputValue(slot, spec, dims); err != nil {
				return abgate.Errorf(abgate.EINVALID, "output %q: %s", spec.Name, ortMessage(err))
			}
		}
		return nil
	}
	if err := allocate(); err != nil {
		return nil, timing, err
	}

	start = time.Now()
	err = runSession(ctx, s, inVals, outVals)
	if err != nil && sized && ctx.Err() == nil && m.hasSized() {
		// The outputs may not have the shapes the model declares: run
		// again with ONNX Runtime allocating them, and so from now on
		// if that was the cause.
		sized = false
		for i, v := range outVals {
			if v != nil && outOwned[i] {
				v.Destroy()
			}
			outVals[i], outOwned[i] = nil, false
		}
		if err := allocate(); err != nil {
			return nil, timing, err
		}
		if err = runSession(ctx, s, inVals, outVals); err == nil {
			m.unsized.Store(true)
		}
	}
	timing.Compute = time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return nil, timing, m.unavailable(ctx.Err())
		}
		return nil, timing, abgate.Errorf(abgate.EINVALID, "model %q version %s failed on this input: %s", m.Name, m.Version, ortMessage(err))
	}
	result := make([]Tensor, len(want))
	for k, o := range want {
		spec := &m.Outputs[o]
		slot := m.runSlot[o]
		t, err := outputTensor(spec, outVals[slot])
		if err != nil {
			return nil, timing, fmt.Errorf("model %q version %s output %q: %w", m.Name, m.Version, spec.Name, err)
		}
		if !outOwned[slot] {
			// A kept value: the next run overwrites it.
			t.Data = cloneData(t.Data)
		}
		result[k] = t
	}
	return result, timing, nil
}

// runSession runs s, stopping the run when ctx is done (see runStops).
func runSession(ctx context.Context, s *session, inVals, outVals []ort.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.stops.start(s, ctx)
	err := s.s.RunWithOptions(inVals, outVals, s.opts)
	s.stops.end(s)
	return err
}

// hasSized reports whether some servable output is sized (see IOSpec).
func (m *Model) hasSized() bool {
	for _, o := range m.runOutputs {
		if spec := &m.Outputs[o]; spec.sized && !spec.prealloc {
			return true
		}
	}
	return false
}

// unavailable turns the reasons a run could not start or finish into
// EUNAVAILABLE errors.
func (m *Model) unavailable(err error) error {
	switch {
	case errors.Is(err, errUnloaded):
		return abgate.Errorf(abgate.EUNAVAILABLE, "model %q version %s was unloaded", m.Name, m.Version)
	case errors.Is(err, context.DeadlineExceeded):
		return abgate.Errorf(abgate.EUNAVAILABLE, "model %q version %s: the request's deadline passed before the inference finished", m.Name, m.Version)
	case errors.Is(err, context.Canceled):
		return abgate.Errorf(abgate.EUNAVAILABLE, "model %q version %s: the request was cancelled", m.Name, m.Version)
	}
	return err
}

// newInputValue wraps a checked input's data in an ONNX Runtime value,
// without copying it (except strings, which ONNX Runtime copies).
func newInputValue(t *Tensor) (ort.Value, error) {
	shape := ort.Shape(t.Shape)
	switch d := t.Data.(type) {
	case []bool:
		return numericValue(shape, d)
	case []uint8:
		return numericValue(shape, d)
	case []uint16:
		if t.Datatype == DTFP16 || t.Datatype == DTBF16 {
			elem, _ := elementTypeOf(t.Datatype)
			return ort.NewCustomDataTensor(shape, halfBytes(d), elem)
		}
		return numericValue(shape, d)
	case []uint32:
		return numericValue(shape, d)
	case []uint64:
		return numericValue(shape, d)
	case []int8:
		return numericValue(shape, d)
	case []int16:
		return numericValue(shape, d)
	case []int32:
		return numericValue(shape, d)
	case []int64:
		return numericValue(shape, d)
	case []float32:
		return numericValue(shape, d)
	case []float64:
		return numericValue(shape, d)
	case []string:
		v, err := ort.NewStringTensor(shape)
		if err != nil {
			return nil, err
		}
		if err := v.SetContents(d); err != nil {
			v.Destroy()
			return nil, err
		}
		return v, nil
	}
	return nil, fmt.Errorf("data of Go type %T is not tensor data", t.Data)
}

// numericValue returns a tensor over data, or a scalar for an empty shape.
func numericValue[T ort.TensorData](shape ort.Shape, data []T) (ort.Value, error) {
	if len(shape) == 0 {
		return ort.NewScalar(data[0])
	}
	return ort.NewTensor(shape, data)
}

// halfBytes returns the bytes of 16-bit patterns in the machine's order,
// which is ONNX Runtime's, without copying; at least 2 bytes, since
// onnxruntime_go refuses an empty custom tensor even of zero elements.
func halfBytes(d []uint16) []byte {
	if len(d) == 0 {
		return make([]byte, 2)
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 2*len(d))
}

// outputShape returns the shape of an output allocated before a run: the
// dynamic axes follow from the inputs' named axes in dims.
func outputShape(spec *IOSpec, dims axisSizes) ([]int64, error) {
	shape := make([]int64, len(spec.Shape))
	for i, d := range spec.Shape {
		if d < 0 {
			v, ok := dims.find(spec.dimNames[i])
			if !ok {
				return nil, fmt.Errorf("the size of axis %d (%s) does not follow from the inputs", i, spec.dimNames[i])
			}
			d = v.size
		}
		shape[i] = d
	}
	return shape, nil
}

// newOutputValue allocates an output of the given shape before a run: one
// that onnxruntime_go cannot allocate (a scalar, or an FP16 or BF16
// tensor), or a sized one (see outputShape).
func newOutputValue(spec *IOSpec, shape ort.Shape) (ort.Value, error) {
	if len(spec.Shape) == 0 {
		switch spec.Datatype {
		case DTBool:
			return ort.NewEmptyScalar[bool]()
		case DTUint8:
			return ort.NewEmptyScalar[uint8]()
		case DTUint16:
			return ort.NewEmptyScalar[uint16]()
		case DTUint32:
			return ort.NewEmptyScalar[uint32]()
		case DTUint64:
			return ort.NewEmptyScalar[uint64]()
		case DTInt8:
			return ort.NewEmptyScalar[int8]()
		case DTInt16:
			return ort.NewEmptyScalar[int16]()
		case DTInt32:
			return ort.NewEmptyScalar[int32]()
		case DTInt64:
			return ort.NewEmptyScalar[int64]()
		case DTFP32:
			return ort.NewEmptyScalar[float32]()
		case DTFP64:
			return ort.NewEmptyScalar[float64]()
		}
		return nil, fmt.Errorf("cannot allocate a rank-0 %s output", spec.Datatype)
	}
	n, err := ElementCount(shape)
	if err != nil {
		return nil, err
	}
	switch spec.Datatype {
	case DTBool:
		return ort.NewTensor(shape, make([]bool, n))
	case DTUint8:
		return ort.NewTensor(shape, make([]uint8, n))
	case DTUint16:
		return ort.NewTensor(shape, make([]uint16, n))
	case DTUint32:
		return ort.NewTensor(shape, make([]uint32, n))
	case DTUint64:
		return ort.NewTensor(shape, make([]uint64, n))
	case DTInt8:
		return ort.NewTensor(shape, make([]int8, n))
	case DTInt16:
		return ort.NewTensor(shape, make([]int16, n))
	case DTInt32:
		return ort.NewTensor(shape, make([]int32, n))
	case DTInt64:
		return ort.NewTensor(shape, make([]int64, n))
	case DTFP32:
		return ort.NewTensor(shape, make([]float32, n))
	case DTFP64:
		return ort.NewTensor(shape, make([]float64, n))
	}
	return ort.NewCustomDataTensor(shape, make([]byte, max(2, 2*n)), spec.elem)
}

// outputTensor copies what a run left in v into a Tensor.
func outputTensor(spec *IOSpec, v ort.Value) (Tensor, error) {
	t := Tensor{Name: spec.Name, Datatype: spec.Datatype}
	if v == nil {
		return t, errors.New("onnx runtime returned no value")
	}
	t.Shape = []int64(v.GetShape().Clone())
	if t.Shape == nil {
		t.Shape = []int64{}
	}
	var data any
	switch x := v.(type) {
	case *ort.Tensor[bool]:
		data = x.GetData()
	case *ort.Tensor[uint8]:
		data = x.GetData()
	case *ort.Tensor[uint16]:
		data = x.GetData()
	case *ort.Tensor[uint32]:
		data = x.GetData()
	case *ort.Tensor[uint64]:
		data = x.GetData()
	case *ort.Tensor[int8]:
		data = x.GetData()
	case *ort.Tensor[int16]:
		data = x.GetData()
	case *ort.Tensor[int32]:
		data = x.GetData()
	case *ort.Tensor[int64]:
		data = x.GetData()
	case *ort.Tensor[float32]:
		data = x.GetData()
	case *ort.Tensor[float64]:
		data = x.GetData()
	case *ort.Scalar[bool]:
		data = []bool{x.GetData()}
	case *ort.Scalar[uint8]:
		data = []uint8{x.GetData()}
	case *ort.Scalar[uint16]:
		data = []uint16{x.GetData()}
	case *ort.Scalar[uint32]:
		data = []uint32{x.GetData()}
	case *ort.Scalar[uint64]:
		data = []uint64{x.GetData()}
	case *ort.Scalar[int8]:
		data = []int8{x.GetData()}
	case *ort.Scalar[int16]:
		data = []int16{x.GetData()}
	case *ort.Scalar[int32]:
		data = []int32{x.GetData()}
	case *ort.Scalar[int64]:
		data = []int64{x.GetData()}
	case *ort.Scalar[float32]:
		data = []float32{x.GetData()}
	case *ort.Scalar[float64]:
		data = []float64{x.GetData()}
	case *ort.CustomDataTensor:
		n, err := ElementCount(t.Shape)
		if err != nil {
			return t, err
		}
		b := x.GetData()
		if int64(len(b)) < 2*n {
			return t, fmt.Errorf("%d bytes for %d %s elements", len(b), n, spec.Datatype)
		}
		d := make([]uint16, n)
		copy(halfBytes(d), b[:2*n])
		data = d
	case *ort.StringTensor:
		s, err := x.GetContents()
		if err != nil {
			return t, err
		}
		data = s
	default:
		return t, fmt.Errorf("onnx runtime returned a %T", v)
	}
	n, ok := DataLen(t.Datatype, data)
	if !ok {
		return t, fmt.Errorf("onnx runtime returned %T for %s", data, t.Datatype)
	}
	if want, err := ElementCount(t.Shape); err != nil || int64(n) != want {
		return t, fmt.Errorf("onnx runtime returned %d elements for shape %s", n, formatShape(t.Shape))
	}
	t.Data = data
	return t, nil
}

// batchableInputs reports whether requests to a model with these inputs
// may be concatenated along the first axis: every input has a dynamic
// first axis, and the axes that are named have the same name.
func batchableInputs(inputs []IOSpec) bool {
	if len(inputs) == 0 {
		return false
	}
	name := ""
	for _, in := range inputs {
		if !in.batchAxis {
			return false
		}
		switch n := in.dimNames[0]; {
		case n == "":
		case name == "":
			name = n
		case n != name:
			return false
		}
	}
	return true
}

// startBatcher starts the model's dynamic batcher: max_batch_size rows a
// run at most (1 when the model cannot batch), max_queue_delay_us to fill a
// batch, max_queue_size requests waiting, one worker per session.
func (m *Model) startBatcher() {
	opts := BatcherOptions{
		MaxBatchSize:  1,
		MaxQueueDelay: time.Duration(m.Config.MaxQueueDelayUS) * time.Microsecond,
		QueueSize:     m.Config.MaxQueueSize,
		Workers:       m.Config.Instances,
		Idle:          ProcessIdle,
		WaitWhenBusy:  m.Config.BatchWhenBusy,
		OnBatch: func(rows int) {
			if x := m.observer(); x != nil {
				x.batchSize.Observe(float64(rows))
			}
		},
		OnQueueDepth: func(depth int) {
			if x := m.observer(); x != nil {
				x.queueDepth.Set(float64(depth))
			}
		},
		OnQueueWait: func(wait time.Duration) {
			if x := m.observer(); x != nil {
				x.queue.Observe(wait.Seconds())
			}
		},
	}
	if m.batchable {
		opts.MaxBatchSize = m.Config.MaxBatchSize
		opts.CanBatch = m.canBatch
	}
	m.batcher = NewBatcher(m.batchRun, opts)
}

// observer returns the model's collectors on the server of its
// repository, or nil.
func (m *Model) observer() *modelMetrics {
	if m.obs == nil {
		return nil
	}
	x := m.obs.Load()
	if x == nil {
		return nil
	}
	return x.forModel(m, &m.metrics)
}

// canBatch says whether a request, whose inputs are checked, may share a
// run: every output it asks for must have a dynamic first axis, so that a
// batch's outputs split back by rows.
func (m *Model) canBatch(_ []Tensor, outputs []string) bool {
	if len(outputs) == 0 {
		for _, o := range m.runOutputs {
			if !m.Outputs[o].batchAxis {
				return false
			}
		}
		return true
	}
	for _, name := range outputs {
		i, ok := m.outputIndex[name]
		if !ok || !m.Outputs[i].batchAxis {
			return false
		}
	}
	return true
}

// batchRun is the RunFunc of the model's batcher: one run of one request
// or of a batch.
func (m *Model) batchRun(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
	if m.beforeRun != nil {
		m.beforeRun(ctx)
	}
	out, timing, err := m.run(ctx, inputs, outputs, false)
	if x := m.observer(); x != nil && timing.Compute > 0 {
		x.compute.Observe(timing.Compute.Seconds())
	}
	return out, err
}

// infer runs a request through the model's batcher, after checking its
// inputs and outputs, so that an invalid request fails alone with an error
// that names its tensor instead of failing the batch it would join. A full
// queue, a closed model and a ctx done first are EUNAVAILABLE.
func (m *Model) infer(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
	var orderedBuf [checkBuffers]*Tensor
	var dimsBuf [checkBuffers]axisSize
	if _, _, err := m.checkInputs(inputs, true, orderedBuf[:0], dimsBuf[:0]); err != nil {
		return nil, err
	}
	if _, err := m.checkOutputs(outputs); err != nil {
		return nil, err
	}
	out, err := m.batcher.Submit(ctx, inputs, outputs)
	if err == nil {
		return out, nil
	}
	switch {
	case m.isClosed() && abgate.ErrorCode(err) == abgate.EUNAVAILABLE:
		return nil, m.unavailable(errUnloaded)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, m.unavailable(err)
	}
	return nil, err
}

package inference

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"abgate"
)

// RunFunc runs a model once on inputs and returns the requested outputs
// (all outputs when outputs is empty). A Batcher calls it with either one
// request's tensors or several requests' tensors concatenated along the
// first axis.
type RunFunc func(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error)

// DefaultBatcherQueueSize is the queue bound of a Batcher whose
// BatcherOptions.QueueSize is zero.
const DefaultBatcherQueueSize = 1024

// BatcherOptions configure a Batcher. The zero value runs every request
// alone, one at a time, with a queue of DefaultBatcherQueueSize requests.
type BatcherOptions struct {
	// MaxBatchSize is the largest number of rows (the sum of the first
	// dimensions) that one run may carry. Zero or one disables batching:
	// every request runs alone, still through the bounded queue.
	MaxBatchSize int

	// MaxQueueDelay is how long a batch may wait, counted from the arrival
	// of its first request, for more requests to join before it runs with
	// fewer than MaxBatchSize rows (Triton's max_queue_delay_microseconds).
	// Zero means no waiting: a free worker takes what is queued at once,
	// so batches still form whenever requests arrive while every worker
	// is busy.
	MaxQueueDelay time.Duration

	// QueueSize bounds the number of requests waiting for a worker. A
	// Submit beyond it fails at once with an EUNAVAILABLE error. Zero
	// means DefaultBatcherQueueSize.
	QueueSize int

	// Workers is the number of runs in flight at once, normally the size
	// of the model's session pool. Zero means 1.
	Workers int

	// CanBatch, when set, says whether a request may share a run with
	// others, for example false when the model has no dynamic first axis.
	// It is called once per Submit, before queueing. Nil means every
	// request whose inputs all have rank >= 1, the same non-zero first
	// dimension (at most MaxBatchSize) and data of the documented Go type
	// and length may batch.
	CanBatch func(inputs []Tensor, outputs []string) bool

	// OnBatch, when set, is called before each run with its number of
	// rows (the batch size, 1 for a request that runs alone with one row).
	OnBatch func(size int)

	// OnQueueDepth, when set, is called with the number of queued requests
	// each time it changes. It is called with the Batcher's lock held: it
	// must be quick (a gauge Set) and must not call the Batcher.
	OnQueueDepth func(depth int)

	// OnQueueWait, when set, is called for each request that starts
	// running, with the time it spent in the queue.
	OnQueueWait func(wait time.Duration)

	// Idle, when set, reports whether nothing else in the process is
	// running or waiting to run, as ProcessIdle does: no request can then
	// be on its way to the queue, so a batch that waits to fill runs at
	// once instead. The collecting worker asks it each time it wakes with
	// a batch to fill (an arrival, the end of a run), for up to IdleSpin
	// while yielding the thread, so that the goroutine that woke it can
	// block, and every IdlePoll while the batch waits. Nil means a batch
	// waits out MaxQueueDelay or fills.
	//
	// Go's timers wake an idle process about a millisecond late on
	// Linux, whatever the delay asked: without Idle, a batch that cannot
	// fill waits at least that long.
	Idle func() bool

	// WaitWhenBusy, with Idle, makes batching follow the load rather
	// than the workers: a request that may batch runs at once, alone,
	// only when the process is idle; while it is busy, requests queue and
	// a batch waits to fill even beside a free worker, since the CPU that
	// worker would use is taken. Without it, a batch waits to fill only
	// while every other worker is busy. It pays under a load that keeps
	// the process busy, on models whose run of many rows costs little
	// more than a run of one; at low load it adds the hand-off to a
	// worker, and the wait of requests that the process's other work made
	// it look busy.
	WaitWhenBusy bool
}

// How the collecting worker asks BatcherOptions.Idle: when it wakes, up
// to IdleQuestions times within IdleSpin, yielding the thread between two
// questions, then every IdlePoll while its batch waits.
const (
	IdleQuestions = 4
	IdleSpin      = 10 * time.Microsecond
	IdlePoll      = 200 * time.Microsecond
)

// Batcher is a dynamic batcher in front of a RunFunc. Requests whose
// inputs agree on names, datatypes and every dimension but the first, and
// that ask for the same outputs, are concatenated along the first axis into
// one run of at most MaxBatchSize rows; the outputs are split back by each
// request's row count. Outputs whose first dimension equals the batch's
// total row count are split; any other output (a scalar, or an output of
// fixed shape that does not follow the batch) is given whole to every
// request of the batch, sharing its Data, which callers must therefore
// treat as read-only. A model whose output has a fixed first dimension
// that may coincide with the row count should not be batched (see
// BatcherOptions.CanBatch).
//
// A batch whose run fails with an EINVALID error (the model refused some
// of the data) is run again one request at a time, so that only the
// requests at fault get the error; other errors reach every request.
//
// A request that finds the queue empty and a worker free, and that would
// not wait for others to join it (see BatcherOptions.WaitWhenBusy), runs
// at once in the goroutine of its Submit and holds a worker's place while
// it runs.
//
// A request that runs alone runs with its own context. A batch of several
// requests runs with a context of its own, without their values, that is
// cancelled once every one of them is cancelled.
//
// The oldest queued request always leads the next batch; a request that
// cannot batch with it waits for a later batch. While the collecting worker
// waits up to MaxQueueDelay for a batch to fill, other free workers wait
// too, so keep the delay short (a few hundred microseconds at most).
//
// A Batcher is safe for concurrent use. Close it to stop its workers.
type Batcher struct {
	run  RunFunc
	opts BatcherOptions

	collect sync.Mutex    // held by the one worker that is forming a batch
	busy    atomic.Int32  // workers running a batch
	arrive  chan struct{} // wakes the collecting worker; capacity 1
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu     sync.Mutex
	queue  []*batchRequest
	closed bool
	once   sync.Once

	// lastKey is the batch key of the last request that may batch:
	// requests with that key share its string instead of making their
	// own (see internKey).
	lastKey atomic.Pointer[string]
	// requests holds batchRequests, with their done channels, that
	// served a Submit and may serve another.
	requests sync.Pool
}

// batchRequest is one Submit waiting in the queue or running.
type batchRequest struct {
	ctx     context.Context
	inputs  []Tensor
	outputs []string
	key     string // "" when the request must run alone
	rows    int
	queued  time.Time
	state   int              // batchQueued, batchTaken or batchRemoved; guarded by Batcher.mu
	done    chan batchResult // capacity 1: the worker never blocks
}

// States of a batchRequest.
const (
	batchQueued  = iota // waiting in the queue
	batchTaken          // part of a batch that runs
	batchRemoved        // out of the queue without running (cancelled)
)

// batchResult is what a worker hands back to a Submit.
type batchResult struct {
	outputs []Tensor
	err     error
}

// NewBatcher returns a Batcher that runs batches with run and starts its
// workers. Close stops them.
func NewBatcher(run RunFunc, opts BatcherOptions) *Batcher {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultBatcherQueueSize
	}
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.MaxBatchSize < 1 {
		opts.MaxBatchSize = 1
	}
	if opts.MaxQueueDelay < 0 {
		opts.MaxQueueDelay = 0
	}
	b := &Batcher{
		run:     run,
		opts:    opts,
		arrive:  make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	b.wg.Add(opts.Workers)
	for range opts.Workers {
		go b.work()
	}
	return b
}

// Submit queues a request and waits for its outputs. It fails with an
// EUNAVAILABLE error when the queue is full or the Batcher is closed, with
// ctx.Err() (wrapped) when ctx is done first — a request still queued is
// then removed from the queue, the result of one already running is
// dropped — and with the error of the run otherwise.
func (b *Batcher) Submit(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("inference request not queued: %w", err)
	}
	batchable := b.opts.MaxBatchSize > 1 && (b.opts.CanBatch == nil || b.opts.CanBatch(inputs, outputs))
	b.mu.Lock()
	if !b.closed && len(b.queue) == 0 && b.runsNow(batchable) {
		// Nothing waits and a worker would take the request alone at
		// once: run it here, without the hand-off to a worker and back.
		b.busy.Add(1)
		b.wg.Add(1)
		b.mu.Unlock()
		defer b.wg.Done()
		if b.opts.OnQueueWait != nil {
			b.opts.OnQueueWait(0)
		}
		if b.opts.OnBatch != nil {
			b.opts.OnBatch(batchRows(inputs))
		}
		outs, err := b.safeRun(ctx, inputs, outputs)
		b.finished()
		return outs, err
	}
	b.mu.Unlock()

	r := b.newRequest()
	r.ctx, r.inputs, r.outputs = ctx, inputs, outputs
	if batchable {
		var buf [128]byte
		key, rows := appendBatchKey(buf[:0], inputs, outputs, b.opts.MaxBatchSize)
		if key != nil {
			r.key, r.rows = b.internKey(key), rows
		}
	}
	if r.key == "" {
		r.rows = batchRows(inputs)
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.freeRequest(r)
		return nil, abgate.Errorf(abgate.EUNAVAILABLE, "the model is shutting down")
	}
	if len(b.queue) >= b.opts.QueueSize {
		b.mu.Unlock()
		b.freeRequest(r)
		return nil, abgate.Errorf(abgate.EUNAVAILABLE, "the model's request queue is full (%d requests waiting); retry later", b.opts.QueueSize)
	}
	r.queued = time.Now()
	b.queue = append(b.queue, r)
	b.depthChanged()
	b.mu.Unlock()
	select {
	case b.arrive <- struct{}{}:
	default:
	}

	select {
	case res := <-r.done:
		// The result of a run comes once r is out of the queue, and the
		// worker that sent it no longer refers to r: r may serve another
		// Submit. An error may come from a worker that found r cancelled
		// while r was still in the queue, which it goes on reading: r is
		// then left to the garbage collector.
		if res.err == nil {
			b.freeRequest(r)
		}
		return res.outputs, res.err
	case <-ctx.Done():
		// A worker may still hold r (and send its result): r is left
		// to the garbage collector.
		b.mu.Lock()
		if r.state == batchQueued {
			b.removeLocked(r)
			b.depthChanged()
		}
		b.mu.Unlock()
		return nil, fmt.Errorf("inference request cancelled: %w", ctx.Err())
	}
}

// newRequest returns a queued batchRequest with an empty done channel,
// from b.requests when it has one.
func (b *Batcher) newRequest() *batchRequest {
	if r, ok := b.requests.Get().(*batchRequest); ok {
		return r
	}
	return &batchRequest{done: make(chan batchResult, 1)}
}

// freeRequest gives r back to b.requests. Only the Submit of r calls it,
// once r is out of the queue, no worker refers to it and its done channel
// is empty again.
func (b *Batcher) freeRequest(r *batchRequest) {
	*r = batchRequest{done: r.done}
	b.requests.Put(r)
}

// internKey returns key as a string: the string of the last key that
// may batch when key is the same, so that the requests of a steady
// load make no string of their own, and their keys compare by pointer.
func (b *Batcher) internKey(key []byte) string {
	if last := b.lastKey.Load(); last != nil && *last == string(key) {
		return *last
	}
	k := string(key)
	b.lastKey.Store(&k)
	return k
}

// runsNow reports whether a request arriving at an empty queue would run
// alone at once: a worker is free, and a batchable request would not wait
// for others to join it. A batch waits to fill while every other worker
// is busy, and with WaitWhenBusy while the process is busy, so that a
// batchable request then runs at once only when the process is idle.
// b.mu must be held.
func (b *Batcher) runsNow(batchable bool) bool {
	busy := int(b.busy.Load())
	if batchable && b.opts.MaxQueueDelay > 0 {
		if b.waitsWhenBusy() {
			return busy < b.opts.Workers && b.opts.Idle()
		}
		return busy < b.opts.Workers-1
	}
	return busy < b.opts.Workers
}

// waitsWhenBusy reports whether batches follow the load (see
// BatcherOptions.WaitWhenBusy).
func (b *Batcher) waitsWhenBusy() bool {
	return b.opts.WaitWhenBusy && b.opts.Idle != nil
}

// finished is called when a run ends: a worker is free, so the collector
// may take a batch or stop waiting for its batch to fill. With nothing
// queued and the Batcher open, the collector is not woken (a request that
// queues wakes it, and so does Close): after a run in Submit the queue is
// mostly empty, and a wake-up for nothing costs a goroutine switch.
func (b *Batcher) finished() {
	b.busy.Add(-1)
	b.mu.Lock()
	wake := len(b.queue) > 0 || b.closed
	b.mu.Unlock()
	if !wake {
		return
	}
	select {
	case b.arrive <- struct{}{}:
	default:
	}
}

// QueueDepth returns the number of requests waiting for a worker.
func (b *Batcher) QueueDepth() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Close stops accepting requests, runs every queued request, waits for the
// runs in flight and stops the workers. It always returns nil; later
// calls do nothing.
func (b *Batcher) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.closing)
	})
	b.wg.Wait()
	return nil
}

// depthChanged reports the queue depth; b.mu must be held.
func (b *Batcher) depthChanged() {
	if b.opts.OnQueueDepth != nil {
		b.opts.OnQueueDepth(len(b.queue))
	}
}

// removeLocked takes r out of the queue; b.mu must be held.
func (b *Batcher) removeLocked(r *batchRequest) {
	for i, q := range b.queue {
		if q == r {
			copy(b.queue[i:], b.queue[i+1:])
			b.queue[len(b.queue)-1] = nil
			b.queue = b.queue[:len(b.queue)-1]
			break
		}
	}
	r.state = batchRemoved
}

// work is one worker: it takes the collector role, forms a batch, gives
// the role up and runs the batch, until the Batcher is closed and drained.
func (b *Batcher) work() {
	defer b.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// The worker's batches are gathered into one array, which holds no
	// request between two runs.
	var buf []*batchRequest
	var pin threadPin
	defer pin.release()
	for {
		b.collect.Lock()
		batch, ok := b.nextBatch(timer, buf[:0])
		b.collect.Unlock()
		if !ok {
			return
		}
		start := time.Now()
		b.runBatch(batch)
		pin.observe(time.Since(start))
		buf = batch[:0]
		clear(buf[:cap(buf)])
		b.finished()
	}
}

// A worker whose runs take long keeps its OS thread: while the moving
// average of its runs' durations (from zero, an eighth of the way to
// each run's) is at least pinRunTime, until it falls below unpinRunTime.
// It takes two runs of a millisecond to pin a new worker, and one run
// stretched by a pause (a collection, the host taking the core) does
// not pin a worker of short runs unless it lasts 1.6 ms. Without that, the Go
// scheduler runs the worker, between two calls into ONNX Runtime, on
// whichever of the process's threads is free, and a loaded server made
// each call from one of five to seven threads: ONNX Runtime keeps working
// memory per thread, and a thread that runs again on another core finds
// its caches cold. Two pinned workers served the CNN 5 to 10% faster
// beside the HTTP load (see the README's Performance). A pinned worker
// that waits for work costs a thread switch to wake, a few microseconds:
// a share of a long run that does not show, where runs of a few
// microseconds (a tabular model's) would lose half their rate.
const (
	pinRunTime   = 200 * time.Microsecond
	unpinRunTime = 100 * time.Microsecond
)

// Thread locking, replaced by tests.
var (
	lockThread   = runtime.LockOSThread
	unlockThread = runtime.UnlockOSThread
)

// threadPin follows a worker's run durations and locks the worker's
// goroutine to its thread while they are long.
type threadPin struct {
	avg    time.Duration // moving average of the run durations
	locked bool
}

// observe takes the duration of a run.
func (p *threadPin) observe(d time.Duration) {
	p.avg += (d - p.avg) / 8
	switch {
	case !p.locked && p.avg >= pinRunTime:
		lockThread()
		p.locked = true
	case p.locked && p.avg < unpinRunTime:
		unlockThread()
		p.locked = false
	}
}

// release unlocks the thread, when locked, as the worker ends.
func (p *threadPin) release() {
	if p.locked {
		unlockThread()
		p.locked = false
	}
}

// nextBatch waits for requests and forms the next batch: the oldest queued
// request and the queued requests compatible with it, up to MaxBatchSize
// rows, waiting up to MaxQueueDelay after the oldest one's arrival for the
// batch to fill. The batch is gathered into buf, an empty slice. It
// returns false when the Batcher is closed and its queue empty. Only the
// worker that holds b.collect calls it.
func (b *Batcher) nextBatch(timer *time.Timer, buf []*batchRequest) ([]*batchRequest, bool) {
	flush := false // the process was idle: take what is queued
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			closed := b.closed
			b.mu.Unlock()
			if closed {
				return nil, false
			}
			flush = false
			select {
			case <-b.arrive:
			case <-b.closing:
			}
			continue
		}
		if int(b.busy.Load()) >= b.opts.Workers {
			// Requests that run in Submit hold every run: wait for one
			// to end (finished wakes the collector), or for Close.
			closed := b.closed
			b.mu.Unlock()
			if closed {
				<-b.arrive
			} else {
				select {
				case <-b.arrive:
				case <-b.closing:
				}
			}
			continue
		}
		head := b.queue[0]
		batch, rows := b.gatherLocked(head, buf)
		wait := time.Until(head.queued.Add(b.opts.MaxQueueDelay))
		// The batch waits to fill while every other worker is busy (a
		// free worker would otherwise sit idle beside it) or, with
		// WaitWhenBusy, while the process is busy: a free worker would
		// then only take CPU from the requests on their way, and one run
		// of many rows costs little more than a run of one.
		mayWait := b.waitsWhenBusy() || int(b.busy.Load()) >= b.opts.Workers-1
		if head.key != "" && rows < b.opts.MaxBatchSize && wait > 0 && !b.closed && mayWait && !flush {
			b.mu.Unlock()
			if b.settledIdle() {
				flush = true
				continue // gather again: the queue may have grown
			}
			if b.opts.Idle != nil {
				wait = min(wait, IdlePoll)
			}
			timer.Reset(wait)
			select {
			case <-b.arrive:
			case <-timer.C:
			case <-b.closing:
			}
			timer.Stop()
			continue // the queue may have changed: gather again
		}
		now := time.Now()
		taken := batch[:0]
		for _, r := range batch {
			if err := r.ctx.Err(); err != nil {
				r.state = batchRemoved
				r.done <- batchResult{err: fmt.Errorf("inference request cancelled: %w", err)}
				continue
			}
			r.state = batchTaken
			taken = append(taken, r)
		}
		kept := b.queue[:0]
		for _, r := range b.queue {
			if r.state == batchQueued {
				kept = append(kept, r)
			}
		}
		clear(b.queue[len(kept):])
		b.queue = kept
		b.depthChanged()
		if len(taken) == 0 {
			b.mu.Unlock()
			continue
		}
		b.busy.Add(1)
		b.mu.Unlock()
		if b.opts.OnQueueWait != nil {
			for _, r := range taken {
				b.opts.OnQueueWait(now.Sub(r.queued))
			}
		}
		return taken, true
	}
}

// settledIdle reports whether the process is idle (see
// BatcherOptions.Idle), asking again after each yield of the thread, up
// to IdleQuestions times within IdleSpin: the goroutine that woke the
// collector may still be on its way to block. In a busy process a yield
// runs other goroutines, so the spin ends after one or two questions;
// while another thread runs a request's Go code, a yield comes back at
// once, and the questions bound the spin. False without Idle.
func (b *Batcher) settledIdle() bool {
	if b.opts.Idle == nil {
		return false
	}
	start := time.Now()
	for asked := 1; ; asked++ {
		if b.opts.Idle() {
			return true
		}
		if asked == IdleQuestions || time.Since(start) > IdleSpin {
			return false
		}
		runtime.Gosched()
	}
}

// gatherLocked returns head and the queued requests that may share its run,
// oldest first, appended to buf[:0], and their total rows; b.mu must be
// held.
func (b *Batcher) gatherLocked(head *batchRequest, buf []*batchRequest) ([]*batchRequest, int) {
	batch := append(buf[:0], head)
	rows := head.rows
	if head.key == "" {
		return batch, rows
	}
	for _, r := range b.queue[1:] {
		if rows >= b.opts.MaxBatchSize {
			break
		}
		if r.key == head.key && rows+r.rows <= b.opts.MaxBatchSize {
			batch = append(batch, r)
			rows += r.rows
		}
	}
	return batch, rows
}

// runBatch runs batch and hands each request its outputs.
func (b *Batcher) runBatch(batch []*batchRequest) {
	if len(batch) == 1 {
		r := batch[0]
		if b.opts.OnBatch != nil {
			b.opts.OnBatch(max(r.rows, 1))
		}
		outs, err := b.safeRun(r.ctx, r.inputs, r.outputs)
		r.done <- batchResult{outputs: outs, err: err}
		return
	}

	rows := 0
	for _, r := range batch {
		rows += r.rows
	}
	if b.opts.OnBatch != nil {
		b.opts.OnBatch(rows)
	}
	inputs, err := batchConcatInputs(batch, rows)
	if err != nil {
		for _, r := range batch {
			r.done <- batchResult{err: err}
		}
		return
	}

	// The run is cancelled only when every request of the batch is.
	ctx := &batchContext{batch: batch}
	defer ctx.release()

	outs, err := b.safeRun(ctx, inputs, batch[0].outputs)
	if err != nil && abgate.ErrorCode(err) == abgate.EINVALID && ctx.Err() == nil {
		// The model refused the batch's data (say an index out of range
		// in one request): run each request alone, so that only the
		// requests at fault fail.
		for _, r := range batch {
			if b.opts.OnBatch != nil {
				b.opts.OnBatch(max(r.rows, 1))
			}
			outs, err := b.safeRun(r.ctx, r.inputs, r.outputs)
			r.done <- batchResult{outputs: outs, err: err}
		}
		return
	}
	if err != nil {
		for _, r := range batch {
			r.done <- batchResult{err: err}
		}
		return
	}
	parts, err := batchSplitOutputs(outs, batch, rows)
	for i, r := range batch {
		if err != nil {
			r.done <- batchResult{err: err}
		} else {
			r.done <- batchResult{outputs: parts[i]}
		}
	}
}

// safeRun calls the RunFunc, turning a panic into an internal error so that
// one bad run cannot take the server down.
func (b *Batcher) safeRun(ctx context.Context, inputs []Tensor, outputs []string) (outs []Tensor, err error) {
	defer func() {
		if p := recover(); p != nil {
			outs, err = nil, fmt.Errorf("inference run panicked: %v", p)
		}
	}()
	return b.run(ctx, inputs, outputs)
}

// batchKey returns the key that compatible requests share and the row count
// of a request that may batch, or "" when it must run alone: no inputs, an
// input of rank 0, first dimensions that differ or are zero or exceed
// maxRows, or data whose Go type or length does not match.
func batchKey(inputs []Tensor, outputs []string, maxRows int) (string, int) {
	key, rows := appendBatchKey(nil, inputs, outputs, maxRows)
	return string(key), rows
}

// appendBatchKey appends the key of batchKey to dst and returns it with
// the row count, or nil when the request must run alone.
func appendBatchKey(dst []byte, inputs []Tensor, outputs []string, maxRows int) ([]byte, int) {
	if len(inputs) == 0 {
		return nil, 0
	}
	rows := int64(-1)
	for _, t := range inputs {
		if len(t.Shape) == 0 {
			return nil, 0
		}
		if rows == -1 {
			rows = t.Shape[0]
		}
		if t.Shape[0] != rows || rows <= 0 || rows > int64(maxRows) {
			return nil, 0
		}
		n, err := ElementCount(t.Shape)
		if err != nil {
			return nil, 0
		}
		tag, length := batchDataInfo(t.Data)
		if tag == 0 || int64(length) != n {
			return nil, 0
		}
		dst = append(dst, t.Name...)
		dst = append(dst, 0)
		dst = append(dst, t.Datatype...)
		dst = append(dst, tag)
		for _, d := range t.Shape[1:] {
			dst = strconv.AppendInt(dst, d, 10)
			dst = append(dst, ',')
		}
		dst = append(dst, 1)
	}
	dst = append(dst, 2)
	for _, o := range outputs {
		dst = append(dst, o...)
		dst = append(dst, 0)
	}
	return dst, int(rows)
}

// batchRows returns the first dimension of the first input, 1 for a scalar
// or no input, for the OnBatch count of a request that runs alone.
func batchRows(inputs []Tensor) int {
	if len(inputs) == 0 || len(inputs[0].Shape) == 0 || inputs[0].Shape[0] < 1 {
		return 1
	}
	return int(inputs[0].Shape[0])
}

// batchDataInfo returns a tag naming the Go type of data and its length,
// or a zero tag for a type the batcher cannot concatenate.
func batchDataInfo(data any) (byte, int) {
	switch d := data.(type) {
	case []bool:
		return 'b', len(d)
	case []uint8:
		return 'B', len(d)
	case []uint16:
		return 'H', len(d)
	case []uint32:
		return 'I', len(d)
	case []uint64:
		return 'Q', len(d)
	case []int8:
		return 'c', len(d)
	case []int16:
		return 'h', len(d)
	case []int32:
		return 'i', len(d)
	case []int64:
		return 'q', len(d)
	case []float32:
		return 'f', len(d)
	case []float64:
		return 'd', len(d)
	case []string:
		return 's', len(d)
	}
	return 0, 0
}

// batchConcatInputs concatenates the inputs of batch along the first axis.
func batchConcatInputs(batch []*batchRequest, rows int) ([]Tensor, error) {
	first := batch[0].inputs
	out := make([]Tensor, len(first))
	parts := make([]any, len(batch))
	for i, t := range first {
		for j, r := range batch {
			parts[j] = r.inputs[i].Data
		}
		data, ok := batchConcatData(parts)
		if !ok {
			return nil, fmt.Errorf("inference batch: input %q: data of type %T cannot be concatenated", t.Name, t.Data)
		}
		shape := make([]int64, len(t.Shape))
		copy(shape, t.Shape)
		shape[0] = int64(rows)
		out[i] = Tensor{Name: t.Name, Datatype: t.Datatype, Shape: shape, Data: data}
	}
	return out, nil
}

// batchConcatData concatenates slices of one element type; false when the
// types differ or are not tensor data types.
func batchConcatData(parts []any) (any, bool) {
	switch parts[0].(type) {
	case []bool:
		return batchConcatSlices[bool](parts)
	case []uint8:
		return batchConcatSlices[uint8](parts)
	case []uint16:
		return batchConcatSlices[uint16](parts)
	case []uint32:
		return batchConcatSlices[uint32](parts)
	case []uint64:
		return batchConcatSlices[uint64](parts)
	case []int8:
		return batchConcatSlices[int8](parts)
	case []int16:
		return batchConcatSlices[int16](parts)
	case []int32:
		return batchConcatSlices[int32](parts)
	case []int64:
		return batchConcatSlices[int64](parts)
	case []float32:
		return batchConcatSlices[float32](parts)
	case []float64:
		return batchConcatSlices[float64](parts)
	case []string:
		return batchConcatSlices[string](parts)
	}
	return nil, false
}

func batchConcatSlices[T any](parts []any) (any, bool) {
	n := 0
	for _, p := range parts {
		s, ok := p.([]T)
		if !ok {
			return nil, false
		}
		n += len(s)
	}
	out := make([]T, 0, n)
	for _, p := range parts {
		out = append(out, p.([]T)...)
	}
	return out, true
}

// batchSplitOutputs splits the outputs of a batched run back into each
// request's outputs: outputs whose first dimension is rows are cut by each
// request's row count (sharing the run's backing arrays); others are
// shared whole. The requests' output lists, and their shapes of each
// output, are cut from one array each (with their capacity cut too).
func batchSplitOutputs(outs []Tensor, batch []*batchRequest, rows int) ([][]Tensor, error) {
	parts := make([][]Tensor, len(batch))
	all := make([]Tensor, len(batch)*len(outs))
	for i := range parts {
		parts[i] = all[i*len(outs) : (i+1)*len(outs) : (i+1)*len(outs)]
	}
	for k, t := range outs {
		if len(t.Shape) == 0 || t.Shape[0] != int64(rows) {
			for i := range batch {
				parts[i][k] = t
			}
			continue
		}
		n, err := ElementCount(t.Shape)
		if err != nil {
			return nil, fmt.Errorf("inference batch: output %q: %v", t.Name, err)
		}
		length, ok := batchDataLen(t.Data)
		if !ok || int64(length) != n {
			return nil, fmt.Errorf("inference batch: output %q of shape %v holds %d elements of type %T", t.Name, t.Shape, length, t.Data)
		}
		per := int(n) / rows
		off := 0
		rank := len(t.Shape)
		shapes := make([]int64, len(batch)*rank)
		for i, r := range batch {
			shape := shapes[i*rank : (i+1)*rank : (i+1)*rank]
			copy(shape, t.Shape)
			shape[0] = int64(r.rows)
			data, _ := batchSliceData(t.Data, off*per, (off+r.rows)*per)
			parts[i][k] = Tensor{Name: t.Name, Datatype: t.Datatype, Shape: shape, Data: data}
			off += r.rows
		}
	}
	return parts, nil
}

// batchDataLen returns the length of a tensor data slice, or of any other slice
// (a RunFunc may return non-tensor outputs such as a list of maps).
func batchDataLen(data any) (int, bool) {
	if tag, n := batchDataInfo(data); tag != 0 {
		return n, true
	}
	if v := reflect.ValueOf(data); v.Kind() == reflect.Slice {
		return v.Len(), true
	}
	return 0, false
}

// batchSliceData returns data[lo:hi:hi] for any slice type, without reflection
// for the tensor data types.
func batchSliceData(data any, lo, hi int) (any, bool) {
	switch d := data.(type) {
	case []bool:
		return d[lo:hi:hi], true
	case []uint8:
		return d[lo:hi:hi], true
	case []uint16:
		return d[lo:hi:hi], true
	case []uint32:
		return d[lo:hi:hi], true
	case []uint64:
		return d[lo:hi:hi], true
	case []int8:
		return d[lo:hi:hi], true
	case []int16:
		return d[lo:hi:hi], true
	case []int32:
		return d[lo:hi:hi], true
	case []int64:
		return d[lo:hi:hi], true
	case []float32:
		return d[lo:hi:hi], true
	case []float64:
		return d[lo:hi:hi], true
	case []string:
		return d[lo:hi:hi], true
	}
	if v := reflect.ValueOf(data); v.Kind() == reflect.Slice {
		return v.Slice3(lo, hi, hi).Interface(), true
	}
	return nil, false
}

// batchContext is the context of a run that several requests share: it is
// done once the context of every one of them is done. Err asks their
// contexts, which is all that a model's run needs (the pool's runStops
// and runSession ask Err); the channel of Done, with a context.AfterFunc
// on every request to close it (about 0.5 us a request), is made the
// first time something asks for it. It carries no values and no
// deadline.
type batchContext struct {
	batch []*batchRequest

	mu    sync.Mutex
	done  chan struct{} // made by Done
	alive int           // requests whose context is not done yet, once done is made
	stops []func() bool // the AfterFuncs that count them
}

func (c *batchContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *batchContext) Value(any) any { return nil }

// Done returns a channel closed once every request's context is done.
func (c *batchContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	c.alive = len(c.batch)
	for _, r := range c.batch {
		c.stops = append(c.stops, context.AfterFunc(r.ctx, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.alive--; c.alive == 0 {
				close(c.done)
			}
		}))
	}
	return c.done
}

// Err returns context.Canceled once every request's context is done (once
// Done is closed, when Done was asked for), and nil before.
func (c *batchContext) Err() error {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done != nil {
		select {
		case <-done:
			return context.Canceled
		default:
			return nil
		}
	}
	for _, r := range c.batch {
		if r.ctx.Err() == nil {
			return nil
		}
	}
	return context.Canceled
}

// release stops the AfterFuncs of Done, if it was asked for.
func (c *batchContext) release() {
	c.mu.Lock()
	stops := c.stops
	c.stops = nil
	c.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

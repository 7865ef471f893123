package inference

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"abgate"
)

// batchDoubler is a fake RunFunc: for every input it answers an output named
// "y_<input>" with each element doubled (so y = 2x row by row) and a scalar
// output "rows" holding the batch's row count. It records the row count of
// each run and can be made to block until released.
type batchDoubler struct {
	mu      sync.Mutex
	batches []int // rows of each run
	inputs  [][]Tensor
	started chan int      // when non-nil, receives the rows of each run as it starts
	gate    chan struct{} // when non-nil, each run waits for a receive from it
	delay   time.Duration
	err     error
}

func (d *batchDoubler) run(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
	rows := 1
	if len(inputs) > 0 && len(inputs[0].Shape) > 0 {
		rows = int(inputs[0].Shape[0])
	}
	d.mu.Lock()
	d.batches = append(d.batches, rows)
	d.inputs = append(d.inputs, inputs)
	d.mu.Unlock()
	if d.started != nil {
		d.started <- rows
	}
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if d.delay > 0 {
		time.Sleep(d.delay)
	}
	if d.err != nil {
		return nil, d.err
	}
	var outs []Tensor
	for _, in := range inputs {
		n, err := ElementCount(in.Shape)
		if err != nil {
			return nil, err
		}
		var data any
		switch x := in.Data.(type) {
		case []float32:
			if len(x) != int(n) {
				return nil, fmt.Errorf("input %q: %d elements for shape %v", in.Name, len(x), in.Shape)
			}
			y := make([]float32, len(x))
			for i, v := range x {
				y[i] = 2 * v
			}
			data = y
		case []int64:
			if len(x) != int(n) {
				return nil, fmt.Errorf("input %q: %d elements for shape %v", in.Name, len(x), in.Shape)
			}
			y := make([]int64, len(x))
			for i, v := range x {
				y[i] = 2 * v
			}
			data = y
		default:
			return nil, fmt.Errorf("input %q: unexpected data %T", in.Name, in.Data)
		}
		outs = append(outs, Tensor{Name: "y_" + in.Name, Datatype: in.Datatype, Shape: slices.Clone(in.Shape), Data: data})
	}
	outs = append(outs, Tensor{Name: "rows", Datatype: DTInt64, Shape: []int64{}, Data: []int64{int64(rows)}})
	return outs, nil
}

func (d *batchDoubler) sizes() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.batches)
}

// batchRowsInput returns an FP32 input "x" of shape [rows, width] whose values
// start at base.
func batchRowsInput(rows, width int, base float32) Tensor {
	data := make([]float32, rows*width)
	for i := range data {
		data[i] = base + float32(i)
	}
	return Tensor{Name: "x", Datatype: DTFP32, Shape: []int64{int64(rows), int64(width)}, Data: data}
}

// checkBatchDoubled checks that outs are the batchDoubler's answer to in.
func checkBatchDoubled(t testing.TB, in Tensor, outs []Tensor) {
	t.Helper()
	if len(outs) != 2 {
		t.Fatalf("got %d outputs, want 2", len(outs))
	}
	y := outs[0]
	if got, want := y.Shape, in.Shape; !slices.Equal(got, want) {
		t.Fatalf("shape of y: got %v, want %v", got, want)
	}
	x := in.Data.([]float32)
	got := y.Data.([]float32)
	if len(got) != len(x) {
		t.Fatalf("y has %d elements, want %d", len(got), len(x))
	}
	for i := range x {
		if got[i] != 2*x[i] {
			t.Fatalf("y[%d]: got %v, want %v", i, got[i], 2*x[i])
		}
	}
	if outs[1].Name != "rows" || len(outs[1].Shape) != 0 {
		t.Fatalf("second output: got %q shape %v, want the scalar rows", outs[1].Name, outs[1].Shape)
	}
}

// waitQueueDepth waits until b's queue holds n requests.
func waitQueueDepth(t *testing.T, b *Batcher, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.QueueDepth() != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue depth: got %d, want %d", b.QueueDepth(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBatcherConcurrentCorrectness(t *testing.T) {
	tests := []struct {
		name string
		opts BatcherOptions
	}{
		{"no delay", BatcherOptions{MaxBatchSize: 8, Workers: 2}},
		{"delay", BatcherOptions{MaxBatchSize: 8, MaxQueueDelay: time.Millisecond, Workers: 2}},
		{"one worker", BatcherOptions{MaxBatchSize: 16, MaxQueueDelay: 200 * time.Microsecond, Workers: 1}},
		{"batching off", BatcherOptions{MaxBatchSize: 1, Workers: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &batchDoubler{delay: 100 * time.Microsecond}
			var depthCalls, waits atomic.Int64
			tt.opts.OnQueueDepth = func(int) { depthCalls.Add(1) }
			tt.opts.OnQueueWait = func(time.Duration) { waits.Add(1) }
			var rowsSeen atomic.Int64
			tt.opts.OnBatch = func(size int) { rowsSeen.Add(int64(size)) }
			tt.opts.QueueSize = 1000
			b := NewBatcher(d.run, tt.opts)
			defer b.Close()

			const n = 300
			var wg sync.WaitGroup
			errs := make(chan error, n)
			var totalRows atomic.Int64
			for i := range n {
				wg.Go(func() {
					rows := 1 + i%3
					totalRows.Add(int64(rows))
					in := batchRowsInput(rows, 4, float32(i*100))
					outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
					if err != nil {
						errs <- err
						return
					}
					checkBatchDoubled(t, in, outs)
					batchRows := outs[1].Data.([]int64)[0]
					if batchRows < int64(rows) || batchRows > int64(tt.opts.MaxBatchSize) && tt.opts.MaxBatchSize > 1 {
						errs <- fmt.Errorf("request of %d rows ran in a batch of %d", rows, batchRows)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}

			sizes := d.sizes()
			sum, biggest := 0, 0
			for _, s := range sizes {
				sum += s
				biggest = max(biggest, s)
			}
			if got, want := int64(sum), totalRows.Load(); got != want {
				t.Errorf("rows run: got %d, want %d", got, want)
			}
			if got, want := rowsSeen.Load(), totalRows.Load(); got != want {
				t.Errorf("rows reported to OnBatch: got %d, want %d", got, want)
			}
			if limit := max(tt.opts.MaxBatchSize, 3); biggest > limit {
				t.Errorf("largest batch: got %d rows, want at most %d", biggest, limit)
			}
			if tt.opts.MaxBatchSize > 1 && len(sizes) >= n {
				t.Errorf("runs: got %d for %d requests, want batching to merge some", len(sizes), n)
			}
			if tt.opts.MaxBatchSize <= 1 && len(sizes) != n {
				t.Errorf("runs with batching off: got %d, want %d", len(sizes), n)
			}
			if got := waits.Load(); got != n {
				t.Errorf("OnQueueWait calls: got %d, want %d", got, n)
			}
			if depthCalls.Load() < n {
				t.Errorf("OnQueueDepth calls: got %d, want at least %d", depthCalls.Load(), n)
			}
		})
	}
}

// TestBatcherCancelWhileQueued submits requests from many goroutines,
// half of them with deadlines that pass while they wait in the queue (a
// worker may then find them cancelled as it forms a batch, or the caller
// give up first): a cancelled request fails with its context's error, and
// every other one gets its own outputs, however the Batcher reuses its
// request objects.
func TestBatcherCancelWhileQueued(t *testing.T) {
	d := &batchDoubler{delay: 100 * time.Microsecond}
	b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 8, MaxQueueDelay: 300 * time.Microsecond, Workers: 1, QueueSize: 1000})
	defer b.Close()
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 60 {
				ctx := context.Background()
				if i%2 == 1 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, time.Duration((g*7+i)%400)*time.Microsecond)
					defer cancel()
				}
				in := batchRowsInput(1, 2, float32(g*10000+i*10))
				outs, err := b.Submit(ctx, []Tensor{in}, nil)
				switch {
				case err == nil:
					checkBatchDoubled(t, in, outs)
				case i%2 == 0 || ctx.Err() == nil:
					t.Errorf("request %d of goroutine %d: %v", i, g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestBatcherFormsBatches holds the only worker busy while requests queue,
// then checks that they run in full batches, oldest first.
func TestBatcherFormsBatches(t *testing.T) {
	d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 16)}
	b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 4, Workers: 1, MaxQueueDelay: time.Hour})
	defer b.Close()

	var wg sync.WaitGroup
	submit := func(i, rows int) {
		wg.Go(func() {
			in := batchRowsInput(rows, 2, float32(100*i))
			outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			checkBatchDoubled(t, in, outs)
		})
	}
	// A request of 4 rows fills a batch at once and is not kept waiting
	// for the hour-long delay.
	submit(0, 4)
	<-d.started
	for i := 1; i <= 8; i++ {
		submit(i, 1)
	}
	waitQueueDepth(t, b, 8)
	for range 3 {
		d.gate <- struct{}{}
	}
	wg.Wait()
	if got, want := d.sizes(), []int{4, 4, 4}; !slices.Equal(got, want) {
		t.Errorf("batch sizes: got %v, want %v", got, want)
	}
}

func TestBatcherDelay(t *testing.T) {
	t.Run("lone request waits for the delay", func(t *testing.T) {
		d := &batchDoubler{}
		const delay = 30 * time.Millisecond
		b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 8, MaxQueueDelay: delay})
		defer b.Close()
		start := time.Now()
		in := batchRowsInput(1, 3, 1)
		outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkBatchDoubled(t, in, outs)
		if got := time.Since(start); got < delay {
			t.Errorf("lone request answered after %v, want at least the delay %v", got, delay)
		}
	})
	t.Run("a full batch does not wait", func(t *testing.T) {
		d := &batchDoubler{}
		b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 2, MaxQueueDelay: 10 * time.Second})
		defer b.Close()
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				in := batchRowsInput(1, 3, float32(10*i))
				outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				checkBatchDoubled(t, in, outs)
			})
		}
		wg.Wait()
		if got := time.Since(start); got > 5*time.Second {
			t.Errorf("full batch answered after %v, want well before the delay", got)
		}
		if got, want := d.sizes(), []int{2}; !slices.Equal(got, want) {
			t.Errorf("batch sizes: got %v, want %v", got, want)
		}
	})
	t.Run("requests arriving within the delay share a run", func(t *testing.T) {
		d := &batchDoubler{}
		b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 8, MaxQueueDelay: 200 * time.Millisecond})
		defer b.Close()
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 10 * time.Millisecond)
				in := batchRowsInput(1, 3, float32(10*i))
				outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				checkBatchDoubled(t, in, outs)
			})
		}
		wg.Wait()
		if got, want := d.sizes(), []int{3}; !slices.Equal(got, want) {
			t.Errorf("batch sizes: got %v, want %v", got, want)
		}
	})
}

func TestBatcherQueueFull(t *testing.T) {
	d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 8)}
	b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 1, Workers: 1, QueueSize: 2})
	defer b.Close()

	results := make(chan error, 3)
	go func() {
		_, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 1, 0)}, nil)
		results <- err
	}()
	<-d.started // the first request runs and holds the only worker
	for range 2 {
		go func() {
			_, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 1, 0)}, nil)
			results <- err
		}()
	}
	waitQueueDepth(t, b, 2)

	_, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 1, 0)}, nil)
	if got, want := abgate.ErrorCode(err), abgate.EUNAVAILABLE; got != want {
		t.Fatalf("error code of a submit to a full queue: got %q (%v), want %q", got, err, want)
	}
	if got, want := abgate.HTTPStatus(err), http.StatusServiceUnavailable; got != want {
		t.Errorf("status: got %d, want %d", got, want)
	}
	for range 3 {
		d.gate <- struct{}{}
	}
	for range 3 {
		if err := <-results; err != nil {
			t.Errorf("queued request: %v", err)
		}
	}
}

func TestBatcherCancel(t *testing.T) {
	t.Run("queued request is removed", func(t *testing.T) {
		d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 8)}
		b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 4, Workers: 1})
		defer b.Close()

		first := make(chan error, 1)
		go func() { _, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 1, 1)}, nil); first <- err }()
		<-d.started

		ctx, cancel := context.WithCancel(context.Background())
		cancelled := make(chan error, 1)
		go func() { _, err := b.Submit(ctx, []Tensor{batchRowsInput(1, 1, 2)}, nil); cancelled <- err }()
		waitQueueDepth(t, b, 1)
		cancel()
		select {
		case err := <-cancelled:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled request: got %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("cancelled request still waiting")
		}
		if got := b.QueueDepth(); got != 0 {
			t.Errorf("queue depth after cancel: got %d, want 0", got)
		}
		d.gate <- struct{}{}
		if err := <-first; err != nil {
			t.Error(err)
		}
		b.Close()
		if got, want := len(d.sizes()), 1; got != want {
			t.Errorf("runs: got %d, want %d (the cancelled request must not run)", got, want)
		}
	})
	t.Run("deadline while queued", func(t *testing.T) {
		d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 8)}
		b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 4, Workers: 1})
		defer b.Close()
		go func() { _, _ = b.Submit(context.Background(), []Tensor{batchRowsInput(1, 1, 1)}, nil) }()
		<-d.started
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := b.Submit(ctx, []Tensor{batchRowsInput(1, 1, 2)}, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want context.DeadlineExceeded", err)
		}
		d.gate <- struct{}{}
	})
	t.Run("cancel after the batch started drops the result", func(t *testing.T) {
		d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 8)}
		b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 4, Workers: 1})
		defer b.Close()

		// Hold the worker so that two requests queue and batch together.
		go func() { _, _ = b.Submit(context.Background(), []Tensor{batchRowsInput(1, 1, 0)}, nil) }()
		<-d.started
		ctx, cancel := context.WithCancel(context.Background())
		gone := make(chan error, 1)
		go func() { _, err := b.Submit(ctx, []Tensor{batchRowsInput(1, 1, 1)}, nil); gone <- err }()
		waitQueueDepth(t, b, 1)
		kept := make(chan error, 1)
		in := batchRowsInput(1, 1, 2)
		go func() {
			outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
			if err == nil {
				checkBatchDoubled(t, in, outs)
			}
			kept <- err
		}()
		waitQueueDepth(t, b, 2)
		d.gate <- struct{}{} // the first run ends; the batch of two starts
		if got := <-d.started; got != 2 {
			t.Fatalf("second run: got %d rows, want 2", got)
		}
		cancel()
		if err := <-gone; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled request: got %v, want context.Canceled", err)
		}
		d.gate <- struct{}{}
		if err := <-kept; err != nil {
			t.Errorf("the other request of the batch: %v", err)
		}
	})
}

func TestBatcherDoesNotMix(t *testing.T) {
	d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 16)}
	b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 8, Workers: 1})
	defer b.Close()

	go func() { _, _ = b.Submit(context.Background(), []Tensor{batchRowsInput(1, 1, 0)}, nil) }()
	<-d.started

	type request struct {
		inputs  []Tensor
		outputs []string
	}
	int64Input := Tensor{Name: "x", Datatype: DTInt64, Shape: []int64{1, 4}, Data: []int64{1, 2, 3, 4}}
	requests := []request{
		{[]Tensor{batchRowsInput(1, 4, 0)}, nil},
		{[]Tensor{batchRowsInput(1, 3, 0)}, nil},                                                  // other width
		{[]Tensor{int64Input}, nil},                                                               // other datatype
		{[]Tensor{batchRowsInput(1, 4, 10)}, []string{"y_x", "rows"}},                             // other outputs
		{[]Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{}, Data: []float32{7}}}, nil},      // scalar
		{[]Tensor{func() Tensor { x := batchRowsInput(1, 4, 0); x.Name = "z"; return x }()}, nil}, // other name
		{[]Tensor{batchRowsInput(1, 4, 20)}, nil},                                                 // batches with the first
	}
	var wg sync.WaitGroup
	outputs := make([][]Tensor, len(requests))
	for i, r := range requests {
		wg.Go(func() {
			outs, err := b.Submit(context.Background(), r.inputs, r.outputs)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			outputs[i] = outs
		})
		waitQueueDepth(t, b, i+1)
	}
	for range len(requests) {
		go func() { d.gate <- struct{}{} }()
	}
	wg.Wait()

	if got, want := d.sizes(), []int{1, 2, 1, 1, 1, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("batch sizes: got %v, want %v", got, want)
	}
	for i, r := range requests {
		in := r.inputs[0]
		y := outputs[i][0]
		if !slices.Equal(y.Shape, in.Shape) {
			t.Errorf("request %d: output shape %v, want %v", i, y.Shape, in.Shape)
		}
		switch x := in.Data.(type) {
		case []float32:
			for j, v := range y.Data.([]float32) {
				if v != 2*x[j] {
					t.Errorf("request %d: y[%d] = %v, want %v", i, j, v, 2*x[j])
				}
			}
		case []int64:
			if got, want := y.Data.([]int64), []int64{2, 4, 6, 8}; !slices.Equal(got, want) {
				t.Errorf("request %d: got %v, want %v", i, got, want)
			}
		}
	}
}

func TestBatcherCloseDrains(t *testing.T) {
	d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 64)}
	b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 4, Workers: 1, MaxQueueDelay: time.Hour})

	const n = 10
	var wg sync.WaitGroup
	var answered atomic.Int64
	for i := range n {
		wg.Go(func() {
			in := batchRowsInput(1, 2, float32(i))
			outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			checkBatchDoubled(t, in, outs)
			answered.Add(1)
		})
	}
	// One full batch runs (held by the gate); of the six others, two will
	// wait for the hour-long delay, which Close cuts short.
	<-d.started
	waitQueueDepth(t, b, n-4)

	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	go func() {
		for {
			select {
			case d.gate <- struct{}{}:
			case <-closed:
				return
			}
		}
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	if got := answered.Load(); got != n {
		t.Errorf("answered: got %d, want %d", got, n)
	}
	_, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 2, 0)}, nil)
	if got, want := abgate.ErrorCode(err), abgate.EUNAVAILABLE; got != want {
		t.Errorf("submit after Close: got %q (%v), want %q", got, err, want)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestBatcherRunErrors(t *testing.T) {
	t.Run("error reaches every request of the batch", func(t *testing.T) {
		want := errors.New("boom")
		d := &batchDoubler{err: want}
		b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 8, MaxQueueDelay: 20 * time.Millisecond})
		defer b.Close()
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 2, 0)}, nil); !errors.Is(err, want) {
					t.Errorf("got %v, want %v", err, want)
				}
			})
		}
		wg.Wait()
	})
	t.Run("panic becomes an internal error", func(t *testing.T) {
		b := NewBatcher(func(context.Context, []Tensor, []string) ([]Tensor, error) { panic("bad model") }, BatcherOptions{})
		defer b.Close()
		_, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 2, 0)}, nil)
		if got, want := abgate.ErrorCode(err), abgate.EINTERNAL; got != want {
			t.Errorf("got %q (%v), want %q", got, err, want)
		}
	})
	t.Run("CanBatch false runs alone", func(t *testing.T) {
		d := &batchDoubler{}
		b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 8, MaxQueueDelay: time.Hour,
			CanBatch: func([]Tensor, []string) bool { return false }})
		defer b.Close()
		in := batchRowsInput(2, 2, 0)
		outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkBatchDoubled(t, in, outs)
	})
}

// TestBatchConcatSplit concatenates and splits every tensor data type.
func TestBatchConcatSplit(t *testing.T) {
	tests := []struct {
		datatype string
		a, b     any
	}{
		{DTBool, []bool{true, false}, []bool{false, false, true, true}},
		{DTUint8, []uint8{1, 2}, []uint8{3, 4, 5, 6}},
		{DTUint16, []uint16{1, 2}, []uint16{3, 4, 5, 6}},
		{DTUint32, []uint32{1, 2}, []uint32{3, 4, 5, 6}},
		{DTUint64, []uint64{1, 2}, []uint64{3, 4, 5, 6}},
		{DTInt8, []int8{-1, 2}, []int8{3, 4, 5, -6}},
		{DTInt16, []int16{-1, 2}, []int16{3, 4, 5, -6}},
		{DTInt32, []int32{-1, 2}, []int32{3, 4, 5, -6}},
		{DTInt64, []int64{-1, 2}, []int64{3, 4, 5, -6}},
		{DTFP16, []uint16{0x3c00, 0}, []uint16{1, 2, 3, 4}},
		{DTFP32, []float32{1.5, 2}, []float32{3, 4, 5, 6}},
		{DTFP64, []float64{1.5, 2}, []float64{3, 4, 5, 6}},
		{DTBytes, []string{"a", ""}, []string{"bc", "d", "e", "f"}},
	}
	for _, tt := range tests {
		t.Run(tt.datatype, func(t *testing.T) {
			ra := &batchRequest{inputs: []Tensor{{Name: "in", Datatype: tt.datatype, Shape: []int64{1, 2}, Data: tt.a}}, rows: 1}
			rb := &batchRequest{inputs: []Tensor{{Name: "in", Datatype: tt.datatype, Shape: []int64{2, 2}, Data: tt.b}}, rows: 2}
			batch := []*batchRequest{ra, rb}
			ka, _ := batchKey(ra.inputs, nil, 8)
			kb, _ := batchKey(rb.inputs, nil, 8)
			if ka == "" || ka != kb {
				t.Fatalf("keys %q and %q: want equal and non-empty", ka, kb)
			}
			in, err := batchConcatInputs(batch, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := in[0].Shape, []int64{3, 2}; !slices.Equal(got, want) {
				t.Errorf("shape: got %v, want %v", got, want)
			}
			// The split of the concatenation gives back each part.
			parts, err := batchSplitOutputs(in, batch, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got := parts[0][0].Data; !reflect.DeepEqual(got, tt.a) {
				t.Errorf("first part: got %v, want %v", got, tt.a)
			}
			if got := parts[1][0].Data; !reflect.DeepEqual(got, tt.b) {
				t.Errorf("second part: got %v, want %v", got, tt.b)
			}
			if got, want := parts[1][0].Shape, []int64{2, 2}; !slices.Equal(got, want) {
				t.Errorf("second shape: got %v, want %v", got, want)
			}
		})
	}
	t.Run("non-tensor output of batch length", func(t *testing.T) {
		batch := []*batchRequest{{rows: 1}, {rows: 2}}
		outs := []Tensor{{Name: "maps", Shape: []int64{3}, Data: []map[string]float32{{"a": 1}, {"b": 2}, {"c": 3}}}}
		parts, err := batchSplitOutputs(outs, batch, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := parts[1][0].Data, []map[string]float32{{"b": 2}, {"c": 3}}; !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("wrong data length", func(t *testing.T) {
		batch := []*batchRequest{{rows: 1}, {rows: 2}}
		outs := []Tensor{{Name: "y", Shape: []int64{3, 2}, Data: []float32{1, 2, 3}}}
		if _, err := batchSplitOutputs(outs, batch, 3); err == nil {
			t.Error("got no error for 3 elements of shape [3 2]")
		}
	})
	t.Run("keys", func(t *testing.T) {
		x := batchRowsInput(2, 3, 0)
		tests := []struct {
			name   string
			inputs []Tensor
			ok     bool
		}{
			{"rows", []Tensor{x}, true},
			{"scalar", []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{}, Data: []float32{1}}}, false},
			{"zero rows", []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{0, 3}, Data: []float32{}}}, false},
			{"over max", []Tensor{batchRowsInput(9, 1, 0)}, false},
			{"first dims differ", []Tensor{x, batchRowsInput(3, 3, 0)}, false},
			{"short data", []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{2, 3}, Data: []float32{1}}}, false},
			{"unknown data", []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{1}, Data: []complex64{1}}}, false},
			{"no inputs", nil, false},
		}
		for _, tt := range tests {
			key, _ := batchKey(tt.inputs, nil, 8)
			if got := key != ""; got != tt.ok {
				t.Errorf("%s: batchable %v, want %v", tt.name, got, tt.ok)
			}
		}
	})
}

// BenchmarkBatcher measures 32 concurrent clients of a fake model whose
// run costs a fixed overhead plus a time per row, with 2 workers, with
// batching off and on.
func BenchmarkBatcher(b *testing.B) {
	const (
		clients  = 32
		overhead = 500 * time.Microsecond
		perRow   = 20 * time.Microsecond
	)
	run := func(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
		rows := int(inputs[0].Shape[0])
		time.Sleep(overhead + time.Duration(rows)*perRow)
		x := inputs[0].Data.([]float32)
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = 2 * v
		}
		return []Tensor{{Name: "y", Datatype: DTFP32, Shape: inputs[0].Shape, Data: y}}, nil
	}
	for _, bc := range []struct {
		name string
		opts BatcherOptions
	}{
		{"off", BatcherOptions{MaxBatchSize: 1, Workers: 2}},
		{"on", BatcherOptions{MaxBatchSize: 32, Workers: 2, MaxQueueDelay: 100 * time.Microsecond}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var runs, rows atomic.Int64
			bc.opts.OnBatch = func(n int) { runs.Add(1); rows.Add(int64(n)) }
			bt := NewBatcher(run, bc.opts)
			defer bt.Close()
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					in := []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{1, 16}, Data: make([]float32, 16)}}
					for next.Add(1) <= int64(b.N) {
						if _, err := bt.Submit(context.Background(), in, nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			if r := runs.Load(); r > 0 {
				b.ReportMetric(float64(rows.Load())/float64(r), "rows/run")
			}
		})
	}
}

// TestBatcherNoWaitWhileAWorkerIdles checks that a batch waits to fill only
// while every other worker is busy: with a free worker, a lone request
// runs at once, whatever MaxQueueDelay says; once the other worker is
// busy, the next requests wait and run together.
func TestBatcherNoWaitWhileAWorkerIdles(t *testing.T) {
	t.Run("without Idle", func(t *testing.T) {
		testNoWaitWhileAWorkerIdles(t, BatcherOptions{MaxBatchSize: 4, Workers: 2, MaxQueueDelay: time.Hour})
	})
	// Without WaitWhenBusy, a busy process does not keep a lone request
	// from a free worker.
	t.Run("busy process, WaitWhenBusy off", func(t *testing.T) {
		testNoWaitWhileAWorkerIdles(t, BatcherOptions{MaxBatchSize: 4, Workers: 2, MaxQueueDelay: time.Hour, Idle: func() bool { return false }})
	})
}

func testNoWaitWhileAWorkerIdles(t *testing.T, opts BatcherOptions) {
	d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 64)}
	b := NewBatcher(d.run, opts)
	defer func() {
		go func() {
			for range 8 {
				d.gate <- struct{}{}
			}
		}()
		b.Close()
	}()

	first := make(chan error, 1)
	go func() {
		_, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 2, 1)}, nil)
		first <- err
	}()
	select {
	case rows := <-d.started:
		if rows != 1 {
			t.Fatalf("first run: got %d rows, want 1", rows)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a lone request with an idle worker beside it did not run within 5s")
	}
	// The first run is held by the gate: the other worker now waits for a
	// full batch of 4.
	for i := range 4 {
		go func() { _, _ = b.Submit(context.Background(), []Tensor{batchRowsInput(1, 2, float32(i))}, nil) }()
	}
	select {
	case rows := <-d.started:
		if rows != 4 {
			t.Fatalf("second run: got %d rows, want 4", rows)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second batch did not run within 5s")
	}
	// Both runs wait at the gate, and either may take a release: give
	// one to each.
	d.gate <- struct{}{}
	d.gate <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// TestBatchContext checks the context of a batch: not done while one
// request's context lives, done once all are, through Err alone and
// through Done (made when asked, after some contexts are already done).
func TestBatchContext(t *testing.T) {
	a, cancelA := context.WithCancel(context.Background())
	b, cancelB := context.WithCancel(context.Background())
	c, cancelC := context.WithCancel(context.Background())
	defer cancelC()
	ctx := &batchContext{batch: []*batchRequest{{ctx: a}, {ctx: b}, {ctx: c}}}
	defer ctx.release()
	if _, ok := ctx.Deadline(); ok {
		t.Error("the batch's context has a deadline")
	}
	cancelA()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err with two requests alive: %v", err)
	}
	cancelB()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err with one request alive: %v", err)
	}
	done := ctx.Done()
	select {
	case <-done:
		t.Fatal("Done closed with one request alive")
	case <-time.After(10 * time.Millisecond):
	}
	if ctx.Done() != done {
		t.Error("Done made a second channel")
	}
	cancelC()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed 5s after every request gave up")
	}
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err once every request gave up: %v, want context.Canceled", err)
	}

	// Without Done, Err alone tells.
	x, cancelX := context.WithCancel(context.Background())
	only := &batchContext{batch: []*batchRequest{{ctx: x}}}
	defer only.release()
	if only.Err() != nil {
		t.Fatal("Err of a live request's batch is not nil")
	}
	cancelX()
	if err := only.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err: %v, want context.Canceled", err)
	}
}

// TestBatcherBatchCancelledWhenAllGiveUp: a running batch whose requests
// all give up sees its context done, and the worker is free again.
func TestBatcherBatchCancelledWhenAllGiveUp(t *testing.T) {
	d := &batchDoubler{gate: make(chan struct{}), started: make(chan int, 8)}
	ended := make(chan error, 8)
	run := func(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
		outs, err := d.run(ctx, inputs, outputs)
		ended <- err
		return outs, err
	}
	b := NewBatcher(run, BatcherOptions{MaxBatchSize: 2, Workers: 1, MaxQueueDelay: time.Hour})
	defer func() {
		close(d.gate)
		b.Close()
	}()
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel1()
	defer cancel2()
	errs := make(chan error, 2)
	go func() { _, err := b.Submit(ctx1, []Tensor{batchRowsInput(1, 2, 1)}, nil); errs <- err }()
	go func() { _, err := b.Submit(ctx2, []Tensor{batchRowsInput(1, 2, 2)}, nil); errs <- err }()
	if rows := <-d.started; rows != 2 {
		t.Fatalf("the batch started with %d rows, want 2", rows)
	}
	cancel1()
	select {
	case err := <-ended:
		t.Fatalf("the run ended (%v) with one request still waiting for it", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel2()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the run ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the run went on 5s after every request of its batch gave up")
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("Submit: %v, want context.Canceled", err)
		}
	}
}

// countThreadLocks makes lockThread and unlockThread count their calls,
// still locking, until t ends.
func countThreadLocks(t *testing.T) (locks, unlocks *atomic.Int32) {
	locks, unlocks = new(atomic.Int32), new(atomic.Int32)
	lock, unlock := lockThread, unlockThread
	lockThread = func() { locks.Add(1); lock() }
	unlockThread = func() { unlocks.Add(1); unlock() }
	t.Cleanup(func() { lockThread, unlockThread = lock, unlock })
	return locks, unlocks
}

// TestThreadPin: a worker keeps its thread once the moving average of
// its runs reaches pinRunTime, while it stays at least unpinRunTime, and
// gives it back when it ends; one long run does not pin a new worker.
func TestThreadPin(t *testing.T) {
	locks, unlocks := countThreadLocks(t)
	var p threadPin
	for range 20 {
		p.observe(50 * time.Microsecond)
	}
	if locks.Load() != 0 || p.locked {
		t.Fatalf("runs of 50 µs locked the thread")
	}
	// The average climbs by an eighth of the gap a run: from 50 µs to
	// 200 µs takes a few runs of 1 ms.
	runs := 0
	for !p.locked {
		p.observe(time.Millisecond)
		runs++
		if runs > 10 {
			t.Fatalf("10 runs of 1 ms did not lock the thread (average %v)", p.avg)
		}
	}
	if runs < 2 {
		t.Errorf("one run of 1 ms after runs of 50 µs locked the thread (average %v); want the average to follow", p.avg)
	}
	for range 3 {
		p.observe(0) // short runs, the average still over unpinRunTime
	}
	if !p.locked || unlocks.Load() != 0 {
		t.Fatalf("three short runs unlocked the thread at average %v", p.avg)
	}
	for p.locked {
		p.observe(10 * time.Microsecond)
	}
	if p.avg >= unpinRunTime || p.avg < unpinRunTime*7/8-10*time.Microsecond {
		t.Errorf("unlocked at average %v, want just under %v", p.avg, unpinRunTime)
	}
	p.observe(time.Second)
	p.release()
	if got, want := [2]int32{locks.Load(), unlocks.Load()}, [2]int32{2, 2}; got != want {
		t.Errorf("locks, unlocks: got %v, want %v", got, want)
	}
	var fresh threadPin
	fresh.observe(time.Millisecond) // one run stretched by a pause
	if fresh.locked {
		t.Errorf("one run of 1 ms locked a new worker's thread")
	}
	fresh.observe(time.Millisecond)
	if !fresh.locked {
		t.Errorf("two runs of 1 ms did not lock a new worker's thread (average %v)", fresh.avg)
	}
	fresh.release()
}

// TestBatcherPinsLongRuns: workers whose runs take long lock their
// threads, and unlock them when the Batcher closes. (That short runs do
// not is TestThreadPin's: on a loaded machine, the host may stretch any
// run.)
func TestBatcherPinsLongRuns(t *testing.T) {
	const delay = 4 * pinRunTime // three runs pin a worker
	locks, unlocks := countThreadLocks(t)
	d := &batchDoubler{delay: delay}
	b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 1, Workers: 2})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				in := batchRowsInput(1, 2, 1)
				outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				checkBatchDoubled(t, in, outs)
			}
		})
	}
	wg.Wait()
	b.Close()
	if got := locks.Load(); got != 2 {
		t.Errorf("runs of %v: %d workers locked their threads, want 2", delay, got)
	}
	if got := unlocks.Load(); got != locks.Load() {
		t.Errorf("runs of %v: %d locks, %d unlocks after Close", delay, locks.Load(), got)
	}
}

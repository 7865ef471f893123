package inference

import (
	"context"
	"strings"
	"testing"
	"time"

	"abgate"
	"abgate/inference/modelgen"
)

// cancelWhileRunning calls cancel as soon as a run of m is recorded by
// its pool's runStops, that is while ONNX Runtime runs, unless the
// returned channel is closed first.
func cancelWhileRunning(m *Model, cancel func()) chan<- struct{} {
	ran := make(chan struct{})
	go func() {
		for {
			select {
			case <-ran:
				return
			default:
			}
			m.pool.stops.mu.Lock()
			running := len(m.pool.stops.runs) > 0
			m.pool.stops.mu.Unlock()
			if running {
				cancel()
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	return ran
}

// longCNNRun loads the demo CNN on one session of one thread and returns
// it with a batch of 32 images: tens of milliseconds of work.
func longCNNRun(t *testing.T) (*Model, []Tensor) {
	model, _ := modelgen.CNN()
	m := loadTestModel(t, model, "instances: 1\nintra_op_threads: 1\n")
	const batch, c, n = 32, modelgen.CNNChannels, modelgen.CNNSize
	return m, []Tensor{{Name: "input", Datatype: DTFP32, Shape: []int64{batch, c, n, n}, Data: make([]float32, batch*c*n*n)}}
}

// TestRunStoppedWhenContextDone runs the demo CNN on a batch of 32 images
// (tens of milliseconds of work) with a context cancelled as the run
// starts: the run is terminated (a finished run would return the outputs), the
// session runs again afterwards, and the pool's watch ends once no run is
// in progress.
func TestRunStoppedWhenContextDone(t *testing.T) {
	m, in := longCNNRun(t)

	// Cancel once the run is recorded, that is while ONNX Runtime runs.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := cancelWhileRunning(m, cancel)
	start := time.Now()
	_, err := m.Run(ctx, in, nil)
	took := time.Since(start)
	close(ran)
	t.Logf("the run ended %v after it started", took)
	if abgate.ErrorCode(err) != abgate.EUNAVAILABLE || !strings.Contains(abgate.ErrorMessage(err), "cancelled") {
		t.Fatalf("run cancelled while it ran: %v (after %v), want EUNAVAILABLE, cancelled", err, took)
	}

	// The same session (the only one) runs to the end with a live context.
	const c, n = modelgen.CNNChannels, modelgen.CNNSize
	one := []Tensor{{Name: "input", Datatype: DTFP32, Shape: []int64{1, c, n, n}, Data: make([]float32, c*n*n)}}
	live, cancelLive := context.WithCancel(context.Background())
	defer cancelLive()
	out, err := m.Run(live, one, []string{"probabilities"})
	if err != nil {
		t.Fatalf("run after a stopped run: %v", err)
	}
	if got := len(out[0].Data.([]float32)); got != modelgen.CNNClasses {
		t.Errorf("%d probabilities, want %d", got, modelgen.CNNClasses)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		m.pool.stops.mu.Lock()
		watching, runs := m.pool.stops.watching, len(m.pool.stops.runs)
		m.pool.stops.mu.Unlock()
		if runs != 0 {
			t.Fatalf("%d runs recorded after every run ended", runs)
		}
		if !watching {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch of runs still runs 5s after the last run")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatchRunStoppedWhenEveryRequestGaveUp runs the demo CNN on 32
// images for a batch of two requests, through the context a batch runs
// with: the run goes on when one request gives up and is stopped when
// both have, without the batch's Done channel ever being made.
func TestBatchRunStoppedWhenEveryRequestGaveUp(t *testing.T) {
	m, in := longCNNRun(t)
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	second, cancelSecond := context.WithCancel(context.Background())
	defer cancelSecond()
	ctx := &batchContext{batch: []*batchRequest{{ctx: first}, {ctx: second}}}
	defer ctx.release()

	// One request gives up before the run: the run goes on for the other.
	cancelFirst()
	if _, err := m.Run(ctx, in, []string{"probabilities"}); err != nil {
		t.Fatalf("batch run with one request left: %v", err)
	}

	// The other gives up while ONNX Runtime runs: the run is stopped.
	ran := cancelWhileRunning(m, cancelSecond)
	_, err := m.Run(ctx, in, nil)
	close(ran)
	if abgate.ErrorCode(err) != abgate.EUNAVAILABLE || !strings.Contains(abgate.ErrorMessage(err), "cancelled") {
		t.Fatalf("batch run whose requests all gave up while it ran: %v, want EUNAVAILABLE, cancelled", err)
	}
	ctx.mu.Lock()
	made := ctx.done != nil
	ctx.mu.Unlock()
	if made {
		t.Error("the batch's Done channel was made: a run needs only Err")
	}
}

// TestRunDoneContextNotRun: a context done before the run starts is
// EUNAVAILABLE at once.
func TestRunDoneContextNotRun(t *testing.T) {
	logreg, _ := modelgen.LogReg()
	m := loadTestModel(t, logreg, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{1, 4}, Data: tabularRows(1)}}
	if _, err := m.Run(ctx, in, nil); abgate.ErrorCode(err) != abgate.EUNAVAILABLE || !strings.Contains(abgate.ErrorMessage(err), "cancelled") {
		t.Errorf("run with a cancelled context: %v, want EUNAVAILABLE cancelled", err)
	}
}

package inference

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBatcherPinnedWorkerKeepsItsThread: once a worker's runs are long,
// every batch it runs runs on one thread, though each run parks its
// goroutine (a sleep) and other goroutines keep the process's threads
// busy.
func TestBatcherPinnedWorkerKeepsItsThread(t *testing.T) {
	var mu sync.Mutex
	var tids []int
	run := func(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
		if _, ok := ctx.(*batchContext); ok { // a batch: the worker's run
			mu.Lock()
			tids = append(tids, syscall.Gettid())
			mu.Unlock()
		}
		time.Sleep(4 * pinRunTime) // three runs pin the worker
		return []Tensor{{Name: "y", Datatype: DTFP32, Shape: inputs[0].Shape, Data: inputs[0].Data}}, nil
	}
	b := NewBatcher(run, BatcherOptions{MaxBatchSize: 2, Workers: 1})
	defer b.Close()
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 4 { // goroutines that take threads and give them back
		busy.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 12 {
				if _, err := b.Submit(context.Background(), []Tensor{batchRowsInput(1, 2, 1)}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	busy.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(tids) < 10 {
		t.Fatalf("the worker ran %d batches, want at least 10", len(tids))
	}
	// The first three runs come before the worker locks its thread.
	for i, tid := range tids[3:] {
		if tid != tids[3] {
			t.Fatalf("batch %d ran on thread %d, batch 3 on %d: the worker moved (threads %v)", i+3, tid, tids[3], tids)
		}
	}
}

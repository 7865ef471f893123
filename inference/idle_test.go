package inference

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// doubledSubmitter returns a func that submits one row of values from
// base to b, a Batcher of a batchDoubler, checks the answer and sends
// Submit's error to results.
func doubledSubmitter(t *testing.T, b *Batcher, results chan<- error) func(base float32) {
	return func(base float32) {
		in := batchRowsInput(1, 2, base)
		outs, err := b.Submit(context.Background(), []Tensor{in}, nil)
		if err == nil {
			checkBatchDoubled(t, in, outs)
		}
		results <- err
	}
}

// TestBatcherIdleRunsAtOnce checks that a batch waiting to fill runs as
// soon as Idle says the process is idle, and not before.
func TestBatcherIdleRunsAtOnce(t *testing.T) {
	var idle atomic.Bool
	d := &batchDoubler{started: make(chan int, 8)}
	b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 4, Workers: 1, MaxQueueDelay: time.Hour, Idle: idle.Load})
	defer b.Close()

	results := make(chan error, 2)
	submit := doubledSubmitter(t, b, results)
	go submit(1)
	select {
	case rows := <-d.started:
		t.Fatalf("a batch of %d rows ran while the process was busy and the batch had an hour to fill", rows)
	case <-time.After(100 * time.Millisecond):
	}
	go submit(10)
	waitQueueDepth(t, b, 2)
	idle.Store(true) // the collector's next look (IdlePoll) finds the process idle
	select {
	case rows := <-d.started:
		if rows != 2 {
			t.Fatalf("the batch ran with %d rows, want the 2 queued", rows)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the batch did not run within 5s of the process becoming idle")
	}
	for range 2 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatcherIdleFollowsTheLoad checks that with Idle and WaitWhenBusy,
// batching follows the load and not the free workers: while the process is busy, requests
// queue and run together although a worker is free; once it is idle, a
// lone request runs at once in its Submit.
func TestBatcherIdleFollowsTheLoad(t *testing.T) {
	var idle atomic.Bool
	d := &batchDoubler{started: make(chan int, 8)}
	b := NewBatcher(d.run, BatcherOptions{MaxBatchSize: 3, Workers: 2, MaxQueueDelay: time.Hour, Idle: idle.Load, WaitWhenBusy: true})
	defer b.Close()

	results := make(chan error, 4)
	submit := doubledSubmitter(t, b, results)
	// Busy: the first request waits beside two free workers, and two
	// more join it.
	go submit(1)
	waitQueueDepth(t, b, 1)
	go submit(10)
	waitQueueDepth(t, b, 2)
	select {
	case rows := <-d.started:
		t.Fatalf("a run of %d rows started while the process was busy and the batch could still fill", rows)
	case <-time.After(50 * time.Millisecond):
	}
	go submit(100)
	select {
	case rows := <-d.started:
		if rows != 3 {
			t.Fatalf("the batch ran with %d rows, want the 3 that fill it", rows)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the full batch did not run within 5s")
	}
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}

	// Idle: a lone request does not wait for others.
	idle.Store(true)
	go submit(1000)
	select {
	case rows := <-d.started:
		if rows != 1 {
			t.Fatalf("the lone request ran with %d rows, want 1", rows)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a lone request in an idle process did not run within 5s")
	}
	if err := <-results; err != nil {
		t.Fatal(err)
	}
	if got := b.QueueDepth(); got != 0 {
		t.Errorf("queue depth after the lone request: %d, want 0", got)
	}
}

// TestBatcherProcessIdle runs closed-loop clients against a batcher whose
// batches may wait an hour to fill: with ProcessIdle, a batch runs once
// every client waits in it, so the clients finish, each with its own
// answers.
func TestBatcherProcessIdle(t *testing.T) {
	const clients, each = 4, 200
	var runs, rows atomic.Int64
	d := &batchDoubler{}
	b := NewBatcher(d.run, BatcherOptions{
		MaxBatchSize: 32, Workers: 1, MaxQueueDelay: time.Hour, Idle: ProcessIdle,
		OnBatch: func(n int) { runs.Add(1); rows.Add(int64(n)) },
	})
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				in := batchRowsInput(1, 2, float32(1000*c+i))
				outs, err := b.Submit(ctx, []Tensor{in}, nil)
				if err != nil {
					t.Errorf("client %d request %d: %v", c, i, err)
					return
				}
				checkBatchDoubled(t, in, outs)
			}
		})
	}
	wg.Wait()
	if n := rows.Load(); n != clients*each {
		t.Errorf("the runs carried %d rows, want %d", n, clients*each)
	}
	t.Logf("%d runs of %.2f rows on average", runs.Load(), float64(rows.Load())/float64(runs.Load()))
}

// TestProcessIdle checks ProcessIdle against a goroutine that keeps a
// thread busy, then without it.
func TestProcessIdle(t *testing.T) {
	var stop atomic.Bool
	spinning := make(chan struct{})
	go func() {
		close(spinning)
		for !stop.Load() {
		}
	}()
	<-spinning
	for range 100 {
		if ProcessIdle() {
			stop.Store(true)
			t.Fatal("ProcessIdle() = true while another goroutine spins")
		}
		runtime.Gosched()
	}
	stop.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for !ProcessIdle() {
		if time.Now().After(deadline) {
			t.Fatal("ProcessIdle() stayed false for 5s after the spinning goroutine ended")
		}
		time.Sleep(time.Millisecond)
	}
}

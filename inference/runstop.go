package inference

import (
	"context"
	"sync"
	"time"
)

// runStopCheck is how often a pool looks for runs to stop while some run
// is in progress.
const runStopCheck = time.Millisecond

// runStops stops the runs of a pool's sessions whose context is done. A
// context.AfterFunc per run would do it too, but costs about 1.5 us a run
// (an allocation, and a map of children in the request's context, made
// and emptied): a tenth of the time a tiny model takes. Instead a run
// records its context in its session, and one goroutine, which runs only
// while some run is in progress, looks every runStopCheck for runs whose
// context is done and terminates them. A run is stopped within about
// runStopCheck of its context being done (a run shorter than that
// finishes), which a request that gave up cannot tell apart.
type runStops struct {
	mu       sync.Mutex
	runs     []*session // sessions running with a context that can be done
	watching bool       // the goroutine of watch runs
}

// start records that s runs for ctx. A ctx that is never done is not
// recorded. The context of a batch is recorded without asking its Done,
// which it makes only when asked (see batchContext).
func (w *runStops) start(s *session, ctx context.Context) {
	if _, batch := ctx.(*batchContext); !batch && ctx.Done() == nil {
		return
	}
	w.mu.Lock()
	s.runCtx = ctx
	w.runs = append(w.runs, s)
	if !w.watching {
		w.watching = true
		go w.watch()
	}
	w.mu.Unlock()
}

// end records that the run of s ended, and clears the stop of s's run
// options if the run was stopped, so that its next run proceeds.
func (w *runStops) end(s *session) {
	if s.runCtx == nil {
		return
	}
	w.mu.Lock()
	for i, r := range w.runs {
		if r == s {
			last := len(w.runs) - 1
			w.runs[i] = w.runs[last]
			w.runs[last] = nil
			w.runs = w.runs[:last]
			break
		}
	}
	s.runCtx = nil
	stopped := s.stopped
	s.stopped = false
	w.mu.Unlock()
	if stopped {
		s.opts.UnsetTerminate()
	}
}

// watch terminates the recorded runs whose context is done, every
// runStopCheck, until no run is recorded.
func (w *runStops) watch() {
	t := time.NewTicker(runStopCheck)
	defer t.Stop()
	for range t.C {
		w.mu.Lock()
		if len(w.runs) == 0 {
			w.watching = false
			w.mu.Unlock()
			return
		}
		for _, s := range w.runs {
			if !s.stopped && s.runCtx.Err() != nil {
				_ = s.opts.Terminate()
				s.stopped = true
			}
		}
		w.mu.Unlock()
	}
}

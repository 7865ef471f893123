package inference

import (
	rtmetrics "runtime/metrics"
	"sync"
)

// The samples ProcessIdle reads: goroutines running Go code and goroutines
// waiting for a thread to run on.
var (
	idleMu      sync.Mutex
	idleSamples = []rtmetrics.Sample{
		{Name: "/sched/goroutines/running:goroutines"},
		{Name: "/sched/goroutines/runnable:goroutines"},
	}
)

// ProcessIdle reports whether the goroutine that calls it is the only one
// of the process that runs Go code or waits to: everything else waits on
// the network, a channel, a lock or a timer, or is in a system or C call
// (the goroutine of os/signal waits in one for good; a run of ONNX Runtime
// on another session brings no request). A batcher forming a batch asks
// it to know whether another request can be on its way (being read,
// decoded, checked) while it waits: when none can, waiting longer only
// delays the batch. It reads the scheduler's counts through
// runtime/metrics (about 100 ns).
func ProcessIdle() bool {
	idleMu.Lock()
	defer idleMu.Unlock()
	rtmetrics.Read(idleSamples)
	var n uint64
	for _, s := range idleSamples {
		if s.Value.Kind() != rtmetrics.KindUint64 {
			return false // a runtime without the metric: never idle
		}
		n += s.Value.Uint64()
	}
	return n <= 1
}

package inference

import (
	"sync"
	"time"
)

// Stats are the request counts of a server since it started, the answer
// of GET /stats. They count V2 inference requests and image API
// predictions, in process and over HTTP; a request that failed before it
// named a model that serves counts in the totals only.
type Stats struct {
	TotalRequests      int64 `json:"total_requests"`
	SuccessfulRequests int64 `json:"successful_requests"`
	FailedRequests     int64 `json:"failed_requests"`
	// Predictions is the number of images the image API classified.
	Predictions int64 `json:"predictions"`
	// AverageInferenceTime is the mean time, in seconds, that the model
	// took to answer a successful request, its wait in the batcher's
	// queue included; 0 before the first.
	AverageInferenceTime float64 `json:"average_inference_time"`
	// RequestsPerSecond is TotalRequests over Uptime.
	RequestsPerSecond float64 `json:"requests_per_second"`
	// SuccessRate is SuccessfulRequests over TotalRequests, from 0 to 1;
	// 1 before the first request.
	SuccessRate float64 `json:"success_rate"`
	// Uptime is the time since the server started, in seconds.
	Uptime    float64   `json:"uptime"`
	StartedAt time.Time `json:"started_at"`
	// Models break the counts down by model name.
	Models map[string]ModelStats `json:"models"`
}

// ModelStats are the request counts of one model (all its versions).
type ModelStats struct {
	TotalRequests        int64   `json:"total_requests"`
	SuccessfulRequests   int64   `json:"successful_requests"`
	FailedRequests       int64   `json:"failed_requests"`
	Predictions          int64   `json:"predictions"`
	AverageInferenceTime float64 `json:"average_inference_time"`
	SuccessRate          float64 `json:"success_rate"`
}

// serverStats counts requests for Stats. It is safe for concurrent use.
type serverStats struct {
	start time.Time

	mu     sync.Mutex
	all    statCounts
	models map[string]*statCounts
}

// statCounts are the counts of the server or of one model.
type statCounts struct {
	requests, failures, predictions int64
	inference                       time.Duration // sum over the successful requests
}

func newServerStats(start time.Time) *serverStats {
	return &serverStats{start: start, models: map[string]*statCounts{}}
}

// record counts a request for model ("" when it named no model that
// serves) that failed with err (nil for success), where the model took
// took and classified predictions images.
func (st *serverStats) record(model string, err error, took time.Duration, predictions int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	add := func(c *statCounts) {
		c.requests++
		if err != nil {
			c.failures++
			return
		}
		c.predictions += int64(predictions)
		c.inference += took
	}
	add(&st.all)
	if model == "" {
		return
	}
	c := st.models[model]
	if c == nil {
		c = &statCounts{}
		st.models[model] = c
	}
	add(c)
}

// snapshot returns the Stats at now.
func (st *serverStats) snapshot(now time.Time) Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	up := now.Sub(st.start).Seconds()
	out := Stats{
		TotalRequests:        st.all.requests,
		SuccessfulRequests:   st.all.requests - st.all.failures,
		FailedRequests:       st.all.failures,
		Predictions:          st.all.predictions,
		AverageInferenceTime: st.all.average(),
		SuccessRate:          st.all.successRate(),
		Uptime:               up,
		StartedAt:            st.start.UTC(),
		Models:               make(map[string]ModelStats, len(st.models)),
	}
	if up > 0 {
		out.RequestsPerSecond = float64(st.all.requests) / up
	}
	for name, c := range st.models {
		out.Models[name] = ModelStats{
			TotalRequests:        c.requests,
			SuccessfulRequests:   c.requests - c.failures,
			FailedRequests:       c.failures,
			Predictions:          c.predictions,
			AverageInferenceTime: c.average(),
			SuccessRate:          c.successRate(),
		}
	}
	return out
}

// average returns the mean inference time of the successful requests, in
// seconds.
func (c *statCounts) average() float64 {
	ok := c.requests - c.failures
	if ok == 0 {
		return 0
	}
	return c.inference.Seconds() / float64(ok)
}

func (c *statCounts) successRate() float64 {
	if c.requests == 0 {
		return 1
	}
	return float64(c.requests-c.failures) / float64(c.requests)
}

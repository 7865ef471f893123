package inference

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus collectors of the inference server, labelled
// by model and version.
type metrics struct {
	requests   *prometheus.CounterVec   // inference requests that named a model that serves
	failures   *prometheus.CounterVec   // of those, the ones that failed, by error code
	queue      *prometheus.HistogramVec // waiting in the batcher's queue
	compute    *prometheus.HistogramVec // ONNX Runtime computing
	total      *prometheus.HistogramVec // request start to answer
	batchSize  *prometheus.HistogramVec // rows per ONNX Runtime run
	queueDepth *prometheus.GaugeVec     // requests waiting, for the dynamic batcher
}

// newMetrics returns the collectors, registered on reg; a nil reg leaves
// them unregistered (they still count). Registering twice on one registry
// panics, as prometheus.MustRegister does.
func newMetrics(reg prometheus.Registerer) *metrics {
	labels := []string{"model", "version"}
	latency := prometheus.ExponentialBuckets(50e-6, 2, 18) // 50µs .. 6.5s
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abgate_inference_requests_total",
			Help: "Inference requests for a model that serves.",
		}, labels),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abgate_inference_failures_total",
			Help: "Inference requests that failed, by abgate error code.",
		}, append(labels, "code")),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "abgate_inference_queue_seconds",
			Help:    "Time a request waited in the dynamic batcher's queue before its run started.",
			Buckets: latency,
		}, labels),
		compute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "abgate_inference_compute_seconds",
			Help:    "Time ONNX Runtime took to run the model.",
			Buckets: latency,
		}, labels),
		total: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "abgate_inference_request_seconds",
			Help:    "Time from the start of an inference request to its answer.",
			Buckets: latency,
		}, labels),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "abgate_inference_batch_size",
			Help:    "Rows (first-axis size) of each ONNX Runtime run.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, labels),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "abgate_inference_queue_depth",
			Help: "Requests waiting in the dynamic batcher's queue.",
		}, labels),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.failures, m.queue, m.compute, m.total, m.batchSize, m.queueDepth)
	}
	return m
}

// modelMetrics are the collectors of one model version, looked up once:
// a lookup by label values hashes them and takes a lock, several times a
// request otherwise.
type modelMetrics struct {
	from       *metrics // the collectors these come from
	requests   prometheus.Counter
	queue      prometheus.Observer
	compute    prometheus.Observer
	total      prometheus.Observer
	batchSize  prometheus.Observer
	queueDepth prometheus.Gauge
}

// forModel returns the collectors of m, cached in *cache while they come
// from x.
func (x *metrics) forModel(m *Model, cache *atomic.Pointer[modelMetrics]) *modelMetrics {
	if c := cache.Load(); c != nil && c.from == x {
		return c
	}
	c := &modelMetrics{
		from:       x,
		requests:   x.requests.WithLabelValues(m.Name, m.Version),
		queue:      x.queue.WithLabelValues(m.Name, m.Version),
		compute:    x.compute.WithLabelValues(m.Name, m.Version),
		total:      x.total.WithLabelValues(m.Name, m.Version),
		batchSize:  x.batchSize.WithLabelValues(m.Name, m.Version),
		queueDepth: x.queueDepth.WithLabelValues(m.Name, m.Version),
	}
	cache.Store(c)
	return c
}

// observeRequest records one inference request for m that started at
// start and failed with code ("" for success).
func (x *metrics) observeRequest(m *Model, start time.Time, code string) {
	c := x.forModel(m, &m.metrics)
	c.requests.Inc()
	if code != "" {
		x.failures.WithLabelValues(m.Name, m.Version, code).Inc()
	}
	c.total.Observe(time.Since(start).Seconds())
}

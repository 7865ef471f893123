package router

// This file holds the backend pools: per model, the Forwarders that serve
// it, balanced by least outstanding requests, health-checked actively and
// ejected passively; and Pools, the set of pools built from the model
// catalogue and swapped atomically when it changes.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"abgate"
	"abgate/experiments"
)

// ErrNoHealthyBackend is returned by Pool.Forward when no backend of the
// model could take the request: every backend is down or ejected, or every
// one tried refused the connection (so none saw the request). Its code is
// EUNAVAILABLE; the router answers it by falling back to the control
// variant. Test for it with errors.Is.
var ErrNoHealthyBackend = &abgate.Error{Code: abgate.EUNAVAILABLE, Message: "no healthy backend for the model"}

// poolHealthPath is the V2 readiness endpoint the active checks request.
const poolHealthPath = "/v2/health/ready"

// PoolOptions tune pools. The zero value is usable: every zero field takes
// the default named on it.
type PoolOptions struct {
	// Timeout bounds one request to a remote backend, from sending to the
	// last byte of the answer; zero means 30 s.
	Timeout time.Duration
	// HealthInterval is the period of the active health checks
	// (GET /v2/health/ready on each remote backend); zero means 2 s, a
	// negative value disables them.
	HealthInterval time.Duration
	// HealthTimeout bounds one health check; zero means 1 s.
	HealthTimeout time.Duration
	// MaxFailures is the number of consecutive failures (connection
	// errors, timeouts, 5xx answers) after which a backend is ejected;
	// zero means 3, a negative value disables passive ejection.
	MaxFailures int
	// EjectFor is how long an ejected backend receives no requests, unless
	// an active check succeeds first; zero means 10 s.
	EjectFor time.Duration
	// Transport carries the requests to remote backends. Nil means one
	// tuned transport (keep-alive, 256 idle connections per host, 1 s dial
	// timeout) that all pools of a Pools share, which exchanges with
	// http:// backends on the caller's goroutine (backendconn.go);
	// Pools.Close closes its idle connections.
	Transport http.RoundTripper
}

func (o PoolOptions) withDefaults() PoolOptions {
	if o.Timeout <= 0 {
		o.Timeout = backendDefaultTimeout
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 2 * time.Second
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = time.Second
	}
	if o.MaxFailures == 0 {
		o.MaxFailures = 3
	}
	if o.EjectFor <= 0 {
		o.EjectFor = 10 * time.Second
	}
	return o
}

// Backend is one member of a pool: a Forwarder with its load and health.
type Backend struct {
	name   string
	fwd    Forwarder
	pinned bool // in process: never health-checked nor ejected

	outstanding  atomic.Int64
	down         atomic.Bool  // the last active check failed
	ejectedUntil atomic.Int64 // unix nanoseconds; 0: not ejected

	mu       sync.Mutex
	failures int // consecutive, under mu

	counters map[string]prometheus.Counter // by outcome, read-only
}

// poolOutcomes are the outcomes of a forward, as counted.
var poolOutcomes = []string{"1xx", "2xx", "3xx", "4xx", "5xx", "conn_error", "timeout", "error", "canceled"}

// BackendState is a snapshot of a backend's health and load.
type BackendState struct {
	Name string `json:"name"`
	// Up is false when the last active health check failed.
	Up bool `json:"up"`
	// EjectedUntil is the end of a passive ejection; zero when the backend
	// is not ejected.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Available is whether the backend takes requests now: up and not
	// ejected.
	Available   bool  `json:"available"`
	Outstanding int64 `json:"outstanding"`
	// Failures counts consecutive failures since the last success.
	Failures int `json:"failures"`
}

// Name returns the backend's name: its base URL, or "local".
func (b *Backend) Name() string { return b.name }

// State returns a snapshot of the backend's health and load.
func (b *Backend) State() BackendState {
	b.mu.Lock()
	failures := b.failures
	b.mu.Unlock()
	s := BackendState{
		Name:        b.name,
		Up:          !b.down.Load(),
		Outstanding: b.outstanding.Load(),
		Failures:    failures,
	}
	if until := b.ejectedUntil.Load(); until > time.Now().UnixNano() {
		s.EjectedUntil = time.Unix(0, until).UTC()
	}
	s.Available = s.Up && s.EjectedUntil.IsZero()
	return s
}

func (b *Backend) available(now int64) bool {
	return !b.down.Load() && b.ejectedUntil.Load() <= now
}

// Pool balances the requests for one model over its backends: each
// request goes to the available backend with the fewest outstanding
// requests, ties broken round-robin. A Pool is safe for concurrent use.
type Pool struct {
	model   string
	version string
	key     string // what the pool was built from, to reuse it on Update

	backends []*Backend
	opts     PoolOptions
	log      *slog.Logger
	metrics  *poolMetrics
	rr       atomic.Uint32

	noBackend prometheus.Counter

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// NewPool returns a pool for model over backends and starts its active
// health checks on the backends that are not LocalBackends (an in-process
// backend is never checked nor ejected: if it is down, so is the router).
// Backends are named by their String method when they have one. log nil
// discards logs; reg nil records no metrics. Call Close to stop the health
// checks. A Pool with no backends answers every request with
// ErrNoHealthyBackend.
func NewPool(model string, backends []Forwarder, opts PoolOptions, log *slog.Logger, reg prometheus.Registerer) (*Pool, error) {
	m := newPoolMetrics()
	p := newPool(model, "", backends, opts, log, m)
	m.pools = func() []*Pool { return []*Pool{p} }
	if reg != nil {
		if err := reg.Register(m); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

func newPool(model, version string, fwds []Forwarder, opts PoolOptions, log *slog.Logger, m *poolMetrics) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		model:   model,
		version: version,
		opts:    opts.withDefaults(),
		log:     log.With("model", model),
		metrics: m,
		done:    make(chan struct{}),
	}
	seen := map[string]int{}
	checked := false
	for i, f := range fwds {
		name := fmt.Sprintf("backend-%d", i)
		if s, ok := f.(fmt.Stringer); ok {
			name = s.String()
		}
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s#%d", name, seen[name])
		}
		_, pinned := f.(*LocalBackend)
		checked = checked || !pinned
		b := &Backend{name: name, fwd: f, pinned: pinned, counters: make(map[string]prometheus.Counter, len(poolOutcomes))}
		for _, o := range poolOutcomes {
			b.counters[o] = m.requests.WithLabelValues(model, name, o)
		}
		p.backends = append(p.backends, b)
	}
	p.noBackend = m.requests.WithLabelValues(model, "", "no_backend")
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	if checked && p.opts.HealthInterval > 0 {
		go p.healthLoop(ctx)
	} else {
		close(p.done)
	}
	return p
}

// Model returns the name of the model the pool serves.
func (p *Pool) Model() string { return p.model }

// Version returns the version the model's registration pins, "" for the
// latest. The router rewrites paths with it.
func (p *Pool) Version() string { return p.version }

// Backends returns the pool's backends in registration order.
func (p *Pool) Backends() []*Backend { return slices.Clone(p.backends) }

// Healthy reports whether at least one backend is available now.
func (p *Pool) Healthy() bool {
	now := time.Now().UnixNano()
	for _, b := range p.backends {
		if b.available(now) {
			return true
		}
	}
	return false
}

// Close stops the health checks and waits for them to end, at most
// HealthTimeout for a check in flight. Requests in flight, and requests
// made after Close, are still forwarded: a pool replaced by Pools.Update
// keeps serving the requests that hold it.
func (p *Pool) Close() error {
	p.closeOnce.Do(p.cancel)
	<-p.done
	return nil
}

// Forward implements Forwarder: it forwards to the least loaded available
// backend. An answer, whatever its status, is returned as is.
//
// Retries: when the chosen backend cannot be connected to (a dial error:
// the request never left this process), Forward tries once more on another
// available backend. It never retries a request that may have reached a
// backend: not after a timeout, a connection reset or any answer, 5xx
// included. Inference is idempotent, so a duplicate would not be wrong,
// but a retry after the request was sent doubles the load on a pool that
// is slow or failing precisely when it can least afford it, and spends a
// request's time budget twice; a request that surely never arrived costs
// nothing to retry.
//
// Errors: ErrNoHealthyBackend (EUNAVAILABLE, wrapped with the model name
// and the last connection error) when no available backend remains or
// every one tried refused the connection; otherwise the EUNAVAILABLE error
// of the backend (timeout, reset), or ctx's error when ctx ends.
func (p *Pool) Forward(ctx context.Context, method, target string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	var tried *Backend
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		b := p.pick(tried)
		if b == nil {
			break
		}
		b.outstanding.Add(1)
		status, h, data, err := b.fwd.Forward(ctx, method, target, header, body)
		b.outstanding.Add(-1)
		p.observe(ctx, b, status, err)
		if err == nil {
			return status, h, data, nil
		}
		if ctx.Err() != nil || !backendNotSent(err) {
			return 0, nil, nil, err
		}
		tried, lastErr = b, err
	}
	p.noBackend.Inc()
	if lastErr != nil {
		return 0, nil, nil, fmt.Errorf("model %q: %w: %w", p.model, ErrNoHealthyBackend, lastErr)
	}
	return 0, nil, nil, fmt.Errorf("model %q: %w", p.model, ErrNoHealthyBackend)
}

// pick returns the available backend other than exclude with the fewest
// outstanding requests, scanning from a rotating start so that ties go
// round-robin; nil when there is none.
func (p *Pool) pick(exclude *Backend) *Backend {
	n := len(p.backends)
	if n == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	start := int(p.rr.Add(1) % uint32(n))
	var best *Backend
	bestLoad := int64(math.MaxInt64)
	for i := 0; i < n; i++ {
		b := p.backends[(start+i)%n]
		if b == exclude || !b.available(now) {
			continue
		}
		if l := b.outstanding.Load(); l < bestLoad {
			best, bestLoad = b, l
		}
	}
	return best
}

// observe counts the outcome of one forward and updates the backend's
// run of failures, ejecting it after MaxFailures in a row.
func (p *Pool) observe(ctx context.Context, b *Backend, status int, err error) {
	var outcome string
	failed := true
	switch {
	case err == nil && status >= 500:
		outcome = "5xx"
	case err == nil:
		outcome = poolStatusClass(status)
		failed = false
	case ctx.Err() != nil:
		outcome = "canceled" // the client left: says nothing about the backend
		failed = false
	case backendNotSent(err):
		outcome = "conn_error"
	case errors.Is(err, context.DeadlineExceeded):
		outcome = "timeout"
	default:
		outcome = "error"
	}
	b.counters[outcome].Inc()
	if outcome == "canceled" || b.pinned {
		return
	}
	b.mu.Lock()
	if !failed {
		b.failures = 0
		b.mu.Unlock()
		return
	}
	b.failures++
	now := time.Now()
	eject := p.opts.MaxFailures > 0 && b.failures >= p.opts.MaxFailures && b.ejectedUntil.Load() <= now.UnixNano()
	if eject {
		b.failures = 0
		b.ejectedUntil.Store(now.Add(p.opts.EjectFor).UnixNano())
	}
	b.mu.Unlock()
	if eject {
		p.metrics.ejections.WithLabelValues(p.model, b.name).Inc()
		p.log.Warn("backend ejected", "backend", b.name, "for", p.opts.EjectFor, "outcome", outcome, "err", err)
	}
}

func poolStatusClass(status int) string {
	switch {
	case status >= 400:
		return "4xx"
	case status >= 300:
		return "3xx"
	case status >= 200:
		return "2xx"
	}
	return "1xx"
}

func (p *Pool) healthLoop(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.opts.HealthInterval)
	defer t.Stop()
	for {
		p.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkAll checks every remote backend at once and waits for the checks.
func (p *Pool) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range p.backends {
		if !b.pinned {
			wg.Go(func() { p.check(ctx, b) })
		}
	}
	wg.Wait()
}

// check requests the backend's readiness: a 2xx answer marks it up and
// ends an ejection; anything else marks it down.
func (p *Pool) check(ctx context.Context, b *Backend) {
	// The check is not cancelled by Close, only bounded by its timeout:
	// cancelling a request whose empty answer is arriving can leave its
	// connection, marked cancelled, in the transport's idle pool, where it
	// would fail the next forwarded request with "context canceled".
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.HealthTimeout)
	status, _, _, err := b.fwd.Forward(cctx, http.MethodGet, poolHealthPath, nil, nil)
	cancel()
	if ctx.Err() != nil {
		return // closing: the result says nothing
	}
	if err == nil && status >= 200 && status < 300 {
		wasDown := b.down.Swap(false)
		wasEjected := b.ejectedUntil.Swap(0) > time.Now().UnixNano()
		b.mu.Lock()
		b.failures = 0
		b.mu.Unlock()
		if wasDown || wasEjected {
			p.log.Info("backend up", "backend", b.name)
		}
		return
	}
	if !b.down.Swap(true) {
		if err == nil {
			err = fmt.Errorf("readiness answered %d", status)
		}
		p.log.Warn("backend down", "backend", b.name, "err", err)
	}
}

// Pools holds one Pool per registered model. Get is lock-free; Update
// replaces the set atomically, so a request holds either the old pool or
// the new one, never neither. A Pools is safe for concurrent use.
type Pools struct {
	local     http.Handler
	opts      PoolOptions
	log       *slog.Logger
	metrics   *poolMetrics
	transport http.RoundTripper
	own       *backendClient // the transport built here, if any

	cur atomic.Pointer[map[string]*Pool]

	mu      sync.Mutex // serialises Update and Close
	closed  bool
	closing sync.WaitGroup // pools replaced by Update, closing
}

// NewPools builds the pools of models: a local model is served by a
// LocalBackend over local (the inference server's handler), a remote model
// by a RemoteBackend per registered URL. local nil (the router alone,
// `abgate router`) leaves local models with empty pools, which answer
// ErrNoHealthyBackend. log nil discards logs; reg nil records no metrics.
// The only error is a failure to register the metrics.
//
// Metrics: abgate_router_backend_up and abgate_router_backend_outstanding
// (gauges by model and backend), abgate_router_backend_requests_total (by
// model, backend and outcome: 1xx..5xx, conn_error, timeout, error,
// canceled, and no_backend with an empty backend) and
// abgate_router_backend_ejections_total (by model and backend).
func NewPools(models []*experiments.Model, local http.Handler, opts PoolOptions, log *slog.Logger, reg prometheus.Registerer) (*Pools, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ps := &Pools{local: local, opts: opts, log: log, transport: opts.Transport}
	if ps.transport == nil {
		ps.own = backendTransport()
		ps.transport = ps.own
	}
	ps.metrics = newPoolMetrics()
	ps.metrics.pools = ps.all
	empty := map[string]*Pool{}
	ps.cur.Store(&empty)
	if reg != nil {
		if err := reg.Register(ps.metrics); err != nil {
			return nil, err
		}
	}
	if err := ps.Update(models); err != nil {
		return nil, err
	}
	return ps, nil
}

// Get returns the pool of model, if the catalogue has it.
func (ps *Pools) Get(model string) (*Pool, bool) {
	p, ok := (*ps.cur.Load())[model]
	return p, ok
}

// Models returns the names of the models with a pool, sorted.
func (ps *Pools) Models() []string {
	m := *ps.cur.Load()
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (ps *Pools) all() []*Pool {
	m := *ps.cur.Load()
	out := make([]*Pool, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

// Update replaces the pools with those of models. A model whose source,
// version and backends did not change keeps its pool, with its health and
// load; the others get new pools, and the pools of removed or changed
// models are closed in the background after the swap (requests that hold
// them finish normally). A backend URL that does not parse is skipped and
// logged. After Close, Update is EUNAVAILABLE.
func (ps *Pools) Update(models []*experiments.Model) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return abgate.Errorf(abgate.EUNAVAILABLE, "backend pools are closed")
	}
	old := *ps.cur.Load()
	next := make(map[string]*Pool, len(models))
	for _, m := range models {
		if m == nil {
			continue
		} else if _, dup := next[m.Name]; dup {
			ps.log.Warn("model listed twice; keeping the first", "model", m.Name)
			continue
		}
		key := poolKey(m)
		if p, ok := old[m.Name]; ok && p.key == key {
			next[m.Name] = p
			continue
		}
		p := newPool(m.Name, m.Version, ps.forwarders(m), ps.opts, ps.log, ps.metrics)
		p.key = key
		next[m.Name] = p
	}
	ps.cur.Store(&next)
	for name, p := range old {
		np := next[name]
		if np == p {
			continue
		}
		ps.closing.Go(func() { p.Close() }) // do not wait for a check in flight
		for _, b := range p.backends {
			if np == nil || !slices.ContainsFunc(np.backends, func(nb *Backend) bool { return nb.name == b.name }) {
				ps.metrics.forget(name, b.name)
			}
		}
		if np == nil {
			ps.metrics.forget(name, "")
		}
	}
	return nil
}

func (ps *Pools) forwarders(m *experiments.Model) []Forwarder {
	if m.Source == experiments.SourceLocal {
		if ps.local == nil {
			ps.log.Warn("local model without a local inference server; it has no backend", "model", m.Name)
			return nil
		}
		return []Forwarder{NewLocalBackend(ps.local)}
	}
	fwds := make([]Forwarder, 0, len(m.Backends))
	for _, u := range m.Backends {
		b, err := NewRemoteBackend(u, ps.transport, ps.opts.Timeout)
		if err != nil {
			ps.log.Warn("skipping a bad backend URL", "model", m.Name, "backend", u, "err", err)
			continue
		}
		fwds = append(fwds, b)
	}
	return fwds
}

// poolKey sums up what a pool is built from.
func poolKey(m *experiments.Model) string {
	return m.Source + "\x00" + m.Version + "\x00" + strings.Join(m.Backends, "\x00")
}

// Close closes every pool, stopping the health checks (waiting at most
// HealthTimeout for checks in flight), and the idle connections of the
// transport NewPools built. Pools already handed out
// still forward. Close is idempotent.
func (ps *Pools) Close() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil
	}
	ps.closed = true
	for _, p := range *ps.cur.Load() {
		ps.closing.Go(func() { p.Close() })
	}
	ps.closing.Wait()
	if ps.own != nil {
		ps.own.CloseIdleConnections()
	}
	return nil
}

// poolMetrics are the metrics of pools. Counters live in vectors; the
// gauges are read from the pools at scrape time, so replaced pools leave
// no stale series behind.
type poolMetrics struct {
	requests    *prometheus.CounterVec
	ejections   *prometheus.CounterVec
	upDesc      *prometheus.Desc
	outstanding *prometheus.Desc
	pools       func() []*Pool
}

// newPoolMetrics returns unregistered metrics; set pools before
// registering them.
func newPoolMetrics() *poolMetrics {
	return &poolMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abgate_router_backend_requests_total",
			Help: "Requests forwarded to model backends, by outcome (status class, conn_error, timeout, error, canceled, no_backend).",
		}, []string{"model", "backend", "outcome"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abgate_router_backend_ejections_total",
			Help: "Backends ejected after consecutive failures.",
		}, []string{"model", "backend"}),
		upDesc: prometheus.NewDesc("abgate_router_backend_up",
			"Whether a model backend takes requests (1) or is down or ejected (0).", []string{"model", "backend"}, nil),
		outstanding: prometheus.NewDesc("abgate_router_backend_outstanding",
			"Requests in flight to a model backend.", []string{"model", "backend"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *poolMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.ejections.Describe(ch)
	ch <- m.upDesc
	ch <- m.outstanding
}

// Collect implements prometheus.Collector.
func (m *poolMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.ejections.Collect(ch)
	now := time.Now().UnixNano()
	for _, p := range m.pools() {
		for _, b := range p.backends {
			up := 0.0
			if b.available(now) {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(m.upDesc, prometheus.GaugeValue, up, p.model, b.name)
			ch <- prometheus.MustNewConstMetric(m.outstanding, prometheus.GaugeValue, float64(b.outstanding.Load()), p.model, b.name)
		}
	}
}

// forget drops the counters of a backend that left the catalogue.
func (m *poolMetrics) forget(model, backend string) {
	m.requests.DeletePartialMatch(prometheus.Labels{"model": model, "backend": backend})
	m.ejections.DeletePartialMatch(prometheus.Labels{"model": model, "backend": backend})
}

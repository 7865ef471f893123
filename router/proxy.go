package router

// This file holds the Proxy: the Gin handlers of the routed prediction
// endpoints (POST /v2/models/{route}/infer, /predict, /predict/batch). Each
// request is assigned a variant (Snapshot.Decide), forwarded to the pool of
// the variant's model with the path rewritten to that model, answered with
// the experiment headers, and recorded as an exposure; shadow variants get
// asynchronous copies whose answers are recorded and never returned.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"abgate"
	"abgate/experiments"
)

// Header and cookie names of the routed API.
const (
	// HeaderExperiment, HeaderVariant and HeaderModel say which experiment,
	// variant and model answered. HeaderExperiment is absent when no
	// experiment applied.
	HeaderExperiment = "X-Experiment"
	HeaderVariant    = "X-Variant"
	HeaderModel      = "X-Model"
	// HeaderForce forces variants for QA: "exp=variant[,exp2=variant2]".
	// It is honoured only with an editor (or admin) bearer token.
	HeaderForce = "X-Abgate-Force"
	// HeaderFallback is "true" on answers served by the control variant
	// because the assigned variant had no healthy backend.
	HeaderFallback = "X-Abgate-Fallback"
	// DefaultUnitHeader is the default header carrying the unit id.
	DefaultUnitHeader = "X-User-ID"
	// UnitCookie is the cookie holding the unit id of clients that send no
	// unit header; the proxy sets it when absent.
	UnitCookie = "abgate_uid"
)

// Authenticator returns the actor of a bearer token; *experiments.Store is
// one. An unknown token is an error.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (abgate.Actor, error)
}

// PoolSource gives the backend pool of a model; *Pools is one.
type PoolSource interface {
	Get(model string) (*Pool, bool)
}

// ExposureRecorder takes exposures without blocking; *ExposureLog is one.
type ExposureRecorder interface {
	Record(e Exposure) bool
}

// Compile-time checks.
var (
	_ Authenticator    = (*experiments.Store)(nil)
	_ PoolSource       = (*Pools)(nil)
	_ ExposureRecorder = (*ExposureLog)(nil)
)

// ProxyOptions configure a Proxy. Zero fields take the defaults named on
// them.
type ProxyOptions struct {
	// UnitHeader is the request header carrying the unit id; "" means
	// X-User-ID.
	UnitHeader string
	// DefaultRoute is the route of POST /predict and /predict/batch
	// without ?model=; "" means such requests are EINVALID.
	DefaultRoute string
	// MaxBodyBytes bounds a request body (413 past it); 0 means 64 MiB.
	MaxBodyBytes int64
	// CookieMaxAge is the lifetime of the abgate_uid cookie; 0 means
	// 400 days (the longest browsers keep a cookie).
	CookieMaxAge time.Duration
	// SecureCookie marks the abgate_uid cookie Secure (HTTPS only).
	SecureCookie bool
	// ShadowConcurrency bounds the shadow copies in flight; copies past it
	// are dropped and counted. 0 means 64.
	ShadowConcurrency int
	// ShadowTimeout bounds one shadow copy; 0 means 30 s.
	ShadowTimeout time.Duration
	// Capture, when not nil, is offered every prediction of an experiment
	// answered with 2xx: the model and variant that served it, the kind of
	// endpoint ("v2", "predict" or "predict_batch"), the request's
	// Content-Type and body (valid during the call only) and the predicted
	// label and confidence (nil when the answer had none). It must not
	// block (the drift capture samples and queues).
	Capture func(model, variant, kind, contentType string, body []byte, label *string, confidence *float32)
}

func (o ProxyOptions) withDefaults() ProxyOptions {
	if o.UnitHeader == "" {
		o.UnitHeader = DefaultUnitHeader
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 20
	}
	if o.CookieMaxAge <= 0 {
		o.CookieMaxAge = 400 * 24 * time.Hour
	}
	if o.ShadowConcurrency <= 0 {
		o.ShadowConcurrency = 64
	}
	if o.ShadowTimeout <= 0 {
		o.ShadowTimeout = 30 * time.Second
	}
	return o
}

// Proxy routes prediction requests by experiment. It is safe for
// concurrent use; call Close after the HTTP server has drained to wait for
// the shadow copies in flight.
type Proxy struct {
	src       SnapshotSource
	pools     PoolSource
	exposures ExposureRecorder
	auth      Authenticator
	opts      ProxyOptions
	log       *slog.Logger
	metrics   *proxyMetrics

	shadowSlots chan struct{}
	shadows     sync.WaitGroup
	recent      recentExposures
}

// NewProxy returns a Proxy deciding on src's snapshots, forwarding to
// pools and recording to exposures. auth nil never honours X-Abgate-Force;
// exposures nil records nothing; log nil discards; reg nil registers no
// metrics. The error is a failure to register the metrics.
//
// Metrics: abgate_router_requests_total (by route, experiment, variant and
// status class: 2xx..5xx, error), abgate_router_request_duration_seconds
// (histogram by route, experiment, variant), abgate_router_fallbacks_total
// (by route, experiment and the variant that failed),
// abgate_router_shadow_requests_total (by route, experiment, variant and
// outcome: sent, dropped, error) and abgate_router_shadow_agreement_total
// (by route, experiment, variant and agree: true, false).
func NewProxy(src SnapshotSource, pools PoolSource, exposures ExposureRecorder, auth Authenticator, opts ProxyOptions, log *slog.Logger, reg prometheus.Registerer) (*Proxy, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	p := &Proxy{
		src: src, pools: pools, exposures: exposures, auth: auth, opts: opts, log: log,
		metrics:     newProxyMetrics(),
		shadowSlots: make(chan struct{}, opts.ShadowConcurrency),
	}
	if reg != nil {
		for _, c := range p.metrics.collectors() {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// Mount adds the routed endpoints to r: POST /v2/models/:model/infer,
// POST /predict and POST /predict/batch.
func (p *Proxy) Mount(r gin.IRouter) {
	r.POST("/v2/models/:model/infer", p.handle(proxyV2))
	r.POST("/predict", p.handle(proxyPredict))
	r.POST("/predict/batch", p.handle(proxyPredictBatch))
}

// Close waits for the shadow copies in flight, at most until ctx ends
// (then its error comes back).
func (p *Proxy) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.shadows.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// proxyKind is the kind of a routed endpoint.
type proxyKind int

// String names the kind as ProxyOptions.Capture does.
func (k proxyKind) String() string {
	switch k {
	case proxyPredict:
		return "predict"
	case proxyPredictBatch:
		return "predict_batch"
	}
	return "v2"
}

const (
	proxyV2 proxyKind = iota
	proxyPredict
	proxyPredictBatch
)

// target returns the path and query of a request of kind for model
// (version "" = the latest), keeping the other query parameters q.
func (k proxyKind) target(model, version string, q url.Values) string {
	switch k {
	case proxyV2:
		t := "/v2/models/" + url.PathEscape(model)
		if version != "" {
			t += "/versions/" + url.PathEscape(version)
		}
		t += "/infer"
		if len(q) > 0 {
			t += "?" + q.Encode()
		}
		return t
	default:
		path := "/predict"
		if k == proxyPredictBatch {
			path = "/predict/batch"
		}
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = v
		}
		q2.Set("model", model)
		return path + "?" + q2.Encode()
	}
}

// proxyDropHeaders are request headers not forwarded to backends.
var proxyDropHeaders = []string{"Authorization", "Cookie", HeaderForce, "Content-Length"}

// proxyAnswerSkip are backend answer headers not copied to the client.
// CORS headers are the router's own (cors.go): a backend's would double
// them.
var proxyAnswerSkip = map[string]bool{
	"Content-Length": true, "Connection": true, "Keep-Alive": true, "Transfer-Encoding": true,
	"X-Request-Id": true, "Set-Cookie": true,
	"Access-Control-Allow-Origin": true, "Access-Control-Allow-Credentials": true,
	"Access-Control-Allow-Methods": true, "Access-Control-Allow-Headers": true,
	"Access-Control-Expose-Headers": true, "Access-Control-Max-Age": true, "Vary": true,
}

// handle returns the handler of a routed endpoint of kind.
func (p *Proxy) handle(kind proxyKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		ctx := c.Request.Context()
		req := c.Request

		var query url.Values // nil without a query: reads and Del work on it
		if req.URL.RawQuery != "" {
			query = req.URL.Query()
		}
		var route string
		if kind == proxyV2 {
			route = c.Param("model")
		} else {
			route = query.Get("model")
			query.Del("model")
			if route == "" {
				route = p.opts.DefaultRoute
			}
			if route == "" {
				experiments.WriteError(c, abgate.FieldErrorf("model", "name the model route with ?model="))
				return
			}
		}

		body, err := readProxyBody(c, p.opts.MaxBodyBytes)
		if err != nil {
			experiments.WriteError(c, err)
			return
		}

		reqID := abgate.RequestIDFromContext(ctx)
		if reqID == "" {
			reqID = req.Header.Get("X-Request-ID")
			if reqID == "" || len(reqID) > 128 {
				reqID = randomID()
			}
			c.Header("X-Request-ID", reqID)
		}

		unit := req.Header.Get(p.opts.UnitHeader)
		if unit == "" {
			if ck, err := req.Cookie(UnitCookie); err == nil && ck.Value != "" {
				unit = ck.Value
			} else {
				unit = randomID()
				http.SetCookie(c.Writer, &http.Cookie{
					Name: UnitCookie, Value: unit, Path: "/",
					MaxAge:   int(p.opts.CookieMaxAge / time.Second),
					HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: p.opts.SecureCookie,
				})
			}
		}

		u := Unit{ID: unit, Headers: req.Header}
		if proxyJSONBody(req.Header) {
			u.Body = func() map[string]any {
				var m map[string]any
				if json.Unmarshal(body, &m) != nil {
					return nil
				}
				return m
			}
		}
		if f := req.Header.Get(HeaderForce); f != "" {
			u.Forced = parseForce(f)
			u.Editor = len(u.Forced) > 0 && p.isEditor(ctx, req.Header.Get("Authorization"))
		}

		snap := p.src.Snapshot()
		d := snap.Decide(route, u)
		model := route
		if d.InExperiment {
			model = d.Model
		}
		served := struct {
			variant, model string
			fallback       bool
		}{d.VariantKey, model, false}

		header := req.Header.Clone()
		for _, h := range proxyDropHeaders {
			header.Del(h)
		}
		header.Set("X-Request-ID", reqID)

		status, rh, rb, ferr := p.forward(ctx, kind, model, query, req.Method, header, body)
		if ferr != nil && d.InExperiment && !d.Control && errors.Is(ferr, ErrNoHealthyBackend) {
			if ctl := controlOf(snap, d.ExperimentKey); ctl != nil {
				p.metrics.fallbacks.WithLabelValues(route, d.ExperimentKey, d.VariantKey).Inc()
				p.log.Warn("variant has no healthy backend; falling back to control",
					"request_id", reqID, "client_ip", c.ClientIP(), "experiment", d.ExperimentKey, "variant", d.VariantKey, "control", ctl.Key, "err", ferr)
				served.variant, served.model, served.fallback = ctl.Key, ctl.Model, true
				status, rh, rb, ferr = p.forward(ctx, kind, ctl.Model, query, req.Method, header, body)
			}
		}
		latency := time.Since(start)

		expKey := ""
		if d.InExperiment {
			expKey = d.ExperimentKey
		}
		mroute := route
		if !d.InExperiment {
			if _, ok := p.pools.Get(route); !ok {
				mroute = "unknown" // keeps the label set bounded
			}
		}
		class := "error"
		if ferr == nil {
			class = poolStatusClass(status)
		}
		p.metrics.requests.WithLabelValues(mroute, expKey, served.variant, class).Inc()
		p.metrics.duration.WithLabelValues(mroute, expKey, served.variant).Observe(latency.Seconds())

		var label *string
		var conf *float32
		if ferr == nil && status < 300 {
			label, conf = extractPrediction(kind, rh, rb)
		}
		if d.InExperiment && p.exposures != nil {
			st := status
			if ferr != nil {
				st = abgate.HTTPStatus(ferr)
			}
			p.exposures.Record(Exposure{
				ExperimentID: d.ExperimentID, VariantID: d.VariantID, UnitID: unit, RequestID: reqID,
				At: start, LatencyUS: latencyUS(latency), Status: st, Fallback: served.fallback,
				PredictedLabel: label, Confidence: conf,
			})
			p.recent.add(reqID, d.ExperimentID, unit)
		}
		if p.opts.Capture != nil && d.InExperiment && ferr == nil && status < 300 {
			p.opts.Capture(served.model, served.variant, kind.String(), req.Header.Get("Content-Type"), body, label, conf)
		}
		p.startShadows(ctx, route, d.Shadows, unit, reqID, kind, query, req.Method, header, body, label)

		if d.InExperiment {
			c.Header(HeaderExperiment, d.ExperimentKey)
			c.Header(HeaderVariant, served.variant)
		}
		c.Header(HeaderModel, served.model)
		if served.fallback {
			c.Header(HeaderFallback, "true")
		}
		if ferr != nil {
			if abgate.ErrorCode(ferr) == abgate.ENOTFOUND {
				experiments.WriteError(c, ferr)
				return
			}
			p.log.Warn("routed request failed", "request_id", reqID, "client_ip", c.ClientIP(), "route", route, "model", served.model, "err", ferr)
			experiments.WriteError(c, abgate.Errorf(abgate.EUNAVAILABLE, "model %q is unavailable: %s", served.model, abgate.ErrorMessage(ferr)))
			return
		}
		wh := c.Writer.Header()
		for k, vs := range rh {
			if proxyAnswerSkip[k] {
				continue
			}
			// rh is this request's own: its values can be handed over.
			k = textproto.CanonicalMIMEHeaderKey(k)
			if cur, ok := wh[k]; ok {
				wh[k] = append(cur, vs...)
			} else {
				wh[k] = vs
			}
		}
		wh["Content-Length"] = []string{strconv.Itoa(len(rb))}
		c.Writer.WriteHeader(status)
		_, _ = c.Writer.Write(rb)
	}
}

// forward sends a request of kind to the pool of model. A model without a
// pool is ENOTFOUND.
func (p *Proxy) forward(ctx context.Context, kind proxyKind, model string, q url.Values, method string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	pool, ok := p.pools.Get(model)
	if !ok {
		return 0, nil, nil, abgate.Errorf(abgate.ENOTFOUND, "no model %q: register it, or start an experiment on the route", model)
	}
	return pool.Forward(ctx, method, kind.target(model, pool.Version(), q), header, body)
}

// isEditor reports whether the Authorization header carries a bearer token
// with at least the editor role.
func (p *Proxy) isEditor(ctx context.Context, authz string) bool {
	if p.auth == nil || authz == "" {
		return false
	}
	scheme, token, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	actor, err := p.auth.Authenticate(ctx, strings.TrimSpace(token))
	return err == nil && experiments.RoleAllows(actor.Role, experiments.RoleEditor)
}

// startShadows sends the asynchronous copies of a request to the shadow
// variants that mirror unit. A copy that finds no free slot is dropped and
// counted.
func (p *Proxy) startShadows(ctx context.Context, route string, shadows []*SnapshotVariant, unit, reqID string, kind proxyKind, q url.Values, method string, header http.Header, body []byte, primary *string) {
	for _, sv := range shadows {
		if !sv.Mirror(unit) {
			continue
		}
		select {
		case p.shadowSlots <- struct{}{}:
		default:
			p.metrics.shadows.WithLabelValues(route, sv.ExperimentKey, sv.Key, "dropped").Inc()
			continue
		}
		p.metrics.shadows.WithLabelValues(route, sv.ExperimentKey, sv.Key, "sent").Inc()
		p.shadows.Add(1)
		sctx := context.WithoutCancel(ctx)
		go func() {
			defer p.shadows.Done()
			defer func() { <-p.shadowSlots }()
			p.shadow(sctx, route, sv, unit, reqID, kind, q, method, header, body, primary)
		}()
	}
}

// shadow sends one shadow copy and records its answer.
func (p *Proxy) shadow(ctx context.Context, route string, sv *SnapshotVariant, unit, reqID string, kind proxyKind, q url.Values, method string, header http.Header, body []byte, primary *string) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ShadowTimeout)
	defer cancel()
	start := time.Now()
	status, rh, rb, err := p.forward(ctx, kind, sv.Model, q, method, header, body)
	latency := time.Since(start)
	var label *string
	var conf *float32
	if err != nil {
		status = abgate.HTTPStatus(err)
		p.metrics.shadows.WithLabelValues(route, sv.ExperimentKey, sv.Key, "error").Inc()
		p.log.Debug("shadow copy failed", "request_id", reqID, "experiment", sv.ExperimentKey, "variant", sv.Key, "err", err)
	} else if status < 300 {
		label, conf = extractPrediction(kind, rh, rb)
	}
	if label != nil && primary != nil {
		p.metrics.agreement.WithLabelValues(route, sv.ExperimentKey, sv.Key, strconv.FormatBool(*label == *primary)).Inc()
	}
	if p.exposures != nil {
		p.exposures.Record(Exposure{
			ExperimentID: sv.ExperimentID, VariantID: sv.ID, UnitID: unit, RequestID: reqID,
			At: start, LatencyUS: latencyUS(latency), Status: status, Shadow: true,
			PredictedLabel: label, Confidence: conf,
		})
	}
}

// controlOf returns the control variant of the running experiment key in
// snap, nil when there is none.
func controlOf(snap *Snapshot, key string) *SnapshotVariant {
	se := snap.Experiment(key)
	if se == nil {
		return nil
	}
	for i := range se.Variants {
		if se.Variants[i].Control && !se.Variants[i].Shadow {
			return &se.Variants[i]
		}
	}
	return nil
}

// parseForce parses X-Abgate-Force: "exp=variant", several separated by
// commas. Malformed parts are ignored.
func parseForce(s string) map[string]string {
	var m map[string]string
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m
}

// readProxyBody reads the request body, at most limit bytes (413 past it).
func readProxyBody(c *gin.Context, limit int64) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, abgate.Errorf(abgate.EINVALID, "reading the request body: %v", err)
	}
	return b, nil
}

// proxyJSONBody reports whether a request body is plain JSON (not the
// binary tensor extension, not multipart).
func proxyJSONBody(h http.Header) bool {
	if h.Get("Inference-Header-Content-Length") != "" {
		return false
	}
	ct := h.Get("Content-Type")
	return ct == "" || strings.HasPrefix(ct, "application/json")
}

// randomID returns 32 random hex digits.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func latencyUS(d time.Duration) int32 {
	us := d.Microseconds()
	if us > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(us)
}

// proxyMetrics are the Proxy's metrics.
type proxyMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	fallbacks *prometheus.CounterVec
	shadows   *prometheus.CounterVec
	agreement *prometheus.CounterVec
}

func newProxyMetrics() *proxyMetrics {
	return &proxyMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abgate_router_requests_total",
			Help: "Routed prediction requests by route, experiment, variant served and status class.",
		}, []string{"route", "experiment", "variant", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "abgate_router_request_duration_seconds",
			Help:    "Time to answer a routed prediction request.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 18),
		}, []string{"route", "experiment", "variant"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abgate_router_fallbacks_total",
			Help: "Requests served by the control variant because the assigned variant had no healthy backend.",
		}, []string{"route", "experiment", "variant"}),
		shadows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abgate_router_shadow_requests_total",
			Help: "Shadow copies by outcome: sent, dropped (no free slot), error (no answer).",
		}, []string{"route", "experiment", "variant", "outcome"}),
		agreement: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abgate_router_shadow_agreement_total",
			Help: "Shadow answers whose predicted label agrees (or not) with the primary answer's.",
		}, []string{"route", "experiment", "variant", "agree"}),
	}
}

func (m *proxyMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.fallbacks, m.shadows, m.agreement}
}

package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"abgate/experiments"
	"abgate/migrations/dbtest"
)

// proxyModels is the fake inference server of the proxy tests: every model
// answers V2 requests with its own name and a fixed prediction (model
// names ending in "2" predict label 1 with 0.8, the others label 0 with
// 0.9), and /predict with the image API's answer. It counts calls per
// model.
type proxyModels struct {
	mu    sync.Mutex
	calls map[string]int
}

func (m *proxyModels) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	model := r.URL.Query().Get("model")
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v2/models/"); ok {
		model, _, _ = strings.Cut(rest, "/")
	}
	m.mu.Lock()
	if m.calls == nil {
		m.calls = map[string]int{}
	}
	m.calls[model]++
	m.mu.Unlock()
	probs, label := "[0.9,0.1]", 0
	if strings.HasSuffix(model, "2") {
		probs, label = "[0.2,0.8]", 1
	}
	w.Header().Set("Content-Type", "application/json")
	if strings.HasPrefix(r.URL.Path, "/predict") {
		fmt.Fprintf(w, `{"predicted_class":%d,"label":"class_%d","confidence":0.7,"model":%q}`, label, label, model)
		return
	}
	fmt.Fprintf(w, `{"model_name":%q,"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":%s}]}`, model, probs)
}

func (m *proxyModels) count(model string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[model]
}

// proxyFixture is a proxy and feedback API on a real database with the
// demo experiment (route classifier: v1 = classifier-v1, v2 =
// classifier-v2) and the local model "plain".
type proxyFixture struct {
	db      *gorm.DB
	store   *experiments.Store
	models  *proxyModels
	watcher *Watcher
	pools   *Pools
	xlog    *ExposureLog
	proxy   *Proxy
	reg     *prometheus.Registry
	srv     *httptest.Server
}

func newProxyFixture(t *testing.T, db *gorm.DB, setup func(s *experiments.Store)) *proxyFixture {
	t.Helper()
	gin.SetMode(gin.TestMode)
	ctx := t.Context()
	f := &proxyFixture{db: db, store: experiments.NewStore(db, nil), models: &proxyModels{}, reg: prometheus.NewRegistry()}
	if err := f.store.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.store.EnsureLocalModel(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(f.store)
	}
	var err error
	if f.watcher, err = NewWatcher(ctx, db, WatcherOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	ms, err := f.store.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.pools, err = NewPools(ms, f.models, PoolOptions{HealthInterval: -1}, nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.pools.Close() })
	es, err := NewExposureStore(db)
	if err != nil {
		t.Fatal(err)
	}
	f.xlog = NewExposureLog(es, ExposureLogOptions{FlushInterval: 10 * time.Millisecond}, nil, nil)
	t.Cleanup(func() { _ = f.xlog.Close(t.Context()) })
	if f.proxy, err = NewProxy(f.watcher, f.pools, f.xlog, f.store, ProxyOptions{DefaultRoute: "plain"}, nil, f.reg); err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	f.proxy.Mount(r)
	NewFeedbackAPI(db, f.proxy, nil).Mount(r)
	f.srv = httptest.NewServer(r)
	t.Cleanup(f.srv.Close)
	return f
}

// flush waits for the shadow copies and writes every exposure.
func (f *proxyFixture) flush(t *testing.T) {
	t.Helper()
	if err := f.proxy.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.xlog.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

const proxyV2Body = `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[35,52000,14,3]}]}`

// post sends a routed request and returns the answer and its body.
func (f *proxyFixture) post(t *testing.T, path string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func modelName(t *testing.T, body string) string {
	t.Helper()
	var v struct {
		ModelName string `json:"model_name"`
		Model     string `json:"model"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return v.ModelName + v.Model
}

func TestProxyRoutesLikeExplain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newProxyFixture(t, db, nil)
		demo, err := f.store.Experiment(t.Context(), experiments.DemoExperiment)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		const n = 40
		for i := range n {
			unit := fmt.Sprintf("user-%d", i)
			x, err := Explain(demo, unit)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := f.post(t, "/v2/models/classifier/infer", map[string]string{"X-User-ID": unit, "X-Request-ID": "req-" + unit}, proxyV2Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d %s", unit, resp.StatusCode, body)
			}
			got := [5]string{resp.Header.Get(HeaderExperiment), resp.Header.Get(HeaderVariant), resp.Header.Get(HeaderModel), modelName(t, body), resp.Header.Get("X-Request-ID")}
			want := [5]string{"demo", x.Variant, x.Model, x.Model, "req-" + unit}
			if got != want {
				t.Errorf("%s: experiment, variant, model, answering model, request id = %q, want %q", unit, got, want)
			}
			if c := resp.Header.Get("Set-Cookie"); c != "" {
				t.Errorf("%s: Set-Cookie %q with a unit header", unit, c)
			}
			seen[x.Variant]++
		}
		if seen["v1"] == 0 || seen["v2"] == 0 {
			t.Errorf("variants seen %v, want both", seen)
		}
		f.flush(t)

		var rows []struct {
			UnitID         string
			RequestID      string
			Status         int
			Fallback       bool
			Shadow         bool
			PredictedLabel *string
			Confidence     *float64
		}
		if err := db.Raw("SELECT unit_id, request_id, status, fallback, shadow, predicted_label, confidence FROM exposures ORDER BY at").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != n {
			t.Fatalf("%d exposures, want %d", len(rows), n)
		}
		for _, r := range rows {
			x, _ := Explain(demo, r.UnitID)
			wantLabel, wantConf := "0", 0.9
			if x.Variant == "v2" {
				wantLabel, wantConf = "1", 0.8
			}
			if r.RequestID != "req-"+r.UnitID || r.Status != 200 || r.Fallback || r.Shadow ||
				r.PredictedLabel == nil || *r.PredictedLabel != wantLabel || r.Confidence == nil || abs(*r.Confidence-wantConf) > 1e-6 {
				t.Errorf("exposure %+v, want request req-%s, status 200, label %s, confidence %v", r, r.UnitID, wantLabel, wantConf)
			}
		}
		mfs, err := f.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := 0
		for _, mf := range mfs {
			if mf.GetName() == "abgate_router_requests_total" {
				series = len(mf.GetMetric())
			}
		}
		if series != 2 {
			t.Errorf("%d request series, want 2 (v1, v2)", series)
		}
	})
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestProxyDefaultModel(t *testing.T) {
	f := newProxyFixture(t, dbtest.SQLite(t), nil)
	t.Run("v2", func(t *testing.T) {
		resp, body := f.post(t, "/v2/models/plain/infer", nil, proxyV2Body)
		if resp.StatusCode != 200 || modelName(t, body) != "plain" || resp.Header.Get(HeaderModel) != "plain" {
			t.Fatalf("status %d, X-Model %q, body %s; want 200 from plain", resp.StatusCode, resp.Header.Get(HeaderModel), body)
		}
		if _, ok := resp.Header[HeaderExperiment]; ok {
			t.Errorf("X-Experiment %q without an experiment", resp.Header.Get(HeaderExperiment))
		}
		if resp.Header.Get("X-Request-ID") == "" {
			t.Error("no X-Request-ID")
		}
		var uid *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == UnitCookie {
				uid = c
			}
		}
		if uid == nil || uid.Value == "" || !uid.HttpOnly || uid.SameSite != http.SameSiteLaxMode || uid.MaxAge < 86400*365 {
			t.Fatalf("unit cookie %+v, want a long-lived HttpOnly SameSite=Lax abgate_uid", uid)
		}
		resp, _ = f.post(t, "/v2/models/plain/infer", map[string]string{"Cookie": UnitCookie + "=" + uid.Value}, proxyV2Body)
		if c := resp.Header.Get("Set-Cookie"); c != "" {
			t.Errorf("Set-Cookie %q when the cookie was sent", c)
		}
	})
	t.Run("predict default route", func(t *testing.T) {
		resp, body := f.post(t, "/predict", nil, `{"image":"x"}`)
		if resp.StatusCode != 200 || modelName(t, body) != "plain" {
			t.Fatalf("status %d body %s; want 200 from plain", resp.StatusCode, body)
		}
	})
	t.Run("predict batch routed", func(t *testing.T) {
		resp, body := f.post(t, "/predict/batch?model=classifier", map[string]string{"X-User-ID": "user-3"}, `{"images":["x"]}`)
		if resp.StatusCode != 200 || resp.Header.Get(HeaderExperiment) != "demo" || modelName(t, body) != resp.Header.Get(HeaderModel) {
			t.Fatalf("status %d, headers %v, body %s", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		resp, body := f.post(t, "/v2/models/nope/infer", nil, proxyV2Body)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
			t.Fatalf("status %d body %s; want 404 not_found", resp.StatusCode, body)
		}
	})
}

func TestProxyForcedVariant(t *testing.T) {
	f := newProxyFixture(t, dbtest.SQLite(t), nil)
	demo, err := f.store.Experiment(t.Context(), experiments.DemoExperiment)
	if err != nil {
		t.Fatal(err)
	}
	unit := ""
	for i := 0; unit == ""; i++ {
		if x, _ := Explain(demo, fmt.Sprintf("u%d", i)); x.Variant == "v1" {
			unit = x.Unit
		}
	}
	token := func(role string) string {
		_, tok, err := f.store.CreateKey(t.Context(), experiments.KeyRequest{Name: "k-" + role, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	editor, viewer := token(experiments.RoleEditor), token(experiments.RoleViewer)
	for _, tc := range []struct {
		name, authz, want string
	}{
		{"editor", editor, "v2"},
		{"viewer", viewer, "v1"},
		{"no token", "", "v1"},
		{"bad token", "Bearer nope", "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"X-User-ID": unit, HeaderForce: "demo=v2"}
			if tc.authz != "" {
				h["Authorization"] = tc.authz
			}
			resp, body := f.post(t, "/v2/models/classifier/infer", h, proxyV2Body)
			if got := resp.Header.Get(HeaderVariant); resp.StatusCode != 200 || got != tc.want {
				t.Errorf("status %d, X-Variant %q, want 200 and %q (%s)", resp.StatusCode, got, tc.want, body)
			}
		})
	}
}

func TestProxyFallback(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close()
		f := newProxyFixture(t, db, func(s *experiments.Store) {
			if _, err := s.RegisterModel(t.Context(), experiments.ModelRegistration{Name: "dead", Backends: []string{dead}}); err != nil {
				t.Fatal(err)
			}
			snapCreate(t, s, experiments.Definition{
				Key: "fb", Route: "fbroute",
				Variants: []experiments.Variant{
					{Key: "c", Model: "classifier-v1", Weight: 1, Control: true},
					{Key: "t", Model: "dead", Weight: 1},
				},
				Metrics: []experiments.Metric{{Key: "conversion", Type: experiments.MetricBinomial}},
			}, experiments.ActionStart)
		})
		fb, err := f.store.Experiment(t.Context(), "fb")
		if err != nil {
			t.Fatal(err)
		}
		_, vids := snapRowIDs(t, db, "fb")
		treated := 0
		for i := range 20 {
			unit := fmt.Sprintf("fb-%d", i)
			x, _ := Explain(fb, unit)
			resp, body := f.post(t, "/v2/models/fbroute/infer", map[string]string{"X-User-ID": unit}, proxyV2Body)
			if resp.StatusCode != 200 || modelName(t, body) != "classifier-v1" {
				t.Fatalf("%s (%s): status %d body %s; want the control's answer", unit, x.Variant, resp.StatusCode, body)
			}
			if x.Variant == "t" {
				treated++
				if resp.Header.Get(HeaderFallback) != "true" || resp.Header.Get(HeaderVariant) != "c" {
					t.Errorf("%s: headers %v, want fallback to c", unit, resp.Header)
				}
			} else if resp.Header.Get(HeaderFallback) != "" {
				t.Errorf("%s: fallback on the control", unit)
			}
		}
		if treated == 0 {
			t.Fatal("no unit in the treatment")
		}
		f.flush(t)
		var got int64
		if err := db.Raw("SELECT count(*) FROM exposures WHERE fallback = ? AND variant_id = ?", true, vids["t"]).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got != int64(treated) {
			t.Errorf("%d fallback exposures of t, want %d", got, treated)
		}
		if got := counterValue(t, f.proxy.metrics.fallbacks.WithLabelValues("fbroute", "fb", "t")); got != float64(treated) {
			t.Errorf("fallback metric %v, want %d", got, treated)
		}
	})
}

func TestProxyShadow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newProxyFixture(t, db, func(s *experiments.Store) {
			snapCreate(t, s, experiments.Definition{
				Key: "sh", Route: "shroute",
				Variants: []experiments.Variant{
					{Key: "c", Model: "classifier-v1", Weight: 1, Control: true},
					{Key: "t", Model: "plain", Weight: 1},
					{Key: "s", Model: "classifier-v2", Shadow: true, ShadowPercent: 100},
				},
				Metrics: []experiments.Metric{{Key: "conversion", Type: experiments.MetricBinomial}},
			}, experiments.ActionStart)
		})
		_, vids := snapRowIDs(t, db, "sh")
		const n = 10
		for i := range n {
			resp, body := f.post(t, "/v2/models/shroute/infer", map[string]string{"X-User-ID": fmt.Sprintf("s-%d", i)}, proxyV2Body)
			if resp.StatusCode != 200 || modelName(t, body) == "classifier-v2" || resp.Header.Get(HeaderVariant) == "s" {
				t.Fatalf("status %d, X-Variant %q, body %s: the shadow answered", resp.StatusCode, resp.Header.Get(HeaderVariant), body)
			}
		}
		f.flush(t)
		if got := f.models.count("classifier-v2"); got != n {
			t.Errorf("shadow model got %d copies, want %d", got, n)
		}
		var rows []struct {
			PredictedLabel *string
			LatencyUS      int
			Status         int
		}
		if err := db.Raw("SELECT predicted_label, latency_us, status FROM exposures WHERE shadow = ? AND variant_id = ?", true, vids["s"]).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != n {
			t.Fatalf("%d shadow exposures, want %d", len(rows), n)
		}
		for _, r := range rows {
			if r.Status != 200 || r.PredictedLabel == nil || *r.PredictedLabel != "1" {
				t.Errorf("shadow exposure %+v, want status 200, label 1", r)
			}
		}
		agree := counterValue(t, f.proxy.metrics.agreement.WithLabelValues("shroute", "sh", "s", "true"))
		disagree := counterValue(t, f.proxy.metrics.agreement.WithLabelValues("shroute", "sh", "s", "false"))
		// The primary (classifier-v1 or plain) predicts 0, the shadow 1.
		if agree != 0 || disagree != n {
			t.Errorf("agreement true %v false %v, want 0 and %d", agree, disagree, n)
		}
	})
}

func TestProxyShadowSaturated(t *testing.T) {
	block := make(chan struct{})
	var calls sync.WaitGroup
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "shadowm") {
			<-block
		}
		w.Write([]byte(`{"outputs":[]}`))
		calls.Done()
	})
	snap := NewSnapshot(1, []*experiments.Experiment{{
		Key: "e", Route: "r", Status: experiments.StatusRunning, HashSeed: "e", HashVersion: 2, Coverage: 1,
		Variants: []experiments.Variant{
			{Key: "c", Model: "cm", Weight: 1, Control: true},
			{Key: "s", Model: "shadowm", Shadow: true, ShadowPercent: 100},
		},
	}}, nil)
	pools, err := NewPools([]*experiments.Model{{Name: "cm", Source: experiments.SourceLocal}, {Name: "shadowm", Source: experiments.SourceLocal}}, h, PoolOptions{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pools.Close()
	p, err := NewProxy(snap, pools, nil, nil, ProxyOptions{ShadowConcurrency: 2}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	p.Mount(r)
	calls.Add(3 + 2) // 3 primaries, 2 shadows
	for i := range 3 {
		req := httptest.NewRequest(http.MethodPost, "/v2/models/r/infer", bytes.NewReader([]byte("{}")))
		req.Header.Set("X-User-ID", fmt.Sprint("u", i))
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if got := counterValue(t, p.metrics.shadows.WithLabelValues("r", "e", "s", "dropped")); got != 1 {
		t.Errorf("dropped %v, want 1", got)
	}
	close(block)
	calls.Wait()
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestExtractPrediction(t *testing.T) {
	for _, tc := range []struct {
		name      string
		kind      proxyKind
		body      string
		label     string
		conf      float32
		hasLabel  bool
		hasConfid bool
	}{
		{"v2 label and probabilities", proxyV2, `{"outputs":[{"name":"probabilities","shape":[2,3],"data":[0.1,0.7,0.2,0.5,0.4,0.1]},{"name":"label","shape":[2],"data":[1,0]}]}`, "1", 0.7, true, true},
		{"v2 argmax", proxyV2, `{"outputs":[{"name":"probabilities","shape":[1,3],"data":[0.1,0.2,0.7]}]}`, "2", 0.7, true, true},
		{"v2 string label", proxyV2, `{"outputs":[{"name":"label","shape":[1],"data":["cat"]}]}`, "cat", 0, true, false},
		{"v2 none", proxyV2, `{"outputs":[{"name":"logits","data":[1]}]}`, "", 0, false, false},
		{"v2 not json", proxyV2, `garbage`, "", 0, false, false},
		{"predict", proxyPredict, `{"predicted_class":6,"label":"class_6","confidence":0.22}`, "class_6", 0.22, true, true},
		{"predict class only", proxyPredict, `{"predicted_class":6}`, "6", 0, true, false},
		{"predict batch", proxyPredictBatch, `{"predictions":[{"predicted_class":2,"label":"b","confidence":0.5}]}`, "b", 0.5, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c := extractPrediction(tc.kind, http.Header{}, []byte(tc.body))
			if (l != nil) != tc.hasLabel || (c != nil) != tc.hasConfid {
				t.Fatalf("label %v confidence %v, want present %v %v", l, c, tc.hasLabel, tc.hasConfid)
			}
			if l != nil && *l != tc.label {
				t.Errorf("label %q, want %q", *l, tc.label)
			}
			if c != nil && *c != tc.conf {
				t.Errorf("confidence %v, want %v", *c, tc.conf)
			}
		})
	}
}

func TestParseForce(t *testing.T) {
	got := parseForce(" demo = v2 ,bad, x=,=y, other=a")
	if len(got) != 2 || got["demo"] != "v2" || got["other"] != "a" {
		t.Errorf("parseForce = %v", got)
	}
	if parseForce("nothing") != nil {
		t.Error("parseForce(nothing) not nil")
	}
}

// TestProxyCapture checks what the proxy offers the drift capture: routed
// predictions of an experiment answered 2xx, with their kind, content type
// and body; nothing for a route without an experiment.
func TestProxyCapture(t *testing.T) {
	f := newProxyFixture(t, dbtest.SQLite(t), nil)
	type offer struct{ model, variant, kind, contentType, body string }
	var mu sync.Mutex
	var offers []offer
	p, err := NewProxy(f.watcher, f.pools, nil, f.store, ProxyOptions{DefaultRoute: "plain",
		Capture: func(model, variant, kind, contentType string, body []byte, label *string, _ *float32) {
			mu.Lock()
			offers = append(offers, offer{model, variant, kind, contentType, string(body)})
			mu.Unlock()
		}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	p.Mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	g := &proxyFixture{srv: srv}
	resp, _ := g.post(t, "/v2/models/classifier/infer", map[string]string{"X-User-ID": "user-42"}, proxyV2Body)
	v2Variant, v2Model := resp.Header.Get(HeaderVariant), resp.Header.Get(HeaderModel)
	resp, _ = g.post(t, "/predict?model=classifier", map[string]string{"X-User-ID": "user-7"}, `{"image":"x"}`)
	pVariant, pModel := resp.Header.Get(HeaderVariant), resp.Header.Get(HeaderModel)
	g.post(t, "/v2/models/plain/infer", nil, proxyV2Body) // no experiment: not offered
	want := []offer{
		{v2Model, v2Variant, "v2", "application/json", proxyV2Body},
		{pModel, pVariant, "predict", "application/json", `{"image":"x"}`},
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(offers) != fmt.Sprint(want) || v2Variant == "" || pVariant == "" {
		t.Errorf("offers = %v, want %v", offers, want)
	}
}

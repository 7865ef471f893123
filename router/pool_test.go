package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"abgate"
	"abgate/experiments"
)

// testBackend is an inference server stand-in on 127.0.0.1: it answers
// /v2/health/ready with 200 while ready (503 otherwise) and every other
// request with status after delay, counting them.
type testBackend struct {
	name   string
	srv    *httptest.Server
	hits   atomic.Int64
	ready  atomic.Bool
	delay  time.Duration
	status int
}

func newTestBackend(t *testing.T, name string, status int, delay time.Duration) *testBackend {
	t.Helper()
	b := &testBackend{name: name, status: status, delay: delay}
	b.ready.Store(true)
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *testBackend) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == poolHealthPath {
		if !b.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	b.hits.Add(1)
	io.Copy(io.Discard, r.Body)
	if b.delay > 0 {
		select {
		case <-time.After(b.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("X-Backend", b.name)
	w.WriteHeader(b.status)
	fmt.Fprintf(w, `{"backend":%q,"path":%q}`, b.name, r.URL.RequestURI())
}

// testPool builds a pool over the URLs with quiet defaults for tests.
func testPool(t *testing.T, opts PoolOptions, reg prometheus.Registerer, urls ...string) *Pool {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	tr := backendTransport()
	t.Cleanup(tr.CloseIdleConnections)
	var fwds []Forwarder
	for _, u := range urls {
		b, err := NewRemoteBackend(u, tr, opts.Timeout)
		if err != nil {
			t.Fatal(err)
		}
		fwds = append(fwds, b)
	}
	p, err := NewPool("m", fwds, opts, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// deadURL returns the URL of a 127.0.0.1 port whose listener was closed.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func forward(p *Pool) (int, http.Header, []byte, error) {
	return p.Forward(context.Background(), http.MethodPost, "/v2/models/m/infer", http.Header{"Content-Type": {"application/json"}}, []byte(`{"inputs":[]}`))
}

// waitFor polls cond every 10 ms until it holds or 3 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPoolRoundRobinOnTies(t *testing.T) {
	a := newTestBackend(t, "a", 200, 0)
	b := newTestBackend(t, "b", 200, 0)
	p := testPool(t, PoolOptions{HealthInterval: -1}, nil, a.srv.URL, b.srv.URL)
	for i := 0; i < 20; i++ {
		if status, _, _, err := forward(p); err != nil || status != 200 {
			t.Fatalf("forward %d: status %d, err %v", i, status, err)
		}
	}
	if got, want := a.hits.Load(), int64(10); got != want {
		t.Errorf("a got %d requests, want %d (b got %d)", got, want, b.hits.Load())
	}
}

func TestPoolLeastOutstanding(t *testing.T) {
	slow := newTestBackend(t, "slow", 200, 50*time.Millisecond)
	fast := newTestBackend(t, "fast", 200, 0)
	p := testPool(t, PoolOptions{HealthInterval: -1}, nil, slow.srv.URL, fast.srv.URL)

	const workers, perWorker = 4, 50
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; i < perWorker; i++ {
				if status, _, _, err := forward(p); err != nil || status != 200 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed", n)
	}
	s, f := slow.hits.Load(), fast.hits.Load()
	if s+f != workers*perWorker {
		t.Fatalf("slow %d + fast %d != %d", s, f, workers*perWorker)
	}
	t.Logf("slow %d, fast %d", s, f)
	// Round-robin would give each half; least-outstanding keeps the slow
	// one near its concurrency (about 1-2 of the 4 workers at a time).
	if s*3 > f {
		t.Errorf("slow backend got %d requests, fast %d; want slow < a quarter of all", s, f)
	}
	for _, b := range p.Backends() {
		if got := b.State().Outstanding; got != 0 {
			t.Errorf("%s: %d outstanding after all requests ended", b.Name(), got)
		}
	}
}

func TestPoolHealthChecks(t *testing.T) {
	t.Run("not ready then ready", func(t *testing.T) {
		b := newTestBackend(t, "b", 200, 0)
		p := testPool(t, PoolOptions{HealthInterval: 20 * time.Millisecond, HealthTimeout: 500 * time.Millisecond}, nil, b.srv.URL)
		b.ready.Store(false)
		waitFor(t, "the backend is down", func() bool { return !p.Healthy() })
		if st := p.Backends()[0].State(); st.Up || st.Available {
			t.Errorf("state %+v, want down", st)
		}
		_, _, _, err := forward(p)
		if !errors.Is(err, ErrNoHealthyBackend) {
			t.Fatalf("err %v, want ErrNoHealthyBackend", err)
		}
		if got := b.hits.Load(); got != 0 {
			t.Errorf("a down backend got %d requests", got)
		}
		b.ready.Store(true)
		waitFor(t, "the backend is up", p.Healthy)
		if status, _, _, err := forward(p); err != nil || status != 200 {
			t.Fatalf("after recovery: status %d, err %v", status, err)
		}
	})

	t.Run("dead then restarted", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		b := &testBackend{name: "b", status: 200}
		b.ready.Store(true)
		srv := &http.Server{Handler: http.HandlerFunc(b.serve)}
		go srv.Serve(ln)
		p := testPool(t, PoolOptions{HealthInterval: 20 * time.Millisecond, HealthTimeout: 500 * time.Millisecond}, nil, "http://"+addr)
		waitFor(t, "the first check passes", func() bool { return p.Healthy() })

		srv.Close()
		waitFor(t, "the dead backend is down", func() bool { return !p.Healthy() })

		ln, err = net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s again: %v", addr, err)
		}
		srv = &http.Server{Handler: http.HandlerFunc(b.serve)}
		go srv.Serve(ln)
		defer srv.Close()
		waitFor(t, "the restarted backend is up", p.Healthy)
		if status, _, _, err := forward(p); err != nil || status != 200 {
			t.Fatalf("after restart: status %d, err %v", status, err)
		}
	})
}

func TestPoolPassiveEjection(t *testing.T) {
	bad := newTestBackend(t, "bad", 500, 0)
	good := newTestBackend(t, "good", 200, 0)
	reg := prometheus.NewRegistry()
	// No active checks: a passing check would end the ejection at once.
	p := testPool(t, PoolOptions{HealthInterval: -1, MaxFailures: 3, EjectFor: 300 * time.Millisecond}, reg, bad.srv.URL, good.srv.URL)

	var fives int
	for i := 0; i < 20; i++ {
		status, _, _, err := forward(p)
		if err != nil {
			t.Fatal(err)
		}
		if status == 500 {
			fives++
		}
	}
	if got, want := bad.hits.Load(), int64(3); got != want {
		t.Errorf("bad backend got %d requests, want %d before its ejection", got, want)
	}
	if fives != 3 {
		t.Errorf("%d answers were 500, want 3 (passed through, not retried)", fives)
	}
	st := p.Backends()[0].State()
	if st.Available || st.EjectedUntil.IsZero() || !st.Up {
		t.Errorf("bad backend state %+v, want up but ejected", st)
	}
	if got := counterValue(t, p.metrics.ejections.WithLabelValues("m", bad.srv.URL)); got != 1 {
		t.Errorf("ejections = %v, want 1", got)
	}
	if got := counterValue(t, p.metrics.requests.WithLabelValues("m", bad.srv.URL, "5xx")); got != 3 {
		t.Errorf("5xx requests = %v, want 3", got)
	}
	for backend, want := range map[string]float64{bad.srv.URL: 0, good.srv.URL: 1} {
		if got := gathered(t, reg, "abgate_router_backend_up", backend); got != want {
			t.Errorf("abgate_router_backend_up{backend=%q} = %v, want %v", backend, got, want)
		}
	}

	t.Run("ejection ends after EjectFor", func(t *testing.T) {
		waitFor(t, "the ejection ends", func() bool { return p.Backends()[0].State().Available })
		before := bad.hits.Load()
		for i := 0; i < 4; i++ {
			forward(p)
		}
		if bad.hits.Load() == before {
			t.Error("the bad backend got no request after its ejection ended")
		}
	})

	t.Run("a passing active check ends the ejection", func(t *testing.T) {
		for i := 0; i < 10 && p.Backends()[0].State().Available; i++ {
			forward(p)
		}
		if p.Backends()[0].State().Available {
			t.Fatal("the bad backend was not ejected again")
		}
		p.checkAll(context.Background())
		if st := p.Backends()[0].State(); !st.Available {
			t.Errorf("state after a passing check %+v, want available", st)
		}
	})
}

func TestPoolRetry(t *testing.T) {
	t.Run("connection refused goes to the other backend", func(t *testing.T) {
		good := newTestBackend(t, "good", 200, 0)
		dead := deadURL(t)
		p := testPool(t, PoolOptions{HealthInterval: -1, MaxFailures: -1}, nil, dead, good.srv.URL)
		for i := 0; i < 10; i++ {
			status, h, _, err := forward(p)
			if err != nil || status != 200 || h.Get("X-Backend") != "good" {
				t.Fatalf("forward %d: status %d, backend %q, err %v", i, status, h.Get("X-Backend"), err)
			}
		}
		if got, want := good.hits.Load(), int64(10); got != want {
			t.Errorf("good backend got %d requests, want %d", got, want)
		}
		if got := counterValue(t, p.metrics.requests.WithLabelValues("m", dead, "conn_error")); got < 1 {
			t.Errorf("conn_error count for the dead backend = %v, want >= 1 (the first pick was never it?)", got)
		}
	})

	t.Run("no retry on a 500 answer", func(t *testing.T) {
		bad := newTestBackend(t, "bad", 500, 0)
		good := newTestBackend(t, "good", 200, 0)
		p := testPool(t, PoolOptions{HealthInterval: -1, MaxFailures: -1}, nil, bad.srv.URL, good.srv.URL)
		var fives int
		for i := 0; i < 6; i++ {
			status, _, _, err := forward(p)
			if err != nil {
				t.Fatal(err)
			}
			if status == 500 {
				fives++
			}
		}
		if got, want := bad.hits.Load()+good.hits.Load(), int64(6); got != want {
			t.Errorf("backends got %d requests for 6 forwards; want %d (no retry)", got, want)
		}
		if fives != int(bad.hits.Load()) || fives == 0 {
			t.Errorf("%d answers were 500, bad backend got %d requests", fives, bad.hits.Load())
		}
	})

	t.Run("no retry after a timeout", func(t *testing.T) {
		slow := newTestBackend(t, "slow", 200, 2*time.Second)
		other := newTestBackend(t, "other", 200, 0)
		p := testPool(t, PoolOptions{HealthInterval: -1, Timeout: 100 * time.Millisecond}, nil, slow.srv.URL, other.srv.URL)
		var timeouts int
		for i := 0; i < 2; i++ {
			_, _, _, err := forward(p)
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) || abgate.ErrorCode(err) != abgate.EUNAVAILABLE || errors.Is(err, ErrNoHealthyBackend) {
					t.Errorf("err %v, want an EUNAVAILABLE deadline error", err)
				}
				timeouts++
			}
		}
		if timeouts != 1 || other.hits.Load() != 1 {
			t.Errorf("%d timeouts, other got %d requests; want 1 and 1", timeouts, other.hits.Load())
		}
	})
}

func TestPoolNoHealthyBackend(t *testing.T) {
	t.Run("every listener closed", func(t *testing.T) {
		p := testPool(t, PoolOptions{HealthInterval: -1}, nil, deadURL(t), deadURL(t))
		start := time.Now()
		_, _, _, err := forward(p)
		if !errors.Is(err, ErrNoHealthyBackend) {
			t.Fatalf("err %v, want ErrNoHealthyBackend", err)
		}
		if got, want := abgate.ErrorCode(err), abgate.EUNAVAILABLE; got != want {
			t.Errorf("code %q, want %q", got, want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v, want under 1 s", d)
		}
	})

	t.Run("every backend down by health checks", func(t *testing.T) {
		a := newTestBackend(t, "a", 200, 0)
		b := newTestBackend(t, "b", 200, 0)
		a.ready.Store(false)
		b.srv.Close()
		p := testPool(t, PoolOptions{HealthInterval: 20 * time.Millisecond}, nil, a.srv.URL, b.srv.URL)
		waitFor(t, "both backends are down", func() bool { return !p.Healthy() })
		start := time.Now()
		_, _, _, err := forward(p)
		if !errors.Is(err, ErrNoHealthyBackend) {
			t.Fatalf("err %v, want ErrNoHealthyBackend", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("took %v with no healthy backend, want at once", d)
		}
		if got := a.hits.Load(); got != 0 {
			t.Errorf("a down backend got %d requests", got)
		}
	})

	t.Run("empty pool", func(t *testing.T) {
		p, err := NewPool("m", nil, PoolOptions{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, _, _, err := forward(p); !errors.Is(err, ErrNoHealthyBackend) {
			t.Fatalf("err %v, want ErrNoHealthyBackend", err)
		}
	})
}

func TestPoolsFromModels(t *testing.T) {
	remote1 := newTestBackend(t, "r1", 200, 0)
	remote2 := newTestBackend(t, "r2", 200, 0)
	var localHits atomic.Int64
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		localHits.Add(1)
		w.Write([]byte(`{"local":true}`))
	})
	reg := prometheus.NewRegistry()
	models := []*experiments.Model{
		{Name: "loc", Source: experiments.SourceLocal},
		{Name: "rem", Source: experiments.SourceRemote, Version: "2", Backends: []string{remote1.srv.URL, remote2.srv.URL}},
	}
	ps, err := NewPools(models, local, PoolOptions{HealthInterval: 50 * time.Millisecond}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()

	if got, want := strings.Join(ps.Models(), ","), "loc,rem"; got != want {
		t.Errorf("models %q, want %q", got, want)
	}
	loc, ok := ps.Get("loc")
	if !ok {
		t.Fatal("no pool for loc")
	}
	if status, _, body, err := forward(loc); err != nil || status != 200 || string(body) != `{"local":true}` || localHits.Load() != 1 {
		t.Errorf("local: status %d, body %s, err %v, hits %d", status, body, err, localHits.Load())
	}
	rem, ok := ps.Get("rem")
	if !ok {
		t.Fatal("no pool for rem")
	}
	if got, want := rem.Version(), "2"; got != want {
		t.Errorf("version %q, want %q", got, want)
	}
	for i := 0; i < 4; i++ {
		if status, _, _, err := forward(rem); err != nil || status != 200 {
			t.Fatalf("remote: status %d, err %v", status, err)
		}
	}
	if remote1.hits.Load() != 2 || remote2.hits.Load() != 2 {
		t.Errorf("remote hits %d and %d, want 2 and 2", remote1.hits.Load(), remote2.hits.Load())
	}
	if _, ok := ps.Get("nope"); ok {
		t.Error("a pool for an unknown model")
	}
	if got, want := seriesCount(t, reg, "abgate_router_backend_up"), 3; got != want {
		t.Errorf("%d up series, want %d", got, want)
	}

	t.Run("router alone: local models have no backend", func(t *testing.T) {
		ps, err := NewPools(models, nil, PoolOptions{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ps.Close()
		p, _ := ps.Get("loc")
		if _, _, _, err := forward(p); !errors.Is(err, ErrNoHealthyBackend) {
			t.Errorf("err %v, want ErrNoHealthyBackend", err)
		}
	})

	t.Run("update keeps unchanged pools and drops removed ones", func(t *testing.T) {
		models2 := []*experiments.Model{
			models[0],
			{Name: "rem", Source: experiments.SourceRemote, Version: "2", Backends: []string{remote2.srv.URL}},
		}
		if err := ps.Update(models2); err != nil {
			t.Fatal(err)
		}
		if p, _ := ps.Get("loc"); p != loc {
			t.Error("the unchanged local model got a new pool")
		}
		if p, _ := ps.Get("rem"); p == rem || len(p.Backends()) != 1 {
			t.Error("the changed remote model kept its pool")
		}
		// Per pool: one series per outcome and backend, and no_backend.
		if got, want := seriesCount(t, reg, "abgate_router_backend_requests_total"), 2*(len(poolOutcomes)+1); got != want {
			t.Errorf("%d request series after dropping a backend, want %d (loc, r2)", got, want)
		}
		for _, m := range family(t, reg, "abgate_router_backend_requests_total") {
			for _, l := range m.GetLabel() {
				if l.GetValue() == remote1.srv.URL {
					t.Errorf("a series of the dropped backend is left: %v", m)
				}
			}
		}
		if err := ps.Update(models2[:1]); err != nil {
			t.Fatal(err)
		}
		if _, ok := ps.Get("rem"); ok {
			t.Error("a removed model still has a pool")
		}
		if got, want := seriesCount(t, reg, "abgate_router_backend_up"), 1; got != want {
			t.Errorf("%d up series after removing a model, want %d", got, want)
		}
	})

	ps.Close()
	if err := ps.Update(models); abgate.ErrorCode(err) != abgate.EUNAVAILABLE {
		t.Errorf("Update after Close: %v, want EUNAVAILABLE", err)
	}
}

// TestPoolsUpdateUnderLoad swaps the backends of a model while requests
// run; none may fail. Run with -race.
func TestPoolsUpdateUnderLoad(t *testing.T) {
	b1 := newTestBackend(t, "b1", 200, time.Millisecond)
	b2 := newTestBackend(t, "b2", 200, time.Millisecond)
	sets := [][]string{{b1.srv.URL}, {b2.srv.URL}, {b1.srv.URL, b2.srv.URL}, {b2.srv.URL, b1.srv.URL}}
	model := func(i int) []*experiments.Model {
		return []*experiments.Model{{Name: "m", Source: experiments.SourceRemote, Backends: sets[i%len(sets)]}}
	}
	ps, err := NewPools(model(0), nil, PoolOptions{HealthInterval: 10 * time.Millisecond}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for ctx.Err() == nil {
				p, found := ps.Get("m")
				if !found {
					failed.Add(1)
					continue
				}
				if status, _, _, err := forward(p); err != nil || status != 200 {
					failed.Add(1)
					t.Logf("status %d, err %v", status, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	for i := 1; ctx.Err() == nil; i++ {
		if err := ps.Update(model(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("%d requests failed, %d succeeded during updates", failed.Load(), ok.Load())
	}
	if b1.hits.Load() == 0 || b2.hits.Load() == 0 {
		t.Errorf("hits b1 %d, b2 %d: both should have served", b1.hits.Load(), b2.hits.Load())
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// gathered returns the value of the gauge name of backend in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name, backend string) float64 {
	t.Helper()
	for _, m := range family(t, reg, name) {
		for _, l := range m.GetLabel() {
			if l.GetName() == "backend" && l.GetValue() == backend {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s series for backend %q", name, backend)
	return 0
}

// seriesCount returns the number of series of name in reg.
func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	return len(family(t, reg, name))
}

func family(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}

// BenchmarkPoolForwardLocal measures the pool's own cost over an
// in-process handler that answers at once.
func BenchmarkPoolForwardLocal(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) })
	p, err := NewPool("m", []Forwarder{NewLocalBackend(h)}, PoolOptions{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	body := []byte(`{"inputs":[]}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := p.Forward(ctx, http.MethodPost, "/v2/models/m/infer", nil, body); err != nil {
			b.Fatal(err)
		}
	}
}

package main

// This file holds `abgate bench router`: the bucketing core in-process,
// then the router in front of two upstream servers against nginx
// (split_clients + proxy_pass) over the same upstreams, and the router
// with exposure logging on against off. It reuses the load generator of
// the inference harness (benchHarness.compare and measure).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

	"abgate/analytics"
	"abgate/experiments"
	"abgate/migrations"
	"abgate/router"
)

const benchRouterUsage = `usage: abgate bench router [flags]

Measures the router on 127.0.0.1, in one run:

  bucketing-assign             router.Compile(...).Assign, 3 variants, in-process
  router-vs-nginx              abgate router (exposure logging on, PostgreSQL)
                               vs nginx split_clients + proxy_pass, over the
                               same two upstream servers, same load generator
  router-p99-minus-nginx       p99 latency of abgate minus nginx's, in ms
  exposure-on-vs-off           the router with exposure logging on vs off
  drift-capture-on-vs-off      the router (exposure logging off) with the
                               drift capture on (default sample rate, a
                               reference for both models) vs off

The harness creates a PostgreSQL database of its own next to the one of
--postgres and drops it at the end; it writes nginx's configuration in a
temporary folder and runs nginx as a child process. Without nginx the
nginx comparison is skipped (and said so). Each line reads
  bench: <name> value=<v> <unit> baseline=<b> ratio=<v/b>
followed by the targets of issue 4, met or missed. Lines starting with
"#" describe the setup. The exit status is 0 when every case ran, even
with a target missed.

flags:
`

// Targets of issue 4.
const (
	targetAssignNS       = 100.0 // ns per Assign, 3 variants
	targetRouterVsNginx  = 0.8   // requests/s of abgate over nginx's
	targetP99OverNginxMS = 1.0   // ms of p99 above nginx's
	targetExposureOnOff  = 0.9   // requests/s with exposure logging on over off
	targetCaptureOnOff   = 0.95  // requests/s with the drift capture on over off (issue 6)
)

// Names of the bench setup.
const (
	benchRoute     = "bench"
	benchModelA    = "up-a"
	benchModelB    = "up-b"
	benchRouterExp = "bench"
	// benchRouterBody is the V2 request every routed request carries.
	benchRouterBody = `{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [35, 52000, 14, 3]}]}`
)

// benchRouterOptions are the flags of `abgate bench router`.
type benchRouterOptions struct {
	benchOptions        // Duration, Concurrency, Rounds
	Postgres     string // DSN of an existing database; the harness makes its own next to it
	Nginx        string // nginx binary; "" looks it up
	NginxWorkers int
	Units        int // distinct X-User-ID values
}

// benchRouterCmd runs `abgate bench router`.
func benchRouterCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseBenchRouterFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	return benchRouter(ctx, opts, stdout, stderr)
}

// parseBenchRouterFlags parses the flags of the router harness.
func parseBenchRouterFlags(args []string, getenv func(string) string, stderr io.Writer) (benchRouterOptions, error) {
	var o benchRouterOptions
	fs := flag.NewFlagSet("abgate bench router", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchRouterUsage)
		fs.PrintDefaults()
	}
	benchPostgresFlag(fs, &o.Postgres, getenv)
	fs.StringVar(&o.Nginx, "nginx", getenv("ABGATE_BENCH_NGINX"), "nginx binary; empty looks up nginx in PATH, /usr/sbin and /usr/local/sbin (env ABGATE_BENCH_NGINX)")
	fs.DurationVar(&o.Duration, "duration", 5*time.Second, "measured time of each case (env ABGATE_BENCH_DURATION)")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "requests in flight (env ABGATE_BENCH_CONCURRENCY)")
	fs.IntVar(&o.Rounds, "rounds", 4, "rounds that interleave the loads of a comparison, ABBA (env ABGATE_BENCH_ROUNDS)")
	fs.IntVar(&o.NginxWorkers, "nginx-workers", 2, "nginx worker_processes, 1 or 2")
	fs.IntVar(&o.Units, "units", 100_000, "distinct X-User-ID values, sent in turn")
	if err := parseLoadFlags(fs, "bench router", args, getenv, &o.Duration, &o.Concurrency, &o.Rounds); err != nil {
		return o, err
	}
	switch {
	case o.NginxWorkers < 1 || o.NginxWorkers > 2:
		return o, fmt.Errorf("--nginx-workers must be 1 or 2, got %d", o.NginxWorkers)
	case o.Units < 1 || o.Units > 10_000_000:
		return o, fmt.Errorf("--units must be between 1 and 10000000, got %d", o.Units)
	}
	if err := checkBenchPostgres(o.Postgres); err != nil {
		return o, err
	}
	return o, nil
}

// benchRouter runs the router harness.
func benchRouter(ctx context.Context, opts benchRouterOptions, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := &benchHarness{
		opts:      opts.benchOptions,
		out:       stdout,
		described: map[*benchLoad]bool{},
		ratios:    map[string]float64{},
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        4 * opts.Concurrency,
			MaxIdleConnsPerHost: 2 * opts.Concurrency,
			IdleConnTimeout:     2 * time.Minute,
			DisableCompression:  true,
		}},
	}
	defer h.client.CloseIdleConnections()
	fmt.Fprintf(stdout, "# abgate bench router: %s/%s, %d CPUs, GOMAXPROCS %d, GOGC %d, %v per case in %d rounds (ABBA), concurrency %d, %d distinct X-User-ID\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), currentGCPercent(), opts.Duration, opts.Rounds, opts.Concurrency, opts.Units)
	loadAverage(stdout, "start")
	defer loadAverage(stdout, "end")

	assign := benchAssign(stdout)

	// Two upstream servers: plain net/http, a fixed small V2 answer with a
	// label output.
	var ups [2]string
	for i, m := range []string{benchModelA, benchModelB} {
		base, stop, err := serveBench(benchUpstream(m), slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer stop()
		ups[i] = base
	}
	fmt.Fprintf(stdout, "# upstreams: %s at %s, %s at %s (Go net/http, fixed V2 answer with a label output)\n", benchModelA, ups[0], benchModelB, ups[1])

	db, dsn, dropDB, err := benchDatabase(ctx, opts.Postgres, log)
	if err != nil {
		return err
	}
	defer dropDB()
	store := experiments.NewStore(db, log)
	if err := benchExperiment(ctx, store, ups); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# database: %s (created for this run, dropped at the end); experiment %q on route %q, 50/50 control %s / treatment %s\n",
		redactDSN(dsn), benchRouterExp, benchRoute, benchModelA, benchModelB)

	// The router as `abgate router` builds it, exposure logging on.
	cfg := &Config{MaxBodyBytes: 1 << 20, MaxInferBodyBytes: 64 << 20}
	rt, err := startRouting(ctx, cfg, db, store, nil, nil, log, newRegistry())
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	routingClosed := false
	closeRouting := func() {
		if routingClosed {
			return
		}
		routingClosed = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		rt.close(sctx)
	}
	defer closeRouting()
	eng := newEngine(log)
	rt.mount(eng)
	onURL, stopOn, err := serveBench(eng, log)
	if err != nil {
		return err
	}
	defer stopOn()

	// The same router without exposure logging: its own snapshot and proxy
	// over the same pools, a nil ExposureRecorder.
	watcher, err := router.NewWatcher(ctx, db, router.WatcherOptions{NoListen: true}, log)
	if err != nil {
		return err
	}
	offProxy, err := router.NewProxy(watcher, rt.pools, nil, store, router.ProxyOptions{MaxBodyBytes: cfg.MaxInferBodyBytes}, log, nil)
	if err != nil {
		return err
	}
	offEng := newEngine(log)
	offProxy.Mount(offEng)
	offURL, stopOff, err := serveBench(offEng, log)
	if err != nil {
		return err
	}
	defer stopOff()
	defer func() { _ = offProxy.Close(context.WithoutCancel(ctx)) }()

	// The same again with the drift capture on, at the default sample
	// rate, with a reference for both models (columns named as the
	// capture names an unnamed input: features[0], ...).
	capURL, stopCapture, err := benchCaptureRouter(ctx, db, store, watcher, rt.pools, cfg, log)
	if err != nil {
		return err
	}
	defer stopCapture()

	g := newRouterLoads(h, opts.Units)
	path := "/v2/models/" + benchRoute + "/infer"
	var onAnswers atomic.Int64 // answers of the exposure-on router: one exposure each
	abgate := g.load("abgate", onURL+path, &onAnswers)
	if !h.probe(ctx, abgate, nil, checkBenchAnswer) {
		return fmt.Errorf("bench router: the router does not answer")
	}

	// nginx over the same upstreams.
	nginxBin, nginxErr := findNginx(opts.Nginx)
	if nginxErr != nil {
		fmt.Fprintf(stdout, "bench: router-vs-nginx skipped (nginx not installed: apt-get install nginx-light): %s\n", oneLine(nginxErr.Error()))
	} else {
		ng, err := startNginx(ctx, nginxBin, opts.NginxWorkers, ups)
		if err != nil {
			h.fail("router-vs-nginx", err)
		} else {
			defer ng.stop()
			fmt.Fprintf(stdout, "# nginx: %s, %s, worker_processes %d, split_clients on $http_x_user_id 50%%/50%%, upstream keepalive 64, proxy_http_version 1.1, access_log off; config %s\n",
				nginxBin, ng.version, opts.NginxWorkers, ng.conf)
			nginx := g.load("nginx", ng.url+path, nil)
			if h.probe(ctx, nginx, nil, checkBenchAnswer) {
				if err := g.compare(ctx, abgate, nginx); err != nil {
					return err
				}
				h.report("router-vs-nginx", abgate, nginx, "req/s")
				if abgate.err == nil && nginx.err == nil {
					pa, pn := g.p99(abgate), g.p99(nginx)
					fmt.Fprintf(stdout, "# p99 latency: abgate %.3f ms, nginx %.3f ms (p50 abgate %.3f ms, nginx %.3f ms)\n",
						pa, pn, g.quantile(abgate, 0.5), g.quantile(nginx, 0.5))
					fmt.Fprintf(stdout, "bench: router-p99-minus-nginx value=%.3f ms baseline=%g ratio=%.3f\n", pa-pn, targetP99OverNginxMS, (pa-pn)/targetP99OverNginxMS)
					h.ratios["router-p99-minus-nginx"] = (pa - pn) / targetP99OverNginxMS
				}
			}
		}
	}

	// Exposure logging on vs off.
	on := g.load("abgate-exposure-on", onURL+path, &onAnswers)
	off := g.load("abgate-exposure-off", offURL+path, nil)
	if h.probe(ctx, off, nil, checkBenchAnswer) {
		if err := g.compare(ctx, on, off); err != nil {
			return err
		}
		h.report("exposure-on-vs-off", on, off, "req/s")
	}

	// Drift capture on vs off.
	capOn := g.load("abgate-capture-on", capURL+path, nil)
	if h.probe(ctx, capOn, nil, checkBenchAnswer) && h.probe(ctx, off, nil, checkBenchAnswer) {
		if err := g.compare(ctx, capOn, off); err != nil {
			return err
		}
		h.report("drift-capture-on-vs-off", capOn, off, "req/s")
	}

	// Every answer of the exposure-on router is an exposure row once the
	// log is flushed.
	stopOn()
	closeRouting()
	var rows int64
	if err := db.WithContext(ctx).Raw("SELECT count(*) FROM exposures").Scan(&rows).Error; err != nil {
		return fmt.Errorf("count exposures: %w", err)
	}
	fmt.Fprintf(stdout, "# exposures: %d rows in PostgreSQL for %d answers of the exposure-on router\n", rows, onAnswers.Load())
	if rows != onAnswers.Load() {
		h.fail("exposure-rows", fmt.Errorf("%d exposure rows for %d answers", rows, onAnswers.Load()))
	}

	// Targets.
	if assign.N > 0 {
		ns := float64(assign.T.Nanoseconds()) / float64(assign.N)
		fmt.Fprintf(stdout, "bench: target assign<=%gns bucketing-assign value=%.1f %s\n", targetAssignNS, ns, metMissed(ns <= targetAssignNS))
		fmt.Fprintf(stdout, "bench: target assign-allocs==0 bucketing-assign allocs=%d %s\n", assign.AllocsPerOp(), metMissed(assign.AllocsPerOp() == 0))
	}
	for _, t := range []struct {
		short, name string
		limit       float64
		atMost      bool
	}{
		{"rps", "router-vs-nginx", targetRouterVsNginx, false},
		{"p99", "router-p99-minus-nginx", 1, true},
		{"exposure", "exposure-on-vs-off", targetExposureOnOff, false},
		{"capture", "drift-capture-on-vs-off", targetCaptureOnOff, false},
	} {
		op := ">="
		if t.atMost {
			op = "<="
		}
		v, ok := h.ratios[t.name]
		switch {
		case !ok:
			why := "not measured"
			if nginxErr != nil && (t.name == "router-vs-nginx" || t.name == "router-p99-minus-nginx") {
				why = "nginx not installed"
			}
			fmt.Fprintf(stdout, "bench: target %s%s%g %s ratio=none missed (%s)\n", t.short, op, t.limit, t.name, why)
		default:
			fmt.Fprintf(stdout, "bench: target %s%s%g %s ratio=%.3f %s\n", t.short, op, t.limit, t.name, v, metMissed((t.atMost && v <= t.limit) || (!t.atMost && v >= t.limit)))
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(h.failed) > 0 {
		return fmt.Errorf("bench router: %d case(s) failed: %s", len(h.failed), strings.Join(h.failed, ", "))
	}
	return nil
}

// metMissed names the outcome of a target.
func metMissed(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}

// benchAssign measures Compiled.Assign for 3 equal variants, full
// coverage, hash v2, no layer, on 1024 distinct unit ids, and prints its
// line. A zero result (N 0) means it could not compile.
func benchAssign(w io.Writer) testing.BenchmarkResult {
	c, err := router.Compile("checkout-ranker", "checkout-ranker", 2, 1, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, "", 0, 1)
	if err != nil {
		fmt.Fprintf(w, "bench: error bucketing-assign: %s\n", oneLine(err.Error()))
		return testing.BenchmarkResult{}
	}
	units := make([]string, 1024)
	for i := range units {
		units[i] = "7f3c9a2e-4b1d-4e8f-9c6a-" + strconv.FormatInt(100000000000+int64(i)*7919, 10)
	}
	var sink int
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for i := 0; b.Loop(); i++ {
			n += c.Assign(units[i&1023]).Variant
		}
		sink += n
	})
	if r.N == 0 {
		fmt.Fprintf(w, "bench: error bucketing-assign: the benchmark did not run\n")
		return r
	}
	ns := float64(r.T.Nanoseconds()) / float64(r.N)
	fmt.Fprintf(w, "# bucketing-assign: router.Compile(...).Assign, 3 variants, hash v2, %d iterations, %d allocs/op, %d B/op (checksum %d)\n",
		r.N, r.AllocsPerOp(), r.AllocedBytesPerOp(), sink%3)
	fmt.Fprintf(w, "bench: bucketing-assign value=%.1f ns/op baseline=%g ratio=%.3f\n", ns, targetAssignNS, ns/targetAssignNS)
	return r
}

// benchUpstream returns the handler of an upstream server of model m:
// ready on GET /v2/health/ready, and a fixed V2 answer to any other
// request, after reading its body.
func benchUpstream(m string) http.Handler {
	answer := []byte(`{"model_name":"` + m + `","model_version":"1","outputs":[` +
		`{"name":"label","shape":[1],"datatype":"BYTES","data":["` + m + `-yes"]},` +
		`{"name":"probabilities","shape":[1,2],"datatype":"FP32","data":[0.25,0.75]}]}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/health/ready") || strings.HasSuffix(r.URL.Path, "/health/live") {
			w.WriteHeader(http.StatusOK)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		_, _ = w.Write(answer)
	})
}

// checkBenchAnswer checks that an answer is an upstream's.
func checkBenchAnswer(b []byte) error {
	if !bytes.Contains(b, []byte(`"name":"label"`)) {
		return fmt.Errorf("answer %q is not an upstream's", snippet(b))
	}
	return nil
}

// benchDatabase creates a database next to the one of base, migrates it
// and returns it open, its DSN and a function that closes and drops it.
func benchDatabase(ctx context.Context, base string, log *slog.Logger) (*gorm.DB, string, func(), error) {
	admin, _, err := migrations.Open(ctx, base, log)
	if err != nil {
		return nil, "", nil, fmt.Errorf("postgres %s: %w", redactDSN(base), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "abgate_bench_" + hex.EncodeToString(b[:])
	if err := admin.WithContext(ctx).Exec("CREATE DATABASE " + name).Error; err != nil {
		closeDB(admin, log)
		return nil, "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := admin.WithContext(dctx).Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			log.Warn("bench database not dropped", "database", name, "err", err)
		}
		closeDB(admin, log)
	}
	u, _ := url.Parse(base)
	u.Path = "/" + name
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	dsn := u.String()
	db, err := openDB(ctx, &Config{DB: dsn}, log)
	if err != nil {
		drop()
		return nil, "", nil, err
	}
	return db, dsn, func() { closeDB(db, log); drop() }, nil
}

// redactDSN returns dsn without its password.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

// benchExperiment registers the upstreams as models up-a and up-b and
// starts the experiment between them.
func benchExperiment(ctx context.Context, store *experiments.Store, ups [2]string) error {
	for i, m := range []string{benchModelA, benchModelB} {
		if _, err := store.RegisterModel(ctx, experiments.ModelRegistration{Name: m, Backends: []string{ups[i]}}); err != nil {
			return fmt.Errorf("register %s: %w", m, err)
		}
	}
	def := experiments.Definition{
		Key:   benchRouterExp,
		Name:  "bench: up-a vs up-b",
		Route: benchRoute,
		Variants: []experiments.Variant{
			{Key: "control", Model: benchModelA, Weight: 0.5, Control: true},
			{Key: "treatment", Model: benchModelB, Weight: 0.5},
		},
		Metrics: []experiments.Metric{{Key: "conversion", Type: experiments.MetricBinomial, Role: experiments.RolePrimary}},
	}
	if _, err := store.CreateExperiment(ctx, def); err != nil {
		return fmt.Errorf("create experiment: %w", err)
	}
	if _, err := store.Transition(ctx, def.Key, experiments.ActionStart, nil); err != nil {
		return fmt.Errorf("start experiment: %w", err)
	}
	return nil
}

// routerLoads makes the routed loads: POSTs of benchRouterBody with a
// distinct X-User-ID per request, from a bounded set, each latency kept in
// the load's histogram.
type routerLoads struct {
	h     *benchHarness
	units []string
	next  atomic.Uint64
	hists map[*benchLoad]*latencyHist
}

func newRouterLoads(h *benchHarness, n int) *routerLoads {
	units := make([]string, n)
	for i := range units {
		units[i] = "user-" + strconv.Itoa(i)
	}
	return &routerLoads{h: h, units: units, hists: map[*benchLoad]*latencyHist{}}
}

// load returns the load of POSTs to target; answers counts its answers
// when not nil.
func (g *routerLoads) load(name, target string, answers *atomic.Int64) *benchLoad {
	hist := &latencyHist{}
	body := []byte(benchRouterBody)
	l := &benchLoad{name: name, items: 1, op: func(ctx context.Context, buf *bytes.Buffer) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(router.DefaultUnitHeader, g.units[g.next.Add(1)%uint64(len(g.units))])
		start := time.Now()
		resp, err := g.h.client.Do(req)
		if err != nil {
			return err
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		hist.add(time.Since(start))
		if err != nil {
			return fmt.Errorf("POST %s: read answer: %w", req.URL.Path, err)
		}
		if answers != nil {
			answers.Add(1)
		}
		if resp.StatusCode != http.StatusOK {
			return &httpError{status: resp.StatusCode, msg: fmt.Sprintf("POST %s: HTTP %d: %s", req.URL.RequestURI(), resp.StatusCode, snippet(buf.Bytes()))}
		}
		return nil
	}}
	g.hists[l] = hist
	return l
}

// compare warms a and b up, clears their histograms, then measures them
// alternated (benchHarness.compare, whose own short warmup runs on warm
// connections and is kept in the histograms).
func (g *routerLoads) compare(ctx context.Context, a, b *benchLoad) error {
	warmup := min(g.h.opts.Duration/4, benchMaxWarmup)
	for _, l := range []*benchLoad{a, b} {
		if _, _, err := g.h.measure(ctx, l, warmup); err != nil {
			l.err = err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		g.hists[l].reset()
	}
	return g.h.compare(ctx, []*benchLoad{a, b}, g.h.opts.Duration)
}

// p99 returns the 99th percentile latency of l, in ms.
func (g *routerLoads) p99(l *benchLoad) float64 { return g.quantile(l, 0.99) }

// quantile returns the q quantile of the latencies of l, in ms.
func (g *routerLoads) quantile(l *benchLoad, q float64) float64 {
	return g.hists[l].quantile(q).Seconds() * 1000
}

// latencyHist counts latencies in buckets of latencyStep up to
// latencyBuckets*latencyStep (longer ones in the last bucket); safe for
// concurrent use.
type latencyHist struct {
	counts [latencyBuckets]atomic.Int64
}

const (
	latencyStep    = 5 * time.Microsecond
	latencyBuckets = 200_000 // up to 1 s
)

func (h *latencyHist) add(d time.Duration) {
	i := int(d / latencyStep)
	if i >= latencyBuckets {
		i = latencyBuckets - 1
	}
	h.counts[max(i, 0)].Add(1)
}

func (h *latencyHist) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
}

// quantile returns the upper bound of the bucket holding the q quantile;
// 0 without samples.
func (h *latencyHist) quantile(q float64) time.Duration {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(i+1) * latencyStep
		}
	}
	return latencyBuckets * latencyStep
}

// findNginx returns the nginx binary: bin when set, else nginx in PATH or
// in the sbin folders that a non-root PATH may lack.
func findNginx(bin string) (string, error) {
	if bin != "" {
		return exec.LookPath(bin)
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("nginx not found in PATH, /usr/sbin or /usr/local/sbin")
}

// benchNginx is nginx running as a child process.
type benchNginx struct {
	url, conf, version string
	cmd                *exec.Cmd
	dir                string
	exited             chan struct{}
}

// startNginx writes a configuration into a new temporary folder and starts
// nginx on it (daemon off, in the foreground of a child process),
// listening on a free port of 127.0.0.1, and waits until it answers.
func startNginx(ctx context.Context, bin string, workers int, ups [2]string) (*benchNginx, error) {
	dir, err := os.MkdirTemp("", "abgate-bench-nginx-")
	if err != nil {
		return nil, err
	}
	// Workers run as nobody when nginx starts as root: they must reach the
	// temp paths.
	_ = os.Chmod(dir, 0o755)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(dir, addr, workers, ups)), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ng := &benchNginx{url: "http://" + addr, conf: conf, dir: dir, exited: make(chan struct{})}
	if out, err := exec.CommandContext(ctx, bin, "-v").CombinedOutput(); err == nil {
		ng.version = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	var stderr bytes.Buffer
	ng.cmd = exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	ng.cmd.Stdout, ng.cmd.Stderr = &stderr, &stderr
	// A process group of its own, so that stop can end the workers with
	// the master.
	ng.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := ng.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	go func() { _ = ng.cmd.Wait(); close(ng.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return ng, nil
		}
		select {
		case <-ng.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("nginx exited: %s %s", oneLine(stderr.String()), oneLine(string(log)))
		case <-ctx.Done():
			ng.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ng.stop()
			return nil, fmt.Errorf("nginx did not listen on %s within 10s", addr)
		}
	}
}

// stop stops nginx (SIGTERM, its fast shutdown, which ends the workers
// too; SIGKILL to its process group after 5 s) and removes its folder.
func (ng *benchNginx) stop() {
	_ = ng.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ng.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-ng.cmd.Process.Pid, syscall.SIGKILL)
		<-ng.exited
	}
	os.RemoveAll(ng.dir)
}

// nginxConfig returns the configuration of nginx in dir, listening on addr:
// split_clients on X-User-ID between the upstream blocks up-a and up-b,
// 50%/50%, with keep-alive connections to them; the path is rewritten to
// the variant's model, as the router does.
func nginxConfig(dir, addr string, workers int, ups [2]string) string {
	host := func(u string) string { return strings.TrimPrefix(u, "http://") }
	return fmt.Sprintf(`# written by abgate bench router
worker_processes %d;
daemon off;
master_process on;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    keepalive_requests 10000000;

    upstream %[5]s {
        server %[3]s;
        keepalive 64;
        keepalive_requests 10000000;
    }
    upstream %[6]s {
        server %[4]s;
        keepalive 64;
        keepalive_requests 10000000;
    }

    split_clients "${http_x_user_id}" $variant {
        50%% %[5]s;
        *   %[6]s;
    }

    server {
        listen %[7]s;
        location = /v2/models/%[8]s/infer {
            proxy_pass http://$variant/v2/models/$variant/infer;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Model $variant;
        }
    }
}
`, workers, dir, host(ups[0]), host(ups[1]), benchModelA, benchModelB, addr, benchRoute)
}

// benchCaptureRouter serves a proxy over pools without exposure logging,
// with the drift capture on at its default rate and a reference profile
// for both bench models; stop closes it and stops the capture.
func benchCaptureRouter(ctx context.Context, db *gorm.DB, store *experiments.Store, src router.SnapshotSource, pools *router.Pools, cfg *Config, log *slog.Logger) (string, func(), error) {
	svc := analytics.NewService(db, store, log, analytics.Options{})
	var rows strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&rows, `{"features[0]": %d, "features[1]": %d, "features[2]": %d, "features[3]": %d, "prediction": %d}`+"\n",
			20+i%50, 30000+(i*167)%40000, i%30, i%7, i%2)
	}
	for _, m := range []string{benchModelA, benchModelB} {
		p, err := analytics.BuildProfile(m, strings.NewReader(rows.String()), analytics.ReferenceOptions{})
		if err != nil {
			return "", nil, err
		}
		if err := svc.SaveReference(ctx, p); err != nil {
			return "", nil, err
		}
	}
	capture := analytics.NewCapture(svc, analytics.CaptureOptions{}, log, nil)
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); capture.Run(cctx) }()
	proxy, err := router.NewProxy(src, pools, nil, store, router.ProxyOptions{MaxBodyBytes: cfg.MaxInferBodyBytes, Capture: capture.Offer}, log, nil)
	if err != nil {
		cancel()
		return "", nil, err
	}
	eng := newEngine(log)
	proxy.Mount(eng)
	url, stopServe, err := serveBench(eng, log)
	if err != nil {
		cancel()
		return "", nil, err
	}
	return url, func() {
		stopServe()
		_ = proxy.Close(context.WithoutCancel(ctx))
		cancel()
		<-done
	}, nil
}

// benchPostgresFlag adds --postgres to fs, bound to p: the PostgreSQL
// database a harness connects to, to create and drop a database of its own
// (default the local test database, env ABGATE_BENCH_POSTGRES).
func benchPostgresFlag(fs *flag.FlagSet, p *string, getenv func(string) string) {
	pg := "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	if v := getenv("ABGATE_BENCH_POSTGRES"); v != "" {
		pg = v
	}
	fs.StringVar(p, "postgres", pg, "PostgreSQL database the harness connects to, to create and drop a database of its own (env ABGATE_BENCH_POSTGRES)")
}

// checkBenchPostgres checks that dsn is a postgres:// URL.
func checkBenchPostgres(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("--postgres must be a postgres:// URL, got %q", dsn)
	}
	return nil
}

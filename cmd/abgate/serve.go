package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gorm.io/gorm"

	"abgate"
	"abgate/analytics"
	"abgate/experiments"
	"abgate/migrations"
	"abgate/router"
)

// errUsage reports a command line that did not parse (already explained).
var errUsage = errors.New("usage")

// parse parses the flags of a subcommand into a validated Config.
func parse(name string, args []string, getenv func(string) string, stderr io.Writer) (*Config, []string, error) {
	cfg := &Config{}
	fs, envErrs := flagSet(name, cfg, getenv, stderr)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil, nil, errUsage
	} else if err != nil {
		return nil, nil, errUsage
	}
	if err := envErrs.err(); err != nil {
		return nil, nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	return cfg, fs.Args(), nil
}

// parseNoArgs parses the flags of a subcommand that takes no arguments.
func parseNoArgs(name string, args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	cfg, rest, err := parse(name, args, getenv, stderr)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%s takes no arguments, got %q", name, rest)
	}
	return cfg, nil
}

// openDB opens and migrates the configured database and makes sure the
// exposure partitions of this month and the next are there (PostgreSQL).
func openDB(ctx context.Context, cfg *Config, log *slog.Logger) (*gorm.DB, error) {
	db, dialect, err := migrations.Open(ctx, cfg.DB, log)
	if err != nil {
		return nil, err
	}
	applied, err := migrations.Up(ctx, db)
	if err != nil {
		closeDB(db, log)
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, m := range applied {
		log.Info("migration applied", "version", m.Version, "name", m.Name)
	}
	if err := migrations.EnsurePartitions(ctx, db, time.Now()); err != nil {
		closeDB(db, log)
		return nil, fmt.Errorf("exposure partitions: %w", err)
	}
	log.Info("database ready", "dialect", dialect)
	return db, nil
}

func closeDB(db *gorm.DB, log *slog.Logger) {
	if sqlDB, err := db.DB(); err == nil {
		if err := sqlDB.Close(); err != nil {
			log.Warn("database close failed", "err", err)
		}
	}
}

// serve runs `abgate serve` until ctx is done, then shuts down in reverse
// order of start: HTTP drain, exposure flush, model sessions, database.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseNoArgs("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.logger(stderr)

	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB(db, log)
	repo, err := openRepository(cfg, log)
	if err != nil {
		return err
	}
	defer repo.Close()
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	go migrations.RunPartitionMaintenance(bgCtx, db, log, 24*time.Hour)

	store := experiments.NewStore(db, log)
	token, err := store.EnsureAdmin(ctx, cfg.AdminToken)
	if err != nil {
		return fmt.Errorf("admin key: %w", err)
	}
	if token != "" {
		fmt.Fprintf(stdout, "abgate: admin token (shown once, store it now): %s\n", token)
	}

	// Models of the local repository appear in the catalogue on their own,
	// so that experiments can name them.
	repo.OnChange = func(names []string) {
		for _, name := range names {
			if err := store.EnsureLocalModel(bgCtx, name); err != nil {
				log.Warn("local model not registered", "model", name, "err", err)
			}
		}
	}
	if err := repo.Scan(); err != nil {
		return fmt.Errorf("model repository %s: %w", cfg.Models, err)
	}
	go repo.Watch(bgCtx, rescanEvery)
	if cfg.Demo {
		if err := store.SeedDemo(ctx); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		log.Info("demo experiment ready", "experiment", experiments.DemoExperiment, "route", experiments.DemoRoute)
	}

	reg := newRegistry()
	inf := newInferenceServer(cfg, repo, log, reg)
	// The router calls the inference server in process, through an engine
	// of its own; the public engine routes predictions by experiment.
	local := gin.New()
	_ = router.TrustProxies(local, nil)
	local.Use(recovery(log))
	inf.Mount(local)
	featureNames := func(model, _ string) []string {
		if m, err := repo.Get(model, ""); err == nil {
			return m.Config.FeatureNames
		}
		return nil
	}
	rt, err := startRouting(ctx, cfg, db, store, local, featureNames, log, reg)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	r := newEngine(log)
	if err := router.TrustProxies(r, cfg.TrustedProxies); err != nil {
		rt.close(ctx)
		return err
	}
	inf.MountUnrouted(r)
	rt.mount(r)
	svc := newAnalytics(cfg, db, store, log)
	if cfg.Demo {
		if err := svc.SeedDemoReferences(ctx, []string{experiments.DemoModelV1, experiments.DemoModelV2}); err != nil {
			return fmt.Errorf("demo references: %w", err)
		}
	}
	reg.MustRegister(analytics.NewGauges(svc))
	mountAdmin(r, cfg, store, svc, db, log)
	mountMetrics(r, reg)
	sched := analytics.NewScheduler(svc, db, cfg.AnalyticsInterval, log)
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		sched.Run(bgCtx)
	}()
	serveErr := listenAndServe(ctx, cfg, r, log)
	stopBackground()
	<-schedDone
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	rt.close(shutCtx)
	if serveErr != nil {
		return serveErr
	}
	repo.Close()
	closeDB(db, log)
	log.Info("shutdown complete")
	return nil
}

// newRegistry returns a Prometheus registry with the Go and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newEngine returns a Gin engine that answers panics, unknown routes and
// wrong methods with the JSON error body, and tags requests with an id.
// It trusts no proxy: the client IP is the connection's address (see
// router.TrustProxies to trust some).
func newEngine(log *slog.Logger) *gin.Engine {
	r := gin.New()
	_ = router.TrustProxies(r, nil)
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(recovery(log), requestIDs())
	r.NoRoute(func(c *gin.Context) {
		experiments.WriteError(c, abgate.Errorf(abgate.ENOTFOUND, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		err := abgate.Errorf(abgate.EINVALID, "method %s is not allowed on %s", c.Request.Method, c.Request.URL.Path)
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, abgate.NewErrorBody(err))
	})
	return r
}

// mountMetrics serves reg on GET /metrics.
func mountMetrics(r gin.IRouter, reg *prometheus.Registry) {
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
}

// mountAdmin adds /healthz and the admin API (/api/v1, bodies capped at
// --max-body-bytes) with the report API of svc; the NDJSON import streams
// bodies of any size.
func mountAdmin(r gin.IRouter, cfg *Config, store *experiments.Store, svc *analytics.Service, db *gorm.DB, log *slog.Logger) {
	mountHealth(r, db)
	admin := experiments.NewAPI(store, log)
	admin.Explain = func(_ context.Context, e *experiments.Experiment, unit string, _ *http.Request) (any, error) {
		return router.Explain(e, unit)
	}
	reports := analytics.NewAPI(svc, log)
	reports.MountImport(r.Group("/api/v1"), admin.Authenticate)
	api := r.Group("/api/v1", experiments.LimitBody(cfg.MaxBodyBytes))
	admin.Mount(api)
	reports.Mount(api)
}

// newAnalytics returns the analytics service with the settings of cfg.
func newAnalytics(cfg *Config, db *gorm.DB, store *experiments.Store, log *slog.Logger) *analytics.Service {
	return analytics.NewService(db, store, log, analytics.Options{Settings: analytics.Settings{
		Alpha: cfg.AnalyticsAlpha, Correction: cfg.AnalyticsCorrection, SequentialNStar: cfg.SequentialNStar,
	}, DriftShare: cfg.DriftShare})
}

// mountHealth adds GET /healthz: 200 while the database answers.
func mountHealth(r gin.IRouter, db *gorm.DB) {
	r.GET("/healthz", func(c *gin.Context) {
		sqlDB, err := db.DB()
		if err == nil {
			err = sqlDB.PingContext(c.Request.Context())
		}
		if err != nil {
			experiments.WriteError(c, abgate.Errorf(abgate.EUNAVAILABLE, "database unreachable"))
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok", "version": Version})
	})
}

// listen opens the TCP listener of addr.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// recovery turns a panic into a logged internal error answer.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, recovered any) {
		log.Error("panic in handler", "path", c.Request.URL.Path, "request_id", abgate.RequestIDFromContext(c.Request.Context()), "err", fmt.Sprint(recovered))
		experiments.WriteError(c, abgate.Errorf(abgate.EINTERNAL, "internal error"))
	})
}

// requestIDHeader is X-Request-ID in the canonical form under which
// net/http keeps it in a header map: the middleware reads and writes the
// map with it directly, since Get and Set with "X-Request-ID" would
// canonicalize the key into a new string on every request.
const requestIDHeader = "X-Request-Id"

// madeID is an id that requestIDs made: its text, never changed once
// written, and the answer's header value that holds it.
type madeID struct {
	text  [32]byte
	value [1]string
}

// requestIDs returns the middleware that propagates the client's
// X-Request-ID (when sane) or makes one, and puts it in the request context
// and in the answer. Ids it makes are 16 bytes drawn at random once, with a
// counter added to the last 8, in hex: unique (a process would need 2^64
// requests to repeat one; two processes share a prefix with probability
// 2^-64) without reading the system's random source per request.
func requestIDs() gin.HandlerFunc {
	var seed [16]byte
	_, _ = rand.Read(seed[:])
	base := binary.BigEndian.Uint64(seed[8:])
	var n atomic.Uint64
	return func(c *gin.Context) {
		var id string
		var value []string // the answer's header value
		if v := c.Request.Header[requestIDHeader]; len(v) > 0 {
			id, value = v[0], v[:1:1]
		}
		if id == "" || len(id) > 128 {
			// The id's text and the header's value in one allocation.
			m := new(madeID)
			b := seed
			binary.BigEndian.PutUint64(b[8:], base+n.Add(1))
			hex.Encode(m.text[:], b[:])
			id = unsafe.String(&m.text[0], len(m.text))
			m.value[0] = id
			value = m.value[:]
		}
		c.Writer.Header()[requestIDHeader] = value
		c.Request = c.Request.WithContext(abgate.NewContextWithRequestID(c.Request.Context(), id))
		c.Next()
	}
}

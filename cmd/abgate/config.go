package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"abgate"
	"abgate/router"
)

// Config is what flags and their environment twins set. Flags win.
type Config struct {
	Listen       string
	DB           string
	Models       string
	AdminToken   string
	ORTLib       string
	Demo         bool
	LogFormat    string
	LogLevel     string
	MaxBodyBytes int64
	// MaxInferBodyBytes caps inference request bodies (tensors, images).
	MaxInferBodyBytes int64
	ShutdownTimeout   time.Duration
	// UnitHeader names the request header with the unit id of routed
	// predictions; DefaultRoute is the route of /predict without ?model=.
	UnitHeader   string
	DefaultRoute string
	// CORSOrigins are the origins allowed to call the prediction and
	// feedback endpoints from a browser; empty means no CORS headers.
	CORSOrigins []string
	// TrustedProxies are the IPs and CIDRs whose X-Forwarded-For names the
	// client IP; empty means the client IP is the connection's address.
	TrustedProxies []string
	// AnalyticsInterval is how often results of running experiments are
	// recomputed; AnalyticsCorrection the multiple-testing correction of
	// "significant" (holm, bh or none); SequentialNStar tunes the mixing
	// variance of the sequential test (units per variant).
	AnalyticsInterval   time.Duration
	AnalyticsAlpha      float64
	AnalyticsCorrection string
	SequentialNStar     float64
	// DriftSampleRate is the share of routed V2 predictions whose inputs
	// the drift capture bins; 0 turns it off.
	DriftSampleRate float64
	// DriftShare is the share of drifted features that makes a variant's
	// dataset drift.
	DriftShare float64
}

// flagSet returns the flags of a subcommand bound to cfg, defaults taken
// from the environment (getenv) where set.
func flagSet(name string, cfg *Config, getenv func(string) string, errOut io.Writer) (*flag.FlagSet, *envErrors) {
	fs := flag.NewFlagSet("abgate "+name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	envErrs := &envErrors{}
	str := func(p *string, flagName, env, def, usage string) {
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, flagName, def, usage+" (env "+env+")")
	}
	str(&cfg.Listen, "listen", "ABGATE_LISTEN", "127.0.0.1:8080", "address to serve HTTP on")
	str(&cfg.DB, "db", "ABGATE_DATABASE_URL", "", "database: empty = sqlite:./data/abgate.db, sqlite:PATH, or postgres://...")
	str(&cfg.Models, "models", "ABGATE_MODELS", "./models", "model repository folder")
	str(&cfg.AdminToken, "admin-token", "ABGATE_ADMIN_TOKEN", "", "token of the admin API key (generated and printed once on first start when empty)")
	str(&cfg.ORTLib, "ort-lib", "ABGATE_ORT_LIB", "./lib/libonnxruntime.so.1", "ONNX Runtime shared library")
	str(&cfg.LogFormat, "log-format", "ABGATE_LOG_FORMAT", "text", "log format: text or json")
	str(&cfg.LogLevel, "log-level", "ABGATE_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	str(&cfg.UnitHeader, "unit-header", "ABGATE_UNIT_HEADER", "", "request header with the unit id of routed predictions (empty: X-User-ID)")
	str(&cfg.DefaultRoute, "default-route", "ABGATE_DEFAULT_ROUTE", "", "route of POST /predict without ?model= (empty: ?model= is required)")

	list := func(p *[]string, flagName, env, usage string) {
		*p = splitList(getenv(env))
		fs.Func(flagName, usage+" (env "+env+")", func(v string) error {
			*p = splitList(v)
			return nil
		})
	}
	list(&cfg.CORSOrigins, "cors-origins", "ABGATE_CORS_ORIGINS", "comma-separated origins allowed to call predictions and feedback from browsers (empty: no CORS)")
	list(&cfg.TrustedProxies, "trusted-proxies", "ABGATE_TRUSTED_PROXIES", "comma-separated IPs and CIDRs of proxies whose X-Forwarded-For is believed (empty: none)")

	demo := false
	if v := getenv("ABGATE_DEMO"); v != "" {
		b, err := strconv.ParseBool(v)
		envErrs.add("ABGATE_DEMO", v, err)
		demo = b
	}
	fs.BoolVar(&cfg.Demo, "demo", demo, "write the demo models and seed the demo experiment (env ABGATE_DEMO)")

	maxBody := int64(1 << 20)
	if v := getenv("ABGATE_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		envErrs.add("ABGATE_MAX_BODY_BYTES", v, err)
		maxBody = n
	}
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", maxBody, "largest accepted request body in bytes (env ABGATE_MAX_BODY_BYTES)")

	maxInfer := int64(64 << 20)
	if v := getenv("ABGATE_MAX_INFER_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		envErrs.add("ABGATE_MAX_INFER_BODY_BYTES", v, err)
		maxInfer = n
	}
	fs.Int64Var(&cfg.MaxInferBodyBytes, "max-infer-body-bytes", maxInfer, "largest accepted inference request body in bytes (env ABGATE_MAX_INFER_BODY_BYTES)")

	shutdown := 30 * time.Second
	if v := getenv("ABGATE_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		envErrs.add("ABGATE_SHUTDOWN_TIMEOUT", v, err)
		shutdown = d
	}
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", shutdown, "how long to drain requests on SIGTERM (env ABGATE_SHUTDOWN_TIMEOUT)")

	interval := 5 * time.Minute
	if v := getenv("ABGATE_ANALYTICS_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		envErrs.add("ABGATE_ANALYTICS_INTERVAL", v, err)
		interval = d
	}
	fs.DurationVar(&cfg.AnalyticsInterval, "analytics-interval", interval, "how often the results of running experiments are recomputed (env ABGATE_ANALYTICS_INTERVAL)")
	float := func(p *float64, flagName, env string, def float64, usage string) {
		if v := getenv(env); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			envErrs.add(env, v, err)
			def = f
		}
		fs.Float64Var(p, flagName, def, usage+" (env "+env+")")
	}
	float(&cfg.AnalyticsAlpha, "alpha", "ABGATE_ALPHA", 0.05, "significance level of the results")
	float(&cfg.DriftSampleRate, "drift-sample-rate", "ABGATE_DRIFT_SAMPLE_RATE", 0.1, "share of routed V2 predictions whose inputs are captured for data drift (0 turns the capture off)")
	float(&cfg.DriftShare, "drift-share", "ABGATE_DRIFT_SHARE", 0.5, "share of drifted features that makes a variant's dataset drift")
	float(&cfg.SequentialNStar, "sequential-n", "ABGATE_SEQUENTIAL_N", 5000, "units per variant where the sequential test is tightest (tunes its mixing variance)")
	str(&cfg.AnalyticsCorrection, "correction", "ABGATE_CORRECTION", "holm", "multiple-testing correction of \"significant\" across variants x metrics: holm, bh or none")
	return fs, envErrs
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// envErrors collects environment values that do not parse.
type envErrors struct{ msgs []string }

func (e *envErrors) add(env, v string, err error) {
	if err != nil {
		e.msgs = append(e.msgs, fmt.Sprintf("%s=%q: %v", env, v, err))
	}
}

func (e *envErrors) err() error {
	if len(e.msgs) == 0 {
		return nil
	}
	return fmt.Errorf("bad environment: %s", strings.Join(e.msgs, "; "))
}

// validate checks the values that flags cannot.
func (c *Config) validate() error {
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("--max-body-bytes must be at least 1024, got %d", c.MaxBodyBytes)
	}
	if c.MaxInferBodyBytes < 1024 {
		return fmt.Errorf("--max-infer-body-bytes must be at least 1024, got %d", c.MaxInferBodyBytes)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout must be positive, got %v", c.ShutdownTimeout)
	}
	if c.AnalyticsInterval < time.Second {
		return fmt.Errorf("--analytics-interval must be at least 1s, got %v", c.AnalyticsInterval)
	}
	if c.AnalyticsAlpha <= 0 || c.AnalyticsAlpha >= 0.5 {
		return fmt.Errorf("--alpha must be in (0, 0.5), got %v", c.AnalyticsAlpha)
	}
	if c.DriftSampleRate < 0 || c.DriftSampleRate > 1 {
		return fmt.Errorf("--drift-sample-rate must be in [0, 1], got %v", c.DriftSampleRate)
	}
	if c.DriftShare <= 0 || c.DriftShare > 1 {
		return fmt.Errorf("--drift-share must be in (0, 1], got %v", c.DriftShare)
	}
	if c.SequentialNStar < 10 {
		return fmt.Errorf("--sequential-n must be at least 10, got %v", c.SequentialNStar)
	}
	switch c.AnalyticsCorrection {
	case "holm", "bh", "none":
	default:
		return fmt.Errorf("--correction must be holm, bh or none, got %q", c.AnalyticsCorrection)
	}
	if _, err := router.NewCORS(router.CORSOptions{Origins: c.CORSOrigins}); err != nil {
		return fmt.Errorf("--cors-origins: %s", abgate.ErrorMessage(err))
	}
	if err := router.CheckTrustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %s", abgate.ErrorMessage(err))
	}
	if _, err := c.level(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	}
	return nil
}

func (c *Config) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return l, nil
}

// logger returns the slog logger the config asks for, writing to w.
func (c *Config) logger(w io.Writer) *slog.Logger {
	level, _ := c.level()
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

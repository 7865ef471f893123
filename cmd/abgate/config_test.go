package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"abgate"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// defaults is the Config of a command line without flags or environment.
func defaults() Config {
	return Config{
		Listen:              "127.0.0.1:8080",
		DB:                  "",
		Models:              "./models",
		AdminToken:          "",
		ORTLib:              "./lib/libonnxruntime.so.1",
		Demo:                false,
		LogFormat:           "text",
		LogLevel:            "info",
		MaxBodyBytes:        1 << 20,
		MaxInferBodyBytes:   64 << 20,
		ShutdownTimeout:     30 * time.Second,
		AnalyticsInterval:   5 * time.Minute,
		AnalyticsAlpha:      0.05,
		AnalyticsCorrection: "holm",
		SequentialNStar:     5000,
		DriftSampleRate:     0.1,
		DriftShare:          0.5,
	}
}

func TestParseConfig(t *testing.T) {
	fullEnv := map[string]string{
		"ABGATE_LISTEN":               "127.0.0.1:9000",
		"ABGATE_DATABASE_URL":         "postgres://env@db/abgate",
		"ABGATE_MODELS":               "/srv/models",
		"ABGATE_ADMIN_TOKEN":          "env-token",
		"ABGATE_ORT_LIB":              "/opt/ort/libonnxruntime.so.1",
		"ABGATE_DEMO":                 "true",
		"ABGATE_LOG_FORMAT":           "json",
		"ABGATE_LOG_LEVEL":            "debug",
		"ABGATE_MAX_BODY_BYTES":       "4096",
		"ABGATE_MAX_INFER_BODY_BYTES": "8192",
		"ABGATE_SHUTDOWN_TIMEOUT":     "5s",
		"ABGATE_CORS_ORIGINS":         "https://a.example, http://localhost:3000",
		"ABGATE_TRUSTED_PROXIES":      "10.0.0.0/8,::1",
		"ABGATE_ANALYTICS_INTERVAL":   "1m",
		"ABGATE_ALPHA":                "0.01",
		"ABGATE_CORRECTION":           "bh",
		"ABGATE_SEQUENTIAL_N":         "20000",
	}
	fromEnv := Config{
		Listen:              "127.0.0.1:9000",
		DB:                  "postgres://env@db/abgate",
		Models:              "/srv/models",
		AdminToken:          "env-token",
		ORTLib:              "/opt/ort/libonnxruntime.so.1",
		Demo:                true,
		LogFormat:           "json",
		LogLevel:            "debug",
		MaxBodyBytes:        4096,
		MaxInferBodyBytes:   8192,
		ShutdownTimeout:     5 * time.Second,
		CORSOrigins:         []string{"https://a.example", "http://localhost:3000"},
		TrustedProxies:      []string{"10.0.0.0/8", "::1"},
		AnalyticsInterval:   time.Minute,
		AnalyticsAlpha:      0.01,
		AnalyticsCorrection: "bh",
		SequentialNStar:     20000,
		DriftSampleRate:     0.1,
		DriftShare:          0.5,
	}
	allFlags := []string{
		"--listen", "127.0.0.1:9100",
		"--db", "sqlite:/tmp/flag.db",
		"--models", "./flag-models",
		"--admin-token", "flag-token",
		"--ort-lib", "./flag/libonnxruntime.so.1",
		"--demo=false",
		"--log-format", "text",
		"--log-level", "warn",
		"--max-body-bytes", "2048",
		"--max-infer-body-bytes", "16384",
		"--shutdown-timeout", "2m",
		"--cors-origins", "https://flag.example",
		"--trusted-proxies", "192.168.1.1",
		"--analytics-interval", "30s",
		"--alpha", "0.1",
		"--correction", "none",
		"--sequential-n", "100",
	}
	fromFlags := Config{
		Listen:              "127.0.0.1:9100",
		DB:                  "sqlite:/tmp/flag.db",
		Models:              "./flag-models",
		AdminToken:          "flag-token",
		ORTLib:              "./flag/libonnxruntime.so.1",
		Demo:                false,
		LogFormat:           "text",
		LogLevel:            "warn",
		MaxBodyBytes:        2048,
		MaxInferBodyBytes:   16384,
		ShutdownTimeout:     2 * time.Minute,
		CORSOrigins:         []string{"https://flag.example"},
		TrustedProxies:      []string{"192.168.1.1"},
		AnalyticsInterval:   30 * time.Second,
		AnalyticsAlpha:      0.1,
		AnalyticsCorrection: "none",
		SequentialNStar:     100,
		DriftSampleRate:     0.1,
		DriftShare:          0.5,
	}
	oneFlag := fromEnv
	oneFlag.Listen = "127.0.0.1:9200"

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Config
	}{
		{"defaults", nil, nil, defaults()},
		{"env over defaults", fullEnv, nil, fromEnv},
		{"flags over defaults", nil, allFlags, fromFlags},
		{"flags over env", fullEnv, allFlags, fromFlags},
		{"one flag over env, env for the rest", fullEnv, []string{"-listen=127.0.0.1:9200"}, oneFlag},
		{"empty env is unset", map[string]string{"ABGATE_LISTEN": "", "ABGATE_DEMO": ""}, nil, defaults()},
		{"demo env takes ParseBool forms", map[string]string{"ABGATE_DEMO": "1"}, nil, func() Config { c := defaults(); c.Demo = true; return c }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, rest, err := parse("serve", tt.args, env(tt.env), &stderr)
			if err != nil {
				t.Fatalf("parse: %v (stderr %q)", err, stderr.String())
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("config\n got %+v\nwant %+v", *got, tt.want)
			}
			if len(rest) != 0 {
				t.Errorf("rest = %q; want none", rest)
			}
		})
	}
}

func TestParseRest(t *testing.T) {
	_, rest, err := parse("migrate", []string{"--db", "sqlite:x.db", "up"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(rest, " "), "up"; got != want {
		t.Errorf("rest = %q; want %q", got, want)
	}
}

func TestParseBadEnv(t *testing.T) {
	tests := []struct {
		env  string
		val  string
		args []string
	}{
		{"ABGATE_DEMO", "maybe", nil},
		{"ABGATE_MAX_BODY_BYTES", "lots", nil},
		{"ABGATE_MAX_BODY_BYTES", "1MB", nil},
		{"ABGATE_SHUTDOWN_TIMEOUT", "10", nil}, // no unit
		{"ABGATE_SHUTDOWN_TIMEOUT", "soon", nil},
		// A bad value is reported even when a flag overrides it: the
		// environment is wrong either way.
		{"ABGATE_DEMO", "yes please", []string{"--demo"}},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.val, func(t *testing.T) {
			_, _, err := parse("serve", tt.args, env(map[string]string{tt.env: tt.val}), io.Discard)
			if err == nil {
				t.Fatalf("parse accepted %s=%q", tt.env, tt.val)
			}
			if errors.Is(err, errUsage) {
				t.Fatalf("parse error is errUsage; want one that names the variable")
			}
			for _, want := range []string{tt.env, fmt.Sprintf("%q", tt.val)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %s", err, want)
				}
			}
		})
	}
}

func TestParseBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"--nope"}},
		{"bad bool", []string{"--demo=maybe"}},
		{"bad int", []string{"--max-body-bytes", "big"}},
		{"bad duration", []string{"--shutdown-timeout", "10"}},
		{"missing value", []string{"--listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, _, err := parse("serve", tt.args, env(nil), &stderr)
			if !errors.Is(err, errUsage) {
				t.Fatalf("parse(%q) error = %v; want errUsage", tt.args, err)
			}
			if !strings.Contains(stderr.String(), "Usage of abgate serve") {
				t.Errorf("stderr does not show the usage:\n%s", stderr.String())
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // in the error; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"json logs", func(c *Config) { c.LogFormat = "json" }, ""},
		{"debug", func(c *Config) { c.LogLevel = "debug" }, ""},
		{"error", func(c *Config) { c.LogLevel = "error" }, ""},
		{"smallest body", func(c *Config) { c.MaxBodyBytes = 1024 }, ""},
		{"log format xml", func(c *Config) { c.LogFormat = "xml" }, "--log-format"},
		{"log format empty", func(c *Config) { c.LogFormat = "" }, "--log-format"},
		{"log level loud", func(c *Config) { c.LogLevel = "loud" }, "--log-level"},
		{"log level empty", func(c *Config) { c.LogLevel = "" }, "--log-level"},
		{"body too small", func(c *Config) { c.MaxBodyBytes = 1023 }, "--max-body-bytes"},
		{"body zero", func(c *Config) { c.MaxBodyBytes = 0 }, "--max-body-bytes"},
		{"body negative", func(c *Config) { c.MaxBodyBytes = -1 }, "--max-body-bytes"},
		{"infer body too small", func(c *Config) { c.MaxInferBodyBytes = 1023 }, "--max-infer-body-bytes"},
		{"shutdown zero", func(c *Config) { c.ShutdownTimeout = 0 }, "--shutdown-timeout"},
		{"shutdown negative", func(c *Config) { c.ShutdownTimeout = -time.Second }, "--shutdown-timeout"},
		{"cors origins", func(c *Config) { c.CORSOrigins = []string{"https://app.example", "http://127.0.0.1:3000"} }, ""},
		{"cors wildcard", func(c *Config) { c.CORSOrigins = []string{"*"} }, "--cors-origins"},
		{"cors origin with path", func(c *Config) { c.CORSOrigins = []string{"https://app.example/"} }, "--cors-origins"},
		{"trusted proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.168.0.1", "fd00::/8"} }, ""},
		{"trusted proxy not a cidr", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "--trusted-proxies"},
		{"trusted proxy a name", func(c *Config) { c.TrustedProxies = []string{"proxy.local"} }, "--trusted-proxies"},
		{"analytics every second", func(c *Config) { c.AnalyticsInterval = time.Second }, ""},
		{"analytics too often", func(c *Config) { c.AnalyticsInterval = 500 * time.Millisecond }, "--analytics-interval"},
		{"alpha 0.01", func(c *Config) { c.AnalyticsAlpha = 0.01 }, ""},
		{"alpha zero", func(c *Config) { c.AnalyticsAlpha = 0 }, "--alpha"},
		{"alpha half", func(c *Config) { c.AnalyticsAlpha = 0.5 }, "--alpha"},
		{"correction bh", func(c *Config) { c.AnalyticsCorrection = "bh" }, ""},
		{"correction bonferroni", func(c *Config) { c.AnalyticsCorrection = "bonferroni" }, "--correction"},
		{"sequential n small", func(c *Config) { c.SequentialNStar = 5 }, "--sequential-n"},
		{"drift capture off", func(c *Config) { c.DriftSampleRate = 0 }, ""},
		{"drift rate over 1", func(c *Config) { c.DriftSampleRate = 1.5 }, "--drift-sample-rate"},
		{"drift share zero", func(c *Config) { c.DriftShare = 0 }, "--drift-share"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults()
			tt.change(&c)
			err := c.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("validate() = %v; want nil", err)
			case tt.want != "" && err == nil:
				t.Errorf("validate() accepted %+v", c)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("validate() = %q; want it to name %s", err, tt.want)
			}
		})
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	c := defaults()
	c.LogFormat, c.LogLevel = "json", "warn"
	log := c.logger(&buf)
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("json log line %q: %v", buf.String(), err)
	}
	if line["msg"] != "shown" || line["k"] != "v" {
		t.Errorf("log line = %v; want msg=shown k=v only", line)
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string // substring; "" = empty stdout
		wantStderr string // substring; "" = empty stderr
	}{
		{"no command", nil, nil, 2, "", "usage: abgate <command>"},
		{"unknown command", []string{"frobnicate"}, nil, 2, "", `unknown command "frobnicate"`},
		{"version", []string{"version"}, nil, 0, "abgate " + Version + "\n", ""},
		{"--version", []string{"--version"}, nil, 0, "abgate " + Version + "\n", ""},
		{"help", []string{"help"}, nil, 0, "migrate up", ""},
		{"serve bad flag", []string{"serve", "--nope"}, nil, 2, "", "flag provided but not defined: -nope"},
		{"serve stray argument", []string{"serve", "now"}, nil, 1, "", `abgate: serve takes no arguments, got ["now"]`},
		{"serve bad log format", []string{"serve", "--log-format", "xml"}, nil, 1, "", `abgate: --log-format must be text or json, got "xml"`},
		{"serve bad env", []string{"serve"}, map[string]string{"ABGATE_SHUTDOWN_TIMEOUT": "10"}, 1, "", `abgate: bad environment: ABGATE_SHUTDOWN_TIMEOUT="10"`},
		{"serve unsupported database", []string{"serve", "--db", "mysql://root@db/x"}, nil, 1, "", `abgate: unsupported database DSN (scheme "mysql")`},
		{"migrate without subcommand", []string{"migrate"}, nil, 2, "", "usage: abgate migrate [flags] up|status"},
		{"migrate unknown subcommand", []string{"migrate", "down"}, nil, 2, "", "usage: abgate migrate [flags] up|status"},
		{"migrate flag after subcommand", []string{"migrate", "up", "--db", "sqlite:x.db"}, nil, 2, "", "usage: abgate migrate [flags] up|status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, env(tt.env), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d; want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			check := func(name, got, want string) {
				if want == "" && got != "" {
					t.Errorf("%s = %q; want it empty", name, got)
				} else if !strings.Contains(got, want) {
					t.Errorf("%s = %q; want it to contain %q", name, got, want)
				}
			}
			check("stdout", stdout.String(), tt.wantStdout)
			check("stderr", stderr.String(), tt.wantStderr)
		})
	}
}

func TestErrorLine(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("plain"), "plain"},
		{abgate.Errorf(abgate.EUNAVAILABLE, "cannot reach db"), "cannot reach db"},
		{fmt.Errorf("migrate: %w", abgate.Errorf(abgate.ECONFLICT, "schema is newer")), "migrate: schema is newer"},
		{abgate.Errorf(abgate.EUNAVAILABLE, "failed to connect:\n\thost a: refused\n\thost b: refused"), "failed to connect: host a: refused host b: refused"},
	}
	for _, tt := range tests {
		if got := errorLine(tt.err); got != tt.want {
			t.Errorf("errorLine(%q) = %q; want %q", tt.err, got, tt.want)
		}
	}
}

// TestGCPercent: abgate sets its GC target only when the environment sets
// no GOGC, and currentGCPercent reads back the target in effect.
func TestGCPercent(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	if p, ok := gcPercent(env(nil)); !ok || p != defaultGCPercent {
		t.Errorf("no GOGC: gcPercent = %d, %v; want %d, true", p, ok, defaultGCPercent)
	}
	for _, v := range []string{"50", "off", "100"} {
		if _, ok := gcPercent(env(map[string]string{"GOGC": v})); ok {
			t.Errorf("GOGC=%s: abgate sets its own target; the environment's must win", v)
		}
	}
	old := debug.SetGCPercent(defaultGCPercent)
	defer debug.SetGCPercent(old)
	if got := currentGCPercent(); got != defaultGCPercent {
		t.Errorf("currentGCPercent() = %d after SetGCPercent(%d)", got, defaultGCPercent)
	}
	debug.SetGCPercent(150)
	if got := currentGCPercent(); got != 150 {
		t.Errorf("currentGCPercent() = %d after SetGCPercent(150)", got)
	}
}

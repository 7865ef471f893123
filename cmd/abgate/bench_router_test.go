package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"abgate/migrations/dbtest"
)

// TestBenchRouter runs `abgate bench router` for a short time on the
// PostgreSQL of ABGATE_TEST_POSTGRES (skipped without it, failed in CI).
// With nginx installed the nginx comparison runs too; without it the
// harness says it skipped it. The bucketing and exposure lines appear
// either way, and the run leaves no database behind.
func TestBenchRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("bench harness: not in -short")
	}
	base := os.Getenv(dbtest.EnvPostgres)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal(dbtest.EnvPostgres + " must be set in CI")
		}
		t.Skip("set " + dbtest.EnvPostgres + " to run the router bench harness")
	}
	opts := benchRouterOptions{
		benchOptions: benchOptions{Duration: 200 * time.Millisecond, Concurrency: 4, Rounds: 2},
		Postgres:     base,
		NginxWorkers: 1,
		Units:        1000,
	}
	gin.SetMode(gin.ReleaseMode)
	var out bytes.Buffer
	if err := benchRouter(t.Context(), opts, &out, io.Discard); err != nil {
		t.Fatalf("bench router: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^bench: bucketing-assign value=[0-9.]+ ns/op baseline=100 ratio=[0-9.]+$`),
		regexp.MustCompile(`(?m)^bench: target assign-allocs==0 bucketing-assign allocs=0 met$`),
		regexp.MustCompile(`(?m)^bench: exposure-on-vs-off value=[0-9.]+ req/s baseline=[0-9.]+ ratio=[0-9.]+$`),
		regexp.MustCompile(`(?m)^bench: router-vs-nginx (value=[0-9.]+ req/s baseline=[0-9.]+ ratio=[0-9.]+|skipped \(nginx not installed)`),
		regexp.MustCompile(`(?m)^bench: target exposure>=0.9 exposure-on-vs-off ratio=[0-9.]+ (met|missed)$`),
		regexp.MustCompile(`(?m)^# exposures: ([0-9]+) rows in PostgreSQL for ([0-9]+) answers`),
	} {
		if !want.MatchString(got) {
			t.Errorf("no line matching %s in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "bench: router-vs-nginx value=") && !strings.Contains(got, "bench: router-p99-minus-nginx value=") {
		t.Errorf("nginx measured but no p99 line:\n%s", got)
	}
}

// TestBenchRouterWithoutNginx checks the line that replaces the nginx
// comparison when nginx cannot be found.
func TestBenchRouterWithoutNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("bench harness: not in -short")
	}
	base := os.Getenv(dbtest.EnvPostgres)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal(dbtest.EnvPostgres + " must be set in CI")
		}
		t.Skip("set " + dbtest.EnvPostgres + " to run the router bench harness")
	}
	opts := benchRouterOptions{
		benchOptions: benchOptions{Duration: 100 * time.Millisecond, Concurrency: 2, Rounds: 1},
		Postgres:     base,
		Nginx:        "/nonexistent/nginx",
		NginxWorkers: 1,
		Units:        10,
	}
	gin.SetMode(gin.ReleaseMode)
	var out bytes.Buffer
	if err := benchRouter(t.Context(), opts, &out, io.Discard); err != nil {
		t.Fatalf("bench router: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"bench: router-vs-nginx skipped (nginx not installed: apt-get install nginx-light)",
		"bench: target rps>=0.8 router-vs-nginx ratio=none missed (nginx not installed)",
		"bench: exposure-on-vs-off value=",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}

func TestParseBenchRouterFlags(t *testing.T) {
	env := func(string) string { return "" }
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"one worker", []string{"--nginx-workers", "1"}, true},
		{"three workers", []string{"--nginx-workers", "3"}, false},
		{"no duration", []string{"--duration", "0s"}, false},
		{"not postgres", []string{"--postgres", "sqlite:x.db"}, false},
		{"no units", []string{"--units", "0"}, false},
		{"argument", []string{"extra"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseBenchRouterFlags(tc.args, env, io.Discard)
			if got := err == nil; got != tc.ok {
				t.Errorf("parse %q: err %v; want ok %v", tc.args, err, tc.ok)
			}
		})
	}
}

func TestNginxConfig(t *testing.T) {
	got := nginxConfig("/tmp/x", "127.0.0.1:9000", 2, [2]string{"http://127.0.0.1:1", "http://127.0.0.1:2"})
	for _, want := range []string{
		"worker_processes 2;",
		"daemon off;",
		"access_log off;",
		"pid /tmp/x/nginx.pid;",
		`split_clients "${http_x_user_id}" $variant {`,
		"50% up-a;",
		"server 127.0.0.1:1;",
		"keepalive 64;",
		"proxy_http_version 1.1;",
		"listen 127.0.0.1:9000;",
		"proxy_pass http://$variant/v2/models/$variant/infer;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}

// Command abgate is the A/B experimentation platform for machine-learning
// models: one binary with the subcommands serve (everything in one
// process), router, inference, analytics, migrate, bench and version.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"syscall"

	"github.com/gin-gonic/gin"

	"abgate"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

const usage = `abgate: A/B experiments for machine-learning models

usage: abgate <command> [flags]

commands:
  serve            run everything in one process (admin API, inference, metrics)
  router           run the router alone (routed predictions, feedback; remote backends)
  inference        run the inference server alone (V2 protocol, /predict)
  analytics        run the results scheduler alone (one leader on PostgreSQL), with the report API
  migrate up       apply pending database migrations
  migrate status   list migrations and whether they are applied
  bench inference  measure inference throughput (make bench)
  bench router     measure the router against nginx (make bench)
  bench analytics  measure a results refresh on PostgreSQL (make bench)
  bench drift      measure a drift report on PostgreSQL (make bench)
  version          print the version

Run "abgate <command> -h" for the flags of a command.
`

// defaultGCPercent is the garbage collector's target (GOGC) that abgate
// runs with when the environment sets no GOGC: the heap may grow to five
// times what is live between two collections rather than twice. abgate's
// live heap is small (models live in ONNX Runtime's memory, outside it),
// and each request leaves a little garbage: at 100 the collector ran
// often enough to cost the tabular model's server a tenth of its
// throughput (see the README's Performance). GOGC set in the environment
// wins, and GOMEMLIMIT bounds the heap where memory is tight.
const defaultGCPercent = 400

func main() {
	gin.SetMode(gin.ReleaseMode)
	if percent, ok := gcPercent(os.Getenv); ok {
		debug.SetGCPercent(percent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// gcPercent returns the GC target to set and true when the environment
// sets no GOGC (the runtime has applied one that it sets).
func gcPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return defaultGCPercent, true
}

// currentGCPercent returns the garbage collector's target in effect (0
// when collection is off).
func currentGCPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int(s[0].Value.Uint64())
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serve(ctx, rest, getenv, stdout, stderr)
	case "router":
		err = routerCmd(ctx, rest, getenv, stdout, stderr)
	case "inference":
		err = inferenceCmd(ctx, rest, getenv, stdout, stderr)
	case "analytics":
		err = analyticsCmd(ctx, rest, getenv, stdout, stderr)
	case "bench":
		err = bench(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		err = migrate(ctx, rest, getenv, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "abgate %s\n", Version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "abgate: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err == errUsage {
		return 2
	} else if err != nil {
		fmt.Fprintf(stderr, "abgate: %s\n", errorLine(err))
		return 1
	}
	return 0
}

// errorLine returns err as one line for a terminal: an *abgate.Error in the
// chain reads as its message, without the "abgate error: code=..." form
// meant for logs, and line breaks (pgx gives one line per connection
// attempt) become spaces.
func errorLine(err error) string {
	msg := err.Error()
	var e *abgate.Error
	if errors.As(err, &e) {
		msg = strings.Replace(msg, e.Error(), e.Message, 1)
	}
	return strings.Join(strings.Fields(msg), " ")
}

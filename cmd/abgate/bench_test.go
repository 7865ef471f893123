package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// benchORTLib returns the ONNX Runtime library for in-process tests:
// $ABGATE_ORT_LIB, else ../../lib (where `make lib` puts it). It skips t
// when the library is absent, or fails it when the environment variable CI
// is set: CI must run these tests.
func benchORTLib(t *testing.T) string {
	t.Helper()
	lib := os.Getenv("ABGATE_ORT_LIB")
	if lib == "" {
		lib = filepath.Join("..", "..", "lib", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(lib); err != nil {
		msg := "ONNX Runtime library not found at " + lib + ": `make lib` fetches it, or set ABGATE_ORT_LIB"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return lib
}

// Lines of the harness's output.
var (
	benchLine   = regexp.MustCompile(`^bench: ([a-z0-9-]+) value=([0-9]+\.[0-9]) (items/s|req/s) baseline=([0-9]+\.[0-9]) ratio=([0-9]+\.[0-9]{3})$`)
	skipLine    = regexp.MustCompile(`^bench: skip ([a-z0-9-]+): \S.*$`)
	targetLine  = regexp.MustCompile(`^bench: target (binary|json|tabular)>=([0-9.]+) ([a-z0-9-]+) ratio=([0-9]+\.[0-9]{3} (met|missed)|none missed \(not measured\))$`)
	commentLine = regexp.MustCompile(`^# \S`)
)

// TestBenchInference runs the harness briefly and checks that it prints a
// well-formed line for every case it could run: the JSON and tabular cases
// and batching must run; binary tensors and /predict run or are skipped.
func TestBenchInference(t *testing.T) {
	lib := benchORTLib(t)
	gin.SetMode(gin.ReleaseMode)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"inference", "--duration", "200ms", "--concurrency", "4", "--rounds", "2", "--ort-lib", lib}
	err := bench(ctx, args, func(string) string { return "" }, &stdout, &stderr)
	t.Logf("output:\n%s", stdout.String())
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("bench: %v", err)
	}

	ran := map[string]bool{}
	skipped := map[string]bool{}
	targets := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if m := benchLine.FindStringSubmatch(line); m != nil {
			name := m[1]
			v, _ := strconv.ParseFloat(m[2], 64)
			b, _ := strconv.ParseFloat(m[4], 64)
			ratio, _ := strconv.ParseFloat(m[5], 64)
			if v <= 0 || b <= 0 {
				t.Errorf("%s: value %g and baseline %g must be positive", name, v, b)
			} else if got, want := ratio, v/b; math.Abs(got-want) > 0.002+0.01*want {
				t.Errorf("%s: ratio=%g, but value/baseline is %g", name, got, want)
			}
			if ran[name] {
				t.Errorf("%s printed twice", name)
			}
			ran[name] = true
			continue
		}
		if m := skipLine.FindStringSubmatch(line); m != nil {
			skipped[m[1]] = true
			continue
		}
		if m := targetLine.FindStringSubmatch(line); m != nil {
			targets[m[1]] = true
			continue
		}
		if !commentLine.MatchString(line) {
			t.Errorf("line %q is neither a bench line, a skip, a target nor a # comment", line)
		}
	}

	for _, name := range []string{"cnn-json-vs-inprocess", "tabular-server-vs-trivial", "tabular-batching-on-vs-off"} {
		if !ran[name] {
			t.Errorf("no line for %s", name)
		}
	}
	if !ran["cnn-binary-batching-on-vs-off"] && !ran["cnn-json-batching-on-vs-off"] {
		t.Error("no line for CNN batching on vs off")
	}
	for name, load := range map[string]string{"cnn-binary-vs-inprocess": "cnn-binary", "cnn-predict-vs-inprocess": "cnn-predict"} {
		if ran[name] == skipped[load] {
			t.Errorf("%s: ran %v, skipped %v; want exactly one", name, ran[name], skipped[load])
		}
	}
	if skipped["cnn-binary"] != ran["cnn-json-batching-on-vs-off"] {
		t.Error("CNN batching must be measured over binary tensors when they work, JSON otherwise")
	}
	for _, target := range []string{"binary", "json", "tabular"} {
		if !targets[target] {
			t.Errorf("no target line for %s", target)
		}
	}

	// The ceiling is the best of the in-process configurations measured
	// again beside the server loads; one goroutine per session runs both
	// pinned to its thread and yielding between runs, and every load
	// counts its thread switches.
	out := stdout.String()
	for _, name := range []string{"inprocess-run-batch1-pinned", "inprocess-run-batch1-yield"} {
		if !regexp.MustCompile(`(?m)^# cnn ` + name + `: [0-9.]+ items/s, CPU [0-9.]+ cores \(other processes [0-9.]+\), [0-9.]+ thread switches an item$`).MatchString(out) {
			t.Errorf("no line with the in-process rate, CPU and thread switches of %s", name)
		}
	}
	m := regexp.MustCompile(`(?m)^# cnn ceiling: the best of (.+), measured again between the server loads$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no line naming the ceiling's candidates")
	}
	best := 0.0
	for _, name := range strings.Split(m[1], ", ") {
		r := regexp.MustCompile(`(?m)^# ` + regexp.QuoteMeta(name) + ` ([0-9]+\.[0-9]) items/s, per round `).FindStringSubmatch(out)
		if r == nil {
			t.Fatalf("candidate %s: no line with its rate beside the server loads", name)
		}
		v, _ := strconv.ParseFloat(r[1], 64)
		best = max(best, v)
	}
	// HTTP alone: what a request costs without a model, beside what an
	// image costs the ceiling, and the bound on the ratio that follows.
	for _, load := range []string{"cnn-json", "cnn-binary"} {
		if skipped[load] {
			continue
		}
		r := regexp.MustCompile(`(?m)^# ` + load + `-http-alone: ([0-9]+) µs of CPU a request, the ceiling ([0-9]+) µs an image: a server that added nothing to HTTP and ONNX Runtime would reach ([0-9.]+) of the ceiling$`).FindStringSubmatch(out)
		if r == nil {
			t.Errorf("no line for %s over HTTP alone", load)
			continue
		}
		req, _ := strconv.ParseFloat(r[1], 64)
		img, _ := strconv.ParseFloat(r[2], 64)
		bound, _ := strconv.ParseFloat(r[3], 64)
		if req <= 0 || img <= 0 {
			t.Errorf("%s over HTTP alone: %g µs a request, %g µs an image; want both positive", load, req, img)
		} else if want := img / (img + req); math.Abs(bound-want) > 0.002+0.01*want {
			t.Errorf("%s over HTTP alone: bound %g, want %g / (%g + %g) = %g", load, bound, img, img, req, want)
		}
	}

	j := regexp.MustCompile(`(?m)^bench: cnn-json-vs-inprocess value=\S+ items/s baseline=([0-9.]+) `).FindStringSubmatch(out)
	if j == nil {
		t.Fatal("no cnn-json-vs-inprocess line")
	}
	if got, _ := strconv.ParseFloat(j[1], 64); got != best {
		t.Errorf("ceiling %g, want the best of the candidates, %g", got, best)
	}
}

func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    benchOptions
		wantErr string // "" = no error; "usage" = errUsage
	}{
		{"defaults", nil, nil, benchOptions{ORTLib: "./lib/libonnxruntime.so.1", Duration: 20 * time.Second, Concurrency: 32, Rounds: 32, Client: clientLean}, ""},
		{"flags", []string{"--duration", "1s", "--concurrency", "8", "--rounds", "1", "--ort-lib", "/x.so", "--client", "net/http", "--only", "cnn", "--cpuprofile", "/tmp/p"}, nil,
			benchOptions{ORTLib: "/x.so", Duration: time.Second, Concurrency: 8, Rounds: 1, Client: clientStdlib, Only: "cnn", CPUProfile: "/tmp/p"}, ""},
		{"environment", nil, map[string]string{"ABGATE_BENCH_DURATION": "2s", "ABGATE_BENCH_CONCURRENCY": "4", "ABGATE_BENCH_ROUNDS": "2", "ABGATE_ORT_LIB": "/y.so"},
			benchOptions{ORTLib: "/y.so", Duration: 2 * time.Second, Concurrency: 4, Rounds: 2, Client: clientLean}, ""},
		{"flags win", []string{"--concurrency", "16"}, map[string]string{"ABGATE_BENCH_CONCURRENCY": "4"},
			benchOptions{ORTLib: "./lib/libonnxruntime.so.1", Duration: 20 * time.Second, Concurrency: 16, Rounds: 32, Client: clientLean}, ""},
		{"model config", []string{"--model-config", "instances: 1\nmax_queue_delay_us: 300"}, nil,
			benchOptions{ORTLib: "./lib/libonnxruntime.so.1", Duration: 20 * time.Second, Concurrency: 32, Rounds: 32, Client: clientLean, ModelConfig: "instances: 1\nmax_queue_delay_us: 300\n"}, ""},
		{"unknown model config key", []string{"--model-config", "instancez: 1"}, nil, benchOptions{}, `--model-config: line 1: unknown field "instancez"`},
		{"bad model config value", []string{"--model-config", "instances: 0"}, nil, benchOptions{}, `--model-config: `},
		{"unknown client", []string{"--client", "curl"}, nil, benchOptions{}, `--client must be lean, writev or net/http, got "curl"`},
		{"writev client", []string{"--client", "writev"}, nil,
			benchOptions{ORTLib: "./lib/libonnxruntime.so.1", Duration: 20 * time.Second, Concurrency: 32, Rounds: 32, Client: clientWritev}, ""},
		{"unknown model", []string{"--only", "resnet"}, nil, benchOptions{}, `--only must be cnn or tabular, got "resnet"`},
		{"zero duration", []string{"--duration", "0s"}, nil, benchOptions{}, "--duration must be above 0"},
		{"long duration", []string{"--duration", "1h"}, nil, benchOptions{}, "--duration must be above 0 and at most 2m0s"},
		{"zero concurrency", []string{"--concurrency", "0"}, nil, benchOptions{}, "--concurrency must be between 1 and 1024"},
		{"too many rounds", []string{"--rounds", "100"}, nil, benchOptions{}, "--rounds must be between 1 and 64"},
		{"bad environment", nil, map[string]string{"ABGATE_BENCH_DURATION": "soon"}, benchOptions{}, `ABGATE_BENCH_DURATION="soon"`},
		{"argument", []string{"extra"}, nil, benchOptions{}, "takes no arguments"},
		{"unknown flag", []string{"--listen", ":1"}, nil, benchOptions{}, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseBenchFlags(tt.args, func(k string) string { return tt.env[k] }, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr == "usage" && err != errUsage:
				t.Fatalf("error %v, want errUsage", err)
			case tt.wantErr != "" && tt.wantErr != "usage" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr == "" && got != tt.want:
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no harness", nil, "usage: abgate bench inference"},
		{"unknown harness", []string{"nope"}, `unknown harness "nope"`},
		{"help", []string{"-h"}, "-concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := bench(context.Background(), tt.args, func(string) string { return "" }, &stdout, &stderr)
			if err != errUsage {
				t.Errorf("error %v, want errUsage", err)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.want)
			}
		})
	}
}

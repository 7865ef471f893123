package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"abgate/migrations/dbtest"
)

// testVersion is the version the test binary of abgate is built with.
const testVersion = "v0.0.0-test"

// readmeAddr is the address the README's examples name; the test rewrites
// it to the address of its own server.
const readmeAddr = "127.0.0.1:8080"

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// abgateBinary builds cmd/abgate once per test run and returns its path.
func abgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "abgate-bin-"); buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "abgate")
		// go test puts the go command of its own GOROOT first in PATH.
		cmd := exec.Command("go", "build", "-buildvcs=false", "-ldflags", "-X main.Version="+testVersion, "-o", buildPath, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/abgate: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// childEnv returns the environment of this process without any ABGATE_*
// variable (so that a developer's settings do not leak into the servers
// under test) but for ABGATE_ORT_LIB, which names the ONNX Runtime library
// absolutely since the servers run in temporary folders; plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ABGATE_") {
			env = append(env, kv)
		}
	}
	lib := os.Getenv("ABGATE_ORT_LIB")
	if lib == "" {
		lib = "../../lib/libonnxruntime.so.1"
	}
	if abs, err := filepath.Abs(lib); err == nil {
		lib = abs
	}
	env = append(env, "ABGATE_ORT_LIB="+lib)
	return append(env, extra...)
}

// lockedBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is an `abgate serve` process.
type server struct {
	cmd    *exec.Cmd
	addr   string // host:port it listens on
	stdout *lockedBuffer
	stderr *lockedBuffer // JSON log lines
	exited chan struct{} // closed when the process has exited
	err    error         // of Wait, once exited is closed
}

// startServer starts `abgate serve --demo` in a fresh working directory
// (so that ./data is new) on a free port of 127.0.0.1, with the admin token
// the README uses, and waits until /healthz answers 200.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return startCommand(t, "serve", "/healthz", args...)
}

// startCommand starts `abgate <command> --demo` like startServer does and
// waits until health answers 200.
func startCommand(t *testing.T, command, health string, args ...string) *server {
	t.Helper()
	bin := abgateBinary(t)
	args = append([]string{command, "--demo", "--listen", "127.0.0.1:0", "--log-format", "json", "--shutdown-timeout", "5s"}, args...)
	s := &server{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = t.TempDir()
	s.cmd.Env = childEnv("ABGATE_ADMIN_TOKEN=dev-admin-token")
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start abgate serve: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("abgate serve stdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
		}
	})

	// The listen address is in the log line "abgate serving".
	deadline := time.Now().Add(60 * time.Second)
	for s.addr == "" {
		select {
		case <-s.exited:
			t.Fatalf("abgate serve exited before serving: %v\nstderr:\n%s", s.err, s.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("abgate serve did not log \"abgate serving\" within a minute\nstderr:\n%s", s.stderr)
		}
		for _, line := range logLines(t, s.stderr.String()) {
			if line["msg"] == "abgate serving" {
				s.addr, _ = line["addr"].(string)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		resp, err := http.Get("http://" + s.addr + health)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && health != "/healthz" {
				return s
			}
			if resp.StatusCode == http.StatusOK {
				var health struct{ Status, Version string }
				if err := json.Unmarshal(body, &health); err != nil || health.Status != "ok" || health.Version != testVersion {
					t.Fatalf("/healthz = %s; want status ok and version %s", body, testVersion)
				}
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within a minute: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks that the server exits 0 within a few
// seconds after logging "shutdown complete".
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("abgate serve did not exit within 10s of SIGTERM")
	}
	if s.err != nil {
		t.Errorf("abgate serve after SIGTERM: %v; want exit code 0", s.err)
	}
	var msgs []any
	for _, line := range logLines(t, s.stderr.String()) {
		msgs = append(msgs, line["msg"])
		if line["level"] == "ERROR" {
			t.Errorf("error logged: %v", line)
		}
	}
	if len(msgs) == 0 || msgs[len(msgs)-1] != "shutdown complete" {
		t.Errorf("log messages %q; want the last to be \"shutdown complete\"", msgs)
	}
}

// logLines parses JSON log lines; a line that is not JSON fails the test
// (anything written to stderr but the log would be a bug).
func logLines(t *testing.T, text string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			if strings.HasSuffix(text, l) {
				continue // the line may still be being written
			}
			t.Fatalf("stderr line is not a JSON log line: %q", l)
		}
		lines = append(lines, m)
	}
	return lines
}

// codeBlock is a shell example of the README.
type codeBlock struct {
	line int // of the opening fence
	code string
}

// readmeBlocks returns the ```sh and ```bash blocks of the "## API"
// section of README.md (up to the next "## " heading), subsections
// included.
func readmeBlocks(t *testing.T) []codeBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		blocks  []codeBlock
		inAPI   bool
		current *codeBlock
		fenced  bool // inside a fence of another language
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case current != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *current)
			current = nil
		case current != nil:
			current.code += line + "\n"
		case fenced:
			fenced = !strings.HasPrefix(strings.TrimSpace(line), "```")
		case strings.HasPrefix(line, "## "):
			inAPI = strings.TrimSpace(line) == "## API"
		case strings.HasPrefix(line, "```"):
			lang := strings.TrimSpace(strings.TrimPrefix(line, "```"))
			if inAPI && (lang == "sh" || lang == "bash") {
				current = &codeBlock{line: n}
			} else {
				fenced = true
			}
		}
	}
	if current != nil {
		t.Fatalf("README.md: the code block at line %d is not closed", current.line)
	}
	return blocks
}

// runREADME runs the API examples of the README in order, in one bash
// with -e and pipefail, against the server at addr, and returns their
// output.
func runREADME(t *testing.T, addr string) string {
	t.Helper()
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README examples need %s, which is not in PATH: %v", tool, err)
		}
	}
	blocks := readmeBlocks(t)
	// A renamed section or language must not turn this test into a no-op.
	if len(blocks) < 8 {
		t.Fatalf("README.md has %d sh/bash blocks in section \"## API\"; want the 8 or more examples", len(blocks))
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		if !strings.Contains(b.code, readmeAddr) {
			t.Errorf("README.md line %d: the example does not call %s", b.line, readmeAddr)
		}
		fmt.Fprintf(&script, "echo '### README.md line %d' >&2\n", b.line)
		script.WriteString(strings.ReplaceAll(b.code, readmeAddr, addr))
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "readme.sh")
	if err := os.WriteFile(path, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", path)
	cmd.Dir = dir
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("README examples failed: %v\nstderr (the last ### line names the failing block):\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

// getJSON GETs path on addr as the README's admin and decodes the answer.
func getJSON(t *testing.T, addr, path string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer dev-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// TestREADME runs every example of the README's API section against a real
// `abgate serve --demo`, on SQLite and on PostgreSQL, then checks the state
// they leave and a clean shutdown on SIGTERM.
func TestREADME(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			var args []string
			if dialect == "postgres" {
				args = append(args, "--db", dbtest.PostgresDSN(t))
			}
			srv := startServer(t, args...)
			out := runREADME(t, srv.addr)

			// The examples show a stale If-Match and a viewer's change
			// refused; their answers are the documented errors.
			for _, want := range []string{
				`{"error":{"code":"conflict","message":"experiment \"new-ranker\" is at version 2, not 1: reload it and apply the change again","field":"version"}}`,
				`{"error":{"code":"forbidden",`,
				// The results and drift examples.
				`{"accepted":3,"duplicates":0,"rejected":1,"rejects":[{"line":4,"error":"value must be a number, got string"}]}`,
				`"n_per_variant":14751,"variants":2,"n_total":29502}`,
				`experiment,computed_at,metric,type,role,direction,variant,control,n,`,
				`{"accepted":300,"rejected":0,"rejects":[],"new_features":[]}`,
				`{"name":"age","type":"numeric","method":"ks","statistic":0.7,`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("README output lacks %s\noutput:\n%s", want, out)
				}
			}

			var e struct {
				Status   string
				Version  int64
				Variants []struct {
					Key    string
					Weight float64
				}
			}
			getJSON(t, srv.addr, "/api/v1/experiments/new-ranker", &e)
			if got, want := fmt.Sprint(e.Status, " v", e.Version, " ", e.Variants), "archived v7 [{control 0.5} {treatment 0.5}]"; got != want {
				t.Errorf("experiment after the examples: %s; want %s", got, want)
			}
			var demo struct{ Status string }
			getJSON(t, srv.addr, "/api/v1/experiments/demo", &demo)
			if demo.Status != "running" {
				t.Errorf("demo experiment is %s; want running (the viewer's pause must be refused)", demo.Status)
			}
			var audit struct {
				Entries []struct{ Action, Actor string }
			}
			getJSON(t, srv.addr, "/api/v1/audit?experiment=new-ranker", &audit)
			var actions []string
			for _, a := range audit.Entries {
				actions = append(actions, a.Actor+":"+a.Action)
			}
			want := "admin:experiment.archive admin:experiment.stop admin:experiment.start admin:experiment.pause admin:experiment.start admin:experiment.update admin:experiment.create"
			if got := strings.Join(actions, " "); got != want {
				t.Errorf("audit of new-ranker:\n got %s\nwant %s", got, want)
			}
			var keys struct{ Keys []struct{ Name, Role string } }
			getJSON(t, srv.addr, "/api/v1/keys", &keys)
			if got, want := fmt.Sprint(keys.Keys), "[{admin admin} {dashboard viewer}]"; got != want {
				t.Errorf("keys = %s; want %s", got, want)
			}

			srv.stop(t)
		})
	}
}

// TestMigrateCommand runs `abgate migrate status|up` on fresh SQLite and
// PostgreSQL databases.
func TestMigrateCommand(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dsn := dbtest.SQLiteDSN(t)
			if dialect == "postgres" {
				dsn = dbtest.PostgresDSN(t)
			}
			migrate := func(sub string) string {
				t.Helper()
				var stdout, stderr bytes.Buffer
				if code := run(t.Context(), []string{"migrate", "--db", dsn, "--log-level", "warn", sub}, env(nil), &stdout, &stderr); code != 0 {
					t.Fatalf("abgate migrate %s: exit code %d\nstderr:\n%s", sub, code, stderr.String())
				}
				if stderr.Len() > 0 {
					t.Errorf("abgate migrate %s wrote to stderr:\n%s", sub, stderr.String())
				}
				return stdout.String()
			}
			statusRow := func(out string) []string {
				t.Helper()
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) < 2 || strings.Join(strings.Fields(lines[0]), " ") != "VERSION NAME APPLIED" {
					t.Fatalf("migrate status printed:\n%s\nwant a VERSION NAME APPLIED table", out)
				}
				for _, l := range lines[1:] {
					if f := strings.Fields(l); len(f) == 3 && f[0] == "0001" {
						return f
					}
				}
				t.Fatalf("migrate status does not list 0001:\n%s", out)
				return nil
			}

			if got := statusRow(migrate("status")); got[1] != "init" || got[2] != "pending" {
				t.Errorf("status before up: %q; want 0001 init pending", got)
			}
			if out := migrate("up"); !strings.Contains(out, "applied 0001_init\n") {
				t.Errorf("first up printed %q; want it to list applied 0001_init", out)
			}
			if out, want := migrate("up"), "nothing to apply: the schema is current\n"; out != want {
				t.Errorf("second up printed %q; want %q", out, want)
			}
			got := statusRow(migrate("status"))
			if got[1] != "init" {
				t.Errorf("status after up: %q; want 0001 init", got)
			}
			if at, err := time.Parse("2006-01-02T15:04:05Z", got[2]); err != nil || time.Since(at) > time.Hour || time.Until(at) > time.Minute {
				t.Errorf("status after up: 0001 applied %q; want the time of the first up", got[2])
			}
		})
	}
}

// TestServeStartupErrors checks that `abgate serve` fails to start with a
// one-line error and exit code 1, not a panic or a stack trace.
func TestServeStartupErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable postgres", []string{"--db", "postgres://postgres@127.0.0.1:1/x?connect_timeout=1"},
			"abgate: cannot reach PostgreSQL database postgres://postgres@127.0.0.1:1/x: "},
		{"password not shown", []string{"--db", "postgres://postgres:s3cret@127.0.0.1:1/x?connect_timeout=1"},
			"abgate: cannot reach PostgreSQL database postgres://postgres:xxxxx@127.0.0.1:1/x: "},
		{"unsupported database", []string{"--db", "mysql://root@127.0.0.1/x"},
			`abgate: unsupported database DSN (scheme "mysql"): use sqlite:PATH or postgres://`},
		{"missing onnx runtime library", []string{"--ort-lib", "/nonexistent/libonnxruntime.so.1"},
			`abgate: onnx runtime library not found at /nonexistent/libonnxruntime.so.1: run "make lib" or set --ort-lib/ABGATE_ORT_LIB`},
		{"address in use", []string{"--listen", busy.Addr().String()},
			"abgate: listen on " + busy.Addr().String() + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, abgateBinary(t), append([]string{"serve", "--log-level", "error"}, tt.args...)...)
			cmd.Dir = t.TempDir()
			cmd.Env = childEnv()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("abgate serve %q still ran after 30s", tt.args)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("abgate serve %q: %v; want exit code 1", tt.args, err)
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") {
				t.Errorf("stderr is not one line:\n%s", msg)
			}
			if !strings.HasPrefix(msg, tt.want) {
				t.Errorf("stderr = %q; want it to start with %q", msg, tt.want)
			}
			for _, bad := range []string{"panic", "goroutine ", "code=", "s3cret"} {
				if strings.Contains(msg, bad) {
					t.Errorf("stderr holds %q: %s", bad, msg)
				}
			}
			if stdout.Len() > 0 && tt.name != "address in use" {
				t.Errorf("stdout = %q; want nothing", stdout.String())
			}
		})
	}
}

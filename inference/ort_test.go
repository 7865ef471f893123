package inference

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// noRuntimeEnv, when set, keeps TestMain from loading ONNX Runtime.
const noRuntimeEnv = "ABGATE_INFERENCE_TEST_NO_ORT"

// ortErr says why ONNX Runtime is not available to the tests; nil when it
// is. TestMain sets it once per test binary.
var ortErr error

// TestMain loads ONNX Runtime once for the package's tests, from
// $ABGATE_ORT_LIB, else ../lib (where `make lib` puts it).
func TestMain(m *testing.M) {
	if os.Getenv(noRuntimeEnv) != "" {
		// A child process of TestInitRuntime, which tests the failures
		// of a process without ONNX Runtime.
		ortErr = fmt.Errorf("%s is set", noRuntimeEnv)
		os.Exit(m.Run())
	}
	lib := os.Getenv("ABGATE_ORT_LIB")
	if lib == "" {
		lib = filepath.Join("..", "lib", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(lib); err != nil {
		ortErr = fmt.Errorf("ONNX Runtime library not found at %s: `make lib` fetches it, or set ABGATE_ORT_LIB", lib)
	} else if err := InitRuntime(lib); err != nil {
		// A library that is there but does not load is a failure, not a
		// reason to skip.
		fmt.Fprintln(os.Stderr, "inference tests:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// needORT skips t when ONNX Runtime is not available, or fails it when the
// environment variable CI is set: CI must run these tests.
func needORT(t testing.TB) {
	t.Helper()
	if ortErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(ortErr)
	}
	t.Skip(ortErr)
}

func TestInitRuntime(t *testing.T) {
	t.Run("missing library", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
		err := InitRuntime(missing)
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		for _, want := range []string{"onnx runtime library not found at " + missing, `run "make lib"`, "--ort-lib/ABGATE_ORT_LIB"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("error %q is not one line", msg)
		}
	})
	t.Run("unloadable", func(t *testing.T) {
		if runtimeReady() {
			// This process has ONNX Runtime: test in a child that has not.
			cmd := exec.Command(os.Args[0], "-test.run=^TestInitRuntime$/^unloadable$", "-test.v")
			cmd.Env = append(os.Environ(), noRuntimeEnv+"=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestInitRuntime/unloadable") {
				t.Fatalf("child process: %v\n%s", err, out)
			}
			return
		}
		bad := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
		if err := os.WriteFile(bad, []byte("not a shared library"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := InitRuntime(bad)
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "load onnx runtime library "+bad) {
			t.Errorf("error = %v, want one line naming %s", err, bad)
		}
		// No ./lib here: the default falls back to the system library
		// path, where there is usually none.
		t.Chdir(t.TempDir())
		if err := InitRuntime(""); err == nil {
			t.Log("ONNX Runtime found on the system library path")
		} else if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, `not found at ./lib/libonnxruntime.so.1 nor as libonnxruntime.so.1`) || !strings.Contains(msg, "make lib") {
			t.Errorf("error = %q, want one line saying where it looked", msg)
		}
		if runtimeReady() || RuntimeVersion() != "" {
			t.Error("runtime ready after failures")
		}
	})
	t.Run("again", func(t *testing.T) {
		needORT(t)
		if err := InitRuntime(""); err != nil {
			t.Errorf("InitRuntime(\"\") after init: %v", err)
		}
		if RuntimeVersion() == "" {
			t.Error("RuntimeVersion is empty")
		}
		other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
		if err := os.WriteFile(other, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := InitRuntime(other); err == nil || !strings.Contains(err.Error(), "already loaded") {
			t.Errorf("InitRuntime(other) = %v, want already loaded", err)
		}
	})
}

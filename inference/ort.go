package inference

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// DefaultORTLib is where `make lib` puts the ONNX Runtime shared library,
// relative to the working directory.
const DefaultORTLib = "./lib/libonnxruntime.so.1"

// systemORTLib is the library name that the dynamic loader looks up on the
// system library path when DefaultORTLib is absent.
const systemORTLib = "libonnxruntime.so.1"

// ortRuntime is the process-wide ONNX Runtime environment. ONNX Runtime
// (and onnxruntime_go) keep one environment per process, so this is the one
// piece of package state: InitRuntime sets it once.
var ortRuntime struct {
	sync.Mutex
	lib string // the library the environment was loaded from; "" = not yet
}

// InitRuntime loads the ONNX Runtime shared library and initialises its
// environment, once per process. libPath is the library file; "" means
// DefaultORTLib when that file exists, else systemORTLib looked up on the
// system library path. A later call with the same or an empty path does
// nothing; a call naming another library is an error, since a process
// holds one ONNX Runtime. A missing or unloadable library is a one-line
// error that says how to get one.
func InitRuntime(libPath string) error {
	ortRuntime.Lock()
	defer ortRuntime.Unlock()
	lib := libPath
	switch {
	case lib == "" && ortRuntime.lib != "":
		return nil
	case lib == "":
		lib = DefaultORTLib
		if _, err := os.Stat(lib); err != nil {
			lib = systemORTLib
		}
	default:
		if _, err := os.Stat(lib); err != nil {
			return fmt.Errorf("onnx runtime library not found at %s: run \"make lib\" or set --ort-lib/ABGATE_ORT_LIB", lib)
		}
	}
	if ortRuntime.lib != "" {
		if ortRuntime.lib == lib {
			return nil
		}
		return fmt.Errorf("onnx runtime is already loaded from %s; a process holds one, so %s cannot be loaded too", ortRuntime.lib, lib)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		if lib == systemORTLib {
			return fmt.Errorf("onnx runtime library not found at %s nor as %s on the system library path: run \"make lib\" or set --ort-lib/ABGATE_ORT_LIB", DefaultORTLib, systemORTLib)
		}
		return fmt.Errorf("load onnx runtime library %s: %s (the library must be ONNX Runtime %s or newer: run \"make lib\")", lib, firstLine(err), minORTVersion)
	}
	ortRuntime.lib = lib
	return nil
}

// minORTVersion is the oldest ONNX Runtime whose C API onnxruntime_go
// v1.27.0 can use.
const minORTVersion = "1.24"

// RuntimeVersion returns the version of the loaded ONNX Runtime, or "" when
// InitRuntime has not succeeded.
func RuntimeVersion() string {
	ortRuntime.Lock()
	defer ortRuntime.Unlock()
	if ortRuntime.lib == "" {
		return ""
	}
	return ort.GetVersion()
}

// errNoRuntime is returned by model loads before InitRuntime succeeded.
var errNoRuntime = errors.New("onnx runtime is not initialised: call inference.InitRuntime first")

// runtimeReady reports whether InitRuntime has succeeded.
func runtimeReady() bool {
	ortRuntime.Lock()
	defer ortRuntime.Unlock()
	return ortRuntime.lib != ""
}

// firstLine returns the first line of err's message, without the prefixes
// that onnxruntime_go stacks on loader errors.
func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	msg = strings.TrimPrefix(msg, "Platform-specific initialization failed: ")
	return strings.TrimSpace(msg)
}

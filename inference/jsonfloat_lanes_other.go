//go:build !amd64 || purego

package inference

// haveLanesSSE is false: no assembly here. A variable as on amd64, where
// tests turn the lanes off.
var haveLanesSSE = false

// shortLanesMin is the length of a run from which shortRunLanes splits it.
const shortLanesMin = 1024

// shortRunLanes reads nothing where there is no assembly loop (see
// jsonfloat_lanes_amd64.go): shortRun reads the run.
func shortRunLanes(b []byte, i int, out []float32) ([]float32, int) { return out, i }

// wideRoom is the room shortRunWide needs after a run (see
// jsonfloat_wide_amd64.go).
const wideRoom = 64 + 16

// haveWide and haveAVX2 are false: no assembly here.
var haveWide, haveAVX2 = false, false

// shortRunWide reads nothing where there is no assembly loop (see
// jsonfloat_wide_amd64.go).
func shortRunWide(b []byte, i int, out []float32) ([]float32, int) { return out, i }

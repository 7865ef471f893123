package inference

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"abgate"
	"abgate/inference/modelgen"
)

// changes records the calls of a Repository's OnChange.
type changes struct {
	mu    sync.Mutex
	calls [][]string
}

func (c *changes) record(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, names)
}

func (c *changes) last() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.calls) == 0 {
		return nil
	}
	return c.calls[len(c.calls)-1]
}

// newTestRepository returns a repository on dir, scanned, closed when t
// ends, whose changes are recorded.
func newTestRepository(t *testing.T, dir string) (*Repository, *changes) {
	t.Helper()
	needORT(t)
	r := NewRepository(dir, nil)
	ch := &changes{}
	r.OnChange = ch.record
	if err := r.Scan(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, ch
}

// scalarRun runs the Scalar model m on x and returns y.
func scalarRun(m *Model, x float32) (float32, error) {
	out, err := m.Run(context.Background(), []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{}, Data: []float32{x}}}, nil)
	if err != nil {
		return 0, err
	}
	return out[0].Data.([]float32)[0], nil
}

func TestRepositoryScan(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	logreg, _ := modelgen.LogReg()
	mlp, _ := modelgen.MLP()
	writeTestModel(t, dir, "classifier", "1", logreg, "instances: 1\n")
	writeTestModel(t, dir, "classifier", "2", mlp, "")
	writeTestModel(t, dir, "classifier", "10", modelgen.Scalar(), "") // numeric order: 10 is the latest
	writeTestModel(t, dir, "classifier", "v3", logreg, "")            // not a version: ignored
	writeTestModel(t, dir, "broken", "1", []byte("garbage"), "")
	writeTestModel(t, dir, "badconfig", "1", logreg, "instance: 1\n")
	if err := os.MkdirAll(filepath.Join(dir, "empty", "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, ch := newTestRepository(t, dir)

	idx := r.Index()
	want := []struct{ name, version, state, reason string }{
		{"badconfig", "1", StateUnavailable, `unknown field "instance"`},
		{"broken", "1", StateUnavailable, "onnx runtime cannot load model.onnx"},
		{"classifier", "10", StateReady, ""},
		{"empty", "", StateUnavailable, "no version directory with a model.onnx"},
	}
	if len(idx) != len(want) {
		t.Fatalf("index %+v, want %d entries", idx, len(want))
	}
	for i, w := range want {
		if e := idx[i]; e.Name != w.name || e.Version != w.version || e.State != w.state || !strings.Contains(e.Reason, w.reason) {
			t.Errorf("index[%d] = %+v, want %+v", i, e, w)
		}
	}
	if got := ch.last(); !slices.Equal(got, []string{"classifier"}) {
		t.Errorf("OnChange got %v, want [classifier]", got)
	}

	m, err := r.Get("classifier", "")
	if err != nil || m.Version != "10" {
		t.Fatalf("Get latest = %v, %v; want version 10", m, err)
	}
	old, err := r.Get("classifier", "1")
	if err != nil || old.Version != "1" || old.Inputs[0].Name != "features" {
		t.Fatalf("Get version 1 = %+v, %v", old, err)
	}
	if again, _ := r.Get("classifier", "1"); again != old {
		t.Error("version 1 loaded twice")
	}
	if got := r.Versions("classifier"); !slices.Equal(got, []string{"1", "10"}) {
		t.Errorf("Versions = %v, want [1 10]", got)
	}
	for _, c := range []struct{ name, version, want string }{
		{"nope", "", `model "nope" not found`},
		{"classifier", "3", `model "classifier" has no version "3"`},
		{"classifier", "v3", `has no version "v3"`},
		{"classifier", "../broken/1", `has no version`},
		{"broken", "", `model "broken" is not available: model "broken" version 1: onnx runtime cannot load`},
	} {
		_, err := r.Get(c.name, c.version)
		if abgate.ErrorCode(err) != abgate.ENOTFOUND || !strings.Contains(abgate.ErrorMessage(err), c.want) {
			t.Errorf("Get(%q, %q) = %v, want ENOTFOUND %q", c.name, c.version, err, c.want)
		}
	}
}

func TestRepositoryLoadUnload(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "scalar", "1", modelgen.Scalar(), "instances: 1\n")
	r, ch := newTestRepository(t, dir)
	m, err := r.Get("scalar", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Unload("scalar"); err != nil {
		t.Fatal(err)
	}
	if _, err := scalarRun(m, 1); abgate.ErrorCode(err) != abgate.EUNAVAILABLE {
		t.Errorf("run on an unloaded model: %v, want EUNAVAILABLE", err)
	}
	if _, err := r.Get("scalar", ""); abgate.ErrorCode(err) != abgate.ENOTFOUND || !strings.Contains(abgate.ErrorMessage(err), "unloaded") {
		t.Errorf("Get after Unload: %v", err)
	}
	if idx := r.Index(); len(idx) != 1 || idx[0].State != StateUnavailable || idx[0].Reason != "unloaded" {
		t.Errorf("index after Unload: %+v", idx)
	}
	if got := ch.last(); len(got) != 0 {
		t.Errorf("OnChange got %v, want none serving", got)
	}
	// A rescan leaves an unloaded model alone.
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get("scalar", ""); err == nil {
		t.Error("a rescan loaded an unloaded model")
	}
	if err := r.Load("scalar"); err != nil {
		t.Fatal(err)
	}
	m, err = r.Get("scalar", "")
	if err != nil {
		t.Fatal(err)
	}
	if y, err := scalarRun(m, 2); err != nil || y != 4 {
		t.Errorf("after Load: %v, %v", y, err)
	}
	// Reload replaces the serving model even when nothing changed.
	if err := r.Reload("scalar"); err != nil {
		t.Fatal(err)
	}
	if m2, _ := r.Get("scalar", ""); m2 == m {
		t.Error("Reload kept the same model")
	}
	for _, name := range []string{"nope", "../x", ""} {
		if err := r.Load(name); abgate.ErrorCode(err) != abgate.ENOTFOUND {
			t.Errorf("Load(%q) = %v, want ENOTFOUND", name, err)
		}
		if err := r.Unload(name); abgate.ErrorCode(err) != abgate.ENOTFOUND {
			t.Errorf("Unload(%q) = %v, want ENOTFOUND", name, err)
		}
	}
}

// TestRepositoryFailedReload: a new version that fails to load leaves the
// old one serving, and is not retried until it changes.
func TestRepositoryFailedReload(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "scalar", "1", modelgen.Scalar(), "instances: 1\n")
	r, _ := newTestRepository(t, dir)
	v1, _ := r.Get("scalar", "")

	writeTestModel(t, dir, "scalar", "2", []byte("corrupt model"), "")
	err := r.Load("scalar")
	if abgate.ErrorCode(err) != abgate.EINVALID || !strings.Contains(abgate.ErrorMessage(err), "version 1 still serves") {
		t.Errorf("Load of a corrupt version: %v", err)
	}
	m, err := r.Get("scalar", "")
	if err != nil || m != v1 {
		t.Fatalf("after the failed reload Get = %v, %v; want version 1", m, err)
	}
	if y, err := scalarRun(m, 3); err != nil || y != 6 {
		t.Errorf("version 1 after the failed reload: %v, %v", y, err)
	}
	idx := r.Index()
	if len(idx) != 2 || idx[0] != (IndexEntry{Name: "scalar", Version: "1", State: StateReady}) ||
		idx[1].Version != "2" || idx[1].State != StateUnavailable || !strings.Contains(idx[1].Reason, "version 2 failed to load, version 1 serves") {
		t.Errorf("index %+v", idx)
	}
	// Rescans do not retry the same broken file.
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	if m, _ := r.Get("scalar", ""); m != v1 {
		t.Error("a rescan changed the serving model")
	}
	// A fixed version 2 is picked up by the next rescan; version 1 closes.
	writeTestModel(t, dir, "scalar", "2", modelgen.Scalar(), "")
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	m, err = r.Get("scalar", "")
	if err != nil || m.Version != "2" {
		t.Fatalf("after fixing version 2: %v, %v", m, err)
	}
	if _, err := scalarRun(v1, 1); abgate.ErrorCode(err) != abgate.EUNAVAILABLE {
		t.Errorf("run on the replaced version 1: %v, want EUNAVAILABLE", err)
	}
	if idx := r.Index(); len(idx) != 1 || idx[0] != (IndexEntry{Name: "scalar", Version: "2", State: StateReady}) {
		t.Errorf("index %+v", idx)
	}
}

// TestRepositoryRescan: new models and versions are loaded, changed
// configurations reloaded, removed models and versions unloaded.
func TestRepositoryRescan(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "a", "1", modelgen.Scalar(), "instances: 1\n")
	r, ch := newTestRepository(t, dir)
	calls := len(ch.calls)

	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	if len(ch.calls) != calls {
		t.Error("OnChange called by a rescan that changed nothing")
	}
	writeTestModel(t, dir, "b", "1", modelgen.Scalar(), "instances: 1\n")
	writeTestModel(t, dir, "a", "2", modelgen.Scalar(), "")
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	if got := ch.last(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("OnChange got %v, want [a b]", got)
	}
	if m, err := r.Get("a", ""); err != nil || m.Version != "2" {
		t.Errorf("a after the rescan: %v, %v; want version 2", m, err)
	}
	if _, err := r.Get("a", "1"); err != nil {
		t.Fatal(err)
	}

	// A changed config.yaml reloads the model.
	before, _ := r.Get("b", "")
	if err := os.WriteFile(filepath.Join(dir, "b", ConfigFile), []byte("instances: 1\nlabels: [double]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	if m, _ := r.Get("b", ""); m == before || !slices.Equal(m.Config.Labels, []string{"double"}) {
		t.Errorf("b after its config changed: labels %v", m.Config.Labels)
	}

	// Removed: version 1 of a, and model b.
	if err := os.RemoveAll(filepath.Join(dir, "a", "1")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	if got := r.Versions("a"); !slices.Equal(got, []string{"2"}) {
		t.Errorf("versions of a = %v, want [2]", got)
	}
	if _, err := r.Get("b", ""); abgate.ErrorCode(err) != abgate.ENOTFOUND {
		t.Errorf("Get(b) after its removal: %v", err)
	}
	if got := ch.last(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("OnChange got %v, want [a]", got)
	}
}

func TestRepositoryWatch(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	r, _ := newTestRepository(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Watch(ctx, 5*time.Millisecond)
		close(done)
	}()
	writeTestModel(t, dir, "late", "1", modelgen.Scalar(), "instances: 1\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := r.Get("late", ""); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not load the new model")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

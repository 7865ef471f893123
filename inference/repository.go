package inference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"abgate"
)

// Model states in the repository index.
const (
	StateReady       = "READY"
	StateUnavailable = "UNAVAILABLE"
)

// IndexEntry is one line of the repository index: a model version and
// whether it serves, with the reason when it does not.
type IndexEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
}

// Repository is a Triton-like model repository: <Dir>/<name>/<version>/model.onnx
// with an optional <Dir>/<name>/config.yaml, versions being positive
// integers. It serves each model's latest version; an older version is
// loaded when first asked for by Get and kept until the model is unloaded
// or the version disappears from disk. It is safe for concurrent use.
type Repository struct {
	// OnChange, when not nil, is called after a Scan, Rescan, Load, Reload
	// or Unload that changed which models serve or which version they
	// serve, with the sorted names of all the models that serve now. It is
	// called from the goroutine that made the change, with the
	// repository's change lock held: calls do not overlap, and OnChange
	// must not call Scan, Rescan, Load, Reload, Unload, nor Get of an
	// older version (Get(name, "") and Index are fine).
	OnChange func(names []string)

	dir string
	log *slog.Logger
	obs atomic.Pointer[metrics] // the collectors of the server of the repository; set by NewServer

	mu     sync.Mutex
	models map[string]*entry

	changeMu sync.Mutex // serialises OnChange calls and loads
}

// entry is the state of one model name.
type entry struct {
	name     string
	serving  *Model            // the latest version that loaded; nil if none
	older    map[string]*Model // older versions loaded on demand
	unloaded bool              // explicitly unloaded: rescans leave it alone
	reason   string            // why the model or its latest version does not serve
	stamp    versionStamp      // the files of the serving version when loaded
	failed   versionStamp      // the files that failed to load, not retried until they change
	failedV  string            // their version
}

// versionStamp identifies the files of a model version on disk: its
// model.onnx and the model's config.yaml (zero when absent).
type versionStamp struct {
	model, config fileStamp
}

// fileStamp identifies the content of a file on disk.
type fileStamp struct {
	size    int64
	modTime time.Time
}

// NewRepository returns the repository in dir, with nothing loaded: call
// Scan. A nil log discards.
func NewRepository(dir string, log *slog.Logger) *Repository {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Repository{dir: dir, log: log, models: map[string]*entry{}}
}

// Dir returns the repository's directory.
func (r *Repository) Dir() string { return r.dir }

// modelName is what a model's directory may be called.
var modelName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// versionName is a positive integer without leading zeros.
var versionName = regexp.MustCompile(`^[1-9][0-9]{0,17}$`)

// Scan loads the latest version of every model in the repository that is
// not loaded yet. Models that fail to load are in the index as
// UNAVAILABLE with the reason, and logged. It fails only when the
// repository directory cannot be read.
func (r *Repository) Scan() error {
	return r.Rescan()
}

// Rescan brings the repository in line with the disk: it loads the models
// that appeared, loads a model's new latest version (a failure leaves the
// old version serving), and unloads the models and versions that
// disappeared. Models unloaded through Unload stay unloaded until Load. A
// version that failed to load is not retried until its model.onnx
// changes. It fails only when the repository directory cannot be read.
func (r *Repository) Rescan() error {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	dirs, err := os.ReadDir(r.dir)
	if err != nil {
		return abgate.Errorf(abgate.EUNAVAILABLE, "read model repository %s: %v", r.dir, err)
	}
	before := r.servingNames()
	onDisk := map[string]bool{}
	for _, d := range dirs {
		if !d.IsDir() || !modelName.MatchString(d.Name()) {
			continue
		}
		name := d.Name()
		onDisk[name] = true
		r.mu.Lock()
		e := r.models[name]
		r.mu.Unlock()
		if e != nil && e.unloaded {
			continue
		}
		if err := r.refresh(name, false); err != nil {
			r.log.Warn("model not loaded", "model", name, "err", abgate.ErrorMessage(err))
		}
	}
	r.mu.Lock()
	var gone []*entry
	for name, e := range r.models {
		if !onDisk[name] {
			gone = append(gone, e)
			delete(r.models, name)
		}
	}
	r.mu.Unlock()
	for _, e := range gone {
		r.log.Info("model removed from the repository", "model", e.name)
		e.closeAll()
	}
	r.notify(before)
	return nil
}

// Watch calls Rescan every interval until ctx is done, logging failures.
func (r *Repository) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Rescan(); err != nil {
				r.log.Error("rescan model repository", "err", abgate.ErrorMessage(err))
			}
		}
	}
}

// Load loads (or reloads) the latest version of model name from disk,
// also when it was unloaded. When the new version fails to load, the
// version that served before keeps serving and the error is returned
// (EINVALID with the reason). A name that is not in the repository is
// ENOTFOUND.
func (r *Repository) Load(name string) error {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	before := r.servingNames()
	err := r.refresh(name, true)
	r.notify(before)
	return err
}

// Reload is Load: it loads the latest version again even when it is the
// one serving, so that a changed model.onnx or config.yaml takes effect.
func (r *Repository) Reload(name string) error {
	return r.Load(name)
}

// Unload stops serving every version of model name; their sessions close
// once the runs in progress finish. The model stays unloaded, rescans
// included, until Load. An unknown name is ENOTFOUND.
func (r *Repository) Unload(name string) error {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	before := r.servingNames()
	r.mu.Lock()
	e := r.models[name]
	if e == nil {
		r.mu.Unlock()
		if !modelName.MatchString(name) || !isDir(filepath.Join(r.dir, name)) {
			return abgate.Errorf(abgate.ENOTFOUND, "model %q not found in the repository", name)
		}
		e = &entry{name: name}
		r.mu.Lock()
		r.models[name] = e
	}
	serving, older := e.serving, e.older
	e.serving, e.older = nil, nil
	e.unloaded, e.reason = true, "unloaded"
	r.mu.Unlock()
	closeModels(serving, older)
	r.log.Info("model unloaded", "model", name)
	r.notify(before)
	return nil
}

// Close unloads every model, waiting for the runs in progress.
func (r *Repository) Close() {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	r.mu.Lock()
	models := r.models
	r.models = map[string]*entry{}
	r.mu.Unlock()
	for _, e := range models {
		e.closeAll()
	}
}

// refresh loads the latest version of name when it is not the one serving
// (or always, with force). The caller holds changeMu.
func (r *Repository) refresh(name string, force bool) error {
	if !modelName.MatchString(name) {
		return abgate.Errorf(abgate.ENOTFOUND, "model %q not found in the repository", name)
	}
	dir := filepath.Join(r.dir, name)
	versions, err := diskVersions(dir)
	if err != nil {
		return err
	}
	r.mu.Lock()
	e := r.models[name]
	if e == nil {
		e = &entry{name: name}
		r.models[name] = e
	}
	r.mu.Unlock()
	if len(versions) == 0 {
		r.mu.Lock()
		serving, older := e.serving, e.older
		e.serving, e.older = nil, nil
		e.reason = fmt.Sprintf("no version directory with a %s", ModelFile)
		if force {
			e.unloaded = false
		}
		r.mu.Unlock()
		closeModels(serving, older)
		if force {
			return abgate.Errorf(abgate.EINVALID, "model %q: %s", name, e.reason)
		}
		return nil
	}
	latest := versions[len(versions)-1]
	stamp := stampVersion(dir, latest)
	r.mu.Lock()
	cur := e.serving
	if !force && cur != nil && cur.Version == latest && stamp == e.stamp {
		r.mu.Unlock()
		r.dropMissingOlder(e, versions)
		return nil
	}
	if !force && e.failedV == latest && e.failed == stamp {
		r.mu.Unlock()
		return nil // known bad, unchanged
	}
	r.mu.Unlock()

	m, err := r.loadVersion(name, latest)
	r.mu.Lock()
	if err != nil {
		e.failed, e.failedV = stamp, latest
		if cur != nil {
			e.reason = fmt.Sprintf("version %s failed to load, version %s serves: %s", latest, cur.Version, abgate.ErrorMessage(err))
		} else {
			e.reason = abgate.ErrorMessage(err)
		}
		if force {
			e.unloaded = false
		}
		r.mu.Unlock()
		if cur == nil {
			return err
		}
		return abgate.Errorf(abgate.EINVALID, "%s (version %s still serves)", abgate.ErrorMessage(err), cur.Version)
	}
	old := e.serving
	e.serving, e.stamp = m, stamp
	e.unloaded, e.reason, e.failed, e.failedV = false, "", versionStamp{}, ""
	r.mu.Unlock()
	if old != nil {
		old.Close()
	}
	r.log.Info("model loaded", "model", name, "version", latest, "instances", m.Config.Instances)
	r.dropMissingOlder(e, versions)
	return nil
}

// dropMissingOlder closes the older versions of e that are no longer on
// disk, or that are now the serving one.
func (r *Repository) dropMissingOlder(e *entry, versions []string) {
	r.mu.Lock()
	var drop []*Model
	for v, m := range e.older {
		if !slices.Contains(versions, v) || (e.serving != nil && e.serving.Version == v) {
			drop = append(drop, m)
			delete(e.older, v)
		}
	}
	r.mu.Unlock()
	for _, m := range drop {
		m.Close()
	}
}

// loadVersion reads the model's config.yaml and loads one version.
func (r *Repository) loadVersion(name, version string) (*Model, error) {
	dir := filepath.Join(r.dir, name)
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, abgate.Errorf(abgate.EINVALID, "model %q: %s", name, abgate.ErrorMessage(err))
	}
	m, err := LoadModel(name, version, filepath.Join(dir, version), cfg)
	if err != nil {
		return nil, err
	}
	m.obs = &r.obs
	return m, nil
}

// Get returns version version of model name, "" meaning the latest that
// serves. An older version that is on disk is loaded on first use (a
// failure is EINVALID with the reason). An unknown model or version is
// ENOTFOUND; so is a model that does not serve, with the reason.
func (r *Repository) Get(name, version string) (*Model, error) {
	r.mu.Lock()
	e := r.models[name]
	if e == nil {
		r.mu.Unlock()
		return nil, abgate.Errorf(abgate.ENOTFOUND, "model %q not found", name)
	}
	if e.serving == nil {
		reason := e.reason
		r.mu.Unlock()
		return nil, abgate.Errorf(abgate.ENOTFOUND, "model %q is not available: %s", name, reason)
	}
	if version == "" || version == e.serving.Version {
		m := e.serving
		r.mu.Unlock()
		return m, nil
	}
	if m := e.older[version]; m != nil {
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()
	if !versionName.MatchString(version) || !isFile(filepath.Join(r.dir, name, version, ModelFile)) {
		return nil, abgate.Errorf(abgate.ENOTFOUND, "model %q has no version %q", name, version)
	}
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	r.mu.Lock()
	if r.models[name] != e || e.serving == nil {
		r.mu.Unlock()
		return nil, abgate.Errorf(abgate.ENOTFOUND, "model %q is not available", name)
	}
	if m := e.older[version]; m != nil { // loaded while we waited
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()
	m, err := r.loadVersion(name, version)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if e.older == nil {
		e.older = map[string]*Model{}
	}
	e.older[version] = m
	r.mu.Unlock()
	r.log.Info("model version loaded", "model", name, "version", version)
	return m, nil
}

// Versions returns the loaded versions of model name, in increasing order.
func (r *Repository) Versions(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.models[name]
	if e == nil {
		return nil
	}
	var vs []string
	if e.serving != nil {
		vs = append(vs, e.serving.Version)
	}
	for v := range e.older {
		vs = append(vs, v)
	}
	sortVersions(vs)
	return vs
}

// Models returns the serving version of every model that serves, by name.
func (r *Repository) Models() []*Model {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ms []*Model
	for _, e := range r.models {
		if e.serving != nil {
			ms = append(ms, e.serving)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms
}

// Index returns the repository index: every loaded version READY, and
// every model or version that does not serve UNAVAILABLE with the reason,
// sorted by name and version.
func (r *Repository) Index() []IndexEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var idx []IndexEntry
	for _, e := range r.models {
		if e.serving != nil {
			idx = append(idx, IndexEntry{Name: e.name, Version: e.serving.Version, State: StateReady})
			for v := range e.older {
				idx = append(idx, IndexEntry{Name: e.name, Version: v, State: StateReady})
			}
			if e.failedV != "" {
				idx = append(idx, IndexEntry{Name: e.name, Version: e.failedV, State: StateUnavailable, Reason: e.reason})
			}
			continue
		}
		idx = append(idx, IndexEntry{Name: e.name, Version: e.failedV, State: StateUnavailable, Reason: e.reason})
	}
	sort.Slice(idx, func(i, j int) bool {
		if idx[i].Name != idx[j].Name {
			return idx[i].Name < idx[j].Name
		}
		return versionLess(idx[i].Version, idx[j].Version)
	})
	return idx
}

// servingNames returns the sorted names of the models that serve and the
// versions they serve, to tell whether a change happened.
func (r *Repository) servingNames() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := map[string]string{}
	for name, e := range r.models {
		if e.serving != nil {
			s[name] = e.serving.Version
		}
	}
	return s
}

// notify calls OnChange when the serving models changed since before. The
// caller holds changeMu, which keeps calls from overlapping.
func (r *Repository) notify(before map[string]string) {
	if r.OnChange == nil {
		return
	}
	after := r.servingNames()
	changed := len(after) != len(before)
	for name, v := range after {
		if before[name] != v {
			changed = true
		}
	}
	if !changed {
		return
	}
	names := make([]string, 0, len(after))
	for name := range after {
		names = append(names, name)
	}
	sort.Strings(names)
	r.OnChange(names)
}

// closeAll closes every loaded version of e.
func (e *entry) closeAll() {
	closeModels(e.serving, e.older)
	e.serving, e.older = nil, nil
}

func closeModels(serving *Model, older map[string]*Model) {
	if serving != nil {
		serving.Close()
	}
	for _, m := range older {
		m.Close()
	}
}

// diskVersions returns the version directories of a model that hold a
// model.onnx, in increasing order. A missing model directory is ENOTFOUND.
func diskVersions(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, abgate.Errorf(abgate.ENOTFOUND, "model %q not found in the repository", filepath.Base(dir))
	} else if err != nil {
		return nil, abgate.Errorf(abgate.EUNAVAILABLE, "read %s: %v", dir, err)
	}
	var vs []string
	for _, d := range ents {
		if d.IsDir() && versionName.MatchString(d.Name()) && isFile(filepath.Join(dir, d.Name(), ModelFile)) {
			vs = append(vs, d.Name())
		}
	}
	sortVersions(vs)
	return vs, nil
}

func sortVersions(vs []string) {
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
}

// versionLess orders versions numerically; "" first.
func versionLess(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a < b
	}
	return x < y
}

// stampVersion stamps the files of version v of the model in dir.
func stampVersion(dir, v string) versionStamp {
	return versionStamp{stampFile(filepath.Join(dir, v, ModelFile)), stampFile(filepath.Join(dir, ConfigFile))}
}

// stampFile returns the size and modification time of a file, zero when
// it cannot be read.
func stampFile(path string) fileStamp {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{st.Size(), st.ModTime()}
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

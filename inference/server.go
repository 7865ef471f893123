package inference

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"abgate"
)

// DefaultMaxBodyBytes is the default limit of an inference request body.
const DefaultMaxBodyBytes = 64 << 20

// Options configure a Server.
type Options struct {
	// MaxBodyBytes limits the body of an inference request; larger bodies
	// are answered 413. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Version is the server version that GET /v2 reports; "" means "dev".
	Version string
	// Extensions are the V2 protocol extensions that GET /v2 lists beside
	// "model_repository".
	Extensions []string
}

// Server serves the models of a Repository over the Open Inference
// Protocol V2 (REST). It is safe for concurrent use.
type Server struct {
	repo    *Repository
	opts    Options
	log     *slog.Logger
	metrics *metrics
	bufs    sync.Pool // *bytes.Buffer for request and response bodies
}

// NewServer returns a server of the models in repo. Its metrics are
// registered on reg (nil: not registered); a nil log discards.
func NewServer(repo *Repository, opts Options, log *slog.Logger, reg prometheus.Registerer) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	return &Server{repo: repo, opts: opts, log: log, metrics: newMetrics(reg)}
}

// Repository returns the repository the server serves.
func (s *Server) Repository() *Repository { return s.repo }

// Mount adds the V2 routes to r.
func (s *Server) Mount(r gin.IRouter) {
	r.GET("/v2", s.serverMetadata)
	r.GET("/v2/health/live", s.live)
	r.GET("/v2/health/ready", s.ready)
	r.GET("/v2/models/:model", s.modelMetadata)
	r.GET("/v2/models/:model/ready", s.modelReady)
	r.POST("/v2/models/:model/infer", s.infer)
	r.GET("/v2/models/:model/versions/:version", s.modelMetadata)
	r.GET("/v2/models/:model/versions/:version/ready", s.modelReady)
	r.POST("/v2/models/:model/versions/:version/infer", s.infer)
	r.POST("/v2/repository/index", s.index)
	r.POST("/v2/repository/models/:model/load", s.load)
	r.POST("/v2/repository/models/:model/unload", s.unload)
}

// Infer runs version version ("" = the latest) of model on req and
// returns the response, the outputs in the order req asks for them (all
// servable outputs in the model's order when it asks for none). An unknown
// model or version is ENOTFOUND; invalid inputs are EINVALID (see
// Model.Run); a model unloaded or a deadline passed is EUNAVAILABLE.
func (s *Server) Infer(ctx context.Context, model, version string, req *InferRequest) (*InferResponse, error) {
	return s.inferAt(ctx, time.Now(), model, version, req)
}

// inferAt is Infer for a request that started at start.
func (s *Server) inferAt(ctx context.Context, start time.Time, model, version string, req *InferRequest) (*InferResponse, error) {
	m, err := s.repo.Get(model, version)
	if err != nil {
		return nil, err
	}
	resp, err := s.inferModel(ctx, m, req)
	if err != nil && m.pool.isClosed() {
		// The version was unloaded or replaced between Get and the run:
		// run once more on what serves now.
		if m2, err2 := s.repo.Get(model, version); err2 == nil && m2 != m {
			m = m2
			resp, err = s.inferModel(ctx, m, req)
		}
	}
	s.metrics.observeRequest(m, start, abgate.ErrorCode(err))
	return resp, err
}

func (s *Server) inferModel(ctx context.Context, m *Model, req *InferRequest) (*InferResponse, error) {
	inputs := make([]Tensor, len(req.Inputs))
	for i, in := range req.Inputs {
		if in.Data == nil {
			return nil, abgate.FieldErrorf("inputs."+in.Name, "input %q has no data", in.Name)
		}
		inputs[i] = in.Tensor
	}
	var names []string
	if len(req.Outputs) > 0 {
		names = make([]string, len(req.Outputs))
		for i, o := range req.Outputs {
			names[i] = o.Name
		}
	}
	outs, err := s.run(ctx, m, inputs, names)
	if err != nil {
		return nil, err
	}
	resp := &InferResponse{ModelName: m.Name, ModelVersion: m.Version, ID: req.ID, Outputs: make([]InferOutput, len(outs))}
	for i, t := range outs {
		resp.Outputs[i].Tensor = t
	}
	return resp, nil
}

// run is the one way the server runs a model: Infer and the image API go
// through it. It is the seam of the dynamic batcher, which wraps m.run
// here: requests that agree on all but a dynamic first axis are queued,
// concatenated, run once through m.run and split back. Without the
// batcher each request is one run.
func (s *Server) run(ctx context.Context, m *Model, inputs []Tensor, outputs []string) ([]Tensor, error) {
	out, timing, err := m.run(ctx, inputs, outputs)
	s.metrics.observeRun(m, timing, rows(inputs))
	return out, err
}

// fail answers err, logging internal errors with their cause.
func (s *Server) fail(c *gin.Context, err error) {
	if abgate.ErrorCode(err) == abgate.EINTERNAL {
		s.log.Error("inference request failed", "request_id", abgate.RequestIDFromContext(c.Request.Context()),
			"method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	}
	abgate.WriteHTTPError(c.Writer, err)
	c.Abort()
}

func (s *Server) serverMetadata(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{
		"name":       "abgate",
		"version":    s.opts.Version,
		"extensions": append([]string{"model_repository"}, s.opts.Extensions...),
	})
}

func (s *Server) live(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"live": true})
}

// ready answers 200 when ONNX Runtime is loaded, 503 otherwise.
func (s *Server) ready(c *gin.Context) {
	if !runtimeReady() {
		s.fail(c, abgate.Errorf(abgate.EUNAVAILABLE, "%s", errNoRuntime))
		return
	}
	c.JSON(http.StatusOK, gin.H{"ready": true})
}

// ModelMetadata is the V2 model metadata answer.
type ModelMetadata struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
	Platform string   `json:"platform"`
	Inputs   []IOSpec `json:"inputs"`
	Outputs  []IOSpec `json:"outputs"`
}

// Metadata returns the V2 metadata of m; versions are the loaded versions
// of its model.
func (s *Server) Metadata(m *Model) ModelMetadata {
	versions := s.repo.Versions(m.Name)
	if len(versions) == 0 {
		versions = []string{m.Version}
	}
	return ModelMetadata{Name: m.Name, Versions: versions, Platform: Platform, Inputs: m.Inputs, Outputs: m.Outputs}
}

func (s *Server) modelMetadata(c *gin.Context) {
	m, err := s.repo.Get(c.Param("model"), c.Param("version"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s.Metadata(m))
}

// modelReady answers 200 for a model (version) that serves, 404 otherwise.
func (s *Server) modelReady(c *gin.Context) {
	m, err := s.repo.Get(c.Param("model"), c.Param("version"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"name": m.Name, "version": m.Version, "ready": true})
}

func (s *Server) infer(c *gin.Context) {
	start := time.Now()
	model, version := c.Param("model"), c.Param("version")
	body := s.buffer()
	defer s.release(body)
	if err := s.readBody(c.Request, body); err != nil {
		s.failInfer(c, start, model, version, err)
		return
	}
	req, err := DecodeInferRequest(body.Bytes())
	if err != nil {
		s.failInfer(c, start, model, version, err)
		return
	}
	resp, err := s.inferAt(c.Request.Context(), start, model, version, req)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := s.buffer()
	defer s.release(out)
	out.Write(AppendInferResponse(out.AvailableBuffer(), resp))
	c.Data(http.StatusOK, "application/json", out.Bytes())
}

// failInfer answers an inference request that failed before it reached
// its model, counting it when the model serves.
func (s *Server) failInfer(c *gin.Context, start time.Time, model, version string, err error) {
	if m, gerr := s.repo.Get(model, version); gerr == nil {
		s.metrics.observeRequest(m, start, abgate.ErrorCode(err))
	}
	s.fail(c, err)
}

// buffer returns an empty buffer from the pool.
func (s *Server) buffer() *bytes.Buffer {
	if b, ok := s.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// maxPooledBuffer is the largest buffer kept for reuse: bigger ones, from
// rare big requests, go to the garbage collector.
const maxPooledBuffer = 8 << 20

// release gives a buffer back to the pool.
func (s *Server) release(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		s.bufs.Put(b)
	}
}

// readBody reads the request body into buf, up to the configured limit.
func (s *Server) readBody(r *http.Request, buf *bytes.Buffer) error {
	if r.ContentLength > s.opts.MaxBodyBytes {
		return &http.MaxBytesError{Limit: s.opts.MaxBodyBytes}
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			return err
		}
		return abgate.Errorf(abgate.EINVALID, "read request body: %v", err)
	}
	if buf.Len() == 0 {
		return abgate.Errorf(abgate.EINVALID, "request body is empty; a V2 inference request (JSON) is expected")
	}
	return nil
}

// indexRequest is the optional body of POST /v2/repository/index.
type indexRequest struct {
	Ready bool `json:"ready"`
}

func (s *Server) index(c *gin.Context) {
	var req indexRequest
	if c.Request.ContentLength != 0 {
		body := http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20)
		if b, err := io.ReadAll(body); err != nil {
			s.fail(c, err)
			return
		} else if len(bytes.TrimSpace(b)) > 0 {
			if err := abgate.DecodeJSON(bytes.NewReader(b), &req); err != nil {
				s.fail(c, err)
				return
			}
		}
	}
	idx := s.repo.Index()
	out := make([]IndexEntry, 0, len(idx))
	for _, e := range idx {
		if !req.Ready || e.State == StateReady {
			out = append(out, e)
		}
	}
	c.JSON(http.StatusOK, out)
}

// load loads or reloads a model. A failed reload keeps the old version
// serving and answers the error.
func (s *Server) load(c *gin.Context) {
	name := c.Param("model")
	if err := s.repo.Load(name); err != nil {
		s.fail(c, err)
		return
	}
	m, err := s.repo.Get(name, "")
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, IndexEntry{Name: m.Name, Version: m.Version, State: StateReady})
}

func (s *Server) unload(c *gin.Context) {
	name := c.Param("model")
	if err := s.repo.Unload(name); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, IndexEntry{Name: name, State: StateUnavailable, Reason: "unloaded"})
}

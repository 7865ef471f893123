package inference

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"

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
	// "model_repository" and "binary_tensor_data".
	Extensions []string
	// DefaultImageModel is the model that the image API (POST /predict,
	// POST /predict/batch, GET /model/info) uses when a request names none
	// with ?model=. "" means the only model whose config.yaml has an image
	// block.
	DefaultImageModel string
	// MaxImagePixels is the largest image, in pixels, that the image API
	// decodes; larger ones are refused from their header, before decoding.
	// 0 means DefaultMaxImagePixels.
	MaxImagePixels int
}

// Server serves the models of a Repository over the Open Inference
// Protocol V2 (REST). It is safe for concurrent use.
type Server struct {
	repo    *Repository
	opts    Options
	log     *slog.Logger
	metrics *metrics
	stats   *serverStats
	bufs    bufferPool // for request and response bodies
}

// NewServer returns a server of the models in repo. Its metrics are
// registered on reg (nil: not registered); a nil log discards. The
// dynamic batchers of repo's models report to the metrics of the last
// server made on repo.
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
	if opts.MaxImagePixels <= 0 {
		opts.MaxImagePixels = DefaultMaxImagePixels
	}
	s := &Server{repo: repo, opts: opts, log: log, metrics: newMetrics(reg), stats: newServerStats(time.Now())}
	repo.obs.Store(s.metrics)
	return s
}

// Repository returns the repository the server serves.
func (s *Server) Repository() *Repository { return s.repo }

// Mount adds the routes of the V2 protocol (MountV2) and of the image API
// (MountImageAPI) to r.
func (s *Server) Mount(r gin.IRouter) {
	s.MountV2(r)
	s.MountImageAPI(r)
}

// MountV2 adds the routes of the V2 protocol to r: /v2, its health,
// model metadata, inference and repository endpoints.
func (s *Server) MountV2(r gin.IRouter) {
	r.POST("/v2/models/:model/infer", s.infer)
	s.mountV2Unrouted(r)
}

// MountUnrouted adds the routes of Mount except those a router routes by
// experiment (POST /v2/models/:model/infer, /predict and /predict/batch),
// for an engine whose router serves those and calls this server in
// process. Inference at an explicit version
// (/v2/models/:model/versions/:version/infer) stays here.
func (s *Server) MountUnrouted(r gin.IRouter) {
	s.mountV2Unrouted(r)
	r.GET("/model/info", s.modelInfo)
	r.GET("/stats", s.statsHandler)
	r.GET("/health", s.health)
	r.GET("/", s.indexPage)
}

func (s *Server) mountV2Unrouted(r gin.IRouter) {
	r.GET("/v2", s.serverMetadata)
	r.GET("/v2/health/live", s.live)
	r.GET("/v2/health/ready", s.ready)
	r.GET("/v2/models/:model", s.modelMetadata)
	r.GET("/v2/models/:model/ready", s.modelReady)
	r.GET("/v2/models/:model/versions/:version", s.modelMetadata)
	r.GET("/v2/models/:model/versions/:version/ready", s.modelReady)
	r.POST("/v2/models/:model/versions/:version/infer", s.infer)
	r.POST("/v2/repository/index", s.index)
	r.POST("/v2/repository/models/:model/load", s.load)
	r.POST("/v2/repository/models/:model/unload", s.unload)
}

// Infer runs version version ("" = the latest) of model on req and
// returns the response, the outputs in the order req asks for them (all
// servable outputs in the model's order when it asks for none). The
// request goes through the model's dynamic batcher. An unknown model or
// version is ENOTFOUND; invalid inputs are EINVALID (see Model.Run); a full
// queue, a model unloaded or a deadline passed is EUNAVAILABLE.
func (s *Server) Infer(ctx context.Context, model, version string, req *InferRequest) (*InferResponse, error) {
	return s.inferAt(ctx, time.Now(), model, version, req)
}

// inferAt is Infer for a request that started at start.
func (s *Server) inferAt(ctx context.Context, start time.Time, model, version string, req *InferRequest) (*InferResponse, error) {
	m, err := s.repo.Get(model, version)
	if err != nil {
		s.stats.record("", err, 0, 0)
		return nil, err
	}
	resp, took, err := s.inferModel(ctx, m, req)
	if err != nil && m.isClosed() {
		// The version was unloaded or replaced between Get and the run:
		// run once more on what serves now.
		if m2, err2 := s.repo.Get(model, version); err2 == nil && m2 != m {
			m = m2
			resp, took, err = s.inferModel(ctx, m, req)
		}
	}
	s.metrics.observeRequest(m, start, abgate.ErrorCode(err))
	s.stats.record(m.Name, err, took, 0)
	return resp, err
}

// inferModel runs req on m and returns the response and how long the
// model took, batcher queue included.
func (s *Server) inferModel(ctx context.Context, m *Model, req *InferRequest) (*InferResponse, time.Duration, error) {
	// One allocation for the inputs, the response and its outputs when
	// they are few.
	room := &answerRoom{}
	var inputs []Tensor
	if len(req.Inputs) <= len(room.inputs) {
		inputs = room.inputs[:len(req.Inputs)]
	} else {
		inputs = make([]Tensor, len(req.Inputs))
	}
	for i, in := range req.Inputs {
		if in.Data == nil {
			if _, ok := in.Parameters[ParamBinaryDataSize]; ok {
				return nil, 0, abgate.FieldErrorf("inputs."+in.Name, "input %q has no data: its %s parameter needs the binary tensor extension, a body whose JSON part has the length given by the %s header", in.Name, ParamBinaryDataSize, InferenceHeaderContentLength)
			}
			return nil, 0, abgate.FieldErrorf("inputs."+in.Name, "input %q has no data", in.Name)
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
	start := time.Now()
	outs, err := s.run(ctx, m, inputs, names)
	took := time.Since(start)
	if err != nil {
		return nil, took, err
	}
	resp := &room.resp
	*resp = InferResponse{ModelName: m.Name, ModelVersion: m.Version, ID: req.ID}
	if len(outs) <= len(room.outputs) {
		resp.Outputs = room.outputs[:len(outs)]
	} else {
		resp.Outputs = make([]InferOutput, len(outs))
	}
	for i, t := range outs {
		resp.Outputs[i].Tensor = t
	}
	return resp, took, nil
}

// answerRoom is memory for a model's inputs, the response and its outputs,
// taken in one allocation when there are few.
type answerRoom struct {
	resp    InferResponse
	inputs  [2]Tensor
	outputs [2]InferOutput
}

// run is the one way the server runs a model: Infer and the image API go
// through it, and so through the model's dynamic batcher: the request's
// inputs are checked, then queued; requests that agree on all but a
// dynamic first axis are concatenated, run once and split back. A full
// queue is EUNAVAILABLE (503 with Retry-After); a ctx done while queued
// takes the request out of the queue.
func (s *Server) run(ctx context.Context, m *Model, inputs []Tensor, outputs []string) ([]Tensor, error) {
	return m.infer(ctx, inputs, outputs)
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
		"extensions": append([]string{"model_repository", "binary_tensor_data"}, s.opts.Extensions...),
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

// infer answers POST /v2/models/:model[/versions/:version]/infer: a V2
// request in JSON, or in the binary tensor format when the
// Inference-Header-Content-Length header is present. The answer is JSON,
// or in the binary format (application/octet-stream, with the header)
// when some output is asked for as binary data.
func (s *Server) infer(c *gin.Context) {
	start := time.Now()
	model, version := c.Param("model"), c.Param("version")
	headerLen, err := binaryHeaderLen(c.Request.Header)
	if err != nil {
		s.failInfer(c, start, model, version, err)
		return
	}
	// Place the body so that its binary part starts 8-byte aligned, where
	// tensors can be read in place.
	pad := 0
	if headerLen > 0 {
		pad = (8 - headerLen%8) % 8
	}
	body := s.buffer(s.bodySize(c.Request, pad))
	var floats *bytes.Buffer // the data of a large JSON FP32 input
	// The binary inputs are read in place from body, and a large FP32
	// input decoded into floats, so these go back to the pool only when
	// no run can read them any more: not when the request ended with its
	// context done, since the batch it joined may still run.
	defer func() {
		if c.Request.Context().Err() == nil {
			s.release(body)
			if floats != nil {
				s.release(floats)
			}
		}
	}()
	data, err := s.readBody(c.Request, body, pad, "a V2 inference request (JSON) is expected")
	if err != nil {
		s.failInfer(c, start, model, version, err)
		return
	}
	var req *InferRequest
	switch {
	case headerLen < 0 && len(data) >= pooledFloatsMin*2:
		req, floats, err = s.decodeLarge(data)
	case headerLen < 0:
		req, err = DecodeInferRequest(data)
	default:
		req, err = decodeBinaryInferRequest(data, headerLen, true)
	}
	if err != nil {
		s.failInfer(c, start, model, version, err)
		return
	}
	binaryDefault, binaryOut, err := binaryOutputs(req)
	if err != nil {
		s.failInfer(c, start, model, version, err)
		return
	}
	resp, err := s.inferAt(c.Request.Context(), start, model, version, req)
	if err != nil {
		s.fail(c, err)
		return
	}
	var out *bytes.Buffer
	if headerLen < 0 && floats == nil && c.Request.Context().Err() == nil {
		// A JSON request's decoded tensors do not refer to its body:
		// the answer is written into the body's buffer, which the
		// deferred release gives back.
		out = body
		out.Reset()
	} else {
		out = s.buffer(0)
		defer s.release(out)
	}
	flags, isBinary := outputFlags(resp, binaryDefault, binaryOut)
	if !isBinary {
		out.Write(AppendInferResponse(out.AvailableBuffer(), resp))
		writeAnswer(c, jsonContentType, out.Bytes())
		return
	}
	b, headerLen, err := AppendBinaryInferResponse(out.AvailableBuffer(), resp, flags)
	if err != nil {
		s.fail(c, fmt.Errorf("encode binary response of model %q: %w", resp.ModelName, err))
		return
	}
	out.Write(b)
	c.Header(InferenceHeaderContentLength, strconv.Itoa(headerLen))
	writeAnswer(c, binaryContentType, out.Bytes())
}

// pooledFloatsMin is the number of values from which the data of a JSON
// FP32 input is decoded into a pooled buffer: a fresh slice of an image's
// 150,528 values is 600 KB of memory to clear, and garbage.
const pooledFloatsMin = 16 << 10

// decodeLarge decodes a large JSON inference request, the data of its
// first large FP32 input into a buffer from the pool, which it returns
// (or nil) for the caller to release once no run can read it.
func (s *Server) decodeLarge(data []byte) (*InferRequest, *bytes.Buffer, error) {
	var floats *bytes.Buffer
	req, err := decodeInferRequest(data, func(n int) []float32 {
		if floats != nil || n < pooledFloatsMin {
			return nil
		}
		floats = s.buffer(4 * n)
		room := floats.AvailableBuffer()[:4*n]
		return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(room))), n)[:0]
	})
	return req, floats, err
}

// Content-Type values of inference answers, set in the header map as they
// are: shared, since net/http copies a header when it writes it.
var (
	jsonContentType   = []string{"application/json"}
	binaryContentType = []string{"application/octet-stream"}
)

// writeAnswer writes a 200 answer of contentType: what gin's c.Data does,
// without its two allocations (the renderer and the Content-Type slice),
// on the path of every inference.
func writeAnswer(c *gin.Context, contentType []string, body []byte) {
	c.Writer.Header()["Content-Type"] = contentType
	c.Writer.WriteHeader(http.StatusOK)
	_, _ = c.Writer.Write(body)
}

// binaryHeaderLen returns the value of the Inference-Header-Content-Length
// header, -1 when absent: the request is then JSON.
func binaryHeaderLen(h http.Header) (int, error) {
	// The map is read with the canonical key as it stands, as Get would
	// after canonicalizing it.
	var v string
	if vs := h[InferenceHeaderContentLength]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0, abgate.Errorf(abgate.EINVALID, "%s is %q; it must be the length in bytes of the JSON part of the body", InferenceHeaderContentLength, v)
	}
	return int(n), nil
}

// binaryOutputs reads which outputs a request wants as binary data: the
// default (request parameter binary_data_output) and, for each output it
// names, its binary_data parameter, or the default. Values that are not
// true or false are EINVALID.
func binaryOutputs(req *InferRequest) (bool, []bool, error) {
	def := false
	if v, ok := req.Parameters[ParamBinaryDataOutput]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return false, nil, abgate.FieldErrorf("parameters."+ParamBinaryDataOutput, "%s is %s; it must be true or false", ParamBinaryDataOutput, jsonText(v))
		}
		def = b
	}
	if len(req.Outputs) == 0 {
		return def, nil, nil
	}
	per := make([]bool, len(req.Outputs))
	for i, o := range req.Outputs {
		per[i] = def
		v, ok := o.Parameters[ParamBinaryData]
		if !ok {
			continue
		}
		b, isBool := v.(bool)
		if !isBool {
			return false, nil, abgate.FieldErrorf("outputs."+o.Name, "output %q: %s is %s; it must be true or false", o.Name, ParamBinaryData, jsonText(v))
		}
		per[i] = b
	}
	return def, per, nil
}

// outputFlags says for each output of resp whether it goes back as binary
// data, and whether any does. per, when not nil, is aligned with resp's
// outputs (those the request named, in its order).
func outputFlags(resp *InferResponse, def bool, per []bool) ([]bool, bool) {
	flags := make([]bool, len(resp.Outputs))
	anyBinary := false
	for i := range flags {
		flags[i] = def
		if i < len(per) {
			flags[i] = per[i]
		}
		anyBinary = anyBinary || flags[i]
	}
	return flags, anyBinary
}

// failInfer answers an inference request that failed before it reached
// its model, counting it for the model when it serves.
func (s *Server) failInfer(c *gin.Context, start time.Time, model, version string, err error) {
	name := ""
	if m, gerr := s.repo.Get(model, version); gerr == nil {
		s.metrics.observeRequest(m, start, abgate.ErrorCode(err))
		name = m.Name
	}
	s.stats.record(name, err, 0, 0)
	s.fail(c, err)
}

// buffer returns an empty buffer from the pool with room for size bytes.
func (s *Server) buffer(size int) *bytes.Buffer {
	return s.bufs.get(size)
}

// bodySize is the room readBody needs for r's body after pad bytes: its
// Content-Length when declared and within the limit, plus the margin
// bytes.Buffer.ReadFrom reads ahead with.
func (s *Server) bodySize(r *http.Request, pad int) int {
	if r.ContentLength <= 0 || r.ContentLength > s.opts.MaxBodyBytes {
		return 0
	}
	return pad + int(r.ContentLength) + bytes.MinRead
}

// release gives a buffer back to the pool.
func (s *Server) release(b *bytes.Buffer) {
	s.bufs.put(b)
}

// readBody reads the request body into buf, an empty buffer, after pad
// zero bytes, up to the configured limit, and returns it (without the
// pad). An empty body is EINVALID, the message saying what is expected.
func (s *Server) readBody(r *http.Request, buf *bytes.Buffer, pad int, expected string) ([]byte, error) {
	if r.ContentLength > s.opts.MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: s.opts.MaxBodyBytes}
	}
	buf.Grow(s.bodySize(r, pad)) // nothing to do for a buffer taken with that size
	buf.Write(make([]byte, pad))
	body, done := wholeBody(r)
	if done != nil {
		defer done()
	}
	if r.ContentLength < 0 {
		// A body of unknown length is stopped at the limit. One of
		// declared length was checked against it above, and net/http
		// (as the router's local backend) gives no more than that.
		body = http.MaxBytesReader(nil, r.Body, s.opts.MaxBodyBytes)
	}
	_, err := buf.ReadFrom(body)
	if err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			return nil, err
		}
		return nil, abgate.Errorf(abgate.EINVALID, "read request body: %v", err)
	}
	if buf.Len() == pad {
		return nil, abgate.Errorf(abgate.EINVALID, "request body is empty; %s", expected)
	}
	return buf.Bytes()[pad:], nil
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

package inference

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"abgate"
)

// The seed image API: POST /predict, POST /predict/batch, GET /model/info,
// GET /stats, GET /health and GET /, a page that documents them.

// MaxPredictBatch is the most images that one POST /predict/batch takes.
const MaxPredictBatch = 32

// Prediction is the image API's answer for one image.
type Prediction struct {
	// PredictedClass is the index of the most probable class.
	PredictedClass int `json:"predicted_class"`
	// Label names it: the model's labels (config.yaml or the ONNX
	// metadata), else "class_<i>".
	Label string `json:"label"`
	// Confidence is its probability.
	Confidence float32 `json:"confidence"`
	// Probabilities are the probabilities of every class: the model's
	// scores, or their softmax when they are not probabilities already.
	Probabilities []float32 `json:"probabilities"`
	// InferenceTime is the time, in seconds, that the model took to
	// answer (for a batch, the whole batch), its wait in the batcher's
	// queue included.
	InferenceTime float64 `json:"inference_time"`
	Model         string  `json:"model"`
	ModelVersion  string  `json:"model_version"`
}

// BatchPrediction is the answer of POST /predict/batch.
type BatchPrediction struct {
	Predictions   []Prediction `json:"predictions"`
	Count         int          `json:"count"`
	InferenceTime float64      `json:"inference_time"`
}

// MountImageAPI adds the routes of the seed image API to r: POST /predict,
// POST /predict/batch, GET /model/info, GET /stats, GET /health and GET /.
func (s *Server) MountImageAPI(r gin.IRouter) {
	r.POST("/predict", s.predictOne)
	r.POST("/predict/batch", s.predictBatch)
	r.GET("/model/info", s.modelInfo)
	r.GET("/stats", s.statsHandler)
	r.GET("/health", s.health)
	r.GET("/", s.indexPage)
}

// Predict classifies images (JPEG, PNG or GIF bytes, 1 to MaxPredictBatch)
// with the latest version of model, "" meaning the default image model
// (Options.DefaultImageModel, else the only model with an image block in
// its config.yaml). The images run as one batch. An unknown model is
// ENOTFOUND; no or too many images, undecodable images, images over
// Options.MaxImagePixels and a model that the image API cannot feed are
// EINVALID; a full queue is EUNAVAILABLE.
func (s *Server) Predict(ctx context.Context, model string, images [][]byte) ([]Prediction, error) {
	start := time.Now()
	m, err := s.imageModel(model, "")
	if err != nil {
		s.stats.record("", err, 0, 0)
		return nil, err
	}
	preds, _, err := s.predict(ctx, start, m, "", images, len(images) != 1)
	return preds, err
}

// predict classifies images with m, which is version version of its model
// ("" for the latest), counting the request in the metrics and stats, and
// returns the predictions and the model's time. batch says how errors name
// the images: images[i] or image.
func (s *Server) predict(ctx context.Context, start time.Time, m *Model, version string, images [][]byte, batch bool) ([]Prediction, time.Duration, error) {
	preds, took, err := s.classify(ctx, m, images, batch)
	if err != nil && m.isClosed() {
		// The version was unloaded or replaced meanwhile: once more on
		// what serves now.
		if m2, err2 := s.repo.Get(m.Name, version); err2 == nil && m2 != m {
			m = m2
			preds, took, err = s.classify(ctx, m, images, batch)
		}
	}
	s.metrics.observeRequest(m, start, abgate.ErrorCode(err))
	s.stats.record(m.Name, err, took, len(preds))
	return preds, took, err
}

func (s *Server) classify(ctx context.Context, m *Model, images [][]byte, batch bool) ([]Prediction, time.Duration, error) {
	if err := checkImageCount(len(images), batch); err != nil {
		return nil, 0, err
	}
	setup, err := m.imageSetup()
	if err != nil {
		return nil, 0, err
	}
	n, per := len(images), setup.perImage
	buf := make([]float32, n*per)
	if err := s.decodeImages(images, setup, buf, batch); err != nil {
		return nil, 0, err
	}

	start := time.Now()
	scores, err := s.runImages(ctx, m, setup, buf, n)
	took := time.Since(start)
	if err != nil {
		return nil, took, err
	}
	preds := make([]Prediction, n)
	for i := range preds {
		probs, err := classProbabilities(scores[i])
		if err != nil {
			return nil, took, fmt.Errorf("model %q version %s, output %q, image %d: %w", m.Name, m.Version, setup.output.Name, i, err)
		}
		best := 0
		for k, p := range probs {
			if p > probs[best] {
				best = k
			}
		}
		label := "class_" + strconv.Itoa(best)
		if best < len(m.Config.Labels) {
			label = m.Config.Labels[best]
		}
		preds[i] = Prediction{
			PredictedClass: best,
			Label:          label,
			Confidence:     probs[best],
			Probabilities:  probs,
			InferenceTime:  took.Seconds(),
			Model:          m.Name,
			ModelVersion:   m.Version,
		}
	}
	return preds, took, nil
}

// checkImageCount checks the number of images of a request.
func checkImageCount(n int, batch bool) error {
	switch {
	case !batch && n == 0:
		return abgate.FieldErrorf("image", "no image given")
	case !batch && n > 1:
		return abgate.FieldErrorf("image", "%d images given to /predict, which takes one; send several to /predict/batch", n)
	case n < 1 || n > MaxPredictBatch:
		return abgate.FieldErrorf("images", "%d images given; a batch holds 1 to %d", n, MaxPredictBatch)
	}
	return nil
}

// imageField names image i of a request in errors.
func imageField(i int, batch bool) string {
	if batch {
		return "images[" + strconv.Itoa(i) + "]"
	}
	return "image"
}

// decodeImages decodes and preprocesses the images into buf, image i at
// buf[i*per:], on up to GOMAXPROCS goroutines. The first error, by image
// order, names its image.
func (s *Server) decodeImages(images [][]byte, setup *imageSetup, buf []float32, batch bool) error {
	per := setup.perImage
	errs := make([]error, len(images))
	one := func(i int) {
		img, err := DecodeImage(images[i], s.opts.MaxImagePixels)
		if err != nil {
			field := imageField(i, batch)
			msg := abgate.ErrorMessage(err)
			if batch {
				msg = field + ": " + msg
			}
			errs[i] = abgate.FieldErrorf(field, "%s", msg)
			return
		}
		Preprocess(img, setup.spec, buf[i*per:(i+1)*per])
	}
	workers := min(len(images), runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range images {
			one(i)
		}
	} else {
		next := make(chan int)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range next {
					one(i)
				}
			})
		}
		for i := range images {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// runImages runs n preprocessed images in buf through m and returns each
// image's scores. A model whose image input takes any number of images
// gets them as one batch tensor; one that takes exactly one gets one run
// per image, at once (its batcher queues them).
func (s *Server) runImages(ctx context.Context, m *Model, setup *imageSetup, buf []float32, n int) ([][]float32, error) {
	first := int64(-1)
	if in := setup.input; in.rankKnown {
		first = in.Shape[0]
	}
	switch {
	case first < 0 || first == int64(n):
		return s.runImageBatch(ctx, m, setup, buf, n)
	case first == 1:
		per := setup.perImage
		scores := make([][]float32, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var sc [][]float32
				sc, errs[i] = s.runImageBatch(ctx, m, setup, buf[i*per:(i+1)*per], 1)
				if errs[i] == nil {
					scores[i] = sc[0]
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		return scores, nil
	}
	return nil, abgate.FieldErrorf("images", "model %q takes exactly %d images at a time (input %q is %s); %d given", m.Name, first, setup.input.Name, formatShape(setup.input.Shape), n)
}

// runImageBatch runs n images as one tensor and splits the scores output
// into n rows.
func (s *Server) runImageBatch(ctx context.Context, m *Model, setup *imageSetup, data []float32, n int) ([][]float32, error) {
	shape := append([]int64{int64(n)}, setup.spec.Shape()...)
	in := Tensor{Name: setup.input.Name, Datatype: DTFP32, Shape: shape, Data: data}
	outs, err := s.run(ctx, m, []Tensor{in}, []string{setup.output.Name})
	if err != nil {
		return nil, err
	}
	flat, err := floats(outs[0])
	if err != nil {
		return nil, fmt.Errorf("model %q version %s: %w", m.Name, m.Version, err)
	}
	if len(flat) == 0 || len(flat)%n != 0 {
		return nil, fmt.Errorf("model %q version %s: output %q of shape %s does not split into %d images", m.Name, m.Version, outs[0].Name, formatShape(outs[0].Shape), n)
	}
	per := len(flat) / n
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = flat[i*per : (i+1)*per : (i+1)*per]
	}
	return rows, nil
}

// floats returns the data of a float tensor as float32.
func floats(t Tensor) ([]float32, error) {
	switch d := t.Data.(type) {
	case []float32:
		return d, nil
	case []float64:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out, nil
	case []uint16:
		conv := Float16ToFloat32
		switch t.Datatype {
		case DTFP16:
		case DTBF16:
			conv = BFloat16ToFloat32
		default:
			return nil, fmt.Errorf("output %q is %s, not a float tensor", t.Name, t.Datatype)
		}
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = conv(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("output %q is %s, not a float tensor", t.Name, t.Datatype)
}

// classProbabilities returns scores when they are probabilities already
// (each in [0, 1], summing to 1 within 1e-3), else their softmax. NaN or
// ±Inf among the scores is an error.
func classProbabilities(scores []float32) ([]float32, error) {
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for i, v := range scores {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("score %d is %s", i, nonFiniteName(f))
		}
		sum += f
		lo, hi = min(lo, f), max(hi, f)
	}
	if lo >= -1e-6 && hi <= 1+1e-6 && math.Abs(sum-1) <= 1e-3 {
		return slices.Clone(scores), nil
	}
	probs := make([]float32, len(scores))
	total := 0.0
	exps := make([]float64, len(scores))
	for i, v := range scores {
		exps[i] = math.Exp(float64(v) - hi)
		total += exps[i]
	}
	for i, e := range exps {
		probs[i] = float32(e / total)
	}
	return probs, nil
}

// imageSetup is how the image API feeds a model: the preprocessing, the
// image input and the output of class scores.
type imageSetup struct {
	config   ImageConfig // with Input and Output filled in
	spec     ImageSpec
	input    IOSpec
	output   IOSpec
	perImage int    // elements of one preprocessed image
	source   string // "config.yaml", or "input shape" when derived
}

// imageSetup returns how the image API feeds m, or an EINVALID error that
// says why it cannot.
func (m *Model) imageSetup() (*imageSetup, error) {
	m.imageOnce.Do(func() { m.image, m.imageErr = m.newImageSetup() })
	return m.image, m.imageErr
}

func (m *Model) newImageSetup() (*imageSetup, error) {
	cfg, source := m.Config.Image, "config.yaml"
	if cfg == nil {
		var err error
		if cfg, err = m.deriveImageConfig(); err != nil {
			return nil, err
		}
		source = "input shape"
	}
	setup := &imageSetup{config: *cfg, spec: cfg.Spec(), source: source}
	in, ok := m.Input(cfg.Input)
	if !ok {
		return nil, abgate.Errorf(abgate.EINVALID, "model %q has no input %q", m.Name, cfg.Input)
	}
	if len(m.Inputs) > 1 {
		return nil, abgate.Errorf(abgate.EINVALID, "model %q has inputs beside its image input %q (%s); the image API feeds the image only: use the V2 protocol", m.Name, cfg.Input, m.inputList())
	}
	out, err := m.scoresOutput(cfg.Output)
	if err != nil {
		return nil, err
	}
	setup.input, setup.output = in, out
	setup.config.Output = out.Name
	setup.perImage = 3 * setup.spec.Height * setup.spec.Width
	return setup, nil
}

// deriveImageConfig returns the image config of a model without an image
// block when its only input looks like images: FP32 [batch, 3, H, W]
// (NCHW) or [batch, H, W, 3] (NHWC); a dynamic H or W is 224. The pixels
// are scaled to [0, 1], without mean or std.
func (m *Model) deriveImageConfig() (*ImageConfig, error) {
	if len(m.Inputs) != 1 {
		return nil, abgate.Errorf(abgate.EINVALID, "model %q has no image block in its %s and %d inputs (%s): the image API cannot tell how to feed it", m.Name, ConfigFile, len(m.Inputs), m.inputList())
	}
	in := m.Inputs[0]
	cfg := Config{Image: &ImageConfig{Input: in.Name}}
	size := func(d int64) int {
		if d < 0 {
			return DefaultImageSize
		}
		return int(d)
	}
	switch {
	case in.Datatype != DTFP32 || !in.rankKnown || len(in.Shape) != 4:
	case in.Shape[1] == 3:
		cfg.Image.Layout, cfg.Image.Size = "NCHW", []int{size(in.Shape[2]), size(in.Shape[3])}
	case in.Shape[3] == 3:
		cfg.Image.Layout, cfg.Image.Size = "NHWC", []int{size(in.Shape[1]), size(in.Shape[2])}
	}
	if cfg.Image.Layout == "" {
		return nil, abgate.Errorf(abgate.EINVALID, "model %q has no image block in its %s, and its input %s is not FP32 [batch,3,H,W] nor [batch,H,W,3]: the image API cannot tell how to feed it", m.Name, ConfigFile, in.describe())
	}
	cfg.setImageDefaults()
	if err := cfg.Image.validate(); err != nil {
		return nil, abgate.Errorf(abgate.EINVALID, "model %q: the image size of its input %s is out of range: %s", m.Name, in.describe(), abgate.ErrorMessage(err))
	}
	return cfg.Image, nil
}

// scoresOutput returns the output that the image API reads class scores
// from: the named one, which must be a servable float output; for "" the
// output "probabilities" if it is one, else the first servable FP32
// output. Errors are EINVALID.
func (m *Model) scoresOutput(name string) (IOSpec, error) {
	isFloat := func(o IOSpec) bool {
		switch o.Datatype {
		case DTFP32, DTFP64, DTFP16, DTBF16:
			return o.Servable
		}
		return false
	}
	if name != "" {
		o, ok := m.Output(name)
		switch {
		case !ok:
			return IOSpec{}, abgate.Errorf(abgate.EINVALID, "model %q has no output %q (its outputs are %s)", m.Name, name, m.outputList())
		case !isFloat(o):
			return IOSpec{}, abgate.Errorf(abgate.EINVALID, "output %q of model %q is %s %s; class scores must be a servable float output", name, m.Name, o.Datatype, formatShape(o.Shape))
		}
		return o, nil
	}
	if o, ok := m.Output("probabilities"); ok && isFloat(o) {
		return o, nil
	}
	for _, i := range m.runOutputs {
		if o := m.Outputs[i]; o.Datatype == DTFP32 {
			return o, nil
		}
	}
	return IOSpec{}, abgate.Errorf(abgate.EINVALID, "model %q has no FP32 output to read class scores from (its outputs are %s)", m.Name, m.outputList())
}

// imageModel returns the model that an image API request names with
// ?model= (and ?version=), or the default image model. Unknown models are
// ENOTFOUND; so is no image model at all. Several image models and no
// default is EINVALID.
func (s *Server) imageModel(name, version string) (*Model, error) {
	if name == "" {
		name = s.opts.DefaultImageModel
	}
	if name != "" {
		return s.repo.Get(name, version)
	}
	var found []*Model
	for _, m := range s.repo.Models() {
		if m.Config.Image != nil {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, abgate.Errorf(abgate.ENOTFOUND, "no image model serves (none has an image block in its %s); name a model with ?model=", ConfigFile)
	case 1:
		if version != "" {
			return s.repo.Get(found[0].Name, version)
		}
		return found[0], nil
	}
	return nil, abgate.FieldErrorf("model", "several image models serve (%s); name one with ?model=", modelNames(found))
}

// modelNames lists the names of models for messages: "a", "b".
func modelNames(ms []*Model) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = strconv.Quote(m.Name)
	}
	return strings.Join(names, ", ")
}

func (s *Server) predictOne(c *gin.Context)   { s.servePredict(c, false) }
func (s *Server) predictBatch(c *gin.Context) { s.servePredict(c, true) }

// servePredict answers POST /predict (one image) and /predict/batch.
func (s *Server) servePredict(c *gin.Context, batch bool) {
	start := time.Now()
	body := s.buffer(s.bodySize(c.Request, 0))
	defer s.release(body)
	expected := `an image is expected: a multipart form with an "image" file, JSON {"image": "<base64>"} or the image bytes`
	if batch {
		expected = `images are expected: a multipart form with "images" files or JSON {"images": ["<base64>", ...]}`
	}
	var m *Model
	data, err := s.readBody(c.Request, body, 0, expected)
	if err == nil {
		m, err = s.imageModel(c.Query("model"), c.Query("version"))
	}
	var images [][]byte
	if err == nil {
		images, err = parseImageRequest(c.GetHeader("Content-Type"), data, batch)
	}
	if err != nil {
		name := ""
		if m != nil {
			s.metrics.observeRequest(m, start, abgate.ErrorCode(err))
			name = m.Name
		}
		s.stats.record(name, err, 0, 0)
		s.fail(c, err)
		return
	}
	preds, took, err := s.predict(c.Request.Context(), start, m, c.Query("version"), images, batch)
	if err != nil {
		s.fail(c, err)
		return
	}
	if batch {
		c.JSON(http.StatusOK, BatchPrediction{Predictions: preds, Count: len(preds), InferenceTime: took.Seconds()})
		return
	}
	c.JSON(http.StatusOK, preds[0])
}

// parseImageRequest returns the images of an image API request body, not
// decoded: for one image (batch false) a multipart/form-data file field
// "image", a JSON object {"image": "<base64 or data URL>"} or the image
// bytes themselves (JPEG, PNG or GIF); for a batch, "images" fields or
// {"images": [...]}, 1 to MaxPredictBatch. JSON is recognised by its
// first byte, whatever the Content-Type. Errors are EINVALID and name the
// field.
func parseImageRequest(contentType string, body []byte, batch bool) ([][]byte, error) {
	return ParseImageRequest(contentType, body, batch)
}

// ParseImageRequest returns the encoded images of a POST /predict (batch
// false) or /predict/batch body, as the image API reads them; see
// parseImageRequest.
func ParseImageRequest(contentType string, body []byte, batch bool) ([][]byte, error) {
	field := "image"
	if batch {
		field = "images"
	}
	mt, params, ctErr := mime.ParseMediaType(contentType)
	if ctErr == nil && mt == "multipart/form-data" {
		return parseMultipartImages(body, params["boundary"], field, batch)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); (len(t) > 0 && t[0] == '{') || (ctErr == nil && mt == "application/json") {
		return parseJSONImages(body, batch)
	}
	if _, _, ok := sniffImage(body); ok && !batch {
		return [][]byte{body}, nil
	}
	if batch {
		return nil, abgate.FieldErrorf(field, `no "images" field: send a multipart form with one "images" file field per image, or JSON {"images": ["<base64>", ...]}`)
	}
	return nil, abgate.FieldErrorf(field, `no "image" field: send a multipart form with an "image" file field, JSON {"image": "<base64>"}, or the JPEG, PNG or GIF bytes`)
}

// parseMultipartImages returns the files of the form fields named field.
func parseMultipartImages(body []byte, boundary, field string, batch bool) ([][]byte, error) {
	if boundary == "" {
		return nil, abgate.Errorf(abgate.EINVALID, "the multipart/form-data Content-Type has no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var images [][]byte
	var others []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, abgate.Errorf(abgate.EINVALID, "malformed multipart form: %v", err)
		}
		name := p.FormName()
		if name != field {
			if len(others) < 5 && !slices.Contains(others, strconv.Quote(name)) {
				others = append(others, strconv.Quote(name))
			}
			continue
		}
		if !batch && len(images) == 1 {
			return nil, abgate.FieldErrorf(field, `the form has several "image" fields; /predict takes one image, /predict/batch several ("images" fields)`)
		}
		if batch && len(images) == MaxPredictBatch {
			return nil, abgate.FieldErrorf(field, "the form has more than %d images; a batch holds 1 to %d", MaxPredictBatch, MaxPredictBatch)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, abgate.Errorf(abgate.EINVALID, "malformed multipart form: field %q: %v", field, err)
		}
		images = append(images, data)
	}
	if len(images) == 0 {
		has := "no fields"
		if len(others) > 0 {
			has = "fields " + strings.Join(others, ", ")
		}
		return nil, abgate.FieldErrorf(field, "the form has no %q file field (it has %s)", field, has)
	}
	return images, nil
}

// parseJSONImages returns the images of {"image": "..."} or {"images":
// [...]}, base64 or data URLs.
func parseJSONImages(body []byte, batch bool) ([][]byte, error) {
	var texts []string
	if batch {
		var req struct {
			Images *[]string `json:"images"`
		}
		if err := abgate.DecodeJSON(bytes.NewReader(body), &req); err != nil {
			return nil, err
		}
		if req.Images == nil {
			return nil, abgate.FieldErrorf("images", `the JSON object has no "images": send {"images": ["<base64>", ...]}`)
		}
		texts = *req.Images
		if err := checkImageCount(len(texts), true); err != nil {
			return nil, err
		}
	} else {
		var req struct {
			Image *string `json:"image"`
		}
		if err := abgate.DecodeJSON(bytes.NewReader(body), &req); err != nil {
			return nil, err
		}
		if req.Image == nil {
			return nil, abgate.FieldErrorf("image", `the JSON object has no "image": send {"image": "<base64>"}`)
		}
		texts = []string{*req.Image}
	}
	images := make([][]byte, len(texts))
	for i, t := range texts {
		b, err := DecodeBase64Image(t)
		if err != nil {
			field := imageField(i, batch)
			msg := abgate.ErrorMessage(err)
			if batch {
				msg = field + ": " + msg
			}
			return nil, abgate.FieldErrorf(field, "%s", msg)
		}
		images[i] = b
	}
	return images, nil
}

// ModelInfo is the answer of GET /model/info.
type ModelInfo struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Versions    []string `json:"versions"`
	Type        string   `json:"type"` // "onnx"
	Platform    string   `json:"platform"`
	Parameters  int64    `json:"parameters"` // elements of the weights (initializers)
	Size        int64    `json:"size"`       // bytes of model.onnx
	Inputs      []IOSpec `json:"inputs"`
	Outputs     []IOSpec `json:"outputs"`
	Device      string   `json:"device"` // "cpu"
	Labels      []string `json:"labels"`
	Producer    string   `json:"producer,omitempty"`
	Description string   `json:"description,omitempty"`
	Runtime     string   `json:"runtime"` // ONNX Runtime's version
	Instances   int      `json:"instances"`
	// MaxBatchSize is the largest batch the dynamic batcher forms: 1 when
	// the model cannot batch (an input without a dynamic first axis).
	MaxBatchSize    int       `json:"max_batch_size"`
	MaxQueueDelayUS int       `json:"max_queue_delay_us"`
	MaxQueueSize    int       `json:"max_queue_size"`
	BatchWhenBusy   bool      `json:"batch_when_busy"`
	LoadedAt        time.Time `json:"loaded_at"`
	// Image is the preprocessing of the image API, with the input and the
	// output it uses; nil when the image API cannot feed the model, with
	// the reason in ImageUnavailable.
	Image            *ImageConfig `json:"image,omitempty"`
	ImageSource      string       `json:"image_source,omitempty"` // "config.yaml" or "input shape"
	ImageUnavailable string       `json:"image_unavailable,omitempty"`
}

// Info returns the GET /model/info description of m.
func (s *Server) Info(m *Model) ModelInfo {
	labels := m.Config.Labels
	if labels == nil {
		labels = []string{}
	}
	versions := s.repo.Versions(m.Name)
	if len(versions) == 0 {
		versions = []string{m.Version}
	}
	batch := 1
	if m.batchable {
		batch = m.Config.MaxBatchSize
	}
	info := ModelInfo{
		Name: m.Name, Version: m.Version, Versions: versions, Type: "onnx", Platform: Platform,
		Parameters: m.Parameters, Size: m.Size, Inputs: m.Inputs, Outputs: m.Outputs, Device: "cpu",
		Labels: labels, Producer: m.Producer, Description: m.Description, Runtime: RuntimeVersion(),
		Instances: m.Config.Instances, MaxBatchSize: batch, MaxQueueDelayUS: m.Config.MaxQueueDelayUS,
		MaxQueueSize: m.Config.MaxQueueSize, BatchWhenBusy: m.Config.BatchWhenBusy, LoadedAt: m.LoadedAt.UTC(),
	}
	if setup, err := m.imageSetup(); err != nil {
		info.ImageUnavailable = abgate.ErrorMessage(err)
	} else {
		cfg := setup.config
		info.Image, info.ImageSource = &cfg, setup.source
	}
	return info
}

// modelInfo answers GET /model/info: the model of ?model= (and
// ?version=), else the default image model, else the only model.
func (s *Server) modelInfo(c *gin.Context) {
	name, version := c.Query("model"), c.Query("version")
	m, err := s.imageModel(name, version)
	if err != nil && name == "" && s.opts.DefaultImageModel == "" {
		switch ms := s.repo.Models(); {
		case len(ms) == 1:
			m, err = s.repo.Get(ms[0].Name, version)
		case len(ms) == 0:
			err = abgate.Errorf(abgate.ENOTFOUND, "no model serves")
		default:
			err = abgate.FieldErrorf("model", "%d models serve (%s); name one with ?model=", len(ms), modelNames(ms))
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s.Info(m))
}

// Stats returns the server's request counts.
func (s *Server) Stats() Stats {
	return s.stats.snapshot(time.Now())
}

func (s *Server) statsHandler(c *gin.Context) {
	c.JSON(http.StatusOK, s.Stats())
}

// Health is the answer of GET /health.
type Health struct {
	Status       string        `json:"status"` // "healthy" or "unhealthy"
	ModelsLoaded int           `json:"models_loaded"`
	Models       []HealthModel `json:"models"`
	// Unavailable are the models, or model versions, of the repository
	// that do not serve, with the reason.
	Unavailable []IndexEntry `json:"unavailable"`
	Runtime     string       `json:"runtime"` // ONNX Runtime's version; "" when not loaded
	Version     string       `json:"version"` // the server's
	Uptime      float64      `json:"uptime"`  // seconds
}

// HealthModel is a model that serves, in Health.
type HealthModel struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Image   bool   `json:"image"` // the image API can feed it
}

// Health returns the server's health: healthy when ONNX Runtime is loaded
// and at least one model serves.
func (s *Server) Health() Health {
	h := Health{Models: []HealthModel{}, Unavailable: []IndexEntry{}, Runtime: RuntimeVersion(), Version: s.opts.Version,
		Uptime: time.Since(s.stats.start).Seconds()}
	for _, m := range s.repo.Models() {
		_, err := m.imageSetup()
		h.Models = append(h.Models, HealthModel{Name: m.Name, Version: m.Version, Image: err == nil})
	}
	for _, e := range s.repo.Index() {
		if e.State != StateReady {
			h.Unavailable = append(h.Unavailable, e)
		}
	}
	h.ModelsLoaded = len(h.Models)
	h.Status = "healthy"
	if h.ModelsLoaded == 0 || h.Runtime == "" {
		h.Status = "unhealthy"
	}
	return h
}

// health answers GET /health: 200 when healthy, 503 when not.
func (s *Server) health(c *gin.Context) {
	h := s.Health()
	status := http.StatusOK
	if h.Status != "healthy" {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, h)
}

//go:embed index.html
var indexHTML []byte

// indexPage answers GET /: a page that documents the endpoints and lets a
// person upload an image to /predict. It loads nothing from elsewhere.
func (s *Server) indexPage(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob: data:; connect-src 'self'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "text/html; charset=utf-8", indexHTML)
}

package analytics

// This file holds the capture of live traffic for data drift: the router
// offers each routed V2 prediction (its request body and predicted label);
// a sample of them is copied onto a bounded queue, off the request path,
// and a goroutine decodes their input tensors into feature values, bins
// them on the model's reference and adds them to the hourly histograms in
// batches. Nothing waits on the database on the request path; when the
// queue is full the offer is dropped and counted.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CaptureOptions configure a Capture; zero values mean the defaults named.
type CaptureOptions struct {
	// Rate is the share of predictions captured, in [0, 1]; 0 means 0.1.
	// Use a negative rate to capture nothing.
	Rate float64
	// QueueSize bounds the captured predictions waiting to be binned;
	// 0 means 10000.
	QueueSize int
	// FlushInterval is how often binned counts are written; 0 means 10 s.
	FlushInterval time.Duration
	// FeatureNames returns the names of the columns of a model's input
	// tensor (from its configuration); nil, or an empty answer, names them
	// input[0], input[1], ...
	FeatureNames func(model, input string) []string
	// Images decodes the images of a /predict (batch false) or
	// /predict/batch body; nil leaves image predictions out.
	Images func(contentType string, body []byte, batch bool) ([]image.Image, error)
}

// Capture samples routed predictions into the drift histograms.
type Capture struct {
	svc   *Service
	opts  CaptureOptions
	log   *slog.Logger
	queue chan captured

	offered, taken, dropped, failed prometheus.Counter

	mu      sync.Mutex
	refs    map[[2]string]captureRef // by model and variant
	refsAt  time.Time
	pending *observer
}

type captureRef struct {
	id int64
	p  *Profile
}

// captured is one sampled prediction.
type captured struct {
	model, variant string
	kind           string // KindV2, KindPredict or KindPredictBatch
	contentType    string
	at             time.Time
	body           []byte
	label          *string
	confidence     *float64
}

// The kinds of routed predictions a Capture is offered.
const (
	KindV2           = "v2"
	KindPredict      = "predict"
	KindPredictBatch = "predict_batch"
)

// NewCapture returns a Capture writing through svc; register its metrics
// on reg (nil: none). Run it with Run.
func NewCapture(svc *Service, opts CaptureOptions, log *slog.Logger, reg prometheus.Registerer) *Capture {
	if opts.Rate == 0 {
		opts.Rate = 0.1
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Capture{svc: svc, opts: opts, log: log, queue: make(chan captured, opts.QueueSize),
		refs: map[[2]string]captureRef{}, pending: &observer{counts: map[countKey]float64{}, confusion: map[confusionKey]float64{}}}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	c.offered = counter("abgate_drift_capture_offered_total", "Routed predictions offered to the drift capture.")
	c.taken = counter("abgate_drift_capture_sampled_total", "Predictions sampled into the drift histograms.")
	c.dropped = counter("abgate_drift_capture_dropped_total", "Sampled predictions dropped because the capture queue was full.")
	c.failed = counter("abgate_drift_capture_failed_total", "Sampled predictions whose inputs did not fit the model's reference.")
	if reg != nil {
		reg.MustRegister(c.offered, c.taken, c.dropped, c.failed)
	}
	return c
}

// Offer offers a routed prediction of kind (KindV2, KindPredict,
// KindPredictBatch): body is its request (read only during the call), label
// the predicted label of the answer (nil when it had none). It never
// blocks. confidence is the answer's confidence (nil: none).
func (c *Capture) Offer(model, variant, kind, contentType string, body []byte, label *string, confidence *float32) {
	c.offered.Inc()
	if kind != KindV2 && c.opts.Images == nil {
		return
	}
	if c.opts.Rate < 1 && rand.Float64() >= c.opts.Rate {
		return
	}
	item := captured{model: model, variant: variant, kind: kind, contentType: contentType, at: time.Now().UTC(), body: append([]byte(nil), body...)}
	if label != nil {
		l := *label
		item.label = &l
	}
	if confidence != nil {
		x := float64(*confidence)
		item.confidence = &x
	}
	select {
	case c.queue <- item:
		c.taken.Inc()
	default:
		c.dropped.Inc()
	}
}

// Run bins the captured predictions until ctx is done, writing the counts
// every FlushInterval, and once more at the end (what was queued is binned
// first).
func (c *Capture) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.FlushInterval)
	defer t.Stop()
	wctx := context.WithoutCancel(ctx)
	for {
		select {
		case item := <-c.queue:
			c.bin(wctx, item)
		case <-t.C:
			c.flush(wctx)
		case <-ctx.Done():
			for {
				select {
				case item := <-c.queue:
					c.bin(wctx, item)
					continue
				default:
				}
				break
			}
			fctx, cancel := context.WithTimeout(wctx, 10*time.Second)
			c.flush(fctx)
			cancel()
			return
		}
	}
}

// flush writes the pending counts. Counts of a reference replaced since
// they were binned are dropped (its histograms went with it); after any
// other failure the counts are kept for the next flush.
func (c *Capture) flush(ctx context.Context) {
	c.mu.Lock()
	pending := c.pending
	c.pending = &observer{counts: map[countKey]float64{}, confusion: map[confusionKey]float64{}}
	c.mu.Unlock()
	if len(pending.counts) == 0 {
		return
	}
	ids := map[int64]bool{}
	for k := range pending.counts {
		ids[k.ref] = true
	}
	list := make([]int64, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	var live []int64
	err := c.svc.db.WithContext(ctx).Table("drift_references").Where("id IN ?", list).Pluck("id", &live).Error
	if err == nil {
		alive := map[int64]bool{}
		for _, id := range live {
			alive[id] = true
		}
		for k := range pending.counts {
			if !alive[k.ref] {
				delete(pending.counts, k)
			}
		}
		err = c.svc.flushObservations(ctx, "", pending)
	}
	if err != nil {
		c.log.Warn("drift capture not written; counts kept for the next flush", "err", err)
		c.mu.Lock()
		for k, n := range pending.counts {
			c.pending.counts[k] += n
		}
		c.mu.Unlock()
	}
}

// reference returns the reference of model for variant, reread every
// minute; ok is false when there is none.
func (c *Capture) reference(ctx context.Context, model, variant string) (captureRef, bool) {
	c.mu.Lock()
	if time.Since(c.refsAt) > time.Minute {
		c.refs, c.refsAt = map[[2]string]captureRef{}, time.Now()
	}
	r, ok := c.refs[[2]string{model, variant}]
	c.mu.Unlock()
	if ok {
		return r, r.p != nil
	}
	id, p, err := c.svc.Reference(ctx, model, variant)
	if err != nil {
		p = nil // none (or the database is down): skipped until the reread
	}
	r = captureRef{id, p}
	c.mu.Lock()
	c.refs[[2]string{model, variant}] = r
	c.mu.Unlock()
	return r, p != nil
}

// bin decodes one captured prediction and adds its rows to the pending
// counts.
func (c *Capture) bin(ctx context.Context, item captured) {
	ref, ok := c.reference(ctx, item.model, item.variant)
	if !ok {
		return
	}
	var rows []map[string]any
	var err error
	if item.kind == KindV2 {
		rows, err = c.rows(item.model, item.body)
	} else {
		rows, err = c.imageRows(item.contentType, item.body, item.kind == KindPredictBatch)
	}
	if err != nil {
		c.failed.Inc()
		return
	}
	hour := item.at.Truncate(time.Hour)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, row := range rows {
		if len(rows) == 1 {
			if item.label != nil {
				row[PredictionFeature] = *item.label
			}
			if item.confidence != nil {
				row[ConfidenceFeature] = jsonNum(*item.confidence)
			}
		}
		for name, v := range row {
			f := ref.p.feature(name)
			bin := -2
			if f != nil {
				b, err := f.binOf(v)
				if err != nil {
					c.failed.Inc()
					continue
				}
				bin = b
			}
			c.pending.counts[countKey{ref.id, item.variant, name, hour, bin}]++
		}
	}
}

// v2Request is the part of a V2 inference request the capture reads.
type v2Request struct {
	Inputs []struct {
		Name     string          `json:"name"`
		Shape    []int64         `json:"shape"`
		Datatype string          `json:"datatype"`
		Data     json.RawMessage `json:"data"`
	} `json:"inputs"`
}

// maxCaptureRows bounds the rows read from one request.
const maxCaptureRows = 256

// rows returns the feature rows of a V2 request: an input of shape [n, k]
// gives k features (named by FeatureNames, else "input[i]") for each of n
// rows; inputs of shape [n] or [n, 1] give one feature each, named by the
// input. Other shapes (images, sequences) are not tabular and are skipped.
func (c *Capture) rows(model string, body []byte) ([]map[string]any, error) {
	var req v2Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	var rows []map[string]any
	row := func(i int) map[string]any {
		for len(rows) <= i {
			rows = append(rows, map[string]any{})
		}
		return rows[i]
	}
	for _, in := range req.Inputs {
		if len(in.Shape) == 0 || len(in.Shape) > 2 {
			continue
		}
		n := int(in.Shape[0])
		k := 1
		if len(in.Shape) == 2 {
			k = int(in.Shape[1])
		}
		if n <= 0 || k <= 0 || n > maxCaptureRows || k > MaxReferenceFeatures {
			continue
		}
		values, err := flatValues(in.Data)
		if err != nil {
			return nil, err
		}
		if len(values) != n*k {
			return nil, fmt.Errorf("input %q: %d values for shape %v", in.Name, len(values), in.Shape)
		}
		names := c.columnNames(model, in.Name, len(in.Shape), k)
		for i := range n {
			r := row(i)
			for j := range k {
				r[names[j]] = values[i*k+j]
			}
		}
	}
	return rows, nil
}

// columnNames names the k columns of input: the input's name for a
// one-dimensional input or a single column without configured names, the
// configured names when there are k of them, else input[0], input[1], ...
func (c *Capture) columnNames(model, input string, rank, k int) []string {
	var names []string
	if rank == 2 && c.opts.FeatureNames != nil {
		names = c.opts.FeatureNames(model, input)
	}
	switch {
	case len(names) == k:
		return names
	case k == 1:
		return []string{input}
	}
	names = make([]string, k)
	for j := range k {
		names[j] = input + "[" + strconv.Itoa(j) + "]"
	}
	return names
}

// Image summary features.
const (
	ImageWidth  = "image_width"
	ImageHeight = "image_height"
)

// imageGrid is the most pixels per side read for an image's statistics.
const imageGrid = 64

// imageRows returns one row of summary features per image of a /predict
// body: width, height, and per channel (r, g, b) the mean and standard
// deviation of the pixel values (0 to 255) over a grid of at most 64x64
// pixels.
func (c *Capture) imageRows(contentType string, body []byte, batch bool) ([]map[string]any, error) {
	imgs, err := c.opts.Images(contentType, body, batch)
	if err != nil {
		return nil, err
	}
	rows := make([]map[string]any, 0, len(imgs))
	for _, img := range imgs {
		rows = append(rows, ImageFeatures(img))
	}
	return rows, nil
}

// ImageFeatures returns the summary features of img: image_width,
// image_height, image_mean_r/g/b and image_std_r/g/b (pixel values 0 to
// 255, over a grid of at most 64x64 pixels), as JSON numbers.
func ImageFeatures(img image.Image) map[string]any {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	row := map[string]any{ImageWidth: jsonNum(float64(w)), ImageHeight: jsonNum(float64(h))}
	if w == 0 || h == 0 {
		return row
	}
	sx, sy := max(1, w/imageGrid), max(1, h/imageGrid)
	var sum, sq [3]float64
	var n float64
	for y := b.Min.Y; y < b.Max.Y; y += sy {
		for x := b.Min.X; x < b.Max.X; x += sx {
			r, g, bl, _ := img.At(x, y).RGBA()
			for i, v := range [3]uint32{r, g, bl} {
				f := float64(v >> 8)
				sum[i] += f
				sq[i] += f * f
			}
			n++
		}
	}
	for i, ch := range []string{"r", "g", "b"} {
		mean := sum[i] / n
		row["image_mean_"+ch] = jsonNum(mean)
		row["image_std_"+ch] = jsonNum(math.Sqrt(math.Max(0, sq[i]/n-mean*mean)))
	}
	return row
}

// jsonNum returns x as the JSON number binOf reads.
func jsonNum(x float64) json.Number {
	return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
}

// flatValues decodes V2 tensor data (flat or nested arrays of numbers,
// strings or booleans) into JSON values in row-major order.
func flatValues(raw json.RawMessage) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var out []any
	var walk func(any)
	walk = func(x any) {
		if a, ok := x.([]any); ok {
			for _, y := range a {
				walk(y)
			}
			return
		}
		out = append(out, x)
	}
	walk(v)
	return out, nil
}

package inference

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"abgate"
	"abgate/inference/modelgen"
)

// testPhoto returns a w x h image of smooth colour gradients with noise.
func testPhoto(w, h int, seed uint64) *image.NRGBA {
	r := rand.New(rand.NewPCG(seed, 2))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	fx, fy := 1+r.Float64()*3, 1+r.Float64()*3
	for y := range h {
		for x := range w {
			u, v := float64(x)/float64(w), float64(y)/float64(h)
			c := func(a float64) uint8 {
				return uint8(max(0, min(255, 128+100*a+20*r.NormFloat64())))
			}
			img.SetNRGBA(x, y, color.NRGBA{c(math.Sin(fx * u * 6)), c(math.Cos(fy * v * 5)), c(u - v), 255})
		}
	}
	return img
}

func jpegOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gifOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// multipartBody returns a multipart form with one file field per file.
func multipartBody(t testing.TB, field string, files ...[]byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField("note", "ignored"); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		fw, err := w.CreateFormFile(field, "image"+strconv.Itoa(i)+".png")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(f)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), buf.Bytes()
}

func jsonBody(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// predict posts to path and decodes a 200 answer into v.
func (ts *testServer) predict(t testing.TB, path, contentType string, body []byte, v any) {
	t.Helper()
	resp, b := ts.post(t, path, map[string]string{"Content-Type": contentType}, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("POST %s: %v in %s", path, err, b)
	}
}

// newImageServer serves the demo models with the CNN as the default image
// model, a copy of it that reads its logits ("cnn-logits") and a tiny
// model without config.yaml whose input takes one 8x8 image ("tiny").
func newImageServer(t testing.TB) *testServer {
	t.Helper()
	needORT(t)
	dir := t.TempDir()
	if _, err := WriteDemoModels(dir); err != nil {
		t.Fatal(err)
	}
	cnn, _ := modelgen.CNN()
	cfg, err := os.ReadFile(filepath.Join(dir, DemoCNN, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	writeTestModel(t, dir, "cnn-logits", "1", cnn, string(cfg)+"  output: logits\ninstances: 1\n")
	writeTestModel(t, dir, "tiny", "1", tinyImageModel(t), "")
	return newTestServerWith(t, dir, Options{MaxBodyBytes: 4 << 20, DefaultImageModel: DemoCNN})
}

// tinyImageModel averages each channel of one 8x8 image: input FLOAT
// [1, 3, 8, 8], output "scores" FLOAT [1, 3].
func tinyImageModel(t testing.TB) []byte {
	t.Helper()
	g := modelgen.NewGraph("tiny_image")
	g.Input("pixels", modelgen.Float, 1, 3, 8, 8)
	g.Node("GlobalAveragePool", []string{"pixels"}, []string{"pool"})
	g.Node("Flatten", []string{"pool"}, []string{"scores"}, modelgen.AttrInt("axis", 1))
	g.Output("scores", modelgen.Float, 1, 3)
	b, err := modelgen.Model(g).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cnnPrediction computes, independently of the server, what the demo CNN
// predicts for an image file: decoded and preprocessed per the model's
// config, then the forward pass in Go.
func cnnPrediction(t testing.TB, ts *testServer, file []byte) ([]float64, int) {
	t.Helper()
	m, err := ts.repo.Get(DemoCNN, "")
	if err != nil {
		t.Fatal(err)
	}
	img, err := DecodeImage(file, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, w := modelgen.CNN()
	return softmax(cnnByHand(w, Preprocess(img, m.Config.Image.Spec(), nil)))
}

func checkProbabilities(t testing.TB, p Prediction, classes int) {
	t.Helper()
	sum := 0.0
	for _, v := range p.Probabilities {
		sum += float64(v)
	}
	if len(p.Probabilities) != classes || math.Abs(sum-1) > 1e-4 {
		t.Errorf("%d probabilities summing to %v, want %d summing to 1", len(p.Probabilities), sum, classes)
	}
	if p.PredictedClass < 0 || p.PredictedClass >= len(p.Probabilities) || p.Confidence != p.Probabilities[p.PredictedClass] {
		t.Errorf("predicted class %d with confidence %v, probabilities %v", p.PredictedClass, p.Confidence, p.Probabilities)
		return
	}
	for _, v := range p.Probabilities {
		if v > p.Confidence {
			t.Errorf("predicted class %d (%v) is not the argmax of %v", p.PredictedClass, p.Confidence, p.Probabilities)
		}
	}
}

// samePrediction reports whether two answers give the same class and
// probabilities within tol.
func samePrediction(a, b Prediction, tol float64) bool {
	if a.PredictedClass != b.PredictedClass || a.Label != b.Label || len(a.Probabilities) != len(b.Probabilities) {
		return false
	}
	for i := range a.Probabilities {
		if math.Abs(float64(a.Probabilities[i]-b.Probabilities[i])) > tol {
			return false
		}
	}
	return true
}

func TestPredict(t *testing.T) {
	ts := newImageServer(t)
	photo := testPhoto(320, 240, 1)
	pngFile, jpegFile, gifFile := pngOf(t, photo), jpegOf(t, testPhoto(180, 260, 2)), gifOf(t, testPhoto(100, 100, 3))

	var single Prediction
	t.Run("PNG by hand", func(t *testing.T) {
		ct, body := multipartBody(t, "image", pngFile)
		ts.predict(t, "/predict", ct, body, &single)
		checkProbabilities(t, single, modelgen.CNNClasses)
		probs, best := cnnPrediction(t, ts, pngFile)
		if single.PredictedClass != best || single.Label != "class_"+strconv.Itoa(best) || !closeTo(single.Probabilities, probs, 1e-4) {
			t.Errorf("prediction %+v, want class %d, probabilities %v", single, best, probs)
		}
		if single.Model != DemoCNN || single.ModelVersion != "1" || !(single.InferenceTime > 0) {
			t.Errorf("model %q version %q inference_time %v", single.Model, single.ModelVersion, single.InferenceTime)
		}
	})
	t.Run("JPEG by hand", func(t *testing.T) {
		var p Prediction
		ct, body := multipartBody(t, "image", jpegFile)
		ts.predict(t, "/predict?model=cnn", ct, body, &p)
		checkProbabilities(t, p, modelgen.CNNClasses)
		if probs, best := cnnPrediction(t, ts, jpegFile); p.PredictedClass != best || !closeTo(p.Probabilities, probs, 1e-4) {
			t.Errorf("prediction %+v, want class %d, probabilities %v", p, best, probs)
		}
	})
	t.Run("multipart, base64, data URL and raw bytes agree", func(t *testing.T) {
		b64 := base64.StdEncoding.EncodeToString(pngFile)
		for _, c := range []struct {
			name, contentType string
			body              []byte
		}{
			{"base64", "application/json", jsonBody(t, map[string]string{"image": b64})},
			{"data URL", "application/json", jsonBody(t, map[string]string{"image": "data:image/png;base64," + b64})},
			{"URL-safe base64 without Content-Type", "", jsonBody(t, map[string]string{"image": base64.RawURLEncoding.EncodeToString(pngFile)})},
			{"raw bytes", "image/png", pngFile},
		} {
			var p Prediction
			ts.predict(t, "/predict", c.contentType, c.body, &p)
			if !samePrediction(p, single, 1e-6) {
				t.Errorf("%s: %+v, want %+v", c.name, p, single)
			}
		}
	})
	t.Run("batch of 3 equals three singles", func(t *testing.T) {
		files := [][]byte{pngFile, jpegFile, gifFile}
		singles := make([]Prediction, len(files))
		for i, f := range files {
			ct, body := multipartBody(t, "image", f)
			ts.predict(t, "/predict", ct, body, &singles[i])
		}
		ct, body := multipartBody(t, "images", files...)
		var mp BatchPrediction
		ts.predict(t, "/predict/batch", ct, body, &mp)
		var js BatchPrediction
		texts := []string{base64.StdEncoding.EncodeToString(pngFile), "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpegFile), base64.StdEncoding.EncodeToString(gifFile)}
		ts.predict(t, "/predict/batch", "application/json", jsonBody(t, map[string]any{"images": texts}), &js)
		for _, got := range []BatchPrediction{mp, js} {
			if got.Count != 3 || len(got.Predictions) != 3 || !(got.InferenceTime > 0) {
				t.Fatalf("batch answer %+v", got)
			}
			for i, p := range got.Predictions {
				checkProbabilities(t, p, modelgen.CNNClasses)
				if !samePrediction(p, singles[i], 1e-5) {
					t.Errorf("batch prediction %d = %+v, want %+v", i, p, singles[i])
				}
			}
		}
		// The batch ran as one tensor of three rows.
		if count, sum, le1 := histogram(t, ts.reg, "abgate_inference_batch_size", DemoCNN, "1"); count-le1 < 2 || sum < 6 {
			t.Errorf("CNN runs: %d of %v rows, %d of one; want two runs of 3 rows", count, sum, le1)
		}
	})
	t.Run("logits softmaxed", func(t *testing.T) {
		var p Prediction
		ct, body := multipartBody(t, "image", pngFile)
		ts.predict(t, "/predict?model=cnn-logits", ct, body, &p)
		checkProbabilities(t, p, modelgen.CNNClasses)
		if p.Model != "cnn-logits" || !samePrediction(p, single, 1e-5) {
			t.Errorf("cnn-logits: %+v, want the probabilities of cnn %+v", p, single)
		}
	})
	t.Run("image model without config, one image a run", func(t *testing.T) {
		files := [][]byte{pngFile, jpegFile, gifFile}
		ct, body := multipartBody(t, "images", files...)
		var got BatchPrediction
		ts.predict(t, "/predict/batch?model=tiny", ct, body, &got)
		if got.Count != 3 {
			t.Fatalf("answer %+v", got)
		}
		spec := ImageSpec{Height: 8, Width: 8}
		for i, f := range files {
			img, err := DecodeImage(f, 0)
			if err != nil {
				t.Fatal(err)
			}
			x := Preprocess(img, spec, nil)
			means := make([]float64, 3)
			for c := range 3 {
				for _, v := range x[c*64 : (c+1)*64] {
					means[c] += float64(v) / 64
				}
			}
			probs, best := softmax(means)
			p := got.Predictions[i]
			if p.PredictedClass != best || p.Label != "class_"+strconv.Itoa(best) || !closeTo(p.Probabilities, probs, 1e-5) {
				t.Errorf("image %d: %+v, want class %d, probabilities %v", i, p, best, probs)
			}
		}
		if count, sum, _ := histogram(t, ts.reg, "abgate_inference_batch_size", "tiny", "1"); count != 3 || sum != 3 {
			t.Errorf("tiny runs: %d of %v rows, want 3 of one", count, sum)
		}
	})
	t.Run("several image models and no default", func(t *testing.T) {
		s := NewServer(ts.repo, Options{}, nil, nil)
		defer ts.repo.obs.Store(ts.metrics)
		_, err := s.Predict(t.Context(), "", [][]byte{pngFile})
		if abgate.ErrorCode(err) != abgate.EINVALID || !strings.Contains(abgate.ErrorMessage(err), `several image models serve ("cnn", "cnn-logits")`) {
			t.Errorf("Predict without a model: %v", err)
		}
		preds, err := s.Predict(t.Context(), "cnn", [][]byte{pngFile})
		if err != nil || len(preds) != 1 || !samePrediction(preds[0], single, 1e-5) {
			t.Errorf("Predict in process: %+v, %v", preds, err)
		}
	})
}

// TestPredictBadInput: each bad image request is a clear 4xx.
func TestPredictBadInput(t *testing.T) {
	ts := newImageServer(t)
	small := pngOf(t, testPhoto(16, 16, 4))
	b64 := base64.StdEncoding.EncodeToString(small)
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = b64
		}
		return out
	}
	mpFile, mpBody := multipartBody(t, "file", small)
	mpTwo, mpTwoBody := multipartBody(t, "image", small, small)
	mpHuge, mpHugeBody := multipartBody(t, "image", pngHeaderOnly(8000, 6000))
	mp33, mp33Body := multipartBody(t, "images", slices.Repeat([][]byte{small}, 33)...)
	truncated := small[:len(small)/2]
	bmp := append([]byte("BM"), make([]byte, 60)...)
	cases := []struct {
		name        string
		path        string
		contentType string
		body        []byte
		status      int
		field       string
		want        []string
	}{
		{"undecodable image", "/predict", "application/json", jsonBody(t, map[string]string{"image": base64.StdEncoding.EncodeToString([]byte("this is not an image"))}), 400, "image", []string{"not a JPEG, PNG or GIF"}},
		{"truncated PNG", "/predict", "image/png", truncated, 400, "image", []string{"cannot decode the PNG image"}},
		{"unsupported format", "/predict", "application/json", jsonBody(t, map[string]string{"image": base64.StdEncoding.EncodeToString(bmp)}), 400, "image", []string{"BMP images are not supported"}},
		{"image over 40 megapixels", "/predict", mpHuge, mpHugeBody, 400, "image", []string{"8000x6000", "48.0 megapixels", "limit is 40 megapixels"}},
		{"no image field in the form", "/predict", mpFile, mpBody, 400, "image", []string{`no "image" file field`, `"note", "file"`}},
		{"no image in the JSON", "/predict", "application/json", []byte(`{}`), 400, "image", []string{`no "image"`}},
		{"unknown JSON field", "/predict", "application/json", []byte(`{"picture": "x"}`), 400, "picture", []string{`unknown field "picture"`}},
		{"neither form, JSON nor image", "/predict", "text/plain", []byte("hello"), 400, "image", []string{`no "image" field`}},
		{"empty body", "/predict", "", nil, 400, "", []string{"request body is empty", "image"}},
		{"bad base64", "/predict", "application/json", []byte(`{"image": "!!!!"}`), 400, "image", []string{"not valid base64"}},
		{"two images to /predict", "/predict", mpTwo, mpTwoBody, 400, "image", []string{`several "image" fields`, "/predict/batch"}},
		{"batch of 0", "/predict/batch", "application/json", jsonBody(t, map[string]any{"images": []string{}}), 400, "images", []string{"0 images given", "1 to 32"}},
		{"batch of 33", "/predict/batch", "application/json", jsonBody(t, map[string]any{"images": many(33)}), 400, "images", []string{"33 images given", "1 to 32"}},
		{"batch of 33 files", "/predict/batch", mp33, mp33Body, 400, "images", []string{"more than 32 images"}},
		{"bad image in a batch", "/predict/batch", "application/json", jsonBody(t, map[string]any{"images": []string{b64, "aGVsbG8="}}), 400, "images[1]", []string{"images[1]: the data is not a JPEG, PNG or GIF image"}},
		{"no images field", "/predict/batch", mpFile, mpBody, 400, "images", []string{`no "images" file field`}},
		{"unknown model", "/predict?model=nope", "image/png", small, 404, "", []string{`model "nope" not found`}},
		{"not an image model", "/predict?model=classifier-v1", "image/png", small, 400, "", []string{`model "classifier-v1" has no image block`, "cannot tell how to feed it"}},
		{"oversize body", "/predict", "image/png", append(slices.Clone(small), make([]byte, 5<<20)...), 413, "", []string{"larger than the limit of 4194304 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := ts.post(t, c.path, map[string]string{"Content-Type": c.contentType}, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			e := errorBody(t, b)
			if e.Field != c.field {
				t.Errorf("field %q, want %q (%s)", e.Field, c.field, e.Message)
			}
			for _, w := range c.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not contain %q", e.Message, w)
				}
			}
		})
	}
}

// TestImageAPIEndpoints checks GET /model/info, /stats, /health and /.
func TestImageAPIEndpoints(t *testing.T) {
	ts := newImageServer(t)
	get := func(path string, v any) int {
		t.Helper()
		status, b := ts.do(t, "GET", path, "")
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("GET %s: %v in %s", path, err, b)
			}
		}
		return status
	}

	t.Run("model info", func(t *testing.T) {
		var info ModelInfo
		if s := get("/model/info", &info); s != 200 {
			t.Fatalf("status %d", s)
		}
		st, err := os.Stat(filepath.Join(ts.dir, DemoCNN, "1", ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		const params = modelgen.CNNFilters*modelgen.CNNChannels*9 + modelgen.CNNFilters + modelgen.CNNClasses*modelgen.CNNFilters + modelgen.CNNClasses
		if info.Name != DemoCNN || info.Version != "1" || info.Type != "onnx" || info.Device != "cpu" || info.Parameters != params || info.Size != st.Size() ||
			len(info.Labels) != 10 || len(info.Inputs) != 1 || info.Inputs[0].Name != "input" || len(info.Outputs) != 2 || info.Runtime == "" ||
			info.Image == nil || info.Image.Output != "probabilities" || info.ImageSource != ConfigFile || info.MaxBatchSize != 1 {
			t.Errorf("info %+v, want the CNN's with %d parameters and %d bytes", info, params, st.Size())
		}
		var tiny ModelInfo
		get("/model/info?model=tiny", &tiny)
		if tiny.Image == nil || tiny.ImageSource != "input shape" || tiny.Image.Layout != "NCHW" || tiny.Image.Size[0] != 8 || tiny.Image.Output != "scores" || tiny.MaxBatchSize != 1 || tiny.Parameters != 0 {
			t.Errorf("tiny info %+v, image %+v", tiny, tiny.Image)
		}
		var lr ModelInfo
		get("/model/info?model="+DemoClassifierV1, &lr)
		if lr.Image != nil || !strings.Contains(lr.ImageUnavailable, "no image block") || lr.Parameters != 4+4+4*2+2 || lr.MaxBatchSize != 32 {
			t.Errorf("classifier info %+v", lr)
		}
		if s := get("/model/info?model=nope", nil); s != 404 {
			t.Errorf("unknown model: %d, want 404", s)
		}
	})

	t.Run("stats", func(t *testing.T) {
		small := pngOf(t, testPhoto(20, 20, 5))
		for _, c := range []struct {
			path string
			body []byte
		}{
			{"/predict", small},
			{"/predict?model=cnn-logits", small},
			{"/predict", []byte("GIF89a broken")},
			{"/predict?model=nope", small},
		} {
			ts.post(t, c.path, map[string]string{"Content-Type": "image/png"}, c.body)
		}
		ts.infer(t, DemoClassifierV1, `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[30,50000,12,2]}]}`)
		var st Stats
		get("/stats", &st)
		if st.TotalRequests != 5 || st.SuccessfulRequests != 3 || st.FailedRequests != 2 || st.Predictions != 2 || math.Abs(st.SuccessRate-0.6) > 1e-9 ||
			!(st.AverageInferenceTime > 0) || !(st.RequestsPerSecond > 0) || !(st.Uptime > 0) || st.StartedAt.IsZero() {
			t.Errorf("stats %+v", st)
		}
		if got := st.Models[DemoCNN]; got.TotalRequests != 2 || got.SuccessfulRequests != 1 || got.FailedRequests != 1 || got.Predictions != 1 || got.SuccessRate != 0.5 || !(got.AverageInferenceTime > 0) {
			t.Errorf("cnn stats %+v, want 2 requests, 1 failed, 1 prediction", got)
		}
		if got := st.Models[DemoClassifierV1]; got.TotalRequests != 1 || got.SuccessfulRequests != 1 || got.Predictions != 0 {
			t.Errorf("classifier stats %+v", got)
		}
		if len(st.Models) != 3 {
			t.Errorf("stats of models %v, want cnn, cnn-logits and classifier-v1", st.Models)
		}
	})

	t.Run("page", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.url+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		page := buf.String()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET /: %d %v", resp.StatusCode, resp.Header)
		}
		for _, want := range []string{"POST /predict", "/predict/batch", "/model/info", "/stats", "/health", `<form`, `type="file"`, "fetch(", "/v2/models/NAME/infer"} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "<link", "<script src", "<iframe"} {
			if strings.Contains(page, bad) {
				t.Errorf("page holds %q: it must not load anything from elsewhere", bad)
			}
		}
	})

	t.Run("health", func(t *testing.T) {
		var h Health
		if s := get("/health", &h); s != 200 || h.Status != "healthy" || h.ModelsLoaded != 5 || len(h.Models) != 5 || h.Runtime == "" || h.Version != "test" {
			t.Errorf("health: %d %+v", s, h)
		}
		for _, m := range h.Models {
			if wantImage := m.Name == DemoCNN || m.Name == "cnn-logits" || m.Name == "tiny"; m.Image != wantImage {
				t.Errorf("model %+v, want image %v", m, wantImage)
			}
		}
		for _, m := range h.Models {
			if err := ts.repo.Unload(m.Name); err != nil {
				t.Fatal(err)
			}
		}
		h = Health{}
		if s := get("/health", &h); s != 503 || h.Status != "unhealthy" || h.ModelsLoaded != 0 || len(h.Unavailable) != 5 {
			t.Errorf("health with no model: %d %+v", s, h)
		}
	})
}

// FuzzParseImageRequest feeds the multipart and JSON parsing of the image
// API with arbitrary bodies: it must not panic, and what it accepts has 1
// to MaxPredictBatch images (one for /predict).
func FuzzParseImageRequest(f *testing.F) {
	small := []byte("\x89PNG\r\n\x1a\nrest")
	ct, body := multipartBody(f, "image", small)
	f.Add(ct, body, false)
	ct, body = multipartBody(f, "images", small, small)
	f.Add(ct, body, true)
	f.Add("application/json", []byte(`{"image": "iVBORw0KGgo="}`), false)
	f.Add("application/json", []byte(`{"images": ["iVBORw0KGgo=", "data:image/png;base64,iVBORw0KGgo="]}`), true)
	f.Add("", []byte(`{"image": null}`), false)
	f.Add("image/png", small, false)
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a\"\r\n\r\nabc\r\n--x--\r\n"), false)
	f.Add("multipart/form-data", []byte("--x\r\n"), true)
	f.Fuzz(func(t *testing.T, contentType string, body []byte, batch bool) {
		images, err := parseImageRequest(contentType, body, batch)
		if err != nil {
			if abgate.ErrorCode(err) != abgate.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if n := len(images); n < 1 || n > MaxPredictBatch || (!batch && n != 1) {
			t.Fatalf("%d images accepted (batch %v)", n, batch)
		}
	})
}

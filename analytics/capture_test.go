package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"abgate/migrations/dbtest"
)

func TestCaptureRows(t *testing.T) {
	names := func(model, input string) []string {
		if model == "m1" {
			return []string{"age", "income"}
		}
		return nil
	}
	c := &Capture{opts: CaptureOptions{FeatureNames: names}}
	tests := []struct {
		name, model, body string
		want              []map[string]any
	}{
		{"named columns, nested", "m1", `{"inputs": [{"name": "features", "shape": [2, 2], "datatype": "FP32", "data": [[35, 52000], [41, 61000.5]]}]}`,
			[]map[string]any{{"age": num2("35"), "income": num2("52000")}, {"age": num2("41"), "income": num2("61000.5")}}},
		{"unnamed columns, flat", "m2", `{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}`,
			[]map[string]any{{"x[0]": num2("1"), "x[1]": num2("2"), "x[2]": num2("3")}}},
		{"one input per feature", "m2", `{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [30, 40]},
			{"name": "country", "shape": [2, 1], "datatype": "BYTES", "data": ["de", "fr"]}]}`,
			[]map[string]any{{"age": num2("30"), "country": "de"}, {"age": num2("40"), "country": "fr"}}},
		{"an image is not tabular", "m2", `{"inputs": [{"name": "image", "shape": [1, 3, 2, 2], "datatype": "FP32", "data": [0,0,0,0,0,0,0,0,0,0,0,0]}]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.rows(tt.model, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rows = %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`{"inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}]}`, `not json`} {
		if _, err := c.rows("m2", []byte(bad)); err == nil {
			t.Errorf("rows(%s) accepted a malformed request", bad)
		}
	}
}

func num2(s string) any { return json.Number(s) }

// TestCaptureIntoDrift offers routed predictions to a capture and finds
// them in the drift report once it has flushed.
func TestCaptureIntoDrift(t *testing.T) {
	db := dbtest.SQLite(t)
	svc, _ := newFixture(t, db, fixtureDefinition())
	var ref strings.Builder
	for i := range 500 {
		fmt.Fprintf(&ref, `{"age": %d, "income": %d, "prediction": %d, "confidence": %.3f}`+"\n", 20+i%40, 30000+(i*167)%20000, i%2, 0.5+float64(i%50)/100)
	}
	p, err := BuildProfile("m2", strings.NewReader(ref.String()), ReferenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SaveReference(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	names := func(model, input string) []string { return []string{"age", "income"} }
	c := NewCapture(svc, CaptureOptions{Rate: 1, FlushInterval: time.Hour, FeatureNames: names}, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	label := "1"
	conf := float32(0.9)
	for i := range 120 {
		body := fmt.Sprintf(`{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [%d, %d]}]}`, 60+i%40, 30000+(i*668)%20000)
		c.Offer("m2", "b", KindV2, "application/json", []byte(body), &label, &conf)
	}
	c.Offer("m1", "a", KindV2, "application/json", []byte(`{"inputs": []}`), nil, nil) // no reference: skipped
	cancel()
	<-done
	now := time.Now().UTC()
	r, err := svc.Drift(t.Context(), "exp", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var b VariantDrift
	for _, v := range r.Variants {
		if v.Key == "b" {
			b = v
		}
	}
	got := map[string]FeatureDrift{}
	for _, f := range b.Features {
		got[f.Name] = f
	}
	if f := got["age"]; f.Observations != 120 || !f.Drifted {
		t.Errorf("captured age = %+v, want 120 observations, drifted (ages 60-99 against 20-59)", f)
	}
	if f := got["income"]; f.Observations != 120 || f.Drifted {
		t.Errorf("captured income = %+v, want 120 observations, no drift", f)
	}
	if b.PredictionDrift == nil || b.PredictionDrift.Observations != 120 || !b.PredictionDrift.Drifted {
		t.Errorf("prediction drift = %+v, want 120 predictions of class 1, drifted (the reference is half 0)", b.PredictionDrift)
	}
	if b.ConfidenceDrift == nil || b.ConfidenceDrift.Observations != 120 || !b.ConfidenceDrift.Drifted {
		t.Errorf("confidence drift = %+v, want 120 confidences of 0.9, drifted (the reference spreads 0.5 to 0.99)", b.ConfidenceDrift)
	}
}

func TestImageFeatures(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 200, 100))
	// Left half (100 x 100) red 200, right half red 100; green 50; blue 0.
	for y := range 100 {
		for x := range 200 {
			r := uint8(200)
			if x >= 100 {
				r = 100
			}
			img.Set(x, y, color.RGBA{R: r, G: 50, B: 0, A: 255})
		}
	}
	got := ImageFeatures(img)
	// The 64x64 grid takes every third column (200/64 = 3): columns 0, 3,
	// ..., 198, of which 34 are below 100 and 33 above: mean red =
	// (34*200 + 33*100)/67, std = 100*sqrt(34*33)/67.
	want := map[string]float64{
		"image_width": 200, "image_height": 100,
		"image_mean_r": (34*200 + 33*100) / 67.0, "image_std_r": 100 * math.Sqrt(34*33) / 67,
		"image_mean_g": 50, "image_std_g": 0, "image_mean_b": 0, "image_std_b": 0,
	}
	for k, w := range want {
		n, ok := got[k].(json.Number)
		if !ok {
			t.Fatalf("%s = %v, want a number", k, got[k])
		}
		g, _ := n.Float64()
		if math.Abs(g-w) > 1e-9*math.Max(1, w) {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("features %v, want %d", got, len(want))
	}
}

// TestCaptureImages offers /predict requests: their summary features are
// binned like tabular inputs.
func TestCaptureImages(t *testing.T) {
	db := dbtest.SQLite(t)
	svc, _ := newFixture(t, db, fixtureDefinition())
	var ref strings.Builder
	for i := range 300 {
		fmt.Fprintf(&ref, `{"image_width": %d, "image_height": 100, "image_mean_r": %d}`+"\n", 100+i%50, i%256)
	}
	p, err := BuildProfile("m1", strings.NewReader(ref.String()), ReferenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SaveReference(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	decode := func(contentType string, body []byte, batch bool) ([]image.Image, error) {
		img, err := png.Decode(bytes.NewReader(body))
		return []image.Image{img}, err
	}
	c := NewCapture(svc, CaptureOptions{Rate: 1, FlushInterval: time.Hour, Images: decode}, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 120, 100))); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		c.Offer("m1", "a", KindPredict, "image/png", buf.Bytes(), nil, nil)
	}
	cancel()
	<-done
	now := time.Now().UTC()
	r, err := svc.Drift(t.Context(), "exp", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, f := range r.Variants[0].Features {
		seen[f.Name] = f.Observations
	}
	if seen["image_width"] != 10 || seen["image_mean_r"] != 10 || seen["image_std_g"] != 10 {
		t.Errorf("features of variant a = %v, want 10 observations of each image feature", seen)
	}
}

// TestCaptureReferenceReplaced bins against a reference that is replaced
// before the flush: those counts are dropped, later ones written.
func TestCaptureReferenceReplaced(t *testing.T) {
	db := dbtest.SQLite(t)
	svc, _ := newFixture(t, db, fixtureDefinition())
	upload := func() {
		p, err := BuildProfile("m2", strings.NewReader("{\"x\": 1}\n{\"x\": 2}\n"), ReferenceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.SaveReference(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	upload()
	c := NewCapture(svc, CaptureOptions{Rate: 1, FlushInterval: time.Hour}, nil, nil)
	body := []byte(`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}`)
	c.bin(t.Context(), captured{model: "m2", variant: "b", kind: KindV2, at: time.Now(), body: body})
	upload() // replaces the reference: the pending count's reference is gone
	c.flush(t.Context())
	c.refsAt = time.Time{} // reread the reference
	c.bin(t.Context(), captured{model: "m2", variant: "b", kind: KindV2, at: time.Now(), body: body})
	c.flush(t.Context())
	var n float64
	if err := db.Raw("SELECT COALESCE(SUM(count), 0) FROM drift_counts").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(c.pending.counts) != 0 {
		t.Errorf("%v counts written, %d pending; want 1 written, none pending", n, len(c.pending.counts))
	}
}

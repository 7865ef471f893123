package inference

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"abgate/inference/modelgen"
)

func TestWriteDemoModels(t *testing.T) {
	dir := t.TempDir()
	// An existing model directory is left alone.
	if err := os.MkdirAll(filepath.Join(dir, DemoCNN), 0o755); err != nil {
		t.Fatal(err)
	}
	wrote, err := WriteDemoModels(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{DemoClassifierV1, DemoClassifierV2}; !slices.Equal(wrote, want) {
		t.Errorf("wrote %v, want %v", wrote, want)
	}
	if err := os.Remove(filepath.Join(dir, DemoCNN)); err != nil {
		t.Fatal(err)
	}
	if wrote, err = WriteDemoModels(dir); err != nil || !slices.Equal(wrote, []string{DemoCNN}) {
		t.Errorf("second call wrote %v, %v; want [cnn]", wrote, err)
	}
	if wrote, err = WriteDemoModels(dir); err != nil || len(wrote) != 0 {
		t.Errorf("third call wrote %v, %v; want none", wrote, err)
	}

	needORT(t)
	r := NewRepository(dir, nil)
	if err := r.Scan(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, e := range r.Index() {
		if e.State != StateReady || e.Version != "1" {
			t.Errorf("index entry %+v, want version 1 READY", e)
		}
	}
	_, lw := modelgen.LogReg()
	v1, err := r.Get(DemoClassifierV1, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v1.Config.Labels, lw.Labels) || !slices.Equal(v1.Config.FeatureNames, lw.FeatureNames) || v1.Config.MaxBatchSize != 32 {
		t.Errorf("classifier-v1 config %+v", v1.Config)
	}
	features := tabularRows(2)
	out, err := v1.Run(context.Background(), []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{2, 4}, Data: features}}, []string{"probabilities"})
	if err != nil {
		t.Fatal(err)
	}
	if probs, _ := tabularByHand(lw, features); !closeTo(out[0].Data.([]float32), probs, 1e-5) {
		t.Errorf("classifier-v1 probabilities %v, want %v", out[0].Data, probs)
	}
	cnn, err := r.Get(DemoCNN, "")
	if err != nil {
		t.Fatal(err)
	}
	im := cnn.Config.Image
	if im == nil || im.Input != "input" || !slices.Equal(im.Size, []int{224, 224}) || im.Layout != "NCHW" || im.ChannelOrder != "RGB" ||
		len(cnn.Config.Labels) != 10 || cnn.Config.Labels[9] != "class_9" || cnn.Config.MaxBatchSize != 1 || im.Mean[0] != 0.485 || im.Std[2] != 0.225 {
		t.Errorf("cnn config %+v, image %+v", cnn.Config, im)
	}
	if _, err := r.Get(DemoClassifierV2, ""); err != nil {
		t.Error(err)
	}
}

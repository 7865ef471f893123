package inference

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"abgate/inference/modelgen"
)

// Names of the demo models that WriteDemoModels writes. The tabular ones
// are the models of the demo experiment (experiments.DemoModelV1/V2).
const (
	DemoClassifierV1 = "classifier-v1" // logistic regression on four features
	DemoClassifierV2 = "classifier-v2" // MLP 4-8-2 on the same features
	DemoCNN          = "cnn"           // the seed's image classifier, 3x224x224
)

// WriteDemoModels writes the demo models into the repository at repo,
// each as version 1 with its config.yaml, unless that model's directory
// already exists (then it is left as it is). It returns the names of the
// models it wrote.
func WriteDemoModels(repo string) ([]string, error) {
	logreg, lw := modelgen.LogReg()
	mlp, mw := modelgen.MLP()
	cnn, _ := modelgen.CNN()
	classes := make([]string, modelgen.CNNClasses)
	for i := range classes {
		classes[i] = "class_" + strconv.Itoa(i)
	}
	demos := []struct {
		name   string
		model  []byte
		config string
	}{
		{DemoClassifierV1, logreg, tabularConfig("logistic regression (churn)", lw)},
		{DemoClassifierV2, mlp, tabularConfig("MLP 4-8-2 (churn)", mw)},
		{DemoCNN, cnn, "# abgate demo: the seed's example CNN, Conv3x3(3->32)+ReLU, global average pool, Linear(32->10).\n" +
			"labels: [" + strings.Join(classes, ", ") + "]\n" +
			"# On CPU a batch costs this model more per image than single runs (each image's\n" +
			"# 32x224x224 activations outgrow the caches): the batcher runs requests alone.\n" +
			"max_batch_size: 1\n" +
			"image:\n" +
			"  size: [224, 224]\n" +
			"  mean: [0.485, 0.456, 0.406]\n" +
			"  std: [0.229, 0.224, 0.225]\n" +
			"  channel_order: RGB\n" +
			"  layout: NCHW\n" +
			"  input: input\n" +
			"  scale: 255\n"},
	}
	var wrote []string
	for _, d := range demos {
		dir := filepath.Join(repo, d.name)
		if _, err := os.Stat(dir); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return wrote, fmt.Errorf("demo model %s: %w", d.name, err)
		}
		if err := writeDemo(dir, d.model, d.config); err != nil {
			os.RemoveAll(dir)
			return wrote, fmt.Errorf("demo model %s: %w", d.name, err)
		}
		wrote = append(wrote, d.name)
	}
	return wrote, nil
}

// writeDemo writes <dir>/1/model.onnx and <dir>/config.yaml; the model
// last, so that a repository scan never sees a model without its config.
func writeDemo(dir string, model []byte, config string) error {
	if err := os.MkdirAll(filepath.Join(dir, "1"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(config), 0o644); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "1", "."+ModelFile+".tmp")
	if err := os.WriteFile(tmp, model, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "1", ModelFile))
}

// tabularConfig is the config.yaml of a tabular demo classifier.
func tabularConfig(what string, w modelgen.Tabular) string {
	return "# abgate demo: " + what + ".\n" +
		"labels: [" + strings.Join(w.Labels, ", ") + "]\n" +
		"feature_names: [" + strings.Join(w.FeatureNames, ", ") + "]\n" +
		"max_batch_size: 32\n"
}

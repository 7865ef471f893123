package inference

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEConfig checks that the config.yaml example of the README
// parses and says what the README says it does.
func TestREADMEConfig(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "```yaml\n")
	if !ok {
		t.Fatal("README.md has no ```yaml block")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README.md: the ```yaml block does not end")
	}
	cfg, err := ParseConfig([]byte(block))
	if err != nil {
		t.Fatalf("README config.yaml example: %v", err)
	}
	if cfg.MaxBatchSize != 8 || cfg.MaxQueueDelayUS != 500 || cfg.MaxQueueSize != 256 || cfg.Instances != 2 {
		t.Errorf("batching: got %+v", cfg)
	}
	if got, want := strings.Join(cfg.FeatureNames, ","), "age,income,tenure_months,sessions_per_week"; got != want {
		t.Errorf("feature_names: got %s, want %s", got, want)
	}
	if cfg.Image == nil || cfg.Image.Input != "input" || cfg.Image.Output != "probabilities" || cfg.Image.Layout != "NCHW" || len(cfg.Image.Size) != 2 {
		t.Errorf("image: got %+v", cfg.Image)
	}
}

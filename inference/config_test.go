package inference

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"abgate"
)

func TestParseConfig(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		got, err := ParseConfig(nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := DefaultConfig(); !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("full", func(t *testing.T) {
		got, err := ParseConfig([]byte(`
max_batch_size: 16
max_queue_delay_us: 0
max_queue_size: 10
instances: 3
intra_op_threads: 2
batch_when_busy: true
allow_non_finite: true
labels: [cat, dog]
feature_names:
  - age
  - income
image:
  size: [32, 48]
  mean: [0.5, 0.5, 0.5]
  std: [0.25, 0.25, 0.25]
  channel_order: BGR
  layout: NHWC
  input: pixels
  scale: 1
`))
		if err != nil {
			t.Fatal(err)
		}
		want := Config{
			MaxBatchSize: 16, MaxQueueDelayUS: 0, MaxQueueSize: 10, Instances: 3, IntraOpThreads: 2,
			BatchWhenBusy: true, AllowNonFinite: true, Labels: []string{"cat", "dog"}, FeatureNames: []string{"age", "income"},
			Image: &ImageConfig{Size: []int{32, 48}, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25},
				ChannelOrder: "BGR", Layout: "NHWC", Input: "pixels", Scale: 1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
		if got.Threads() != 2 {
			t.Errorf("Threads() = %d, want 2", got.Threads())
		}
	})
	t.Run("image defaults", func(t *testing.T) {
		got, err := ParseConfig([]byte("image: {input: x}\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := &ImageConfig{Size: []int{224, 224}, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}, ChannelOrder: "RGB", Layout: "NCHW", Input: "x", Scale: 255}
		if !reflect.DeepEqual(got.Image, want) {
			t.Errorf("got %+v, want %+v", got.Image, want)
		}
	})
	bad := []struct {
		name, yaml string
		want       []string // in the message
	}{
		{"unknown key", "max_batch: 4\n", []string{"max_batch"}},
		{"unknown image key", "image:\n  sise: [1, 2]\n", []string{"sise"}},
		{"wrong type", "instances: many\n", []string{"line 1", `instances is "many"; it must be an integer`}},
		{"wrong image type", "image:\n  scale: [1]\n", []string{"line 2", "must be a number"}},
		{"not a bool", "batch_when_busy: sometimes\n", []string{"line 1", "batch_when_busy"}},
		{"zero batch", "max_batch_size: 0\n", []string{"max_batch_size is 0"}},
		{"negative delay", "max_queue_delay_us: -1\n", []string{"max_queue_delay_us is -1"}},
		{"no instances", "instances: 0\n", []string{"instances is 0"}},
		{"empty label", "labels: [a, '']\n", []string{"labels[1] is empty"}},
		{"twice a feature", "feature_names: [a, b, a]\n", []string{`"a" twice`}},
		{"image size", "image: {size: [224]}\n", []string{"image.size"}},
		{"image mean", "image: {mean: [1, 2]}\n", []string{"image.mean has 2 values"}},
		{"image std", "image: {std: [1, 0, 1]}\n", []string{"image.std"}},
		{"channel order", "image: {channel_order: RGBA}\n", []string{`"RGBA"`, "RGB or BGR"}},
		{"layout", "image: {layout: CHW}\n", []string{`"CHW"`, "NCHW or NHWC"}},
		{"scale", "image: {scale: -1}\n", []string{"image.scale"}},
		{"malformed", "labels: [a\n", nil},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml))
			if abgate.ErrorCode(err) != abgate.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
			msg := abgate.ErrorMessage(err)
			if strings.Contains(msg, "\n") {
				t.Errorf("message %q is not one line", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	got, err := ReadConfig(dir)
	if err != nil || !reflect.DeepEqual(got, DefaultConfig()) {
		t.Errorf("no file: %+v, %v; want the defaults", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte("bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadConfig(dir)
	if msg := abgate.ErrorMessage(err); !strings.Contains(msg, ConfigFile) || !strings.Contains(msg, "bogus") {
		t.Errorf("err = %v, want it to name the file and the key", err)
	}
}

package inference

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"

	"github.com/goccy/go-yaml"

	"abgate"
)

// ConfigFile is the name of a model's optional configuration, beside its
// version directories: <repo>/<name>/config.yaml.
const ConfigFile = "config.yaml"

// Defaults of Config.
const (
	DefaultMaxBatchSize    = 8
	DefaultMaxQueueDelayUS = 500
	DefaultMaxQueueSize    = 256
	DefaultInstances       = 2
	DefaultImageSize       = 224
	DefaultImageScale      = 255
)

// Config is a model's config.yaml. Every key is optional: an absent key
// takes the default shown below; unknown keys are an error.
//
//	max_batch_size: 8          # largest batch the dynamic batcher forms; 1 = no batching
//	max_queue_delay_us: 500    # longest a request waits for a batch to fill
//	batch_when_busy: false     # true: batch while the process is busy, even beside a free session
//	max_queue_size: 256        # requests waiting beyond this are refused (503)
//	instances: 2               # ONNX Runtime sessions in the pool
//	intra_op_threads: 0        # threads per session; 0 = CPUs / instances
//	allow_non_finite: false    # accept NaN and ±Inf in float inputs
//	labels: [stay, churn]      # class names, in the order of the model's scores
//	feature_names: [age, income]
//	image:                     # preprocessing of the image API (/predict)
//	  size: [224, 224]         # height, width
//	  mean: [0.485, 0.456, 0.406]
//	  std: [0.229, 0.224, 0.225]
//	  channel_order: RGB       # or BGR
//	  layout: NCHW             # or NHWC
//	  input: input             # the model input that takes the image
//	  scale: 255               # pixel / scale, then (x - mean) / std
//	  output: probabilities    # the output of class scores; default "probabilities"
//	                           # if the model has it, else its first FP32 output
type Config struct {
	MaxBatchSize    int          `yaml:"max_batch_size" json:"max_batch_size"`
	MaxQueueDelayUS int          `yaml:"max_queue_delay_us" json:"max_queue_delay_us"`
	MaxQueueSize    int          `yaml:"max_queue_size" json:"max_queue_size"`
	Instances       int          `yaml:"instances" json:"instances"`
	IntraOpThreads  int          `yaml:"intra_op_threads" json:"intra_op_threads"`
	BatchWhenBusy   bool         `yaml:"batch_when_busy" json:"batch_when_busy"`
	AllowNonFinite  bool         `yaml:"allow_non_finite" json:"allow_non_finite"`
	Labels          []string     `yaml:"labels" json:"labels,omitempty"`
	FeatureNames    []string     `yaml:"feature_names" json:"feature_names,omitempty"`
	Image           *ImageConfig `yaml:"image" json:"image,omitempty"`
}

// ImageConfig is the image preprocessing of a model: how /predict turns a
// decoded image into the input tensor. Zero fields take the defaults that
// ParseConfig fills in: size 224x224, mean 0, std 1, RGB, NCHW, scale 255;
// an empty Input means the model's only input. The image API answers
// the softmax of Output's scores (unless they are probabilities already);
// an empty Output means the output named "probabilities", if any, else the
// first FP32 output.
type ImageConfig struct {
	Size         []int     `yaml:"size" json:"size"` // [height, width]
	Mean         []float32 `yaml:"mean" json:"mean"`
	Std          []float32 `yaml:"std" json:"std"`
	ChannelOrder string    `yaml:"channel_order" json:"channel_order"` // RGB or BGR
	Layout       string    `yaml:"layout" json:"layout"`               // NCHW or NHWC
	Input        string    `yaml:"input" json:"input"`
	Scale        float32   `yaml:"scale" json:"scale"`
	Output       string    `yaml:"output" json:"output,omitempty"`
}

// Spec returns the Preprocess spec of the image config, whose defaults
// are filled in (as ParseConfig does).
func (c *ImageConfig) Spec() ImageSpec {
	spec := ImageSpec{ChannelOrder: c.ChannelOrder, Layout: c.Layout, Scale: c.Scale}
	if len(c.Size) == 2 {
		spec.Height, spec.Width = c.Size[0], c.Size[1]
	}
	copy(spec.Mean[:], c.Mean)
	copy(spec.Std[:], c.Std)
	return spec
}

// DefaultConfig returns the configuration of a model without config.yaml.
func DefaultConfig() Config {
	return Config{
		MaxBatchSize:    DefaultMaxBatchSize,
		MaxQueueDelayUS: DefaultMaxQueueDelayUS,
		MaxQueueSize:    DefaultMaxQueueSize,
		Instances:       DefaultInstances,
	}
}

// ReadConfig reads <dir>/config.yaml; a missing file is DefaultConfig.
// Errors are EINVALID and name the file.
func ReadConfig(dir string) (Config, error) {
	path := dir + string(os.PathSeparator) + ConfigFile
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultConfig(), nil
	} else if err != nil {
		return Config{}, abgate.Errorf(abgate.EINVALID, "read %s: %v", path, err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, abgate.Errorf(abgate.EINVALID, "%s: %s", path, abgate.ErrorMessage(err))
	}
	return c, nil
}

// ParseConfig parses and validates a config.yaml document and fills in the
// defaults. Unknown keys, wrong types and values out of range are EINVALID
// errors that name the key.
func ParseConfig(b []byte) (Config, error) {
	c := DefaultConfig()
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := yaml.UnmarshalWithOptions(b, &c, yaml.Strict()); err != nil {
			return Config{}, yamlError(err)
		}
	}
	c.setImageDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// yamlError turns a go-yaml error into a one-line EINVALID error.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && te.Token != nil && te.Token.Position != nil {
		if te.StructFieldName != nil {
			if key, ok := yamlKey(*te.StructFieldName, te.DstType); ok {
				return abgate.FieldErrorf(key, "line %d: %s is %q; it must be %s", te.Token.Position.Line, key, te.Token.Value, kindName(te.DstType))
			}
		}
		return abgate.Errorf(abgate.EINVALID, "line %d: a value must be %s", te.Token.Position.Line, kindName(te.DstType))
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			msg = fmt.Sprintf("line %d: %s", tk.Position.Line, msg)
		}
		return abgate.Errorf(abgate.EINVALID, "%s", msg)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return abgate.Errorf(abgate.EINVALID, "%s", msg)
}

// yamlKey returns the config.yaml key of a Go struct field named like
// "Config.Instances" or "ImageConfig.Scale", when that field has type t.
func yamlKey(structField string, t reflect.Type) (string, bool) {
	typ, field, _ := strings.Cut(structField, ".")
	st, prefix := reflect.TypeFor[Config](), ""
	if typ == "ImageConfig" {
		st, prefix = reflect.TypeFor[ImageConfig](), "image."
	}
	f, ok := st.FieldByName(field)
	if !ok || f.Type != t {
		return "", false
	}
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return prefix + tag, true
}

// kindName describes the values of a Go type for messages.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a mapping"
}

// setImageDefaults fills in the zero fields of the image block, if any.
func (c *Config) setImageDefaults() {
	if im := c.Image; im != nil {
		if len(im.Size) == 0 {
			im.Size = []int{DefaultImageSize, DefaultImageSize}
		}
		if len(im.Mean) == 0 {
			im.Mean = []float32{0, 0, 0}
		}
		if len(im.Std) == 0 {
			im.Std = []float32{1, 1, 1}
		}
		if im.ChannelOrder == "" {
			im.ChannelOrder = "RGB"
		}
		if im.Layout == "" {
			im.Layout = "NCHW"
		}
		if im.Scale == 0 {
			im.Scale = DefaultImageScale
		}
	}
}

// Threads returns the intra-op threads of each session: IntraOpThreads, or
// when that is 0 the CPUs shared among the instances (at least 1).
func (c *Config) Threads() int {
	if c.IntraOpThreads > 0 {
		return c.IntraOpThreads
	}
	return max(1, runtime.NumCPU()/max(1, c.Instances))
}

// Validate checks the ranges of c, with the defaults filled in. Errors are
// EINVALID and name the key in Field.
func (c *Config) Validate() error {
	ranges := []struct {
		key    string
		v      int
		lo, hi int
	}{
		{"max_batch_size", c.MaxBatchSize, 1, 1 << 16},
		{"max_queue_delay_us", c.MaxQueueDelayUS, 0, 10_000_000},
		{"max_queue_size", c.MaxQueueSize, 1, 1 << 20},
		{"instances", c.Instances, 1, 256},
		{"intra_op_threads", c.IntraOpThreads, 0, 1024},
	}
	for _, r := range ranges {
		if r.v < r.lo || r.v > r.hi {
			return abgate.FieldErrorf(r.key, "%s is %d; it must be between %d and %d", r.key, r.v, r.lo, r.hi)
		}
	}
	if err := names("labels", c.Labels); err != nil {
		return err
	}
	if err := names("feature_names", c.FeatureNames); err != nil {
		return err
	}
	for i, f := range c.FeatureNames {
		for _, g := range c.FeatureNames[:i] {
			if f == g {
				return abgate.FieldErrorf("feature_names", "feature_names lists %q twice", f)
			}
		}
	}
	if c.Image != nil {
		return c.Image.validate()
	}
	return nil
}

func (im *ImageConfig) validate() error {
	if len(im.Size) != 2 || im.Size[0] < 1 || im.Size[1] < 1 || im.Size[0] > 8192 || im.Size[1] > 8192 {
		return abgate.FieldErrorf("image.size", "image.size is %v; it must be [height, width], each between 1 and 8192", im.Size)
	}
	if len(im.Mean) != 3 {
		return abgate.FieldErrorf("image.mean", "image.mean has %d values; it must have 3, one per channel", len(im.Mean))
	}
	if len(im.Std) != 3 {
		return abgate.FieldErrorf("image.std", "image.std has %d values; it must have 3, one per channel", len(im.Std))
	}
	for _, s := range im.Std {
		if !(s > 0) {
			return abgate.FieldErrorf("image.std", "image.std is %v; each value must be above 0", im.Std)
		}
	}
	switch im.ChannelOrder {
	case "RGB", "BGR":
	default:
		return abgate.FieldErrorf("image.channel_order", "image.channel_order is %q; it must be RGB or BGR", im.ChannelOrder)
	}
	switch im.Layout {
	case "NCHW", "NHWC":
	default:
		return abgate.FieldErrorf("image.layout", "image.layout is %q; it must be NCHW or NHWC", im.Layout)
	}
	if !(im.Scale > 0) {
		return abgate.FieldErrorf("image.scale", "image.scale is %v; it must be above 0", im.Scale)
	}
	return nil
}

// names checks a list of names: none empty.
func names(key string, list []string) error {
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			return abgate.FieldErrorf(key, "%s[%d] is empty", key, i)
		}
	}
	return nil
}

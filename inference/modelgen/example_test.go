package modelgen_test

import (
	"fmt"
	"os"
	"path/filepath"

	"abgate/inference/modelgen"
)

// A model that doubles a batch of 4-vectors, written where abgate's model
// repository looks for version 1 of the model "double".
func Example() {
	g := modelgen.NewGraph("double")
	g.Input("x", modelgen.Float, "batch", 4)
	g.Initializer("two", modelgen.Float, nil, []float32{2})
	g.Node("Mul", []string{"x", "two"}, []string{"y"})
	g.Output("y", modelgen.Float, "batch", 4)

	repo, err := os.MkdirTemp("", "models")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(repo)
	dir := filepath.Join(repo, "double", "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Println(err)
		return
	}
	if err := modelgen.Model(g).WriteFile(filepath.Join(dir, "model.onnx")); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("wrote double/1/model.onnx")
	// Output: wrote double/1/model.onnx
}

// Types that are not tensors, here the output of a scikit-learn style
// classifier: a sequence with one map from class label to probability per
// row.
func ExampleMapOf() {
	g := modelgen.NewGraph("zipmap")
	g.Input("probabilities", modelgen.Float, "batch", 2)
	g.Node("ZipMap", []string{"probabilities"}, []string{"output_probability"},
		modelgen.AttrStrings("classlabels_strings", "no", "yes")).Domain = modelgen.DomainML
	g.OutputOf("output_probability",
		modelgen.SequenceOf(modelgen.MapOf(modelgen.String, modelgen.TensorAnyRank(modelgen.Float))))
	_, err := modelgen.Model(g).Bytes() // imports ai.onnx.ml at DefaultMLOpset
	fmt.Println(err)
	// Output: <nil>
}

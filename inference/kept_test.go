package inference

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"abgate/inference/modelgen"
)

// TestKeptValues runs the logistic regression on one session again and
// again, with the row counts changing and coming back, so that the session
// makes, keeps and reuses its values: every answer must be that row's own
// (computed by hand), answers already returned must not change, and the
// caller's inputs are neither kept nor changed.
func TestKeptValues(t *testing.T) {
	logreg, w := modelgen.LogReg()
	m := loadTestModel(t, logreg, "instances: 1\n")
	rows := tabularRows(40)
	type answer struct {
		features []float32
		probs    []float32
		labels   []int64
	}
	var answers []answer
	counts := []int{1, 1, 1, 3, 3, 1, 2, 1, 1}
	at := 0
	for i, n := range counts {
		features := rows[at : at+4*n]
		in := slices.Clone(features)
		at += 4 * n
		out, err := m.Run(context.Background(), []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{int64(n), 4}, Data: in}}, nil)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if !slices.Equal(in, features) {
			t.Fatalf("run %d changed its input", i)
		}
		// The caller may reuse its input at once.
		clear(in)
		answers = append(answers, answer{features, out[0].Data.([]float32), out[1].Data.([]int64)})
		if got := m.pool.all[0].ins[0].shape; !slices.Equal(got, []int64{int64(n), 4}) {
			t.Errorf("run %d: the session keeps an input of shape %v, want [%d 4]", i, got, n)
		}
	}
	for i, a := range answers {
		wantProbs, wantLabels := tabularByHand(w, a.features)
		if !closeTo(a.probs, wantProbs, 1e-5) || !slices.Equal(a.labels, wantLabels) {
			t.Errorf("run %d (%d rows) answered %v %v, want %v %v", i, counts[i], a.probs, a.labels, wantProbs, wantLabels)
		}
	}
}

func TestKeepable(t *testing.T) {
	for _, c := range []struct {
		datatype string
		shape    []int64
		want     bool
	}{
		{DTFP32, []int64{1, 4}, true},
		{DTFP32, []int64{}, false},       // scalar
		{DTFP32, []int64{0, 4}, false},   // no element
		{DTFP32, []int64{64, 64}, true},  // 16 KiB
		{DTFP32, []int64{64, 65}, false}, // over 16 KiB
		{DTFP64, []int64{2048}, true},
		{DTFP64, []int64{2049}, false},
		{DTBool, []int64{3}, true},
		{DTFP16, []int64{4}, false},
		{DTBF16, []int64{4}, false},
		{DTBytes, []int64{4}, false},
	} {
		if got := keepable(c.datatype, c.shape); got != c.want {
			t.Errorf("keepable(%s, %v) = %v, want %v", c.datatype, c.shape, got, c.want)
		}
	}
}

// BenchmarkRunTabular runs the logistic regression on one row, with the
// session's values kept between runs and, as the baseline, made and
// released per run.
func BenchmarkRunTabular(b *testing.B) {
	logreg, _ := modelgen.LogReg()
	m := loadTestModel(b, logreg, "instances: 1\n")
	in := []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{1, 4}, Data: []float32{35, 52000, 12, 2.5}}}
	for _, c := range []struct {
		name  string
		limit int64
	}{{"kept", keptValueBytes}, {"made-per-run", 0}} {
		b.Run(c.name, func(b *testing.B) {
			defer func(limit int64) { keptValueBytes = limit }(keptValueBytes)
			keptValueBytes = c.limit
			m.pool.all[0].destroyKept()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Run(context.Background(), in, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRunTabularRows runs the logistic regression on batches of 1 to
// 32 rows: what one run of a batch costs beside a run of one row.
func BenchmarkRunTabularRows(b *testing.B) {
	logreg, _ := modelgen.LogReg()
	m := loadTestModel(b, logreg, "instances: 1\n")
	for _, n := range []int{1, 2, 4, 8, 16, 32} {
		in := []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{int64(n), 4}, Data: tabularRows(n)}}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Run(context.Background(), in, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

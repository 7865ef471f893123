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
		if m.pool.all[0].ins[0].find([]int64{int64(n), 4}) == nil {
			t.Errorf("run %d: the session keeps no input of shape [%d 4]", i, n)
		}
	}
	// One value per row count, for the input and each output.
	for _, ks := range [][]keptSet{m.pool.all[0].ins, m.pool.all[0].outs} {
		for slot, set := range ks {
			if len(set) != 3 {
				t.Errorf("slot %d keeps %d values, want 3 (rows 1, 3 and 2)", slot, len(set))
			}
		}
	}
	for i, a := range answers {
		wantProbs, wantLabels := tabularByHand(w, a.features)
		if !closeTo(a.probs, wantProbs, 1e-5) || !slices.Equal(a.labels, wantLabels) {
			t.Errorf("run %d (%d rows) answered %v %v, want %v %v", i, counts[i], a.probs, a.labels, wantProbs, wantLabels)
		}
	}
}

// TestKeptSetBounds adds values to a set beyond its bounds: the oldest go
// first, so that at most keptPerSlot values and keptSlotBytes bytes stay.
func TestKeptSetBounds(t *testing.T) {
	var ks keptSet
	for i := range keptPerSlot + 5 {
		ks.add(nil, []int64{int64(i + 1), 4}, 16)
	}
	if len(ks) != keptPerSlot {
		t.Fatalf("%d values kept, want %d", len(ks), keptPerSlot)
	}
	if got := ks[0].shape[0]; got != 6 {
		t.Errorf("oldest kept has %d rows, want 6 (the first five dropped)", got)
	}
	for _, size := range []int64{keptSlotBytes / 2, keptSlotBytes / 4, keptSlotBytes / 2} {
		ks.add(nil, []int64{size}, size)
	}
	var total int64
	for _, k := range ks {
		total += k.bytes
	}
	if total > keptSlotBytes {
		t.Errorf("%d bytes kept, over %d", total, keptSlotBytes)
	}
	if last := ks[len(ks)-1].shape; !slices.Equal(last, []int64{keptSlotBytes / 2}) {
		t.Errorf("newest kept has shape %v, want [%d]", last, keptSlotBytes/2)
	}
	if len(ks) != 2 {
		t.Errorf("%d values kept, want the last two (a half and a quarter of the bytes)", len(ks))
	}
	ks.destroy()
	if len(ks) != 0 {
		t.Errorf("%d values left after destroy", len(ks))
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

// BenchmarkRunTabularVaryingRows runs the logistic regression on batches
// whose row count changes from run to run (9 to 16 rows), as a batcher
// forms them under load: each run finds its shape's values kept.
func BenchmarkRunTabularVaryingRows(b *testing.B) {
	logreg, _ := modelgen.LogReg()
	m := loadTestModel(b, logreg, "instances: 1\n")
	var ins [][]Tensor
	for n := 9; n <= 16; n++ {
		ins = append(ins, []Tensor{{Name: "features", Datatype: DTFP32, Shape: []int64{int64(n), 4}, Data: tabularRows(n)}})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.Run(context.Background(), ins[i%len(ins)], nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

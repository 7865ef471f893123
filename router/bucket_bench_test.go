package router

import (
	"strconv"
	"testing"
)

// benchUnits returns 1024 unit ids shaped like real ones (a UUID-length
// string), so the benchmarks do not measure one cached input.
func benchUnits() []string {
	us := make([]string, 1024)
	for i := range us {
		us[i] = "7f3c9a2e-4b1d-4e8f-9c6a-" + strconv.FormatInt(100000000000+int64(i)*7919, 10)
	}
	return us
}

func BenchmarkFNV32a(b *testing.B) {
	us := benchUnits()
	b.ReportAllocs()
	var h uint32
	for i := 0; b.Loop(); i++ {
		h ^= FNV32a(us[i&1023])
	}
	sinkInt = int(h)
}

func BenchmarkHashV1(b *testing.B) {
	us := benchUnits()
	b.ReportAllocs()
	s := 0.0
	for i := 0; b.Loop(); i++ {
		v, _ := Hash("checkout-ranker", us[i&1023], 1)
		s += v
	}
	sinkFloat = s
}

func BenchmarkHashV2(b *testing.B) {
	us := benchUnits()
	b.ReportAllocs()
	s := 0.0
	for i := 0; b.Loop(); i++ {
		v, _ := Hash("checkout-ranker", us[i&1023], 2)
		s += v
	}
	sinkFloat = s
}

func BenchmarkInNamespace(b *testing.B) {
	us := benchUnits()
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if InNamespace(us[i&1023], "ranking", 0.2, 0.7) {
			n++
		}
	}
	sinkInt = n
}

func BenchmarkAssign3Variants(b *testing.B) {
	for _, bc := range []struct {
		name  string
		layer string
	}{
		{"no_layer", ""},
		{"layer", "ranking"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := mustCompile(b, "checkout-ranker", 0.9, []float64{0.2, 0.3, 0.5}, bc.layer, 0, 0.8)
			us := benchUnits()
			b.ReportAllocs()
			n := 0
			for i := 0; b.Loop(); i++ {
				n += c.Assign(us[i&1023]).Variant
			}
			sinkInt = n
		})
	}
}

func BenchmarkBucketRanges(b *testing.B) {
	weights := []float64{0.2, 0.3, 0.5}
	dst := make([]Range, 0, 3)
	b.ReportAllocs()
	for b.Loop() {
		dst = BucketRanges(3, 0.9, weights, dst)
	}
	sinkFloat = dst[0].End
}

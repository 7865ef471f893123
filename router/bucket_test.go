package router

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"unicode/utf8"

	"abgate"
)

// The naive reference below is deliberately written the slow, obvious way
// (string concatenation, strconv.FormatUint, hash/fnv) so that it shares no
// code with bucket.go.

func naiveFNV32a(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func naiveHash(seed, unit string, version int) (float64, bool) {
	switch version {
	case 2:
		inner := naiveFNV32a(seed + unit)
		return float64(naiveFNV32a(strconv.FormatUint(uint64(inner), 10))%10000) / 10000, true
	case 1:
		return float64(naiveFNV32a(unit+seed)%1000) / 1000, true
	}
	return 0, false
}

func naiveInNamespace(unit, layer string, start, end float64) bool {
	n := float64(naiveFNV32a(unit+"__"+layer)%1000) / 1000
	return start <= n && n < end
}

// naiveAssign returns the variant (-1 when not in) and reason of unit,
// computing the normalised weights and ranges inline.
func naiveAssign(key, seed string, version int, coverage float64, weights []float64, layer string, layerStart, layerEnd float64, unit string) (int, string) {
	if seed == "" {
		seed = key
	}
	if unit == "" {
		return -1, "missing_unit"
	}
	bucket, ok := naiveHash(seed, unit, version)
	if !ok {
		return -1, "bad_hash_version"
	}
	if layer != "" && !naiveInNamespace(unit, layer, layerStart, layerEnd) {
		return -1, "not_in_layer"
	}
	if coverage < 0 {
		coverage = 0
	}
	if coverage > 1 {
		coverage = 1
	}
	total := 0.0
	for _, w := range weights {
		total += w
	}
	cum := 0.0
	for i, w := range weights {
		w /= total
		start := cum
		cum += w
		if start <= bucket && bucket < start+coverage*w {
			return i, "in_experiment"
		}
	}
	return -1, "outside_coverage"
}

// randString returns a random string of up to maxLen bytes: ASCII, other
// Unicode or arbitrary (possibly invalid UTF-8) bytes.
func randString(r *rand.Rand, maxLen int) string {
	n := r.IntN(maxLen + 1)
	b := make([]byte, 0, n)
	switch r.IntN(3) {
	case 0:
		for range n {
			b = append(b, byte(0x20+r.IntN(0x5f)))
		}
	case 1:
		for len(b) < n {
			b = utf8.AppendRune(b, rune(r.IntN(0x10ffff)))
		}
	default:
		for range n {
			b = append(b, byte(r.IntN(256)))
		}
	}
	return string(b)
}

func TestFNV32a(t *testing.T) {
	// Published FNV-1a 32 test vectors (Go's hash/fnv golden32a and the FNV
	// reference test suite). By hand for "a":
	//   0x811c9dc5 ^ 0x61 = 0x811c9da4
	//   0x811c9da4 * 0x01000193 mod 2^32
	//     = (0x811c9da4 * 0x193 + 0x811c9da4 << 24) mod 2^32
	//     = (0x400c292c + 0xa4000000) mod 2^32 = 0xe40c292c
	tests := []struct {
		in   string
		want uint32
	}{
		{"", 0x811c9dc5},
		{"a", 0xe40c292c},
		{"ab", 0x4d2505ca},
		{"abc", 0x1a47e90b},
		{"foobar", 0xbf9cf968},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			if got := FNV32a(tt.in); got != tt.want {
				t.Errorf("FNV32a(%q) = %#x, want %#x", tt.in, got, tt.want)
			}
		})
	}
}

func TestFNV32aMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		s := randString(r, 64)
		if got, want := FNV32a(s), naiveFNV32a(s); got != want {
			t.Fatalf("FNV32a(%q) = %#x, want %#x (hash/fnv)", s, got, want)
		}
	}
}

func TestHashGrowthBook(t *testing.T) {
	// Expected values from the GrowthBook JavaScript SDK 1.8.0,
	// hash(seed, value, version) in src/util.ts, run under node. They agree
	// with the formula by hand where that is practical:
	//   v1("", "a")  = fnv32a("a") % 1000 / 1000 = 3826002220 % 1000 / 1000 = 0.22
	//                  (fnv32a("a") = 0xe40c292c = 3826002220, see TestFNV32a)
	//   v1("", "b")  = fnv32a("b") % 1000 / 1000 = 3876335077 % 1000 / 1000 = 0.077
	//                  (fnv32a("b") = 0xe70c2de5 = 3876335077)
	//   v2("", "a")  = fnv32a("3826002220") % 10000 / 10000
	//                = 1854020216 % 10000 / 10000 = 0.0216
	//   The GrowthBook SDK's own test cases list v1("", "a") = 0.22,
	//   v1("", "b") = 0.077, v1("b", "a") = 0.946, v1("ef", "d") = 0.652.
	tests := []struct {
		seed, unit string
		v1, v2     float64
	}{
		{"", "a", 0.22, 0.0216},
		{"", "b", 0.077, 0.9054},
		{"b", "a", 0.946, 0.665},
		{"ef", "d", 0.652, 0.8601},
		{"asdf", "", 0.087, 0.3294},
		{"exp-checkout", "user-1", 0.406, 0.4084},
		{"exp-checkout", "user-2", 0.131, 0.3254},
		{"ranker-v3", "42", 0.446, 0.2755},
		{"ranker-v3", "u_8f14e45f", 0.423, 0.818},
		{"fraud-model", "alice@example.com", 0.872, 0.0663},
		{"a-very-long-seed-value-for-an-experiment", "0123456789abcdef0123456789abcdef", 0.864, 0.4298},
	}
	for _, tt := range tests {
		t.Run(tt.seed+"/"+tt.unit, func(t *testing.T) {
			for _, c := range []struct {
				version int
				want    float64
			}{{1, tt.v1}, {2, tt.v2}} {
				got, ok := Hash(tt.seed, tt.unit, c.version)
				if !ok || got != c.want {
					t.Errorf("Hash(%q, %q, %d) = %v, %v; want %v, true", tt.seed, tt.unit, c.version, got, ok, c.want)
				}
			}
		})
	}
}

func TestHashBadVersion(t *testing.T) {
	for _, v := range []int{0, 3, -1, 99} {
		t.Run(strconv.Itoa(v), func(t *testing.T) {
			if got, ok := Hash("seed", "unit", v); ok || got != 0 {
				t.Errorf("Hash(_, _, %d) = %v, %v; want 0, false", v, got, ok)
			}
		})
	}
}

func TestHashMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, version := range []int{1, 2} {
		t.Run("v"+strconv.Itoa(version), func(t *testing.T) {
			for range 5000 {
				seed, unit := randString(r, 40), randString(r, 40)
				got, gotOK := Hash(seed, unit, version)
				want, wantOK := naiveHash(seed, unit, version)
				if got != want || gotOK != wantOK {
					t.Fatalf("Hash(%q, %q, %d) = %v, %v; want %v, %v", seed, unit, version, got, gotOK, want, wantOK)
				}
				if got < 0 || got >= 1 {
					t.Fatalf("Hash(%q, %q, %d) = %v, outside [0, 1)", seed, unit, version, got)
				}
			}
		})
	}
}

func TestInNamespace(t *testing.T) {
	// Expected values from the GrowthBook JavaScript SDK 1.8.0,
	// inNamespace(unit, [layer, start, end]). The namespace hashes, by the
	// formula fnv32a(unit + "__" + layer) % 1000 / 1000: "1"/namespace1 0.68,
	// "3"/namespace2 0.335, "user-1"/ranking below 0.5, "user-2"/ranking
	// at or above 0.5.
	tests := []struct {
		unit, layer string
		start, end  float64
		want        bool
	}{
		{"1", "namespace1", 0, 0.4, false},
		{"1", "namespace1", 0.4, 1, true},
		{"3", "namespace2", 0, 0.4, true},
		{"3", "namespace2", 0.4, 1, false},
		{"user-1", "ranking", 0, 0.5, true},
		{"user-1", "ranking", 0.5, 1, false},
		{"user-2", "ranking", 0, 0.5, false},
		{"user-2", "ranking", 0.5, 1, true},
		// Edges: 0.68 is in [0.68, 0.69) and not in [0.67, 0.68).
		{"1", "namespace1", 0.68, 0.69, true},
		{"1", "namespace1", 0.67, 0.68, false},
		{"1", "namespace1", 0.5, 0.5, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%v-%v", tt.unit, tt.layer, tt.start, tt.end), func(t *testing.T) {
			if got := InNamespace(tt.unit, tt.layer, tt.start, tt.end); got != tt.want {
				t.Errorf("InNamespace(%q, %q, %v, %v) = %v, want %v", tt.unit, tt.layer, tt.start, tt.end, got, tt.want)
			}
		})
	}
}

func TestInNamespaceMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		unit, layer := randString(r, 40), randString(r, 20)
		start := float64(r.IntN(1001)) / 1000
		end := start + float64(r.IntN(1001))/1000
		if got, want := InNamespace(unit, layer, start, end), naiveInNamespace(unit, layer, start, end); got != want {
			t.Fatalf("InNamespace(%q, %q, %v, %v) = %v, want %v", unit, layer, start, end, got, want)
		}
	}
}

func TestBucketRanges(t *testing.T) {
	// Expected ranges from the GrowthBook JavaScript SDK 1.8.0,
	// getBucketRanges(n, coverage, weights), printed by node; they are the
	// SDK's own test cases plus a few more. Compared exactly: the
	// arithmetic is the same IEEE 754 double arithmetic.
	tests := []struct {
		name     string
		n        int
		coverage float64
		weights  []float64
		want     []Range
	}{
		{"equal 50/50", 2, 1, nil, []Range{{0, 0.5}, {0.5, 1}}},
		{"reduced coverage", 2, 0.5, nil, []Range{{0, 0.25}, {0.5, 0.75}}},
		{"coverage 0.5 with weights", 2, 0.5, []float64{0.5, 0.5}, []Range{{0, 0.25}, {0.5, 0.75}}},
		{"zero coverage", 2, 0, nil, []Range{{0, 0}, {0.5, 0.5}}},
		{"4 variations", 4, 1, nil, []Range{{0, 0.25}, {0.25, 0.5}, {0.5, 0.75}, {0.75, 1}}},
		{"uneven weights", 2, 1, []float64{0.4, 0.6}, []Range{{0, 0.4}, {0.4, 1}}},
		{"uneven weights, 3 variations", 3, 1, []float64{0.2, 0.3, 0.5}, []Range{{0, 0.2}, {0.2, 0.5}, {0.5, 1}}},
		{"uneven weights, reduced coverage", 3, 0.2, []float64{0.2, 0.3, 0.5}, []Range{{0, 0.04000000000000001}, {0.2, 0.26}, {0.5, 0.6}}},
		{"negative coverage clamped", 2, -0.2, nil, []Range{{0, 0}, {0.5, 0.5}}},
		{"coverage above 1 clamped", 2, 1.5, nil, []Range{{0, 0.5}, {0.5, 1}}},
		{"weights sum below 1", 2, 1, []float64{0.4, 0.1}, []Range{{0, 0.5}, {0.5, 1}}},
		{"weights sum above 1", 2, 1, []float64{0.7, 0.6}, []Range{{0, 0.5}, {0.5, 1}}},
		{"weights sum off by 0.015", 2, 1, []float64{0.4, 0.585}, []Range{{0, 0.5}, {0.5, 1}}},
		{"weights length differs", 4, 1, []float64{0.4, 0.4, 0.2}, []Range{{0, 0.25}, {0.25, 0.5}, {0.5, 0.75}, {0.75, 1}}},
		{"weights sum almost 1", 2, 1, []float64{0.4, 0.599}, []Range{{0, 0.4}, {0.4, 0.999}}},
		{"thirds", 3, 1, nil, []Range{{0, 0.3333333333333333}, {0.3333333333333333, 0.6666666666666666}, {0.6666666666666666, 1}}},
		{"no variations", 0, 1, nil, []Range{}},
		{"relative weights fall back", 2, 1, []float64{70, 30}, []Range{{0, 0.5}, {0.5, 1}}},
		{"NaN coverage is 0", 2, math.NaN(), nil, []Range{{0, 0}, {0.5, 0.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BucketRanges(tt.n, tt.coverage, tt.weights, nil)
			if !rangesEqual(got, tt.want) {
				t.Errorf("BucketRanges(%d, %v, %v) = %v, want %v", tt.n, tt.coverage, tt.weights, got, tt.want)
			}
		})
	}
}

func rangesEqual(a, b []Range) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBucketRangesReusesDst(t *testing.T) {
	dst := make([]Range, 5, 8)
	got := BucketRanges(3, 1, []float64{0.2, 0.3, 0.5}, dst)
	if &got[0] != &dst[0] {
		t.Errorf("BucketRanges did not reuse dst's array")
	}
	if want := []Range{{0, 0.2}, {0.2, 0.5}, {0.5, 1}}; !rangesEqual(got, want) {
		t.Errorf("BucketRanges = %v, want %v", got, want)
	}
}

func TestNormalizeWeights(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		want    []float64
	}{
		{"percent", []float64{70, 30}, []float64{0.7, 0.3}},
		{"ratio", []float64{1, 1, 2}, []float64{0.25, 0.25, 0.5}},
		{"already normalised", []float64{0.5, 0.5}, []float64{0.5, 0.5}},
		{"zero weight kept", []float64{0, 3, 1}, []float64{0, 0.75, 0.25}},
		{"empty", nil, []float64{}},
		{"all zero falls back", []float64{0, 0}, []float64{0.5, 0.5}},
		{"negative falls back", []float64{2, -1}, []float64{0.5, 0.5}},
		{"NaN falls back", []float64{math.NaN(), 1}, []float64{0.5, 0.5}},
		{"infinite falls back", []float64{math.Inf(1), 1, 1, 1}, []float64{0.25, 0.25, 0.25, 0.25}},
		{"overflowing sum falls back", []float64{math.MaxFloat64, math.MaxFloat64}, []float64{0.5, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NormalizeWeights(tt.weights, nil)
			if len(got) != len(tt.want) {
				t.Fatalf("NormalizeWeights(%v) = %v, want %v", tt.weights, got, tt.want)
			}
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-15 {
					t.Errorf("NormalizeWeights(%v) = %v, want %v", tt.weights, got, tt.want)
					break
				}
			}
		})
	}
}

func TestChooseVariation(t *testing.T) {
	ranges := []Range{{0, 0.25}, {0.5, 0.75}} // coverage 0.5 over 50/50
	tests := []struct {
		name string
		n    float64
		want int
	}{
		{"start of first included", 0, 0},
		{"inside first", 0.1, 0},
		{"end of first excluded (gap)", 0.25, -1},
		{"inside gap", 0.4, -1},
		{"start of second included", 0.5, 1},
		{"just below end of second", 0.7499, 1},
		{"end of second excluded", 0.75, -1},
		{"after last", 0.9999, -1},
		{"negative", -0.1, -1},
		{"NaN", math.NaN(), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChooseVariation(tt.n, ranges); got != tt.want {
				t.Errorf("ChooseVariation(%v, %v) = %d, want %d", tt.n, ranges, got, tt.want)
			}
		})
	}
	t.Run("empty range", func(t *testing.T) {
		if got := ChooseVariation(0.5, []Range{{0.5, 0.5}}); got != -1 {
			t.Errorf("ChooseVariation(0.5, [[0.5, 0.5)]) = %d, want -1", got)
		}
	})
	t.Run("no ranges", func(t *testing.T) {
		if got := ChooseVariation(0.5, nil); got != -1 {
			t.Errorf("ChooseVariation(0.5, nil) = %d, want -1", got)
		}
	})
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name                 string
		weights              []float64
		coverage             float64
		layer                string
		layerStart, layerEnd float64
		field                string
	}{
		{"no weights", nil, 1, "", 0, 1, "weights"},
		{"negative weight", []float64{1, -1}, 1, "", 0, 1, "weights"},
		{"NaN weight", []float64{1, math.NaN()}, 1, "", 0, 1, "weights"},
		{"infinite weight", []float64{1, math.Inf(1)}, 1, "", 0, 1, "weights"},
		{"zero sum", []float64{0, 0}, 1, "", 0, 1, "weights"},
		{"overflowing sum", []float64{math.MaxFloat64, math.MaxFloat64}, 1, "", 0, 1, "weights"},
		{"NaN coverage", []float64{1, 1}, math.NaN(), "", 0, 1, "coverage"},
		{"layer start after end", []float64{1, 1}, 1, "l", 0.6, 0.4, "layer_range"},
		{"layer end above 1", []float64{1, 1}, 1, "l", 0.5, 1.5, "layer_range"},
		{"layer start negative", []float64{1, 1}, 1, "l", -0.1, 0.5, "layer_range"},
		{"layer range NaN", []float64{1, 1}, 1, "l", math.NaN(), 0.5, "layer_range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile("exp", "", 2, tt.coverage, tt.weights, tt.layer, tt.layerStart, tt.layerEnd)
			if err == nil {
				t.Fatalf("Compile = %v, nil; want an error", c)
			}
			var e *abgate.Error
			if !errors.As(err, &e) || e.Code != abgate.EINVALID || e.Field != tt.field {
				t.Errorf("Compile error = %v, want code %q field %q", err, abgate.EINVALID, tt.field)
			}
		})
	}
}

func TestCompile(t *testing.T) {
	c, err := Compile("exp", "", 2, 1.5, []float64{70, 30}, "", 0.3, 0.2)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if got, want := c.Seed(), "exp"; got != want {
		t.Errorf("Seed() = %q, want %q (the key)", got, want)
	}
	if got, want := c.Coverage(), 1.0; got != want {
		t.Errorf("Coverage() = %v, want %v (clamped)", got, want)
	}
	if layer, r := c.Layer(); layer != "" || r != (Range{0, 1}) {
		t.Errorf("Layer() = %q, %v; want \"\", [0, 1) (range ignored without a layer)", layer, r)
	}
	if got, want := c.Ranges(nil), []Range{{0, 0.7}, {0.7, 1}}; !rangesEqual(got, want) {
		t.Errorf("Ranges() = %v, want %v (normalised relative weights)", got, want)
	}
	c, err = Compile("exp", "salt", 1, 0.5, []float64{1}, "ranking", 0.2, 0.6)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if c.Key() != "exp" || c.Seed() != "salt" || c.HashVersion() != 1 {
		t.Errorf("Key, Seed, HashVersion = %q, %q, %d; want exp, salt, 1", c.Key(), c.Seed(), c.HashVersion())
	}
	if layer, r := c.Layer(); layer != "ranking" || r != (Range{0.2, 0.6}) {
		t.Errorf("Layer() = %q, %v; want ranking, [0.2, 0.6)", layer, r)
	}
}

func TestAssignReasons(t *testing.T) {
	// Buckets by the GrowthBook SDK (see TestHashGrowthBook, TestInNamespace):
	// v2("exp-checkout", "user-1") = 0.4084, v2("exp-checkout", "user-2") = 0.3254;
	// namespace hash of "user-1" in "ranking" < 0.5, of "user-2" >= 0.5.
	tests := []struct {
		name                 string
		version              int
		coverage             float64
		weights              []float64
		layer                string
		layerStart, layerEnd float64
		unit                 string
		want                 Assignment
	}{
		{
			name: "in control", version: 2, coverage: 1, weights: []float64{50, 50}, unit: "user-1",
			want: Assignment{InExperiment: true, Variant: 0, Bucket: 0.4084, Range: Range{0, 0.5}, Reason: ReasonInExperiment},
		},
		{
			name: "in treatment", version: 2, coverage: 1, weights: []float64{30, 70}, unit: "user-1",
			want: Assignment{InExperiment: true, Variant: 1, Bucket: 0.4084, Range: Range{0.3, 1}, Reason: ReasonInExperiment},
		},
		{
			name: "outside coverage", version: 2, coverage: 0.5, weights: []float64{1, 1}, unit: "user-1",
			want: Assignment{Variant: -1, Bucket: 0.4084, Reason: ReasonOutsideCoverage},
		},
		{
			name: "inside reduced coverage", version: 2, coverage: 0.7, weights: []float64{1, 1}, unit: "user-2",
			want: Assignment{InExperiment: true, Variant: 0, Bucket: 0.3254, Range: Range{0, 0.35}, Reason: ReasonInExperiment},
		},
		{
			name: "zero coverage", version: 2, coverage: 0, weights: []float64{1, 1}, unit: "user-2",
			want: Assignment{Variant: -1, Bucket: 0.3254, Reason: ReasonOutsideCoverage},
		},
		{
			name: "missing unit", version: 2, coverage: 1, weights: []float64{1, 1}, unit: "",
			want: Assignment{Variant: -1, Reason: ReasonMissingUnit},
		},
		{
			name: "bad hash version", version: 3, coverage: 1, weights: []float64{1, 1}, unit: "user-1",
			want: Assignment{Variant: -1, Reason: ReasonBadHashVersion},
		},
		{
			name: "hash v1", version: 1, coverage: 1, weights: []float64{1, 1}, unit: "user-1",
			want: Assignment{InExperiment: true, Variant: 0, Bucket: 0.406, Range: Range{0, 0.5}, Reason: ReasonInExperiment},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile("exp-checkout", "", tt.version, tt.coverage, tt.weights, tt.layer, tt.layerStart, tt.layerEnd)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := c.Assign(tt.unit); got != tt.want {
				t.Errorf("Assign(%q) = %+v, want %+v", tt.unit, got, tt.want)
			}
		})
	}

	t.Run("layer", func(t *testing.T) {
		c, err := Compile("exp-checkout", "", 2, 1, []float64{1, 1}, "ranking", 0, 0.5)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		in := c.Assign("user-1")
		if !in.InExperiment || in.Variant != 0 || in.Bucket != 0.4084 || !(in.LayerBucket < 0.5) {
			t.Errorf("Assign(user-1) = %+v, want in variant 0, bucket 0.4084, layer bucket < 0.5", in)
		}
		out := c.Assign("user-2")
		if out.InExperiment || out.Variant != -1 || out.Reason != ReasonNotInLayer || !(out.LayerBucket >= 0.5) {
			t.Errorf("Assign(user-2) = %+v, want not_in_layer with layer bucket >= 0.5", out)
		}
	})
}

func TestAssignMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		seed, version := randString(r, 20), 1+r.IntN(3)
		coverage := r.Float64()*1.4 - 0.2
		weights := make([]float64, 1+r.IntN(5))
		for i := range weights {
			weights[i] = float64(r.IntN(100))
		}
		weights[0]++
		layer, layerStart, layerEnd := "", 0.0, 1.0
		if r.IntN(2) == 0 {
			layer = randString(r, 12)
			layerStart = float64(r.IntN(1001)) / 1000
			layerEnd = layerStart + (1-layerStart)*r.Float64()
		}
		c, err := Compile("exp", seed, version, coverage, weights, layer, layerStart, layerEnd)
		if err != nil {
			t.Fatalf("Compile(%q, %d, %v, %v, %q, %v, %v): %v", seed, version, coverage, weights, layer, layerStart, layerEnd, err)
		}
		for range 30 {
			unit := randString(r, 40)
			got := c.Assign(unit)
			wantVariant, wantReason := naiveAssign("exp", seed, version, coverage, weights, layer, layerStart, layerEnd, unit)
			if got.Variant != wantVariant || got.Reason != wantReason {
				t.Fatalf("Compile(%q, %d, %v, %v, %q, %v, %v).Assign(%q) = variant %d, %s; naive reference says %d, %s",
					seed, version, coverage, weights, layer, layerStart, layerEnd, unit, got.Variant, got.Reason, wantVariant, wantReason)
			}
			if wantBucket, _ := naiveHash(c.Seed(), unit, version); unit != "" && version != 3 && got.Bucket != wantBucket {
				t.Fatalf("Assign(%q).Bucket = %v, want %v", unit, got.Bucket, wantBucket)
			}
		}
	}
}

func units(n int) []string {
	u := make([]string, n)
	for i := range u {
		u[i] = "user-" + strconv.Itoa(i)
	}
	return u
}

func mustCompile(t testing.TB, key string, coverage float64, weights []float64, layer string, layerStart, layerEnd float64) *Compiled {
	t.Helper()
	c, err := Compile(key, "", 2, coverage, weights, layer, layerStart, layerEnd)
	if err != nil {
		t.Fatalf("Compile(%q): %v", key, err)
	}
	return c
}

// chiSquare999Dof2 is the 0.999 quantile of the chi-square distribution
// with 2 degrees of freedom: -2 ln(0.001) = 13.8155...
var chiSquare999Dof2 = -2 * math.Log(0.001)

func TestDistributionChiSquare(t *testing.T) {
	if math.Abs(chiSquare999Dof2-13.816) > 0.001 {
		t.Fatalf("chi-square quantile = %v, want 13.816", chiSquare999Dof2)
	}
	weights := []float64{0.2, 0.3, 0.5}
	us := units(100_000)
	for _, key := range []string{"checkout-ranker", "fraud-v2", "search-ltr"} {
		t.Run(key, func(t *testing.T) {
			c := mustCompile(t, key, 1, weights, "", 0, 1)
			var counts [3]float64
			for _, u := range us {
				a := c.Assign(u)
				if !a.InExperiment {
					t.Fatalf("Assign(%q) = %+v, want in the experiment at coverage 1", u, a)
				}
				counts[a.Variant]++
			}
			stat := 0.0
			for i, w := range weights {
				want := w * float64(len(us))
				stat += (counts[i] - want) * (counts[i] - want) / want
			}
			if stat >= chiSquare999Dof2 {
				t.Errorf("chi-square = %.3f over counts %v, want < %.3f", stat, counts, chiSquare999Dof2)
			}
			t.Logf("counts %v, chi-square %.3f", counts, stat)
		})
	}
}

func TestWeightChangeMovesOnlyChangedShare(t *testing.T) {
	us := units(100_000)
	before := mustCompile(t, "ranker", 1, []float64{50, 50}, "", 0, 1)
	after := mustCompile(t, "ranker", 1, []float64{40, 60}, "", 0, 1)
	moved := 0
	for _, u := range us {
		b, a := before.Assign(u), after.Assign(u)
		if b.Variant == a.Variant {
			continue
		}
		if b.Variant != 0 || a.Variant != 1 {
			t.Fatalf("unit %q moved from variant %d to %d, want only control (0) -> treatment (1)", u, b.Variant, a.Variant)
		}
		moved++
	}
	// 10% of buckets change owner; the binomial standard deviation over
	// 100k units is sqrt(0.1*0.9/1e5) = 0.00095, so 0.005 is over 5 sigma.
	got := float64(moved) / float64(len(us))
	if math.Abs(got-0.1) > 0.005 {
		t.Errorf("share of units moved = %.4f, want 0.1 ± 0.005", got)
	}
}

func TestCoverageReductionNeverSwitchesVariant(t *testing.T) {
	us := units(100_000)
	weights := []float64{1, 1, 2}
	full := mustCompile(t, "ranker", 1, weights, "", 0, 1)
	for _, coverage := range []float64{0.8, 0.5, 0.1, 0} {
		t.Run(strconv.FormatFloat(coverage, 'g', -1, 64), func(t *testing.T) {
			reduced := mustCompile(t, "ranker", coverage, weights, "", 0, 1)
			in := 0
			for _, u := range us {
				f, r := full.Assign(u), reduced.Assign(u)
				if !r.InExperiment {
					continue
				}
				in++
				if r.Variant != f.Variant {
					t.Fatalf("unit %q: variant %d at coverage 1, %d at coverage %v; want only in -> out", u, f.Variant, r.Variant, coverage)
				}
			}
			if got := float64(in) / float64(len(us)); math.Abs(got-coverage) > 0.006 {
				t.Errorf("share in the experiment = %.4f, want %v ± 0.006", got, coverage)
			}
		})
	}
}

func TestLayerExclusivity(t *testing.T) {
	us := units(100_000)
	a := mustCompile(t, "ranker-a", 1, []float64{1, 1}, "ranking", 0, 0.3)
	b := mustCompile(t, "ranker-b", 1, []float64{1, 1}, "ranking", 0.3, 0.7)
	var inA, inB, inAny int
	var aVariants [2]int
	for _, u := range us {
		x, y := a.Assign(u), b.Assign(u)
		if x.InExperiment && y.InExperiment {
			t.Fatalf("unit %q is in both experiments of layer ranking: %+v, %+v", u, x, y)
		}
		if x.InExperiment {
			inA++
			aVariants[x.Variant]++
		}
		if y.InExperiment {
			inB++
		}
		if x.InExperiment || y.InExperiment {
			inAny++
		}
	}
	n := float64(len(us))
	// The namespace hash has 1000 values, so the shares are exact in
	// expectation; 0.006 is over 4 binomial sigmas at 100k units.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"ranker-a", float64(inA) / n, 0.3},
		{"ranker-b", float64(inB) / n, 0.4},
		{"union", float64(inAny) / n, 0.7},
		// The layer hash and the experiment hash are independent: ranker-a
		// still splits its units 50/50.
		{"ranker-a control within a", float64(aVariants[0]) / float64(inA), 0.5},
	} {
		if math.Abs(c.got-c.want) > 0.006 {
			t.Errorf("%s share = %.4f, want %v ± 0.006", c.name, c.got, c.want)
		}
	}
}

var (
	sinkFloat  float64
	sinkBool   bool
	sinkInt    int
	sinkAssign Assignment
)

func TestZeroAllocs(t *testing.T) {
	c := mustCompile(t, "ranker", 0.9, []float64{0.2, 0.3, 0.5}, "ranking", 0.1, 0.9)
	ranges := c.Ranges(nil)
	unit := "user-1234567890-abcdef"
	tests := []struct {
		name string
		f    func()
	}{
		{"FNV32a", func() { sinkInt = int(FNV32a(unit)) }},
		{"Hash v1", func() { sinkFloat, sinkBool = Hash("ranker", unit, 1) }},
		{"Hash v2", func() { sinkFloat, sinkBool = Hash("ranker", unit, 2) }},
		{"InNamespace", func() { sinkBool = InNamespace(unit, "ranking", 0.1, 0.9) }},
		{"ChooseVariation", func() { sinkInt = ChooseVariation(0.42, ranges) }},
		{"Assign", func() { sinkAssign = c.Assign(unit) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.f); got != 0 {
				t.Errorf("allocs per run = %v, want 0", got)
			}
		})
	}
}

func FuzzAssign(f *testing.F) {
	f.Add("user-1", "exp", 2, 1.0, 0.2, 0.3, 0.5, uint8(3), "", 0.0, 1.0)
	f.Add("", "exp", 2, 1.0, 1.0, 1.0, 0.0, uint8(2), "", 0.0, 1.0)
	f.Add("user-2", "", 1, 0.5, 70.0, 30.0, 0.0, uint8(2), "ranking", 0.2, 0.6)
	f.Add("日本", "exp", 3, 2.0, 1.0, 0.0, 0.0, uint8(1), "l", 0.0, 0.0)
	f.Add("\xff\x00", "exp", 2, -1.0, -1.0, 1.0, 1.0, uint8(3), "l", 0.5, 0.4)
	f.Add("u", "exp", 2, math.NaN(), math.Inf(1), 1.0, 1.0, uint8(3), "", 0.0, 1.0)
	f.Fuzz(func(t *testing.T, unit, seed string, version int, coverage, w0, w1, w2 float64, nv uint8, layer string, layerStart, layerEnd float64) {
		weights := []float64{w0, w1, w2}[:nv%4]
		c, err := Compile("exp", seed, version, coverage, weights, layer, layerStart, layerEnd)
		if err != nil {
			var e *abgate.Error
			if !errors.As(err, &e) || e.Code != abgate.EINVALID {
				t.Fatalf("Compile error %v is not an EINVALID *abgate.Error", err)
			}
			return
		}
		got := c.Assign(unit)
		ranges := c.Ranges(nil)
		if got.InExperiment {
			if got.Variant < 0 || got.Variant >= len(ranges) || got.Range != ranges[got.Variant] || !got.Range.Contains(got.Bucket) {
				t.Fatalf("Assign(%q) = %+v, ranges %v: bucket not in the variant's range", unit, got, ranges)
			}
		} else if got.Variant != -1 {
			t.Fatalf("Assign(%q) = %+v: not in the experiment but variant != -1", unit, got)
		}
		if got.Bucket < 0 || got.Bucket >= 1 || got.LayerBucket < 0 || got.LayerBucket >= 1 {
			t.Fatalf("Assign(%q) = %+v: bucket outside [0, 1)", unit, got)
		}
		wantVariant, wantReason := naiveAssign("exp", seed, version, coverage, weights, layer, layerStart, layerEnd, unit)
		if got.Variant != wantVariant || got.Reason != wantReason {
			t.Fatalf("Assign(%q) = variant %d, %s; naive reference says %d, %s", unit, got.Variant, got.Reason, wantVariant, wantReason)
		}
	})
}

// Package router assigns units (users, sessions, devices) to the variants of
// experiments and forwards prediction requests to the variant's model.
//
// This file holds the pure assignment core of DESIGN.md §3: hashing,
// bucket ranges, choosing a variation and layer namespaces. It is
// compatible with the GrowthBook SDKs' hashing, so a front end that uses a
// GrowthBook SDK and this router agree on who sees what (see FNV32a for the
// one caveat about non-ASCII unit ids). Nothing here allocates on the hot
// path, touches the network or imports Gin, GORM or ONNX Runtime.
package router

import (
	"math"
	"strconv"

	"abgate"
)

// 32-bit FNV-1a parameters (http://www.isthe.com/chongo/tech/comp/fnv/).
const (
	fnvOffset32 uint32 = 2166136261 // 0x811c9dc5
	fnvPrime32  uint32 = 16777619   // 0x01000193
)

// FNV32a returns the 32-bit FNV-1a hash of the bytes of s.
//
// It hashes UTF-8 bytes, like GrowthBook's Go SDK and like hash/fnv. The
// GrowthBook JavaScript SDK hashes UTF-16 code units (charCodeAt) and the
// Python SDK code points, so for unit ids and seeds made only of ASCII
// characters every SDK and abgate agree; for other characters they may not.
func FNV32a(s string) uint32 {
	return fnvString(fnvOffset32, s)
}

// fnvString continues the FNV-1a hash h over the bytes of s. FNV-1a is a
// byte stream, so fnvString(fnvString(offset, a), b) == FNV32a(a + b)
// without building the concatenation.
func fnvString(h uint32, s string) uint32 {
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= fnvPrime32
	}
	return h
}

// fnvString2 continues two FNV-1a hashes over the bytes of s in one loop.
func fnvString2(h1, h2 uint32, s string) (uint32, uint32) {
	for i := 0; i < len(s); i++ {
		c := uint32(s[i])
		h1 = (h1 ^ c) * fnvPrime32
		h2 = (h2 ^ c) * fnvPrime32
	}
	return h1, h2
}

// fnvBytes is fnvString for a byte slice.
func fnvBytes(h uint32, b []byte) uint32 {
	for _, c := range b {
		h ^= uint32(c)
		h *= fnvPrime32
	}
	return h
}

// Hash returns the bucket of unit in the experiment salted by seed, a
// number in [0, 1), computed as GrowthBook's hash(seed, unit, version):
//
//	version 2: float(fnv32a(itoa(fnv32a(seed + unit))) % 10000) / 10000
//	version 1: float(fnv32a(unit + seed) % 1000) / 1000
//
// where itoa is the decimal string of the uint32. Version 2 is the default
// of abgate experiments; version 1 is GrowthBook's legacy, biased hash. For
// any other version Hash returns 0, false. Hash does not allocate.
func Hash(seed, unit string, version int) (float64, bool) {
	switch version {
	case 2:
		return hashV2(seed, unit), true
	case 1:
		return hashV1(seed, unit), true
	}
	return 0, false
}

func hashV2(seed, unit string) float64 {
	return bucketV2(fnvString(fnvString(fnvOffset32, seed), unit))
}

// bucketV2 finishes hash v2 from inner = fnv32a(seed + unit): it hashes the
// decimal digits of inner.
func bucketV2(inner uint32) float64 {
	var buf [10]byte // math.MaxUint32 has 10 decimal digits
	digits := strconv.AppendUint(buf[:0], uint64(inner), 10)
	return float64(fnvBytes(fnvOffset32, digits)%10000) / 10000
}

func hashV1(seed, unit string) float64 {
	return float64(fnvString(fnvString(fnvOffset32, unit), seed)%1000) / 1000
}

// namespaceHash is GrowthBook's namespace hash of unit in layer:
// hash("__" + layer, unit, 1) = float(fnv32a(unit + "__" + layer) % 1000) / 1000.
func namespaceHash(unit, layer string) float64 {
	h := fnvString(fnvOffset32, unit)
	h = fnvString(h, "__")
	h = fnvString(h, layer)
	return float64(h%1000) / 1000
}

// InNamespace reports whether unit falls in [start, end) of the namespace
// of layer, as GrowthBook's inNamespace(unit, [layer, start, end]): the
// namespace hash is float(fnv32a(unit + "__" + layer) % 1000) / 1000.
// Experiments of one layer own disjoint ranges, so a unit is in at most one
// of them. InNamespace does not allocate.
func InNamespace(unit, layer string, start, end float64) bool {
	n := namespaceHash(unit, layer)
	return n >= start && n < end
}

// Range is the half-open interval [Start, End) of bucket values that a
// variant owns. A Range with End <= Start is empty.
type Range struct {
	Start, End float64
}

// Contains reports whether Start <= n < End.
func (r Range) Contains(n float64) bool {
	return n >= r.Start && n < r.End
}

// BucketRanges appends to dst[:0] the ranges of n variants and returns it,
// as GrowthBook's getBucketRanges(n, coverage, weights):
//
//   - coverage is clamped to [0, 1] (NaN counts as 0);
//   - weights that are missing (len(weights) != n) or do not sum to 1
//     within 0.01 are replaced by equal weights 1/n;
//   - variant i owns [cum_i, cum_i + coverage*w_i) where cum_i is the sum of
//     the weights before it, not scaled by coverage, so lowering coverage
//     only shrinks each range from its end and never moves a unit to
//     another variant.
//
// abgate experiments store relative weights (70/30, 1/1/2); the router
// scales them with NormalizeWeights before calling BucketRanges, which
// otherwise would fall back to equal weights. For n <= 0 BucketRanges
// returns dst[:0]. It allocates only when dst is too small.
func BucketRanges(n int, coverage float64, weights []float64, dst []Range) []Range {
	dst = dst[:0]
	if n <= 0 {
		return dst
	}
	switch {
	case !(coverage >= 0):
		coverage = 0
	case coverage > 1:
		coverage = 1
	}
	equal := len(weights) != n
	if !equal {
		sum := 0.0
		for _, w := range weights {
			sum += w
		}
		equal = !(sum >= 0.99 && sum <= 1.01)
	}
	eq := 1 / float64(n)
	cum := 0.0
	for i := range n {
		w := eq
		if !equal {
			w = weights[i]
		}
		start := cum
		cum += w
		dst = append(dst, Range{Start: start, End: start + coverage*w})
	}
	return dst
}

// NormalizeWeights appends to dst[:0] the relative weights scaled to sum to
// 1 and returns it: [70, 30] becomes [0.7, 0.3], [1, 1, 2] becomes
// [0.25, 0.25, 0.5]. When a weight is negative, NaN or infinite, or the
// weights do not have a positive finite sum, it returns equal weights 1/n
// instead (Compile rejects such weights before they get here). For empty
// weights it returns dst[:0].
func NormalizeWeights(weights, dst []float64) []float64 {
	dst = dst[:0]
	n := len(weights)
	if n == 0 {
		return dst
	}
	sum, ok := weightSum(weights)
	for _, w := range weights {
		if ok {
			dst = append(dst, w/sum)
		} else {
			dst = append(dst, 1/float64(n))
		}
	}
	return dst
}

// weightSum returns the sum of weights and whether they are usable
// relative weights: each finite and >= 0, the sum finite and > 0.
func weightSum(weights []float64) (float64, bool) {
	sum := 0.0
	for _, w := range weights {
		if !(w >= 0) || math.IsInf(w, 1) {
			return 0, false
		}
		sum += w
	}
	return sum, sum > 0 && !math.IsInf(sum, 1)
}

// ChooseVariation returns the index of the first range with
// Start <= n < End, or -1 when n is in none of them (outside coverage), as
// GrowthBook's chooseVariation.
func ChooseVariation(n float64, ranges []Range) int {
	for i, r := range ranges {
		if n >= r.Start && n < r.End {
			return i
		}
	}
	return -1
}

// Reasons of an Assignment.
const (
	// ReasonInExperiment: the unit's bucket is in a variant's range.
	ReasonInExperiment = "in_experiment"
	// ReasonMissingUnit: the unit id is empty; GrowthBook skips such units.
	ReasonMissingUnit = "missing_unit"
	// ReasonBadHashVersion: the experiment's hash version is not 1 or 2.
	ReasonBadHashVersion = "bad_hash_version"
	// ReasonNotInLayer: the unit's namespace hash is outside the
	// experiment's share of its layer.
	ReasonNotInLayer = "not_in_layer"
	// ReasonOutsideCoverage: the unit's bucket is in no variant's range.
	ReasonOutsideCoverage = "outside_coverage"
)

// Assignment is the outcome of assigning one unit to an experiment and its
// explanation. The zero Assignment is not meaningful; Compiled.Assign sets
// Variant to -1 whenever InExperiment is false.
type Assignment struct {
	// InExperiment reports whether the unit takes part in the experiment.
	InExperiment bool
	// Variant is the index of the unit's variant in the weights given to
	// Compile, or -1 when InExperiment is false.
	Variant int
	// Bucket is Hash(seed, unit, hashVersion), in [0, 1); it is 0 when the
	// unit id is missing or the hash version is bad.
	Bucket float64
	// LayerBucket is the unit's namespace hash in the experiment's layer,
	// in [0, 1); it is 0 when the experiment has no layer.
	LayerBucket float64
	// Range is the range of Variant; the zero Range when not in.
	Range Range
	// Reason is one of the Reason* constants.
	Reason string
}

// Compiled is an experiment's assignment configuration with its bucket
// ranges precomputed. It is immutable and safe for concurrent use; build a
// new one with Compile when the experiment changes.
type Compiled struct {
	key         string
	seed        string
	seedState   uint32 // fnv32a(seed): hash v2 continues it over the unit
	hashVersion int
	coverage    float64
	layer       string
	layerSuffix string // "__" + layer
	layerRange  Range
	ranges      []Range
}

// Compile checks an experiment's assignment configuration and precomputes
// its bucket ranges.
//
// seed salts the hash; "" means key. weights are relative weights, one per
// variant in order (a shadow variant, which takes no bucket, is left out or
// given weight 0); they are normalised with NormalizeWeights. coverage is
// clamped to [0, 1]. layer names the experiment's mutual-exclusion layer,
// "" for none, in which case layerStart and layerEnd are ignored;
// otherwise the experiment owns [layerStart, layerEnd) of the layer's
// namespace.
//
// Compile returns an EINVALID *abgate.Error naming the field at fault
// ("weights", "coverage", "layer_range") when there are no weights, a
// weight is negative or not finite, the weights have no positive finite
// sum, coverage is NaN, or the layer range is not
// 0 <= layerStart <= layerEnd <= 1. It does not reject an unknown hash
// version: Assign then answers ReasonBadHashVersion for every unit, so
// explaining a misconfigured draft says what is wrong.
func Compile(key, seed string, hashVersion int, coverage float64, weights []float64, layer string, layerStart, layerEnd float64) (*Compiled, error) {
	if len(weights) == 0 {
		return nil, abgate.FieldErrorf("weights", "experiment %q needs at least one weighted variant", key)
	}
	if _, ok := weightSum(weights); !ok {
		return nil, abgate.FieldErrorf("weights", "weights of experiment %q must be finite numbers >= 0 with a positive sum, got %v", key, weights)
	}
	if math.IsNaN(coverage) {
		return nil, abgate.FieldErrorf("coverage", "coverage of experiment %q must be a number in [0, 1], got NaN", key)
	}
	lr := Range{Start: 0, End: 1}
	if layer != "" {
		if !(layerStart >= 0 && layerStart <= layerEnd && layerEnd <= 1) {
			return nil, abgate.FieldErrorf("layer_range", "layer_range of experiment %q must be [start, end) with 0 <= start <= end <= 1, got [%v, %v]", key, layerStart, layerEnd)
		}
		lr = Range{Start: layerStart, End: layerEnd}
	}
	if seed == "" {
		seed = key
	}
	coverage = min(max(coverage, 0), 1)
	norm := NormalizeWeights(weights, nil)
	return &Compiled{
		key:         key,
		seed:        seed,
		seedState:   FNV32a(seed),
		hashVersion: hashVersion,
		coverage:    coverage,
		layer:       layer,
		layerSuffix: "__" + layer,
		layerRange:  lr,
		ranges:      BucketRanges(len(norm), coverage, norm, make([]Range, 0, len(norm))),
	}, nil
}

// Key returns the experiment key given to Compile.
func (c *Compiled) Key() string { return c.key }

// Seed returns the hash seed: the one given to Compile, or the key.
func (c *Compiled) Seed() string { return c.seed }

// HashVersion returns the hash version given to Compile.
func (c *Compiled) HashVersion() int { return c.hashVersion }

// Coverage returns the coverage after clamping to [0, 1].
func (c *Compiled) Coverage() float64 { return c.coverage }

// Layer returns the layer and the experiment's range of its namespace;
// "" and [0, 1) when the experiment has no layer.
func (c *Compiled) Layer() (string, Range) { return c.layer, c.layerRange }

// Ranges appends the variants' bucket ranges to dst and returns it.
func (c *Compiled) Ranges(dst []Range) []Range { return append(dst, c.ranges...) }

// Assign assigns unit to a variant of the experiment, as GrowthBook's
// experiment run does after targeting: an empty unit id is skipped
// (ReasonMissingUnit), then an unknown hash version
// (ReasonBadHashVersion), a unit outside the experiment's share of its
// layer (ReasonNotInLayer), a bucket in no variant's range
// (ReasonOutsideCoverage); otherwise the unit is in the variant whose range
// holds its bucket (ReasonInExperiment). Assign does not allocate.
func (c *Compiled) Assign(unit string) Assignment {
	a := Assignment{Variant: -1}
	if unit == "" {
		a.Reason = ReasonMissingUnit
		return a
	}
	// FNV-1a is a byte stream, so the hashes go on from precomputed
	// prefixes: hash v2 hashes seed + unit from the state after the seed;
	// hash v1 (unit + seed) and the namespace hash (unit + "__" + layer)
	// share the state after the unit. With a layer, one loop over the unit
	// runs both chains, which the CPU overlaps.
	var layerState uint32
	switch c.hashVersion {
	case 2:
		if c.layer == "" {
			a.Bucket = bucketV2(fnvString(c.seedState, unit))
			break
		}
		var inner uint32
		inner, layerState = fnvString2(c.seedState, fnvOffset32, unit)
		a.Bucket = bucketV2(inner)
	case 1:
		layerState = fnvString(fnvOffset32, unit)
		a.Bucket = float64(fnvString(layerState, c.seed)%1000) / 1000
	default:
		a.Reason = ReasonBadHashVersion
		return a
	}
	if c.layer != "" {
		a.LayerBucket = float64(fnvString(layerState, c.layerSuffix)%1000) / 1000
		if !c.layerRange.Contains(a.LayerBucket) {
			a.Reason = ReasonNotInLayer
			return a
		}
	}
	v := ChooseVariation(a.Bucket, c.ranges)
	if v < 0 {
		a.Reason = ReasonOutsideCoverage
		return a
	}
	a.InExperiment = true
	a.Variant = v
	a.Range = c.ranges[v]
	a.Reason = ReasonInExperiment
	return a
}

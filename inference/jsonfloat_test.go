package inference

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// jsonNumber reports whether s is a JSON number (RFC 8259).
func jsonNumber(s string) bool {
	var n number
	end, ok := n.scan([]byte(s), 0)
	return ok && end == len(s) && len(s) > 0
}

// checkParseJSONFloat compares parseJSONFloat with strconv.ParseFloat on
// text: for a JSON number, the same accept/reject decision (strconv
// refuses only values out of range) and the same bits; anything else is
// refused.
func checkParseJSONFloat(t *testing.T, text string, bitSize int) {
	t.Helper()
	got, ok := parseJSONFloat([]byte(text), bitSize)
	if !jsonNumber(text) {
		if ok {
			t.Errorf("parseJSONFloat(%q, %d) = %v, want a refusal: not a JSON number", text, bitSize, got)
		}
		return
	}
	want, err := strconv.ParseFloat(text, bitSize)
	if ok != (err == nil) {
		t.Errorf("parseJSONFloat(%q, %d) ok = %v, strconv.ParseFloat error %v", text, bitSize, ok, err)
		return
	}
	if ok && math.Float64bits(got) != math.Float64bits(want) {
		t.Errorf("parseJSONFloat(%q, %d) = %v (%#x), want %v (%#x)", text, bitSize, got, math.Float64bits(got), want, math.Float64bits(want))
	}
}

func TestParseJSONFloat(t *testing.T) {
	long := "0." + strings.Repeat("1", 30)
	for _, text := range []string{
		"0", "-0", "0.0", "-0.0", "1", "-1", "0.5", "-1.5e-3", "0.123457", "1.7922626", "-1.7922626",
		"0.12345679", "0.12345679104328156", "-2.1179039301310043", "2.2489083", "123456789",
		"16777216", "16777217", "16777218", "16777219", "9007199254740993", "9007199254740992",
		"1e22", "1e23", "1e-22", "1e-23", "3.4028235e38", "3.4028236e38", "3.5e38", "1e39",
		"1.1754944e-38", "1.4e-45", "1e-46", "7e-46", "1e308", "1.7976931348623157e308", "1.8e308",
		"4.9e-324", "2e-324", "1E5", "1e+5", "1.0000001", "0.000001", "100000000000000000000",
		"1.00000005960464477539062", // a float32 tie, exactly
		"1.000000059604644775390625",
		"0.30000001192092896", long, "-" + long, "12345678.9", "1234567.89",
		// Integer digits up to the end of the input, or near it.
		"1000000000000000000000000", "1234567890123456789012345678.5", "123456789012345678901234.56789",
		"1234567890123456789012345678.", "12345678901234567890123456e5",
		// Not JSON numbers.
		"", "-", "+1", ".5", "5.", "01", "-01", "1e", "1e+", "0x1p3", "inf", "NaN", "Infinity",
		"1_000", " 1", "1 ", "1.5x", "--1", "1..2", "1ee2", "0.e1",
	} {
		for _, bitSize := range []int{32, 64} {
			checkParseJSONFloat(t, text, bitSize)
		}
	}
}

// TestParseJSONFloatFloat32 checks the float32 values around 1 and the
// midpoints between them, in the forms clients write.
func TestParseJSONFloatFloat32(t *testing.T) {
	f := float32(0.9999)
	for range 20000 {
		f = math.Nextafter32(f, 3)
		for _, text := range []string{
			strconv.FormatFloat(float64(f), 'g', -1, 32),
			strconv.FormatFloat(float64(f), 'g', -1, 64),
			strconv.FormatFloat(float64(f), 'f', 7, 64),
			strconv.FormatFloat(float64(-f), 'e', 6, 32),
			strconv.FormatFloat((float64(f)+float64(math.Nextafter32(f, 3)))/2, 'g', -1, 64),
		} {
			checkParseJSONFloat(t, text, 32)
			checkParseJSONFloat(t, text, 64)
		}
	}
}

// TestFastFloatEnd checks that fastFloat ends a number where the JSON
// grammar does, inside a longer input.
func TestFastFloatEnd(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int // index after the number; -1 when fastFloat leaves it
	}{
		{"1.5,2", 3},
		{"-0.25]", 5},
		{"01", 1},
		{"0.1234567890123456789012345,", -1},
		{"1.2345678e-5,1", 12},
		{"1.5                          ,", 3},
		{`"NaN"`, -1},
		{"-", -1},
		{"1.", -1},
		{"1234567.5,0,0,0,0,0,0,0,0,0,0", 9},
	} {
		t.Run(tt.in, func(t *testing.T) {
			_, end, ok := fastFloat([]byte(tt.in), 0, 32)
			if !ok {
				end = -1
			}
			if end != tt.want {
				t.Errorf("fastFloat(%q) ends at %d, want %d", tt.in, end, tt.want)
			}
		})
	}
}

// FuzzParseJSONFloat: the float reader of tensor data agrees with
// strconv.ParseFloat bit for bit on every JSON number, accepting exactly
// those that strconv accepts, and refuses all else.
func FuzzParseJSONFloat(f *testing.F) {
	for _, s := range []string{"0", "-1.5e-3", "0.123457", "1.7922626", "0.12345679104328156", "3.4028236e38",
		"1.00000005960464477539062", "16777217", "1e-46", "01", "1.", "0.1234567890123456789012345",
		"1000000000000000000000000", "1234567890123456789012345678.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		checkParseJSONFloat(t, text, 32)
		checkParseJSONFloat(t, text, 64)
		// Inside a data array, with and without room for 8-byte reads.
		for _, body := range []string{text + ",", text + "," + strings.Repeat("0,", 16)} {
			got, end, ok := fastFloat([]byte(body), 0, 32)
			if !ok {
				continue
			}
			if end != len(text) {
				var n number
				if e, _ := n.scan([]byte(body), 0); e != end {
					t.Fatalf("fastFloat(%q) ends at %d, the JSON number at %d", body, end, e)
				}
			}
			want, err := strconv.ParseFloat(body[:end], 32)
			if err != nil || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("fastFloat(%q) = %v, strconv.ParseFloat(%q, 32) = %v, %v", body, got, body[:end], want, err)
			}
		}
	})
}

// checkShortRun runs shortRun on body and checks what it read: numbers
// that follow the JSON grammar, each followed by a comma and at most one
// space, up to the index it returned, with the values of
// strconv.ParseFloat(text, 32). It returns how many numbers it read.
func checkShortRun(t *testing.T, body []byte) int {
	t.Helper()
	return checkRun(t, "shortRun", shortRun[float32], body)
}

// checkRun is checkShortRun for run, shortRun or shortRunLanes.
func checkRun(t *testing.T, name string, run func([]byte, int, []float32) ([]float32, int), body []byte) int {
	t.Helper()
	out, end := run(body, 0, make([]float32, 0, len(body)/4+1))
	i := 0
	for k, got := range out {
		n := bytes.IndexByte(body[i:], ',')
		if n < 0 {
			t.Fatalf("%s(%q): element %d, %q, is not followed by a comma", name, body, k, body[i:])
		}
		text := string(body[i : i+n])
		if !jsonNumber(text) {
			t.Fatalf("%s(%q): element %d, %q, is not a JSON number", name, body, k, text)
		}
		want, err := strconv.ParseFloat(text, 32)
		if err != nil || math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Fatalf("%s(%q): element %d, %q, = %v (%#x), want %v (%#x), %v", name, body, k, text, got, math.Float32bits(got), float32(want), math.Float32bits(float32(want)), err)
		}
		i += n + 1
		if i < len(body) && body[i] == ' ' {
			i++
		}
	}
	if end != i {
		t.Fatalf("%s(%q) read %d numbers, up to %d, and returned %d", name, body, len(out), i, end)
	}
	return len(out)
}

func TestShortRun(t *testing.T) {
	room := strings.Repeat(" ", shortRoom)
	for _, tt := range []struct {
		name string
		in   string
		want int // numbers read; -1 for any number
	}{
		{"shortest", "0.12345679," + room, 1},
		{"forms of clients", "-1.7922626,-2.1179039301310043,0.12345679104328156,0.5," + room, 4},
		{"7, 8 and 9 fraction digits", "1.1234567,-1.12345678,0.123456789," + room, 3},
		{"16 fraction digits", "1.2345678901234567," + room, 1},
		{"17 fraction digits", "-1.23456789012345678," + room, 1},
		{"18 fraction digits", "0.012345679104328156," + room, 1},
		{"19 fraction digits", "0.0012345679104328156," + room, 0},
		{"24 fraction digits", "0.000000000000000000000001," + room, 0},
		{"18 nines", "9.999999999999999999,-9.999999999999999999," + room, 2},
		{"zeros", "0.0,-0.0,0.000000000000000000," + room, 3},
		{"small", "0.0000001234,-0.000000000000000001," + room, 2},
		{"one space", "1.5, 2.5,  3.5," + room, 2},
		{"exponent", "1.5e3," + room, 0},
		{"capital exponent", "0.25,1.5E3," + room, 1},
		{"space before the comma", "1.5 ," + room, 0},
		{"end of the array", "1.5]" + room, 0},
		{"no fraction digit", "1.,2.5," + room, 0},
		{"two integer digits", "10.5," + room, 0},
		{"leading zero", "01.5," + room, 0},
		{"no integer digit", "-.5," + room, 0},
		{"plus sign", "+1.5," + room, 0},
		{"integer", "1,2.5," + room, 0},
		{"string", `"NaN",` + room, 0},
		{"near a float32 midpoint", "1.0000000596046447,1.0000000596046448,-1.0000000596046447,0.50000002980232238," + room, -1},
		{"end of the input", strings.Repeat("0.5,", 20), 14},
		{"no room", "0.5,", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := checkShortRun(t, []byte(tt.in))
			if tt.want >= 0 && got != tt.want {
				t.Errorf("shortRun(%q) read %d numbers, want %d", tt.in, got, tt.want)
			}
		})
	}
}

// TestShortRunFloat32 checks shortRun on float32 values of the
// magnitudes it reads, written as clients write them, and on the
// midpoints between them.
func TestShortRunFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	room := strings.Repeat(" ", shortRoom)
	read, all := 0, 0
	for range 50000 {
		f := float32(r.Float64() * 10 * math.Pow(10, -float64(r.IntN(9))))
		if r.IntN(2) == 0 {
			f = -f
		}
		next := math.Nextafter32(f, float32(math.Inf(1)))
		for _, text := range []string{
			strconv.FormatFloat(float64(f), 'g', -1, 32),
			strconv.FormatFloat(float64(f), 'g', -1, 64),
			strconv.FormatFloat(float64(f), 'f', 18, 64),
			strconv.FormatFloat((float64(f)+float64(next))/2, 'f', 18, 64),
		} {
			read += checkShortRun(t, []byte(text+","+room))
			all++
		}
	}
	// All but the exponents of the shortest form of the smaller values,
	// Python's 19 or more fraction digits of those under 0.01 and those
	// near a midpoint.
	if read < all/2 {
		t.Errorf("shortRun read %d numbers of %d", read, all)
	}
}

// FuzzShortRun: what shortRun reads are JSON numbers, each followed by
// a comma, with the values of strconv.ParseFloat.
func FuzzShortRun(f *testing.F) {
	for _, s := range []string{"0.12345679", "-1.7922626", "-2.1179039301310043", "0.12345679104328156", "0.012345679104328156",
		"0.0012345679104328156", "-0.0", "1.5e3", "1.0000000596046447", "9.999999999999999999", "0.5, 0.25,0.125", "1.,2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		checkShortRun(t, []byte(text))
		checkShortRun(t, []byte(text+","+strings.Repeat(" ", shortRoom)))
		checkShortRun(t, []byte(text+","+text+","+strings.Repeat("0", shortRoom)))
	})
}

// laneElements write the numbers of TestShortRunLanes: as clients
// write them, and the forms that shortLanesSSE leaves to laneFloat.
var laneElements = []func(r *rand.Rand) string{
	func(r *rand.Rand) string { return strconv.FormatFloat(float64(laneValue(r)), 'g', -1, 32) },
	func(r *rand.Rand) string { return strconv.FormatFloat(float64(laneValue(r)), 'g', -1, 64) },
	func(r *rand.Rand) string { return strconv.FormatFloat(float64(laneValue(r)), 'f', 18, 64) },
	func(r *rand.Rand) string { return strconv.FormatFloat(float64(laneValue(r)), 'e', -1, 32) },
	func(r *rand.Rand) string {
		// A midpoint of two float32s.
		f := laneValue(r)
		return strconv.FormatFloat((float64(f)+float64(math.Nextafter32(f, 10)))/2, 'f', 18, 64)
	},
	func(r *rand.Rand) string { return strconv.Itoa(r.IntN(2000) - 1000) },
	func(r *rand.Rand) string { return "-0.0" },
	func(r *rand.Rand) string { return "9.99999999999999" + strconv.Itoa(r.IntN(1000)) },
	func(r *rand.Rand) string { return "0.000" + strconv.FormatUint(r.Uint64(), 10) },
}

// laneValue is a float32 from ±10^-9 to ±10.
func laneValue(r *rand.Rand) float32 {
	f := float32(r.Float64() * 10 * math.Pow(10, -float64(r.IntN(10))))
	if r.IntN(2) == 0 {
		f = -f
	}
	return f
}

// numberRun writes n numbers of the given forms (indices into elements,
// picked at random) separated by sep ("mixed": a comma, and a space or
// not), then the end of the request and pad spaces. It returns the
// numbers' texts and the body.
func numberRun(r *rand.Rand, n int, sep string, elements []func(*rand.Rand) string, forms []int, pad int) ([]string, []byte) {
	var texts []string
	var b strings.Builder
	for k := range n {
		if k > 0 {
			switch {
			case sep != "mixed":
				b.WriteString(sep)
			case r.IntN(2) == 0:
				b.WriteString(",")
			default:
				b.WriteString(", ")
			}
		}
		text := elements[forms[r.IntN(len(forms))]](r)
		texts = append(texts, text)
		b.WriteString(text)
	}
	b.WriteString("]}]}" + strings.Repeat(" ", pad))
	return texts, []byte(b.String())
}

// checkDecodeRun decodes body, the data of an FP32 tensor of len(texts)
// numbers and the end of the request, with the AVX-512 and SSE readers on
// where asked for (and where the processor has them), and checks each
// value against strconv.ParseFloat(text, 32).
func checkDecodeRun(t *testing.T, texts []string, body []byte, wide, lanes bool) {
	t.Helper()
	haveW, haveA, haveL := haveWide, haveAVX2, haveLanesSSE
	defer func() { haveWide, haveAVX2, haveLanesSSE = haveW, haveA, haveL }()
	haveWide, haveAVX2, haveLanesSSE = haveW && wide, haveA && wide, haveL && lanes
	req, err := DecodeInferRequest([]byte(`{"inputs":[{"name":"x","shape":[` + strconv.Itoa(len(texts)) + `],"datatype":"FP32","data":[` + string(body)))
	if err != nil {
		t.Fatal(err)
	}
	got := req.Inputs[0].Data.([]float32)
	for k, text := range texts {
		want, err := strconv.ParseFloat(text, 32)
		if err != nil || math.Float32bits(got[k]) != math.Float32bits(float32(want)) {
			t.Fatalf("AVX-512 %v, AVX2 %v, lanes %v: element %d, %q: decoded %v, want %v, %v", haveWide, haveAVX2, haveLanesSSE, k, text, got[k], float32(want), err)
		}
	}
}

// TestShortRunLanes checks shortRunLanes, and the decoder through it, on
// long arrays of numbers in the forms clients write and in those that its
// assembly leaves to laneFloat: it reads every number but the last, with
// the values of strconv.ParseFloat.
func TestShortRunLanes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, mix := range []struct {
		name  string
		forms []int // indices into laneElements
	}{
		{"shortest", []int{0}},
		{"python", []int{1}},
		{"18 digits", []int{2}},
		{"every form", []int{0, 1, 2, 3, 4, 5, 6, 7, 8}},
	} {
		for _, sep := range []string{",", ", ", "mixed"} {
			t.Run(mix.name+" "+strconv.Quote(sep), func(t *testing.T) {
				lanes := haveLanesSSE
				// Lane a spans more than one shortLanesChunk. The lanes
				// leave the numbers within 32 bytes of the end of the
				// body: here that is the last one only.
				texts, body := numberRun(r, 8000, sep, laneElements, mix.forms, 32)
				read := checkRun(t, "shortRunLanes", shortRunLanes, body)
				if lanes && read != len(texts)-1 {
					t.Errorf("shortRunLanes read %d numbers, want all but the last, %d", read, len(texts)-1)
				}
				// The decoder, with the lanes and (as where there is no
				// assembly) without.
				checkDecodeRun(t, texts, body, false, true)
				checkDecodeRun(t, texts, body, false, false)
			})
		}
	}
}

// TestShortRunLanesStops checks where shortRunLanes stops on runs that
// are not all numbers, or that it does not split.
func TestShortRunLanesStops(t *testing.T) {
	many := strings.Repeat("0.5,", 600)
	for _, tt := range []struct {
		name string
		in   string
		want int // numbers read; -1 for any number
	}{
		{"string in lane a", `"a",` + many + "1]", 0},
		{"string in lane b", many + `"a",` + many + "1]", 600},
		{"nested array in lane b", many + "[1]," + many + "1]", 600},
		{"two spaces in lane b", many + "1.5,  " + many + "1]", 601},
		{"lane b stops first", many + many + `"x",` + many + "1]", 1200},
		{"the run ends before the cut", many + `1], "y": [` + many + many + "1]", 600},
		{"no end of the array", many + many, -1},
		{"short", strings.Repeat("0.5,", 100) + "1]", 0},
		{"end of the input", many + "1]", -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := checkRun(t, "shortRunLanes", shortRunLanes, []byte(tt.in+strings.Repeat(" ", shortRoom)))
			if haveLanesSSE && tt.want >= 0 && got != tt.want {
				t.Errorf("shortRunLanes read %d numbers, want %d", got, tt.want)
			}
		})
	}
}

// FuzzShortRunLanes: what shortRunLanes reads of a long run made of the
// fuzzed text are JSON numbers, each followed by a comma, with the values
// of strconv.ParseFloat.
func FuzzShortRunLanes(f *testing.F) {
	for _, s := range []string{"0.12345679", "-1.7922626,-2.1179039301310043", "0.5, 0.25", "1.5e3", "1.0000000596046447",
		"9.999999999999999999", "0.0012345679104328156", "1", `"NaN"`, "0.5]", "1.,2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if text == "" {
			return
		}
		run := strings.Repeat(text+",", 2*shortLanesMin/(len(text)+1)+2)
		checkRun(t, "shortRunLanes", shortRunLanes, []byte(run+"1]"+strings.Repeat(" ", shortRoom)))
		checkRun(t, "shortRunLanes", shortRunLanes, []byte(run+text+", "+run+"1]"))
	})
}

// wideElements write the numbers of TestShortRunWide: the forms that
// shortWideAVX512 reads (one digit before the point, in 16 bytes with
// the space and sign before it and the comma after it), those next to a
// float32 midpoint, and others it leaves.
var wideElements = []func(r *rand.Rand) string{
	func(r *rand.Rand) string {
		// An image's value, in the shortest form.
		return strconv.FormatFloat(float64(float32(r.Float64()*5-2.5)), 'g', -1, 32)
	},
	func(r *rand.Rand) string {
		// 1 to 11 fraction digits of a value under 10.
		return strconv.FormatFloat(float64(laneValue(r))*0.999, 'f', 1+r.IntN(11), 64)
	},
	func(r *rand.Rand) string {
		// A float32 midpoint from 8 to 10 to 13 fraction digits: from 0
		// to 28 units of the last place of a float64 from it.
		// shortWideAVX512 leaves those within 4 units, one in seven.
		f := float32(8 + 2*r.Float64())
		m := (float64(f) + float64(math.Nextafter32(f, 10))) / 2
		return strconv.FormatFloat(m, 'f', 13, 64)
	},
	func(r *rand.Rand) string { return strconv.FormatFloat(float64(laneValue(r)), 'g', -1, 64) },
	func(r *rand.Rand) string { return strconv.FormatFloat(float64(laneValue(r)), 'e', -1, 32) },
	func(r *rand.Rand) string { return strconv.Itoa(r.IntN(2000) - 1000) },
	func(r *rand.Rand) string {
		// An image's value as Python writes the float64 of a float32:
		// ~17 digits, past the 16 bytes of a lane.
		return strconv.FormatFloat(float64(float32(r.Float64()*5-2.5)), 'g', -1, 64)
	},
	func(r *rand.Rand) string {
		// 18 fraction digits from 1e-13 to 1e-11 off a float32 midpoint
		// from 1 to 2: longWideAVX512 reads those more than 1.1e-12 off
		// it from their first 14 fraction digits, and leaves the rest.
		f := float32(1 + r.Float64())
		m := (float64(f) + float64(math.Nextafter32(f, 10))) / 2
		d := float64(1+r.IntN(100)) * 1e-13
		if r.IntN(2) == 0 {
			d = -d
		}
		return strconv.FormatFloat(m+d, 'f', 18, 64)
	},
	func(r *rand.Rand) string {
		return [...]string{"-0.0", "0.0", "10.5", "-12.25", "1.5E3", "9.999999999999999", "-1.2345678901234"}[r.IntN(7)]
	},
	func(r *rand.Rand) string {
		// A float32 midpoint from 1 to 2 in its 24 fraction digits, or
		// 10^-25 above it: its first 14 fraction digits lie below it, so
		// the long kernels must leave it, whatever their other numbers.
		f := float32(1 + r.Float64())
		text := strconv.FormatFloat((float64(f)+float64(math.Nextafter32(f, 10)))/2, 'f', 24, 64)
		if r.IntN(2) == 0 {
			text += "1"
		}
		return text
	},
}

// wideSetting is a choice of the kernels of shortRunWide: the values of
// haveWide and haveAVX2 that pick them.
type wideSetting struct {
	name         string
	avx512, avx2 bool
}

// wideSettings are the kernels of shortRunWide that this CPU runs:
// AVX-512's and AVX2's where it has AVX-512, AVX2's where it has AVX2,
// and none elsewhere (shortRunWide then reads nothing, which the tests
// check as well).
func wideSettings() []wideSetting {
	var s []wideSetting
	if haveWide {
		s = append(s, wideSetting{"AVX-512", true, haveAVX2})
	}
	if haveAVX2 {
		s = append(s, wideSetting{"AVX2", false, true})
	}
	if len(s) == 0 {
		s = append(s, wideSetting{"none", false, false})
	}
	return s
}

// use picks w's kernels until the end of t.
func (w wideSetting) use(t *testing.T) {
	haveW, haveA := haveWide, haveAVX2
	t.Cleanup(func() { haveWide, haveAVX2 = haveW, haveA })
	haveWide, haveAVX2 = w.avx512, w.avx2
}

// TestShortRunWide checks shortRunWide with each of its kernels, and the
// decoder through it, on long arrays of the numbers it reads and of
// others mixed in: it reads every number but the last of the short forms
// and of Python's, with the values of strconv.ParseFloat, and the
// decoder reads the same with and without it.
func TestShortRunWide(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, w := range wideSettings() {
		for _, mix := range []struct {
			name  string
			forms []int // indices into wideElements
			all   bool  // shortRunWide reads all but the last
		}{
			{"image", []int{0}, true},
			{"fraction digits", []int{1}, true},
			{"midpoints", []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, false},
			{"short forms", []int{0, 0, 0, 0, 1}, true},
			{"python", []int{6}, true},
			{"python and shortest", []int{0, 6}, true},
			{"python, small values", []int{3}, false},
			{"long midpoints", []int{6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7}, false},
			{"every form", []int{0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 7, 8, 9}, false},
			{"exact ties among short forms", []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}, false},
		} {
			for _, sep := range []string{",", ", ", "mixed"} {
				t.Run(w.name+" "+mix.name+" "+strconv.Quote(sep), func(t *testing.T) {
					w.use(t)
					texts, body := numberRun(r, 8000, sep, wideElements, mix.forms, 80) // more than one shortLanesChunk
					read := checkRun(t, "shortRunWide", shortRunWide, body)
					switch {
					case !w.avx512 && !w.avx2:
						if read != 0 {
							t.Errorf("shortRunWide read %d numbers without its kernels", read)
						}
					case mix.all && read != len(texts)-1:
						t.Errorf("shortRunWide read %d numbers, want all but the last, %d", read, len(texts)-1)
					case strings.Contains(mix.name, "midpoints") && sep == "," && read < len(texts)/2:
						t.Errorf("shortRunWide read %d numbers of %d, want most", read, len(texts))
					}
					checkDecodeRun(t, texts, body, true, true)
					checkDecodeRun(t, texts, body, true, false)
					checkDecodeRun(t, texts, body, false, false)
				})
			}
		}
	}
}

// TestShortRunWideStops checks where shortRunWide stops with each of its
// kernels: at the end of the run, at the end of the body, and where the
// form changes for good.
func TestShortRunWideStops(t *testing.T) {
	many := strings.Repeat("0.5,", 600)
	for _, w := range wideSettings() {
		for _, tt := range []struct {
			name string
			in   string
			want int // numbers read; -1 for any number
		}{
			{"end of the run", many + `1], "y": [` + many + "1]", 600},
			{"a string", many + `"a",` + many + "1]", 600},
			{"a nested array", many + "[1]," + many + "1]", 600},
			{"two spaces", many + "1.5,  " + many + "1]", 601},
			{"python after", many + strings.Repeat("0.12345678901234567,", 600) + "1]", -1},
			{"python first", strings.Repeat("0.12345678901234567,", 600) + many + "1]", 1200},
			{"python and more", strings.Repeat("-0.0012345679104328156, ", 600) + many + "1]", 1200},
			{"too long for a lane and the next", strings.Repeat("0.12345678901234567890123456789012,", 600) + "1]", 0},
			{"short", strings.Repeat("0.5,", 100) + "1]", 0},
			{"no end of the array", many + many, -1},
		} {
			t.Run(w.name+" "+tt.name, func(t *testing.T) {
				w.use(t)
				got := checkRun(t, "shortRunWide", shortRunWide, []byte(tt.in+strings.Repeat(" ", wideRoom)))
				want := tt.want
				if !w.avx512 && !w.avx2 {
					want = 0
				}
				if want >= 0 && got != want {
					t.Errorf("shortRunWide read %d numbers, want %d", got, want)
				}
			})
		}
	}
}

// FuzzShortRunWide: what shortRunWide reads with each of its kernels of a
// long run made of the fuzzed text are JSON numbers, each followed by a
// comma, with the values of strconv.ParseFloat.
func FuzzShortRunWide(f *testing.F) {
	for _, s := range []string{"0.12345679", "-1.7922626, 2.1179039", "0.5, -0.25", "1.5e3", "1.00000005960464",
		"9.99999999999999", "-0.0", "1", `"NaN"`, "0.5]", "1.,2", " -1.5", "- 1.5", "1.5 ,2",
		"0.12345678901234567", "-0.0012345679104328156", "1.00000005960464477539", "1.2345678901234567e-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if text == "" {
			return
		}
		run := strings.Repeat(text+",", 2*shortLanesMin/(len(text)+1)+2)
		// Among numbers of both kernels' forms, in groups of eight.
		mixed := strings.Repeat("-0.12345678901234567,"+text+", 1.25,", shortLanesMin/(len(text)+24)+2)
		for _, w := range wideSettings() {
			haveW, haveA := haveWide, haveAVX2
			haveWide, haveAVX2 = w.avx512, w.avx2
			checkRun(t, "shortRunWide", shortRunWide, []byte(run+"1]"+strings.Repeat(" ", wideRoom)))
			checkRun(t, "shortRunWide", shortRunWide, []byte(run+text+", "+run+"1]"))
			checkRun(t, "shortRunWide", shortRunWide, []byte(mixed+mixed+"1]"+strings.Repeat(" ", wideRoom)))
			haveWide, haveAVX2 = haveW, haveA
		}
	})
}

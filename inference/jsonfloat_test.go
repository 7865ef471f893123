package inference

import (
	"math"
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

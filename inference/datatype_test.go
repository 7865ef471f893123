package inference

import (
	"math"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

func TestDatatypeMapping(t *testing.T) {
	for elem, dt := range datatypes {
		got, ok := elementTypeOf(dt)
		if !ok || got != elem {
			t.Errorf("elementTypeOf(%s) = %v, %v; want %v", dt, got, ok, elem)
		}
		if back, ok := datatypeOf(elem); !ok || back != dt {
			t.Errorf("datatypeOf(%v) = %s, %v; want %s", elem, back, ok, dt)
		}
		if !ValidDatatype(dt) {
			t.Errorf("ValidDatatype(%s) = false", dt)
		}
		data := MakeData(dt, 3)
		if n, ok := DataLen(dt, data); !ok || n != 3 {
			t.Errorf("DataLen(%s, MakeData) = %d, %v", dt, n, ok)
		}
		if dt != DTBytes && DatatypeSize(dt) == 0 {
			t.Errorf("DatatypeSize(%s) = 0", dt)
		}
	}
	if len(datatypes) != 14 {
		t.Errorf("%d datatypes, want 14", len(datatypes))
	}
	for _, elem := range []ort.TensorElementDataType{ort.TensorElementDataTypeComplex64, ort.TensorElementDataTypeFloat8E4M3FN, ort.TensorElementDataTypeUndefined} {
		if dt, ok := datatypeOf(elem); ok {
			t.Errorf("datatypeOf(%v) = %s, want none", elem, dt)
		}
	}
	for _, dt := range []string{"", "FLOAT", "fp32", "STRING"} {
		if ValidDatatype(dt) {
			t.Errorf("ValidDatatype(%q) = true", dt)
		}
	}
	if _, ok := DataLen(DTFP64, []float32{1}); ok {
		t.Error("DataLen(FP64, []float32) ok")
	}
}

func TestFloat16(t *testing.T) {
	// Every half that is not a NaN converts to float32 and back unchanged.
	for h := 0; h < 1<<16; h++ {
		f := Float16ToFloat32(uint16(h))
		if f != f {
			if back := Float32ToFloat16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x, not a NaN", h, back)
			}
			continue
		}
		if back := Float32ToFloat16(f); back != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
	cases := []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65520, 0x7c00},                  // halfway to the next: rounds to even, Inf
		{65519, 0x7bff},                  // below halfway
		{float32(math.Inf(-1)), 0xfc00},  // -Inf
		{5.960464477539063e-08, 0x0001},  // smallest subnormal
		{2.9802322387695312e-08, 0x0000}, // half of it: ties to even, 0
		{4.470348358154297e-08, 0x0001},  // 0.75 of it
		{1 + 1.0/2048, 0x3c00},           // tie between 1 and the next: even
		{1 + 3.0/2048, 0x3c02},           // tie: even upward
		{6.097555160522461e-05, 0x03ff},  // largest subnormal
	}
	for _, c := range cases {
		if got := Float32ToFloat16(c.f); got != c.want {
			t.Errorf("Float32ToFloat16(%v) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

func TestBFloat16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := BFloat16ToFloat32(uint16(h))
		if f != f {
			continue
		}
		if back := Float32ToBFloat16(f); back != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
	cases := []struct {
		f    float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie: even
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie: even upward
		{math.Float32frombits(0x3f808001), 0x3f81},
	}
	for _, c := range cases {
		if got := Float32ToBFloat16(c.f); got != c.want {
			t.Errorf("Float32ToBFloat16(%v) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if got := Float32ToBFloat16(float32(math.NaN())); got&0x7f80 != 0x7f80 || got&0x7f == 0 {
		t.Errorf("Float32ToBFloat16(NaN) = %#04x, not a NaN", got)
	}
}

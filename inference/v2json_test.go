package inference

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"abgate"
)

func TestDecodeInferRequest(t *testing.T) {
	nan32, inf32 := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name string
		body string
		want *InferRequest
	}{
		{"flat FP32 with id, parameters and outputs",
			`{"id":"r1","parameters":{"p":1},"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2.5,-3e2,0.125]}],"outputs":[{"name":"y"},{"name":"z","parameters":{"binary_data":false}}]}`,
			&InferRequest{ID: "r1", Parameters: map[string]any{"p": 1.0},
				Inputs:  []InferInput{{Tensor: Tensor{Name: "x", Datatype: DTFP32, Shape: []int64{2, 2}, Data: []float32{1, 2.5, -300, 0.125}}}},
				Outputs: []RequestedOutput{{Name: "y"}, {Name: "z", Parameters: map[string]any{"binary_data": false}}}}},
		{"nested data, white space",
			" {\n\t\"inputs\" : [ { \"name\" : \"x\" , \"shape\" : [ 2 , 3 ] , \"datatype\" : \"INT64\" , \"data\" : [ [ 1 , 2 , 3 ] , [ 4 , 5 , 6 ] ] } ] }\r\n",
			&InferRequest{Inputs: []InferInput{{Tensor: Tensor{Name: "x", Datatype: DTInt64, Shape: []int64{2, 3}, Data: []int64{1, 2, 3, 4, 5, 6}}}}}},
		{"data before name and datatype",
			`{"inputs":[{"data":[[true],[false]],"shape":[2,1],"datatype":"BOOL","name":"b"}]}`,
			&InferRequest{Inputs: []InferInput{{Tensor: Tensor{Name: "b", Datatype: DTBool, Shape: []int64{2, 1}, Data: []bool{true, false}}}}}},
		{"scalar",
			`{"inputs":[{"name":"s","shape":[],"datatype":"FP64","data":[3.5]}]}`,
			&InferRequest{Inputs: []InferInput{{Tensor: Tensor{Name: "s", Datatype: DTFP64, Shape: []int64{}, Data: []float64{3.5}}}}}},
		{"empty tensor",
			`{"inputs":[{"name":"e","shape":[0,3],"datatype":"INT32","data":[]}]}`,
			&InferRequest{Inputs: []InferInput{{Tensor: Tensor{Name: "e", Datatype: DTInt32, Shape: []int64{0, 3}, Data: []int32{}}}}}},
		{"binary data",
			`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`,
			&InferRequest{Inputs: []InferInput{{Tensor: Tensor{Name: "x", Datatype: DTFP32, Shape: []int64{1}}, Parameters: map[string]any{"binary_data_size": 4.0}}}}},
		{"non-finite floats",
			`{"inputs":[{"name":"f","shape":[4],"datatype":"FP32","data":["NaN","Infinity","-Infinity",-0]}]}`,
			&InferRequest{Inputs: []InferInput{{Tensor: Tensor{Name: "f", Datatype: DTFP32, Shape: []int64{4}, Data: []float32{nan32, inf32, -inf32, float32(math.Copysign(0, -1))}}}}}},
		{"escaped key and string",
			`{"inputs":[{"n\u0061me":"\u00e9\"\\","shape":[2],"datatype":"BYTES","data":["a\nb","日本"]}]}`,
			&InferRequest{Inputs: []InferInput{{Tensor: Tensor{Name: "é\"\\", Datatype: DTBytes, Shape: []int64{2}, Data: []string{"a\nb", "日本"}}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeInferRequest([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			checkRequest(t, got, c.want)
		})
	}
}

// TestDecodeDatatypes decodes the limits of every datatype.
// TestDecodeRoomShared decodes requests whose shapes and FP32 data fill
// the decoder's shared room and overflow it (inputs of rank 3, 2x2x2 and
// 2x2x3 values): every tensor keeps its own shape and data, and growing
// one's shape or data does not write into another's.
func TestDecodeRoomShared(t *testing.T) {
	var body strings.Builder
	body.WriteString(`{"inputs":[`)
	type want struct {
		shape []int64
		data  []float32
	}
	var wants []want
	for i := range 5 {
		shape := []int64{2, 2, int64(2 + i%2)}
		n := int(shape[0] * shape[1] * shape[2])
		data := make([]float32, n)
		for j := range data {
			data[j] = float32(100*i + j)
		}
		wants = append(wants, want{shape, data})
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"name":"in%d","datatype":"FP32","shape":[%d,%d,%d],"data":[`, i, shape[0], shape[1], shape[2])
		for j, v := range data {
			if j > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, "%g", v)
		}
		body.WriteString("]}")
	}
	body.WriteString("]}")
	req, err := DecodeInferRequest([]byte(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Inputs) != len(wants) {
		t.Fatalf("%d inputs decoded, want %d", len(req.Inputs), len(wants))
	}
	for i := range req.Inputs {
		in := &req.Inputs[i]
		in.Shape = append(in.Shape, 99)
		in.Data = append(in.Data.([]float32), -1)
	}
	for i, in := range req.Inputs {
		w := wants[i]
		if got := in.Shape[:len(in.Shape)-1]; !slices.Equal(got, w.shape) {
			t.Errorf("input %d: shape %v, want %v", i, got, w.shape)
		}
		data := in.Data.([]float32)
		if got := data[:len(data)-1]; !slices.Equal(got, w.data) {
			t.Errorf("input %d: data %v, want %v", i, got, w.data)
		}
	}
}

func TestDecodeDatatypes(t *testing.T) {
	cases := []struct {
		dt   string
		data string
		want any
	}{
		{DTBool, `[true,false]`, []bool{true, false}},
		{DTUint8, `[0,255]`, []uint8{0, 255}},
		{DTUint16, `[0,65535]`, []uint16{0, 65535}},
		{DTUint32, `[0,4294967295]`, []uint32{0, math.MaxUint32}},
		{DTUint64, `[0,18446744073709551615]`, []uint64{0, math.MaxUint64}},
		{DTInt8, `[-128,127]`, []int8{-128, 127}},
		{DTInt16, `[-32768,32767]`, []int16{-32768, 32767}},
		{DTInt32, `[-2147483648,2147483647]`, []int32{math.MinInt32, math.MaxInt32}},
		{DTInt64, `[-9223372036854775808,9223372036854775807]`, []int64{math.MinInt64, math.MaxInt64}},
		{DTFP16, `[1,-2]`, []uint16{0x3c00, 0xc000}},
		{DTBF16, `[1,-2]`, []uint16{0x3f80, 0xc000}},
		{DTFP32, `[1e-45,3.4028235e38]`, []float32{math.SmallestNonzeroFloat32, math.MaxFloat32}},
		{DTFP64, `[5e-324,1.7976931348623157e308]`, []float64{math.SmallestNonzeroFloat64, math.MaxFloat64}},
		{DTBytes, `["","x"]`, []string{"", "x"}},
	}
	for _, c := range cases {
		t.Run(c.dt, func(t *testing.T) {
			body := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[2],"datatype":%q,"data":%s}]}`, c.dt, c.data)
			got, err := DecodeInferRequest([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if d := got.Inputs[0].Data; !reflect.DeepEqual(d, c.want) {
				t.Errorf("data = %#v, want %#v", d, c.want)
			}
		})
	}
}

// TestDecodeFloats checks the fast paths of the float decoder against
// strconv on numbers of many forms.
func TestDecodeFloats(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var texts []string
	for range 20000 {
		f := r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10))
		switch r.IntN(4) {
		case 0:
			texts = append(texts, strconv.FormatFloat(f, 'g', -1, 64))
		case 1:
			texts = append(texts, strconv.FormatFloat(f, 'g', -1, 32))
		case 2:
			texts = append(texts, strconv.FormatFloat(f, 'f', r.IntN(8), 64))
		case 3:
			texts = append(texts, strconv.FormatFloat(f, 'e', r.IntN(25), 64))
		}
	}
	// Near the midpoints of two float32s, where rounding through a
	// float64 would go wrong.
	for range 5000 {
		x := float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(16)-8)))
		mid := (float64(x) + float64(math.Nextafter32(x, float32(math.Inf(1))))) / 2
		for _, m := range []float64{mid, math.Nextafter(mid, 0), math.Nextafter(mid, math.Inf(1))} {
			texts = append(texts, strconv.FormatFloat(m, 'g', -1, 64), strconv.FormatFloat(m, 'e', 15, 64))
		}
	}
	texts = append(texts, "0", "-0", "0.0", "-0.0", "1E5", "1e+5", "16777216", "16777217", "9007199254740993", "123456789012345678901234567890", "0.000000000000000000000000000000000000000000001",
		"0.0000001234", "1.23456789", "1.2345678901234567", "-1.23456789012345678", "0.012345679104328156", "0.0012345679104328156", "9.999999999999999999",
		"1234567890123456789012345678.5") // many integer digits near the end of the input
	// Separated as Python's json module and pretty printers write them,
	// too; the last numbers are near the end of the input.
	for _, sep := range []string{",", ", ", " ,\n\t"} {
		t.Run(fmt.Sprintf("%q", sep), func(t *testing.T) {
			body := `{"inputs":[{"name":"a","shape":[` + strconv.Itoa(len(texts)) + `],"datatype":"FP32","data":[` + strings.Join(texts, sep) + `]},` +
				`{"name":"b","shape":[` + strconv.Itoa(len(texts)) + `],"datatype":"FP64","data":[` + strings.Join(texts, sep) + `]}]}`
			got, err := DecodeInferRequest([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			f32, f64 := got.Inputs[0].Data.([]float32), got.Inputs[1].Data.([]float64)
			for i, s := range texts {
				w32, _ := strconv.ParseFloat(s, 32)
				w64, _ := strconv.ParseFloat(s, 64)
				if math.Float32bits(f32[i]) != math.Float32bits(float32(w32)) {
					t.Errorf("FP32 %s = %v, want %v", s, f32[i], float32(w32))
				}
				if math.Float64bits(f64[i]) != math.Float64bits(w64) {
					t.Errorf("FP64 %s = %v, want %v", s, f64[i], w64)
				}
			}
		})
	}
}

func TestDecodeInferRequestErrors(t *testing.T) {
	in := func(fields string) string { return `{"inputs":[{` + fields + `}]}` }
	cases := []struct {
		name string
		body string
		want []string // in the message
	}{
		{"empty", ``, []string{"unexpected end of input"}},
		{"not an object", `[]`, []string{"request must be an object, not an array"}},
		{"malformed", `{"inputs":[`, []string{"malformed JSON"}},
		{"trailing data", `{"inputs":[]} {}`, []string{"data after the end"}},
		{"unknown field", `{"inputs":[],"input":1}`, []string{`unknown field "input"`}},
		{"repeated key", `{"inputs":[],"inputs":[]}`, []string{`"inputs" appears twice`}},
		{"no inputs", `{"id":"x"}`, []string{`no "inputs"`}},
		{"id not a string", `{"id":1,"inputs":[]}`, []string{"id must be a string, not a number"}},
		{"inputs not an array", `{"inputs":{}}`, []string{"inputs must be an array, not an object"}},
		{"parameters not an object", `{"parameters":[],"inputs":[]}`, []string{"parameters must be an object"}},
		{"no name", in(`"shape":[1],"datatype":"FP32","data":[1]`), []string{`inputs[0] has no "name"`}},
		{"no datatype", in(`"name":"x","shape":[1],"data":[1]`), []string{`input "x" has no "datatype"`}},
		{"no shape", in(`"name":"x","datatype":"FP32","data":[1]`), []string{`input "x" has no "shape"`}},
		{"no data", in(`"name":"x","shape":[1],"datatype":"FP32"`), []string{`input "x" has no "data"`}},
		{"unknown datatype", in(`"name":"x","shape":[1],"datatype":"FLOAT","data":[1]`), []string{`input "x"`, `datatype "FLOAT" is not a V2 datatype`, "FP32"}},
		{"unknown tensor field", in(`"name":"x","shape":[1],"datatype":"FP32","data":[1],"content":1`), []string{`unknown field "content"`}},
		{"too few elements", in(`"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3]`), []string{`input "x"`, "3 data elements given, shape [2,2] needs 4"}},
		{"too many nested", in(`"name":"x","shape":[2],"datatype":"INT32","data":[[1,2],[3]]`), []string{`input "x"`, "3 data elements given, shape [2] needs 2"}},
		{"negative dimension", in(`"name":"x","shape":[-1,2],"datatype":"FP32","data":[]`), []string{"shape[0] is -1"}},
		{"fractional dimension", in(`"name":"x","shape":[1.5],"datatype":"FP32","data":[]`), []string{"shape[0] is 1.5"}},
		{"too many elements", in(`"name":"x","shape":[100000,100000],"datatype":"FP32","data":[]`), []string{`input "x"`, "too many elements"}},
		{"data not an array", in(`"name":"x","shape":[1],"datatype":"FP32","data":1`), []string{`input "x"`, "data must be an array, not a number"}},
		{"string for FP32", in(`"name":"x","shape":[2],"datatype":"FP32","data":[1,"a"]`), []string{`input "x" (FP32): element 1`, `"a" is not a number`}},
		{"bool for FP32", in(`"name":"x","shape":[1],"datatype":"FP32","data":[true]`), []string{`input "x" (FP32): element 0`, "a number is expected, not a boolean"}},
		{"null for FP64", in(`"name":"x","shape":[1],"datatype":"FP64","data":[null]`), []string{`element 0`, "not null"}},
		{"FP32 overflow", in(`"name":"x","shape":[1],"datatype":"FP32","data":[1e39]`), []string{"1e39 is out of the range of FP32"}},
		{"FP16 overflow", in(`"name":"x","shape":[1],"datatype":"FP16","data":[70000]`), []string{"out of the range of FP16"}},
		{"fraction for INT32", in(`"name":"x","shape":[1],"datatype":"INT32","data":[1.5]`), []string{`input "x" (INT32): element 0`, "1.5 is not an integer"}},
		{"exponent for INT64", in(`"name":"x","shape":[1],"datatype":"INT64","data":[1e3]`), []string{"1e3 is not an integer"}},
		{"UINT8 overflow", in(`"name":"x","shape":[1],"datatype":"UINT8","data":[256]`), []string{"256 is out of the range of UINT8"}},
		{"negative UINT32", in(`"name":"x","shape":[1],"datatype":"UINT32","data":[-1]`), []string{"-1 is out of the range of UINT32"}},
		{"INT64 overflow", in(`"name":"x","shape":[1],"datatype":"INT64","data":[9223372036854775808]`), []string{"out of the range of INT64"}},
		{"number for BOOL", in(`"name":"x","shape":[1],"datatype":"BOOL","data":[1]`), []string{"true or false is expected, not 1"}},
		{"number for BYTES", in(`"name":"x","shape":[1],"datatype":"BYTES","data":[1]`), []string{"a string is expected, not 1"}},
		{"bad number", in(`"name":"x","shape":[1],"datatype":"FP32","data":[01]`), []string{"malformed JSON"}},
		{"string after a run", in(`"name":"x","shape":[40],"datatype":"FP32","data":[` + strings.Repeat("0.125,", 38) + `1,"a"]`), []string{`input "x" (FP32): element 39`, `"a" is not a number`}},
		{"bool after a run", in(`"name":"x","shape":[40],"datatype":"FP32","data":[` + strings.Repeat("-0.12345679, ", 39) + `true]`), []string{`input "x" (FP32): element 39`, "a number is expected, not a boolean"}},
		{"bad number after a run", in(`"name":"x","shape":[40],"datatype":"FP32","data":[` + strings.Repeat("0.125,", 39) + `1.,0.5,0.5,0.5,0.5,0.5,0.5,0.5]`), []string{"malformed JSON"}},
		{"comma ending a run", in(`"name":"x","shape":[40],"datatype":"FP32","data":[` + strings.Repeat("0.125,", 40) + `]`), []string{`input "x" (FP32): element 40`, "a number is expected, not ']'"}},
		{"FP32 overflow after a run", in(`"name":"x","shape":[40],"datatype":"FP32","data":[` + strings.Repeat("0.125,", 39) + `1e39]`), []string{"element 39", "1e39 is out of the range of FP32"}},
		{"plus sign", in(`"name":"x","shape":[1],"datatype":"FP32","data":[+1]`), []string{"a number is expected"}},
		{"unclosed data", in(`"name":"x","shape":[1],"datatype":"FP32","data":[1`), []string{"malformed JSON"}},
		{"control character", in(`"name":"x` + "\x01" + `","shape":[1],"datatype":"FP32","data":[1]`), []string{"malformed JSON"}},
		{"input twice", `{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[1]},{"name":"x","shape":[],"datatype":"FP32","data":[1]}]}`, []string{`input "x" is given twice`}},
		{"output without name", `{"inputs":[],"outputs":[{}]}`, []string{`outputs[0] has no "name"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeInferRequest([]byte(c.body))
			if code := abgate.ErrorCode(err); code != abgate.EINVALID {
				t.Fatalf("err = %v (code %q), want EINVALID", err, code)
			}
			msg := abgate.ErrorMessage(err)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestAppendInferResponse(t *testing.T) {
	resp := &InferResponse{ModelName: "m", ModelVersion: "2", ID: "r\"1", Outputs: []InferOutput{
		{Tensor: Tensor{Name: "p", Datatype: DTFP32, Shape: []int64{4}, Data: []float32{0.1, 1e21, float32(math.NaN()), float32(math.Inf(-1))}}},
		{Tensor: Tensor{Name: "l", Datatype: DTInt64, Shape: []int64{}, Data: []int64{-7}}},
		{Tensor: Tensor{Name: "h", Datatype: DTFP16, Shape: []int64{2}, Data: []uint16{0x3c00, 0x3555}}},
		{Tensor: Tensor{Name: "s", Datatype: DTBytes, Shape: []int64{2}, Data: []string{"a\x00\"", "\xff"}}},
		{Tensor: Tensor{Name: "b", Datatype: DTBool, Shape: []int64{1}, Data: []bool{true}}},
	}}
	got := string(AppendInferResponse(nil, resp))
	want := `{"model_name":"m","model_version":"2","id":"r\"1","outputs":[` +
		`{"name":"p","datatype":"FP32","shape":[4],"data":[0.1,1e+21,"NaN","-Infinity"]},` +
		`{"name":"l","datatype":"INT64","shape":[],"data":[-7]},` +
		`{"name":"h","datatype":"FP16","shape":[2],"data":[1,0.33325195]},` +
		`{"name":"s","datatype":"BYTES","shape":[2],"data":["a\u0000\"","\ufffd"]},` +
		`{"name":"b","datatype":"BOOL","shape":[1],"data":[true]}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("not valid JSON")
	}
	back, err := DecodeInferResponse([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if back.ModelName != "m" || back.ModelVersion != "2" || back.ID != "r\"1" || len(back.Outputs) != 5 {
		t.Errorf("decoded %+v", back)
	}
	if d := back.Outputs[2].Data.([]uint16); d[0] != 0x3c00 || d[1] != 0x3555 {
		t.Errorf("FP16 read back as %#v", d)
	}
}

// TestInferRequestRoundTrip encodes requests of every datatype and decodes
// them back.
func TestInferRequestRoundTrip(t *testing.T) {
	req := &InferRequest{ID: "id", Parameters: map[string]any{"k": "v"}, Outputs: []RequestedOutput{{Name: "o"}}}
	for i, data := range []any{
		[]bool{true, false}, []uint8{0, 255}, []uint16{1, 65535}, []uint32{1, math.MaxUint32}, []uint64{1, math.MaxUint64},
		[]int8{-128, 127}, []int16{-1, 1}, []int32{math.MinInt32, 5}, []int64{math.MinInt64, math.MaxInt64},
		[]float32{math.MaxFloat32, -math.SmallestNonzeroFloat32}, []float64{math.Pi, -1e-300},
		[]string{"é", "\x7f\u2028"},
	} {
		dt := []string{DTBool, DTUint8, DTUint16, DTUint32, DTUint64, DTInt8, DTInt16, DTInt32, DTInt64, DTFP32, DTFP64, DTBytes}[i]
		req.Inputs = append(req.Inputs, InferInput{Tensor: Tensor{Name: dt, Datatype: dt, Shape: []int64{2}, Data: data}})
	}
	req.Inputs = append(req.Inputs,
		InferInput{Tensor: Tensor{Name: "fp16", Datatype: DTFP16, Shape: []int64{1, 2}, Data: []uint16{0x7bff, 0x0001}}},
		InferInput{Tensor: Tensor{Name: "bf16", Datatype: DTBF16, Shape: []int64{2, 1}, Data: []uint16{0x7f7f, 0x8001}}})
	got, err := DecodeInferRequest(AppendInferRequest(nil, req))
	if err != nil {
		t.Fatal(err)
	}
	checkRequest(t, got, req)
}

// checkRequest compares requests, float data bit for bit.
func checkRequest(t *testing.T, got, want *InferRequest) {
	t.Helper()
	if got.ID != want.ID || !reflect.DeepEqual(got.Parameters, want.Parameters) {
		t.Errorf("id, parameters = %q, %v; want %q, %v", got.ID, got.Parameters, want.ID, want.Parameters)
	}
	if len(got.Outputs) != len(want.Outputs) || (len(want.Outputs) > 0 && !reflect.DeepEqual(got.Outputs, want.Outputs)) {
		t.Errorf("outputs = %+v, want %+v", got.Outputs, want.Outputs)
	}
	if len(got.Inputs) != len(want.Inputs) {
		t.Fatalf("%d inputs, want %d", len(got.Inputs), len(want.Inputs))
	}
	for i := range want.Inputs {
		g, w := got.Inputs[i], want.Inputs[i]
		if !sameTensor(g.Tensor, w.Tensor) || !reflect.DeepEqual(g.Parameters, w.Parameters) {
			t.Errorf("input %d = %+v, want %+v", i, g, w)
		}
	}
}

// sameTensor compares tensors, float data bit for bit (so NaN equals NaN).
func sameTensor(a, b Tensor) bool {
	if a.Name != b.Name || a.Datatype != b.Datatype || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	switch x := a.Data.(type) {
	case []float32:
		y, ok := b.Data.([]float32)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
		return true
	case []float64:
		y, ok := b.Data.([]float64)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Data, b.Data)
}

// imageRequest returns the JSON of a request with one 1x3x224x224 FP32
// tensor of values in [-2.5, 2.5], each written by format.
func imageRequest(format func(float32) string) []byte {
	r := rand.New(rand.NewPCG(7, 8))
	var b strings.Builder
	b.WriteString(`{"id":"bench","inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"FP32","data":[`)
	for i := range 3 * 224 * 224 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(format(float32(r.Float64()*5 - 2.5)))
	}
	b.WriteString(`]}]}`)
	return []byte(b.String())
}

// benchFormats are how clients write float32 values: numpy's tolist()
// through Python's json (the float64 repr of a float32, ~17 digits), and
// the shortest float32 form (as abgate and Go clients write them).
var benchFormats = []struct {
	name   string
	format func(float32) string
}{
	{"python", func(f float32) string { return strconv.FormatFloat(float64(f), 'g', -1, 64) }},
	{"shortest", func(f float32) string { return strconv.FormatFloat(float64(f), 'g', -1, 32) }},
}

// nestedImageRequest is imageRequest's tensor as numpy's tolist() nests
// it: 3 x 224 rows of 224 numbers.
func nestedImageRequest(format func(float32) string) []byte {
	flat := imageRequest(format)
	start := bytes.Index(flat, []byte(`"data":[`)) + len(`"data":[`)
	nums := bytes.Split(flat[start:bytes.LastIndex(flat, []byte(`]}]}`))], []byte(","))
	var b bytes.Buffer
	b.Write(flat[:start])
	b.WriteString("[")
	for c := range 3 {
		if c > 0 {
			b.WriteString(", ")
		}
		b.WriteString("[")
		for y := range 224 {
			if y > 0 {
				b.WriteString(", ")
			}
			b.WriteString("[")
			b.Write(bytes.Join(nums[(c*224+y)*224:(c*224+y+1)*224], []byte(", ")))
			b.WriteString("]")
		}
		b.WriteString("]")
	}
	b.WriteString("]]}]}")
	return b.Bytes()
}

// BenchmarkDecodeV2JSON decodes a V2 request of one 3x224x224 FP32
// tensor; compare with BenchmarkDecodeV2JSONEncodingJSON.
func BenchmarkDecodeV2JSON(b *testing.B) {
	for _, f := range benchFormats {
		for _, nested := range []bool{false, true} {
			body, name := imageRequest(f.format), f.name
			if nested {
				body, name = nestedImageRequest(f.format), f.name+"-nested"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					req, err := DecodeInferRequest(body)
					if err != nil || len(req.Inputs[0].Data.([]float32)) != 3*224*224 {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDecodeV2JSONEncodingJSON is the baseline of
// BenchmarkDecodeV2JSON: encoding/json decoding the same request into a
// struct with Data []float32.
func BenchmarkDecodeV2JSONEncodingJSON(b *testing.B) {
	type input struct {
		Name     string    `json:"name"`
		Shape    []int64   `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float32 `json:"data"`
	}
	type request struct {
		ID     string  `json:"id"`
		Inputs []input `json:"inputs"`
	}
	for _, f := range benchFormats {
		body := imageRequest(f.format)
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var req request
				if err := json.Unmarshal(body, &req); err != nil || len(req.Inputs[0].Data) != 3*224*224 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendInferResponse encodes a response of one 3x224x224 FP32
// tensor.
func BenchmarkAppendInferResponse(b *testing.B) {
	req, err := DecodeInferRequest(imageRequest(benchFormats[1].format))
	if err != nil {
		b.Fatal(err)
	}
	resp := &InferResponse{ModelName: "m", ModelVersion: "1", Outputs: []InferOutput{{Tensor: req.Inputs[0].Tensor}}}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = AppendInferResponse(buf[:0], resp)
	}
	b.SetBytes(int64(len(buf)))
}

// FuzzDecodeV2JSON: decoding never panics, fails only with EINVALID, and
// what it accepts encodes and decodes back to the same request.
func FuzzDecodeV2JSON(f *testing.F) {
	for _, s := range []string{
		`{"id":"r1","parameters":{"p":[1,{"q":null}]},"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2.5,-3e2,0.125]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`,
		`{"inputs":[{"data":[[true],[false]],"shape":[2,1],"datatype":"BOOL","name":"b"}]}`,
		`{"inputs":[{"name":"s","shape":[],"datatype":"FP64","data":[3.5e-300]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`,
		`{"inputs":[{"name":"f","shape":[3],"datatype":"FP16","data":["NaN","Infinity",-0]}]}`,
		`{"inputs":[{"name":"\u00e9","shape":[2],"datatype":"BYTES","data":["a\nb","日本"]}]}`,
		`{"inputs":[{"name":"i","shape":[2],"datatype":"INT64","data":[-9223372036854775808,9223372036854775807]}]}`,
		`{"inputs":[{"name":"u","shape":[2],"datatype":"UINT64","data":[18446744073709551615,0]}]}`,
		`{"inputs":[{"name":"u","shape":[2,1],"datatype":"UINT8","data":[[255],[0]]}]}`,
		`{"inputs":[{"name":"b","shape":[1],"datatype":"BF16","data":[1.5]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1.5]}]}`,
		`{"inputs":[`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeInferRequest(body)
		if err != nil {
			if code := abgate.ErrorCode(err); code != abgate.EINVALID {
				t.Fatalf("error %v has code %q, want EINVALID", err, code)
			}
			return
		}
		enc := AppendInferRequest(nil, req)
		again, err := DecodeInferRequest(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		checkRequest(t, again, req)
	})
}

// FuzzDecodeFloatData: an array of JSON numbers, as encoding/json reads
// it, decodes as FP32 and FP64 data to the values of strconv.ParseFloat,
// or fails with EINVALID when one is out of range.
func FuzzDecodeFloatData(f *testing.F) {
	for _, s := range []string{
		"1,2.5,-3e2,0.125",
		"-1.7922626,0.12345679,1.0000001,-0.0",
		"-2.1179039301310043, 0.12345679104328156, 0.012345679104328156, 0.0012345679104328156",
		"0.5 ,\n0.25,\t1.5e3,1e39,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
		"1.0000000596046447,1.0000000596046448,9.999999999999999999,0.5,0.5,0.5,0.5,0.5,0.5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		dec := json.NewDecoder(strings.NewReader("[" + data + "]"))
		dec.UseNumber()
		var elems []any
		if err := dec.Decode(&elems); err != nil || dec.More() || dec.InputOffset() != int64(len(data)+2) {
			return
		}
		for _, e := range elems {
			if _, ok := e.(json.Number); !ok {
				return
			}
		}
		for _, dt := range []string{DTFP32, DTFP64} {
			bitSize := 32
			if dt == DTFP64 {
				bitSize = 64
			}
			want := make([]float64, len(elems))
			inRange := true
			for i, e := range elems {
				v, err := strconv.ParseFloat(string(e.(json.Number)), bitSize)
				want[i] = v
				inRange = inRange && err == nil
			}
			body := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[%d],"datatype":%q,"data":[%s]}]}`, len(elems), dt, data)
			req, err := DecodeInferRequest([]byte(body))
			if !inRange {
				if code := abgate.ErrorCode(err); code != abgate.EINVALID {
					t.Fatalf("%s [%s]: err = %v (code %q), want EINVALID: a number out of range", dt, data, err, code)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s [%s]: %v", dt, data, err)
			}
			for i, w := range want {
				var got float64
				switch d := req.Inputs[0].Data.(type) {
				case []float32:
					got = float64(d[i])
				case []float64:
					got = d[i]
				}
				if math.Float64bits(got) != math.Float64bits(w) {
					t.Fatalf("%s [%s]: element %d, %s, = %v, want %v", dt, data, i, elems[i], got, w)
				}
			}
		}
	})
}

// TestDecodeFinite checks what the decoder says of the floats it read:
// known finite unless a "NaN", "Infinity" or "-Infinity" was among them,
// which lets the check of a model's inputs skip its scan.
func TestDecodeFinite(t *testing.T) {
	for _, tt := range []struct {
		datatype, data string
		finite         bool
	}{
		{"FP32", `[1, 2.5, -3e7]`, true},
		{"FP32", `[1, "NaN", 3]`, false},
		{"FP64", `[1, 2, "Infinity"]`, false},
		{"FP64", `["-Infinity", 2, 3]`, false},
		{"FP32", `[` + strings.Repeat("0.25,", 1000) + `"NaN"]`, false},
		{"FP16", `[1, 2, 3]`, false}, // not tracked
		{"INT32", `[1, 2, 3]`, false},
	} {
		n := strings.Count(tt.data, ",") + 1
		req, err := DecodeInferRequest([]byte(`{"inputs":[{"name":"x","shape":[` + strconv.Itoa(n) + `],"datatype":"` + tt.datatype + `","data":` + tt.data + `}]}`))
		if err != nil {
			t.Fatalf("%s %.40s: %v", tt.datatype, tt.data, err)
		}
		if got := req.Inputs[0].finite; got != tt.finite {
			t.Errorf("%s %.40s: finite = %v, want %v", tt.datatype, tt.data, got, tt.finite)
		}
	}
}

// TestDecodeNested: an image tensor nested as numpy's tolist() nests it
// decodes to the same data as the flat array, each row of 224 numbers
// being a run of its own (read in two lanes where there is assembly).
func TestDecodeNested(t *testing.T) {
	for _, f := range benchFormats {
		flat, err := DecodeInferRequest(imageRequest(f.format))
		if err != nil {
			t.Fatal(err)
		}
		nested, err := DecodeInferRequest(nestedImageRequest(f.format))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(flat.Inputs[0].Data, nested.Inputs[0].Data) {
			t.Errorf("%s: the nested array decodes to other data than the flat one", f.name)
		}
	}
}

// checkParameters checks that the scanner reads the parameters object
// body, followed by nothing else, as encoding/json does: the same map
// (nil for an empty object), or an error where encoding/json fails.
func checkParameters(t *testing.T, body []byte) {
	t.Helper()
	var want map[string]any
	wantErr := json.Unmarshal(body, &want)
	if len(want) == 0 {
		want = nil
	}
	s := scanner{b: body}
	got, err := s.parameters("parameters")
	if err == nil {
		err = s.end()
	}
	switch {
	case wantErr != nil && err == nil:
		t.Fatalf("parameters %q: got %v, want an error as encoding/json's %v", body, got, wantErr)
	case wantErr == nil && err != nil:
		t.Fatalf("parameters %q: %v, want %v", body, err, want)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("parameters %q: got %#v, want %#v", body, got, want)
	}
}

// TestParameters: objects of scalars take the scanner's own path, the
// others encoding/json's, and both read what encoding/json reads.
func TestParameters(t *testing.T) {
	for _, body := range []string{
		`{}`, ` { } `,
		`{"binary_data_size":602112}`,
		`{"binary_data": true, "classification": 3}`,
		`{"a":"x","b":false,"c":null,"d":-1.5e-3,"e":0,"f":"\u00e9\n","g":"日本"}`,
		`{"a":1,"a":2}`, // the last wins
		`{"big":1e308,"small":5e-324,"tiny":1e-400}`, // 1e-400 is 0
		`{"huge":1e400}`,             // out of range: an error
		`{"n":[1,2],"o":{"p":null}}`, // nested: encoding/json
		`{"s":"\ud800"}`,             // a lone surrogate, replaced
		"{\"s\":\"\xff\"}",           // invalid UTF-8, replaced
		`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":tru}`, `{"a":truex}`, `{"a":1,}`,
		`{"a" 1}`, `{a:1}`, `{"a":1`, `{"a":"x}`, `{"a":+1}`, `{"a":1}}`,
	} {
		checkParameters(t, []byte(body))
	}
}

// FuzzParameters: any object reads as encoding/json reads it.
func FuzzParameters(f *testing.F) {
	for _, s := range []string{
		`{"binary_data_size":602112}`, `{"binary_data":false,"x":null}`,
		`{"a":"\u00e9","b":-0.5e+2,"c":[true]}`, `{"a":1e400}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if bytes.IndexByte(bytes.TrimLeft(body, " \t\r\n"), '{') != 0 {
			return // parameters must be an object: an error either way
		}
		checkParameters(t, body)
	})
}

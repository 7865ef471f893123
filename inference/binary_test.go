package inference

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"abgate"
)

func TestSplitBinaryRequest(t *testing.T) {
	body := []byte(`{"inputs":[]}` + "\x01\x02\x03")
	tests := []struct {
		name       string
		headerLen  int
		wantHeader string
		wantBlob   []byte
		wantErr    string
	}{
		{"header and blob", 13, `{"inputs":[]}`, []byte{1, 2, 3}, ""},
		{"header only", len(body), string(body), []byte{}, ""},
		{"zero", 0, "", nil, "must be a positive number of bytes, not 0"},
		{"negative", -4, "", nil, "not -4"},
		{"beyond the body", 17, "", nil, "is 17 but the body holds only 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header, blob, err := SplitBinaryRequest(body, tt.headerLen)
			if tt.wantErr != "" {
				if got := abgate.ErrorCode(err); got != abgate.EINVALID {
					t.Fatalf("error code: got %q (%v), want %q", got, err, abgate.EINVALID)
				}
				if !strings.Contains(abgate.ErrorMessage(err), tt.wantErr) {
					t.Errorf("message: got %q, want it to contain %q", abgate.ErrorMessage(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(header); got != tt.wantHeader {
				t.Errorf("header: got %q, want %q", got, tt.wantHeader)
			}
			if !bytes.Equal(blob, tt.wantBlob) {
				t.Errorf("blob: got %v, want %v", blob, tt.wantBlob)
			}
			if cap(header) != len(header) {
				t.Errorf("header has spare capacity %d: appending to it would overwrite the blob", cap(header)-len(header))
			}
		})
	}
}

func TestTakeBinaryData(t *testing.T) {
	blob := []byte{1, 2, 3, 4, 5}
	a, rest, err := TakeBinaryData(blob, "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	b, rest, err := TakeBinaryData(rest, "b", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, []byte{1, 2}) || !bytes.Equal(b, []byte{3, 4, 5}) || len(rest) != 0 {
		t.Errorf("got %v, %v, rest %v; want [1 2], [3 4 5], []", a, b, rest)
	}
	for _, size := range []int64{6, -1} {
		_, _, err := TakeBinaryData(blob, "big", size)
		if got := abgate.ErrorCode(err); got != abgate.EINVALID || !strings.Contains(abgate.ErrorMessage(err), `"big"`) {
			t.Errorf("size %d: got %v, want an EINVALID error naming the tensor", size, err)
		}
	}
}

func TestDecodeBinaryTensor(t *testing.T) {
	f32 := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5)), math.Float32bits(-2))
	f64 := binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.Pi))
	tests := []struct {
		datatype string
		shape    []int64
		raw      []byte
		want     any
	}{
		{DTBool, []int64{3}, []byte{1, 0, 1}, []bool{true, false, true}},
		{DTUint8, []int64{2}, []byte{0, 255}, []uint8{0, 255}},
		{DTInt8, []int64{2}, []byte{0x80, 0x7f}, []int8{-128, 127}},
		{DTUint16, []int64{2}, []byte{1, 0, 0, 1}, []uint16{1, 256}},
		{DTInt16, []int64{1}, []byte{0xfe, 0xff}, []int16{-2}},
		{DTFP16, []int64{1}, []byte{0x00, 0x3c}, []uint16{0x3c00}},
		{DTBF16, []int64{1}, []byte{0x80, 0x3f}, []uint16{0x3f80}},
		{DTUint32, []int64{1}, []byte{1, 2, 3, 4}, []uint32{0x04030201}},
		{DTInt32, []int64{1, 1}, []byte{0xff, 0xff, 0xff, 0xff}, []int32{-1}},
		{DTFP32, []int64{2, 1}, f32, []float32{1.5, -2}},
		{DTUint64, []int64{1}, []byte{1, 0, 0, 0, 0, 0, 0, 0x80}, []uint64{1<<63 + 1}},
		{DTInt64, []int64{}, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []int64{-2}},
		{DTFP64, []int64{1}, f64, []float64{math.Pi}},
		{DTFP32, []int64{0, 3}, []byte{}, []float32{}},
		{DTBytes, []int64{3}, []byte("\x02\x00\x00\x00hi\x00\x00\x00\x00\x03\x00\x00\x00\xffyz"), []string{"hi", "", "\xffyz"}},
		{DTBytes, []int64{0}, []byte{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.datatype, func(t *testing.T) {
			got, err := DecodeBinaryTensor("x", tt.datatype, tt.shape, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Data, tt.want) {
				t.Errorf("data: got %#v, want %#v", got.Data, tt.want)
			}
			if got.Name != "x" || got.Datatype != tt.datatype || !reflect.DeepEqual(got.Shape, tt.shape) {
				t.Errorf("got %s %s %v, want x %s %v", got.Name, got.Datatype, got.Shape, tt.datatype, tt.shape)
			}
			enc, err := EncodeBinaryTensor(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, tt.raw) {
				t.Errorf("encoded: got %v, want %v", enc, tt.raw)
			}
			if size, _ := BinaryTensorSize(got); size != len(tt.raw) {
				t.Errorf("BinaryTensorSize: got %d, want %d", size, len(tt.raw))
			}
		})
	}
	t.Run("data does not alias raw", func(t *testing.T) {
		raw := []byte{1, 2, 3, 4}
		got, err := DecodeBinaryTensor("x", DTUint8, []int64{4}, raw)
		if err != nil {
			t.Fatal(err)
		}
		raw[0] = 9
		if got.Data.([]uint8)[0] != 1 {
			t.Error("the decoded data changed with raw")
		}
	})
}

func TestDecodeBinaryTensorErrors(t *testing.T) {
	tests := []struct {
		name     string
		datatype string
		shape    []int64
		raw      []byte
		want     []string // parts of the message
	}{
		{"short FP32", DTFP32, []int64{1, 3, 2}, make([]byte, 20), []string{`"input0"`, "holds 20 bytes", "[1,3,2]", "needs 24", "6 elements x 4 bytes"}},
		{"long INT64", DTInt64, []int64{2}, make([]byte, 17), []string{`"input0"`, "holds 17 bytes", "needs 16"}},
		{"scalar with no data", DTFP64, nil, nil, []string{"holds 0 bytes", "needs 8"}},
		{"bad BOOL byte", DTBool, []int64{2}, []byte{1, 2}, []string{`"input0"`, "element 1", "byte 2", "0 or 1"}},
		{"unknown datatype", "FP8", []int64{1}, []byte{1}, []string{`"input0"`, `"FP8"`}},
		{"negative dimension", DTUint8, []int64{-1}, nil, []string{`"input0"`, "negative dimension"}},
		{"huge shape", DTUint8, []int64{1 << 20, 1 << 20}, nil, []string{`"input0"`, "too many elements"}},
		{"BYTES too short for lengths", DTBytes, []int64{2}, []byte{0, 0, 0, 0}, []string{`"input0"`, "needs at least 8"}},
		{"BYTES element cut", DTBytes, []int64{1}, []byte{5, 0, 0, 0, 'a'}, []string{"element 0 has length 5", "only 1"}},
		{"BYTES length cut", DTBytes, []int64{2}, []byte{0, 0, 0, 0, 1, 0, 0, 0}, []string{"element 1 has length 1", "only 0"}},
		{"BYTES trailing bytes", DTBytes, []int64{1}, []byte{1, 0, 0, 0, 'a', 'b'}, []string{"holds 6 bytes", "end at byte 5"}},
		{"BYTES prefix cut", DTBytes, []int64{2}, []byte{4, 0, 0, 0, 'a', 'b', 'c', 'd', 0, 0}, []string{"element 1", "cut off"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBinaryTensor("input0", tt.datatype, tt.shape, tt.raw)
			if got := abgate.ErrorCode(err); got != abgate.EINVALID {
				t.Fatalf("error code: got %q (%v), want %q", got, err, abgate.EINVALID)
			}
			for _, w := range tt.want {
				if msg := abgate.ErrorMessage(err); !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestEncodeBinaryTensorErrors(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
	}{
		{"type does not match datatype", Tensor{Name: "y", Datatype: DTFP64, Shape: []int64{1}, Data: []float32{1}}},
		{"length does not match shape", Tensor{Name: "y", Datatype: DTFP32, Shape: []int64{2}, Data: []float32{1}}},
		{"no data", Tensor{Name: "y", Datatype: DTFP32, Shape: []int64{1}}},
		{"not tensor data", Tensor{Name: "y", Datatype: DTBytes, Shape: []int64{1}, Data: []map[string]int{{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := EncodeBinaryTensor(tt.t); err == nil || !strings.Contains(err.Error(), `"y"`) {
				t.Errorf("got %v, want an error naming the tensor", err)
			}
			dst := []byte{7}
			got, err := AppendBinaryTensor(dst, tt.t)
			if err == nil || !bytes.Equal(got, dst) {
				t.Errorf("AppendBinaryTensor: got %v, %v; want dst unchanged and an error", got, err)
			}
		})
	}
}

// TestBinaryPortable checks the byte-order-independent paths, used on
// big-endian machines, against the memory-copy ones.
func TestBinaryPortable(t *testing.T) {
	raw := make([]byte, 64)
	for i := range raw {
		raw[i] = byte(i*37 + 11)
	}
	check := func(name string, fast, portable any) {
		t.Helper()
		if !reflect.DeepEqual(fast, portable) {
			t.Errorf("%s: fast %v, portable %v", name, fast, portable)
		}
	}
	portable := func(out any) any {
		switch o := out.(type) {
		case []uint16:
			decodeLEPortable(raw, o)
		case []int32:
			decodeLEPortable(raw, o)
		case []float32:
			decodeLEPortable(raw, o)
		case []float64:
			decodeLEPortable(raw, o)
		case []int64:
			decodeLEPortable(raw, o)
		case []int8:
			decodeLEPortable(raw, o)
		}
		return out
	}
	check("uint16", decodeLE[uint16](raw, 32), portable(make([]uint16, 32)))
	check("int32", decodeLE[int32](raw, 16), portable(make([]int32, 16)))
	check("float32", decodeLE[float32](raw, 16), portable(make([]float32, 16)))
	check("float64", decodeLE[float64](raw, 8), portable(make([]float64, 8)))
	check("int64", decodeLE[int64](raw, 8), portable(make([]int64, 8)))
	check("int8", decodeLE[int8](raw, 64), portable(make([]int8, 64)))

	bools := []byte{0, 1, 1, 0}
	pb := make([]bool, 4)
	decodeLEPortable(bools, pb)
	check("bool", decodeLE[bool](bools, 4), pb)

	f := decodeLE[float32](raw, 16)
	check("append float32", appendLE(nil, f), appendLEPortable(nil, f))
	i := decodeLE[int64](raw, 8)
	check("append int64", appendLE(nil, i), appendLEPortable(nil, i))
	bs := []bool{true, false, true}
	check("append bool", appendLE(nil, bs), appendLEPortable(nil, bs))
}

func FuzzDecodeBinaryTensor(f *testing.F) {
	datatypes := []string{DTBool, DTUint8, DTUint16, DTUint32, DTUint64, DTInt8, DTInt16, DTInt32, DTInt64, DTFP16, DTBF16, DTFP32, DTFP64, DTBytes, "", "FP8"}
	f.Add(uint8(11), uint8(2), int64(2), int64(1), []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0})
	f.Add(uint8(0), uint8(1), int64(3), int64(0), []byte{1, 0, 1})
	f.Add(uint8(13), uint8(1), int64(2), int64(0), []byte("\x01\x00\x00\x00a\x00\x00\x00\x00"))
	f.Add(uint8(13), uint8(0), int64(0), int64(0), []byte("\xff\xff\xff\xff"))
	f.Add(uint8(12), uint8(0), int64(0), int64(0), make([]byte, 8))
	f.Add(uint8(4), uint8(2), int64(-1), int64(3), []byte{})
	f.Fuzz(func(t *testing.T, dt, rank uint8, d0, d1 int64, raw []byte) {
		datatype := datatypes[int(dt)%len(datatypes)]
		shape := []int64{d0, d1}[:int(rank)%3]
		got, err := DecodeBinaryTensor("x", datatype, shape, raw)
		if err != nil {
			if code := abgate.ErrorCode(err); code != abgate.EINVALID {
				t.Fatalf("error code %q (%v), want %q", code, err, abgate.EINVALID)
			}
			return
		}
		enc, err := EncodeBinaryTensor(got)
		if err != nil {
			t.Fatalf("re-encoding an accepted tensor: %v", err)
		}
		if !bytes.Equal(enc, raw) {
			t.Fatalf("re-encoded %v, want %v", enc, raw)
		}
	})
}

// TestBinaryInferRequestRoundTrip encodes requests and responses in the
// binary format, some inputs JSON and some binary, and decodes them back.
func TestBinaryInferRequestRoundTrip(t *testing.T) {
	req := &InferRequest{
		ID:         "r",
		Parameters: map[string]any{"binary_data_output": true},
		Inputs: []InferInput{
			{Tensor: Tensor{Name: "a", Datatype: DTFP32, Shape: []int64{1, 2}, Data: []float32{1.5, -2}}},
			{Tensor: Tensor{Name: "s", Datatype: DTBytes, Shape: []int64{2}, Data: []string{"", "héllo"}}},
			{Tensor: Tensor{Name: "b", Datatype: DTBool, Shape: []int64{}, Data: []bool{true}}},
		},
		Outputs: []RequestedOutput{{Name: "y", Parameters: map[string]any{"binary_data": true}}},
	}
	body, n, err := AppendBinaryInferRequest([]byte("prefix"), req)
	if err != nil {
		t.Fatal(err)
	}
	body = body[len("prefix"):]
	if req.Inputs[0].Data == nil || req.Inputs[0].Parameters != nil {
		t.Fatal("AppendBinaryInferRequest changed the request")
	}
	got, err := DecodeBinaryInferRequest(body, n)
	if err != nil {
		t.Fatalf("%v in %q", err, body)
	}
	if got.ID != "r" || len(got.Inputs) != 3 || got.Outputs[0].Name != "y" || got.Parameters["binary_data_output"] != true {
		t.Fatalf("request %+v", got)
	}
	for i, in := range got.Inputs {
		if !sameTensor(in.Tensor, req.Inputs[i].Tensor) {
			t.Errorf("input %d = %+v, want %+v", i, in.Tensor, req.Inputs[i].Tensor)
		}
		if size, _ := BinaryTensorSize(req.Inputs[i].Tensor); in.Parameters["binary_data_size"] != float64(size) {
			t.Errorf("input %d binary_data_size %v, want %d", i, in.Parameters["binary_data_size"], size)
		}
	}

	resp := &InferResponse{ModelName: "m", ModelVersion: "1", Outputs: []InferOutput{
		{Tensor: Tensor{Name: "y", Datatype: DTInt64, Shape: []int64{2}, Data: []int64{7, -7}}},
		{Tensor: Tensor{Name: "z", Datatype: DTFP16, Shape: []int64{1}, Data: []uint16{0x3c00}}, Parameters: map[string]any{"p": "q"}},
	}}
	for _, flags := range [][]bool{{true, true}, {false, true}, {true}, nil} {
		b, n, err := AppendBinaryInferResponse(nil, resp, flags)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeBinaryInferResponse(b, n)
		if err != nil {
			t.Fatalf("flags %v: %v in %q", flags, err, b)
		}
		for i, o := range back.Outputs {
			_, isBinary := o.Parameters["binary_data_size"]
			if !sameTensor(o.Tensor, resp.Outputs[i].Tensor) || isBinary != (i < len(flags) && flags[i]) {
				t.Errorf("flags %v: output %d = %+v %v", flags, i, o.Tensor, o.Parameters)
			}
		}
		if back.Outputs[1].Parameters["p"] != "q" {
			t.Errorf("flags %v: parameters of z lost: %v", flags, back.Outputs[1].Parameters)
		}
	}
}

// TestDecodeBinaryAlias: with alias, aligned fixed-size data is read in
// place, and misaligned data is copied.
func TestDecodeBinaryAlias(t *testing.T) {
	buf := make([]byte, 64) // 8-byte aligned
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, off := range []int{0, 1, 4} {
		raw := buf[8+off : 8+off+16]
		got, err := decodeBinaryTensor("x", DTFP32, []int64{4}, raw, true)
		if err != nil {
			t.Fatal(err)
		}
		data := got.Data.([]float32)
		if want := decodeLE[float32](raw, 4); !reflect.DeepEqual(data, want) {
			t.Errorf("offset %d: %v, want %v", off, data, want)
		}
		shared := unsafe.Pointer(&data[0]) == unsafe.Pointer(&raw[0])
		if shared != (off%4 == 0 && hostLittleEndian()) {
			t.Errorf("offset %d: shares raw %v", off, shared)
		}
	}
	exported, err := DecodeBinaryTensor("x", DTFP32, []int64{4}, buf[:16])
	if err != nil || unsafe.Pointer(&exported.Data.([]float32)[0]) == unsafe.Pointer(&buf[0]) {
		t.Errorf("DecodeBinaryTensor shares its input (%v)", err)
	}
}

func TestDecodeBinaryInferRequestErrors(t *testing.T) {
	x := func(size string) string {
		return `{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":` + size + `}}]}`
	}
	eight := []byte{1, 0, 0, 0, 2, 0, 0, 0}
	tests := []struct {
		name   string
		header string
		blob   []byte
		field  string
		want   []string
	}{
		{"short", x("8"), eight[:6], "inputs.x", []string{`"x"`, "only 6 bytes"}},
		{"left over", x("8"), append(eight, 9), "inputs.x", []string{`"x"`, "1 bytes of binary data left over"}},
		{"size mismatch", x("4"), eight[:4], "inputs.x", []string{`"x"`, "holds 4 bytes", "needs 8"}},
		{"negative size", x("-8"), eight, "inputs.x", []string{`"x"`, "must not be negative"}},
		{"size not a number", x(`"8"`), eight, "inputs.x", []string{`"x"`, `binary_data_size is "8"`}},
		{"data and size", `{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[1,2],"parameters":{"binary_data_size":8}}]}`, eight, "inputs.x", []string{"both"}},
		{"no binary input", `{"inputs":[]}`, eight, "", []string{"8 bytes of binary data", "no input has a binary_data_size"}},
		{"bad JSON", `{"inputs":[`, nil, "", []string{"malformed JSON", "first 11 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBinaryInferRequest(append([]byte(tt.header), tt.blob...), len(tt.header))
			if abgate.ErrorCode(err) != abgate.EINVALID || abgate.ErrorField(err) != tt.field {
				t.Fatalf("error %v, want invalid with field %q", err, tt.field)
			}
			for _, w := range tt.want {
				if msg := abgate.ErrorMessage(err); !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// FuzzDecodeBinaryInferRequest: any body and header length either fails
// with EINVALID or gives a request whose inputs all have data that fits
// their shape.
func FuzzDecodeBinaryInferRequest(f *testing.F) {
	add := func(header string, blob []byte) {
		f.Add(append([]byte(header), blob...), len(header))
	}
	add(`{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}}]}`, []byte{1, 0, 0, 0, 2, 0, 0, 0})
	add(`{"inputs":[{"name":"a","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":5}},{"name":"b","shape":[],"datatype":"BOOL","data":[true]}]}`, []byte{1, 0, 0, 0, 'z'})
	add(`{"inputs":[{"name":"h","shape":[1,1],"datatype":"FP16","parameters":{"binary_data_size":2}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`, []byte{0, 0x3c})
	add(`{"inputs":[]}`, nil)
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		req, err := DecodeBinaryInferRequest(body, headerLen)
		if err != nil {
			if code := abgate.ErrorCode(err); code != abgate.EINVALID {
				t.Fatalf("error code %q (%v), want %q", code, err, abgate.EINVALID)
			}
			return
		}
		for _, in := range req.Inputs {
			n, ok := DataLen(in.Datatype, in.Data)
			count, err := ElementCount(in.Shape)
			if !ok || err != nil || int64(n) != count {
				t.Fatalf("input %q: %d elements of %T for shape %v", in.Name, n, in.Data, in.Shape)
			}
		}
	})
}

// decodeFP32Loop is the binary.LittleEndian loop that decodeLE replaces,
// kept for the benchmark.
func decodeFP32Loop(raw []byte) []float32 {
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// BenchmarkDecodeBinaryTensor decodes a 1x3x224x224 FP32 image tensor
// (588 KiB) with the memory copy, a LittleEndian loop and binary.Decode.
func BenchmarkDecodeBinaryTensor(b *testing.B) {
	shape := []int64{1, 3, 224, 224}
	raw := make([]byte, 4*3*224*224)
	for i := range raw {
		raw[i] = byte(i)
	}
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := DecodeBinaryTensor("x", DTFP32, shape, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			decodeFP32Loop(raw)
		}
	})
	b.Run("binary.Decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			decodeLEPortable(raw, make([]float32, len(raw)/4))
		}
	})
	b.Run("encode", func(b *testing.B) {
		t, _ := DecodeBinaryTensor("x", DTFP32, shape, raw)
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := EncodeBinaryTensor(t); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeBinaryInferRequest decodes the request that a KServe or
// Triton client sends for a 1x3x224x224 FP32 image: a JSON header whose
// input and output carry parameters, then the tensor's bytes, read in
// place.
func BenchmarkDecodeBinaryInferRequest(b *testing.B) {
	img := Tensor{Name: "input", Datatype: DTFP32, Shape: []int64{1, 3, 224, 224}, Data: make([]float32, 3*224*224)}
	req := &InferRequest{
		Inputs:  []InferInput{{Tensor: img}},
		Outputs: []RequestedOutput{{Name: "probabilities", Parameters: map[string]any{ParamBinaryData: false}}},
	}
	raw, headerLen, err := AppendBinaryInferRequest(nil, req)
	if err != nil {
		b.Fatal(err)
	}
	// The body is placed as the server places it, the tensor's bytes
	// 8-byte aligned, so that they are read in place.
	pad := (8 - headerLen%8) % 8
	body := make([]byte, pad+len(raw))[pad:]
	copy(body, raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeBinaryInferRequest(body, headerLen, true); err != nil {
			b.Fatal(err)
		}
	}
}

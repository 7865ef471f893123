package inference

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"abgate"
)

// pngOf returns img as PNG bytes.
func pngOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngHeaderOnly returns the signature and IHDR chunk of a w x h 8-bit RGB PNG
// and nothing else: a file that claims a size it does not have.
func pngHeaderOnly(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // depth 8, colour type RGB, deflate, no filter, no interlace
	chunk := append([]byte("IHDR"), ihdr...)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = binary.BigEndian.AppendUint32(out, uint32(len(ihdr)))
	out = append(out, chunk...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
}

// gifHeaderOnly returns a GIF header and logical screen descriptor of w x h.
func gifHeaderOnly(w, h uint16) []byte {
	out := []byte("GIF89a")
	out = binary.LittleEndian.AppendUint16(out, w)
	out = binary.LittleEndian.AppendUint16(out, h)
	return append(out, 0, 0, 0)
}

// fourColorImage is a 2x2 image: red, green / blue, (51, 102, 204).
func fourColorImage() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.NRGBA{255, 0, 0, 255})
	img.Set(1, 0, color.NRGBA{0, 255, 0, 255})
	img.Set(0, 1, color.NRGBA{0, 0, 255, 255})
	img.Set(1, 1, color.NRGBA{51, 102, 204, 255})
	return img
}

func floatsClose(got, want []float32, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol {
			return false
		}
	}
	return true
}

func TestPreprocessKnownPixels(t *testing.T) {
	img, err := DecodeImage(pngOf(t, fourColorImage()), 0)
	if err != nil {
		t.Fatal(err)
	}
	half := [3]float32{0.5, 0.5, 0.5}
	// (p/255 - 0.5) / 0.5: 255 -> 1, 0 -> -1, 51 -> -0.6, 102 -> -0.2, 204 -> 0.6.
	tests := []struct {
		name string
		spec ImageSpec
		want []float32
	}{
		{"NCHW RGB", ImageSpec{Height: 2, Width: 2, Mean: half, Std: half}, []float32{
			1, -1, -1, -0.6, // R
			-1, 1, -1, -0.2, // G
			-1, -1, 1, 0.6, // B
		}},
		{"NCHW BGR", ImageSpec{Height: 2, Width: 2, Mean: half, Std: half, ChannelOrder: "BGR"}, []float32{
			-1, -1, 1, 0.6,
			-1, 1, -1, -0.2,
			1, -1, -1, -0.6,
		}},
		{"NHWC RGB", ImageSpec{Height: 2, Width: 2, Mean: half, Std: half, Layout: "NHWC"}, []float32{
			1, -1, -1, -1, 1, -1,
			-1, -1, 1, -0.6, -0.2, 0.6,
		}},
		{"NHWC BGR", ImageSpec{Height: 2, Width: 2, Mean: half, Std: half, Layout: "NHWC", ChannelOrder: "BGR"}, []float32{
			-1, -1, 1, -1, 1, -1,
			1, -1, -1, 0.6, -0.2, -0.6,
		}},
		{"defaults: own size, scale 255, no normalisation", ImageSpec{}, []float32{
			1, 0, 0, 0.2,
			0, 1, 0, 0.4,
			0, 0, 1, 0.8,
		}},
		{"scale 1, per-channel mean and std", ImageSpec{Scale: 1, Mean: [3]float32{0, 100, 200}, Std: [3]float32{1, 2, 4}}, []float32{
			255, 0, 0, 51,
			-50, 77.5, -50, 1,
			-50, -50, 13.75, 1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Preprocess(img, tt.spec, nil)
			if !floatsClose(got, tt.want, 1e-6) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got, want := (ImageSpec{Height: 224, Width: 200}).Shape(), []int64{3, 224, 200}; !slices.Equal(got, want) {
		t.Errorf("Shape NCHW: got %v, want %v", got, want)
	}
	if got, want := (ImageSpec{Height: 224, Width: 200, Layout: "NHWC"}).Shape(), []int64{224, 200, 3}; !slices.Equal(got, want) {
		t.Errorf("Shape NHWC: got %v, want %v", got, want)
	}
}

func TestPreprocessBilinear(t *testing.T) {
	raw := ImageSpec{Scale: 1}
	gray := func(w, h int, pix ...uint8) *image.Gray {
		return &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
	}
	tests := []struct {
		name string
		img  image.Image
		h, w int
		want []float32 // the R plane; G and B are equal for gray images
	}{
		// Output x samples (x+0.5)*4/2 - 0.5 = 0.5, 2.5.
		{"halve a row", gray(4, 1, 0, 85, 170, 255), 1, 2, []float32{42.5, 212.5}},
		// Output x samples (x+0.5)/2 - 0.5 = -0.25 (edge), 0.25, 0.75, 1.25 (edge).
		{"double a row", gray(2, 1, 0, 100), 1, 4, []float32{0, 25, 75, 100}},
		{"halve a column", gray(1, 4, 0, 85, 170, 255), 2, 1, []float32{42.5, 212.5}},
		// A plane v = 80x + 160y is reproduced exactly at x, y in {0, .25, .75, 1}.
		{"double a plane", gray(2, 2, 0, 80, 160, 240), 4, 4, []float32{
			0, 20, 60, 80,
			40, 60, 100, 120,
			120, 140, 180, 200,
			160, 180, 220, 240,
		}},
		{"same size is the identity", gray(3, 1, 7, 9, 250), 1, 3, []float32{7, 9, 250}},
		{"one pixel to many", gray(1, 1, 42), 2, 3, []float32{42, 42, 42, 42, 42, 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := raw
			spec.Height, spec.Width = tt.h, tt.w
			got := Preprocess(tt.img, spec, nil)
			n := tt.h * tt.w
			if len(got) != 3*n {
				t.Fatalf("got %d values, want %d", len(got), 3*n)
			}
			for c := range 3 {
				if plane := got[c*n : (c+1)*n]; !floatsClose(plane, tt.want, 1e-4) {
					t.Errorf("channel %d: got %v, want %v", c, plane, tt.want)
				}
			}
		})
	}
}

func TestPreprocessConstantImage(t *testing.T) {
	for _, size := range []struct{ sw, sh, w, h int }{{37, 23, 224, 224}, {640, 480, 7, 5}, {3, 300, 224, 224}} {
		img := image.NewRGBA(image.Rect(0, 0, size.sw, size.sh))
		for i := 0; i < len(img.Pix); i += 4 {
			copy(img.Pix[i:], []uint8{10, 128, 250, 255})
		}
		spec := ImageSpec{Height: size.h, Width: size.w, Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}
		got := Preprocess(img, spec, nil)
		n := size.h * size.w
		for c, p := range []float32{10, 128, 250} {
			want := (p/255 - spec.Mean[c]) / spec.Std[c]
			for i, v := range got[c*n : (c+1)*n] {
				if math.Abs(float64(v-want)) > 1e-5 {
					t.Fatalf("%dx%d to %dx%d: channel %d value %d is %v, want %v", size.sw, size.sh, size.w, size.h, c, i, v, want)
				}
			}
		}
	}
}

// atOnlyImage hides the concrete type of an image, so that Preprocess
// reads it through At.
type atOnlyImage struct{ image.Image }

// TestPreprocessFastPaths checks that the direct readers of each image
// type give exactly what the generic At path gives.
func TestPreprocessFastPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(pix []uint8) {
		for i := range pix {
			pix[i] = uint8(rng.IntN(256))
		}
	}
	r := image.Rect(0, 0, 37, 29)
	var imgs []struct {
		name string
		img  image.Image
	}
	add := func(name string, img image.Image) {
		imgs = append(imgs, struct {
			name string
			img  image.Image
		}{name, img})
	}
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		m := image.NewYCbCr(r, ratio)
		fill(m.Y)
		fill(m.Cb)
		fill(m.Cr)
		add("YCbCr "+ratio.String(), m)
		add("YCbCr sub-image "+ratio.String(), m.SubImage(image.Rect(3, 5, 30, 28)))
	}
	rgba := image.NewRGBA(r)
	fill(rgba.Pix)
	for i := 3; i < len(rgba.Pix); i += 4 { // valid premultiplied colours
		a := rgba.Pix[i]
		for c := 1; c <= 3; c++ {
			rgba.Pix[i-c] = min(rgba.Pix[i-c], a)
		}
	}
	add("RGBA", rgba)
	add("RGBA sub-image", rgba.SubImage(image.Rect(1, 2, 20, 27)))
	nrgba := image.NewNRGBA(r)
	fill(nrgba.Pix)
	add("NRGBA", nrgba)
	gray := image.NewGray(r)
	fill(gray.Pix)
	add("Gray", gray)
	pal := image.NewPaletted(r, palette.Plan9)
	fill(pal.Pix)
	add("Paletted", pal)

	specs := []ImageSpec{
		{Height: 16, Width: 20},
		{Height: 50, Width: 61, Layout: "NHWC", ChannelOrder: "BGR"},
	}
	for _, tt := range imgs {
		t.Run(tt.name, func(t *testing.T) {
			for _, spec := range specs {
				got := Preprocess(tt.img, spec, nil)
				want := Preprocess(atOnlyImage{tt.img}, spec, nil)
				if !slices.Equal(got, want) {
					t.Fatalf("spec %+v: direct and At paths differ", spec)
				}
			}
		})
	}
}

func TestPreprocessAlphaIgnored(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.Pix = []uint8{200, 100, 50, 0} // fully transparent, colour kept
	decoded, err := DecodeImage(pngOf(t, img), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := Preprocess(decoded, ImageSpec{Scale: 1}, nil)
	if want := []float32{200, 100, 50}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPreprocessReusesDst(t *testing.T) {
	img := fourColorImage()
	spec := ImageSpec{Height: 4, Width: 4}
	buf := make([]float32, 2*48)
	first := Preprocess(img, spec, buf[0:48])
	second := Preprocess(img, spec, buf[48:48:96])
	if &first[0] != &buf[0] || &second[0] != &buf[48] {
		t.Error("Preprocess did not write into dst")
	}
	if !slices.Equal(buf[:48], buf[48:]) {
		t.Error("the two images of the batch differ")
	}
	if got := Preprocess(img, spec, make([]float32, 0, 10)); len(got) != 48 {
		t.Errorf("small dst: got %d values, want 48", len(got))
	}
}

func TestDecodeImage(t *testing.T) {
	var jpg, gf bytes.Buffer
	src := image.NewRGBA(image.Rect(0, 0, 16, 8))
	for i := range src.Pix {
		src.Pix[i] = uint8(i)
	}
	if err := jpeg.Encode(&jpg, src, nil); err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&gf, src, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"JPEG", jpg.Bytes()},
		{"PNG", pngOf(t, src)},
		{"GIF", gf.Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := DecodeImage(tt.data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := img.Bounds().Size(), image.Pt(16, 8); got != want {
				t.Errorf("size: got %v, want %v", got, want)
			}
		})
	}
}

func TestDecodeImageErrors(t *testing.T) {
	png := pngOf(t, fourColorImage())
	tests := []struct {
		name      string
		data      []byte
		maxPixels int
		want      string
	}{
		{"empty", nil, 0, "empty"},
		{"text", []byte("hello, world"), 0, "not a JPEG, PNG or GIF image"},
		{"WebP", []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), 0, "WebP images are not supported"},
		{"BMP", []byte("BM\x00\x00\x00\x00"), 0, "BMP images are not supported"},
		{"SVG", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), 0, "not supported"},
		{"truncated PNG", png[:len(png)-20], 0, "cannot decode the PNG image"},
		{"broken PNG header", []byte("\x89PNG\r\n\x1a\nxx"), 0, "cannot read the PNG image header"},
		{"broken JPEG", []byte("\xff\xd8\xff\xe0garbage"), 0, "JPEG"},
		{"PNG over 40 megapixels", pngHeaderOnly(10000, 5000), 0, "10000x5000 pixels (50.0 megapixels); the limit is 40 megapixels"},
		{"GIF over 40 megapixels", gifHeaderOnly(10000, 5000), 0, "10000x5000"},
		{"PNG over a small limit", png, 3, "2x2 pixels"},
		{"PNG of zero width", pngHeaderOnly(0, 5), 0, "PNG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeImage(tt.data, tt.maxPixels)
			if got := abgate.ErrorCode(err); got != abgate.EINVALID {
				t.Fatalf("error code: got %q (%v), want %q", got, err, abgate.EINVALID)
			}
			if msg := abgate.ErrorMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
}

// TestDecodeImageLimitBeforeDecoding checks that an image over the limit
// is refused from its header, without allocating its pixels (200 MB here).
func TestDecodeImageLimitBeforeDecoding(t *testing.T) {
	data := pngHeaderOnly(10000, 5000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeImage(data, 0)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("got no error")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("allocated %d bytes to refuse the image, want under 1 MiB", got)
	}
}

func TestDecodeBase64Image(t *testing.T) {
	data := []byte{0xfb, 0xff, 0xbf, 0x00} // "+/+/AA==" in the standard alphabet
	std := base64.StdEncoding.EncodeToString(data)
	url := base64.URLEncoding.EncodeToString(data)
	if !strings.ContainsAny(std, "+/") || !strings.ContainsAny(url, "-_") {
		t.Fatalf("test data does not exercise both alphabets: %q %q", std, url)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"standard padded", std},
		{"standard unpadded", strings.TrimRight(std, "=")},
		{"URL-safe padded", url},
		{"URL-safe unpadded", strings.TrimRight(url, "=")},
		{"data URL", "data:image/png;base64," + std},
		{"data URL upper case", "DATA:image/jpeg;BASE64," + url},
		{"data URL with parameters", "data:image/png;name=x.png;base64," + std},
		{"surrounding space", "  " + std + "\n"},
		{"wrapped lines", std[:4] + "\r\n" + std[4:]},
		{"inner spaces", std[:4] + " " + std[4:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBase64Image(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("got %v, want %v", got, data)
			}
		})
	}
	errs := []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"empty data URL", "data:image/png;base64,", "empty"},
		{"data URL not base64", "data:image/svg+xml,<svg/>", "must be base64"},
		{"data URL without comma", "data:image/png;base64", `no ","`},
		{"bad characters", "ab*cd", "not valid base64"},
		{"both alphabets", "ab+-", "not valid base64"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBase64Image(tt.in)
			if got := abgate.ErrorCode(err); got != abgate.EINVALID {
				t.Fatalf("error code: got %q (%v), want %q", got, err, abgate.EINVALID)
			}
			if msg := abgate.ErrorMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
	t.Run("data URL image decodes", func(t *testing.T) {
		raw, err := DecodeBase64Image("data:image/png;base64," + base64.StdEncoding.EncodeToString(pngOf(t, fourColorImage())))
		if err != nil {
			t.Fatal(err)
		}
		img, err := DecodeImage(raw, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := Preprocess(img, ImageSpec{Scale: 1}, nil)[:4]; !slices.Equal(got, []float32{255, 0, 0, 51}) {
			t.Errorf("red plane: got %v", got)
		}
	})
}

func FuzzDecodeImage(f *testing.F) {
	small := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range small.Pix {
		small.Pix[i] = uint8(i * 17)
	}
	var jpg, gf bytes.Buffer
	_ = jpeg.Encode(&jpg, small, nil)
	_ = gif.Encode(&gf, small, nil)
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	f.Add(pngOf(f, small))
	f.Add(pngOf(f, fourColorImage()))
	f.Add(pngOf(f, gray))
	f.Add(jpg.Bytes())
	f.Add(gf.Bytes())
	f.Add(pngHeaderOnly(10000, 5000))
	f.Add(gifHeaderOnly(300, 300))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBP"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImage(data, 1<<16)
		if err != nil {
			if code := abgate.ErrorCode(err); code != abgate.EINVALID {
				t.Fatalf("error code %q (%v), want %q", code, err, abgate.EINVALID)
			}
			return
		}
		out := Preprocess(img, ImageSpec{Height: 5, Width: 4}, nil)
		if len(out) != 60 {
			t.Fatalf("got %d values, want 60", len(out))
		}
		for i, v := range out {
			if !(v >= -1e-6 && v <= 1+1e-6) {
				t.Fatalf("value %d is %v, want 0 to 1", i, v)
			}
		}
	})
}

// benchPhotoJPEG returns a 640x480 photo-like JPEG: gradients and noise.
func benchPhotoJPEG(b *testing.B) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := range 480 {
		for x := range 640 {
			i := img.PixOffset(x, y)
			img.Pix[i] = uint8(x * 255 / 640)
			img.Pix[i+1] = uint8(y * 255 / 480)
			img.Pix[i+2] = uint8(rng.IntN(256))
			img.Pix[i+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkPreprocess turns a 640x480 JPEG into a 224x224 NCHW tensor
// normalised with the ImageNet mean and std: the resize and normalisation
// alone (direct YCbCr reader and the generic At path) and with decoding.
func BenchmarkPreprocess(b *testing.B) {
	data := benchPhotoJPEG(b)
	img, err := DecodeImage(data, 0)
	if err != nil {
		b.Fatal(err)
	}
	spec := ImageSpec{Height: 224, Width: 224, Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}
	dst := make([]float32, 3*224*224)
	b.Run("YCbCr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dst = Preprocess(img, spec, dst)
		}
	})
	b.Run("NHWC", func(b *testing.B) {
		spec := spec
		spec.Layout = "NHWC"
		b.ReportAllocs()
		for b.Loop() {
			dst = Preprocess(img, spec, dst)
		}
	})
	b.Run("generic-At", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dst = Preprocess(atOnlyImage{img}, spec, dst)
		}
	})
	b.Run("decode+preprocess", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			img, err := DecodeImage(data, 0)
			if err != nil {
				b.Fatal(err)
			}
			dst = Preprocess(img, spec, dst)
		}
	})
}

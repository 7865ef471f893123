package inference

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"strings"

	"abgate"
)

// DefaultMaxImagePixels is the largest image, in pixels, that DecodeImage
// accepts when given no limit: 40 megapixels.
const DefaultMaxImagePixels = 40_000_000

// imageFormat is a supported image format: its name and decoders.
type imageFormat struct {
	name         string
	decodeConfig func(io.Reader) (image.Config, error)
	decode       func(io.Reader) (image.Image, error)
}

// sniffImage returns the format of data from its magic bytes, or the name
// of a known unsupported format (or "") and false.
func sniffImage(data []byte) (imageFormat, string, bool) {
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		return imageFormat{"JPEG", jpeg.DecodeConfig, jpeg.Decode}, "", true
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return imageFormat{"PNG", png.DecodeConfig, png.Decode}, "", true
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return imageFormat{"GIF", gif.DecodeConfig, gif.Decode}, "", true
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return imageFormat{}, "WebP", false
	case bytes.HasPrefix(data, []byte("BM")):
		return imageFormat{}, "BMP", false
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return imageFormat{}, "TIFF", false
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		switch string(data[8:12]) {
		case "avif", "avis":
			return imageFormat{}, "AVIF", false
		case "heic", "heix", "mif1", "msf1", "hevc":
			return imageFormat{}, "HEIC", false
		}
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte("<")):
		return imageFormat{}, "SVG or other XML/HTML", false
	}
	return imageFormat{}, "", false
}

// DecodeImage decodes a JPEG, PNG or GIF image (the first frame of a GIF).
// It reads the header first and rejects an image of more than maxPixels
// pixels before decoding it, so that a small file claiming a huge size
// allocates nothing; maxPixels <= 0 means DefaultMaxImagePixels. Empty
// data, any other format, an image over the limit and undecodable bytes
// are EINVALID errors.
func DecodeImage(data []byte, maxPixels int) (image.Image, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxImagePixels
	}
	if len(data) == 0 {
		return nil, abgate.Errorf(abgate.EINVALID, "the image is empty")
	}
	f, other, ok := sniffImage(data)
	if !ok {
		if other != "" {
			return nil, abgate.Errorf(abgate.EINVALID, "%s images are not supported; send a JPEG, PNG or GIF image", other)
		}
		return nil, abgate.Errorf(abgate.EINVALID, "the data is not a JPEG, PNG or GIF image")
	}
	cfg, err := f.decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, abgate.Errorf(abgate.EINVALID, "cannot read the %s image header: %v", f.name, err)
	}
	if err := checkImageSize(f.name, cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, err
	}
	img, err := f.decode(bytes.NewReader(data))
	if err != nil {
		return nil, abgate.Errorf(abgate.EINVALID, "cannot decode the %s image: %v", f.name, err)
	}
	b := img.Bounds()
	if err := checkImageSize(f.name, b.Dx(), b.Dy(), maxPixels); err != nil {
		return nil, err
	}
	return img, nil
}

func checkImageSize(format string, w, h, maxPixels int) error {
	if w <= 0 || h <= 0 {
		return abgate.Errorf(abgate.EINVALID, "the %s image is %dx%d: it has no pixels", format, w, h)
	}
	if int64(w)*int64(h) > int64(maxPixels) {
		return abgate.Errorf(abgate.EINVALID, "the %s image is %dx%d pixels (%.1f megapixels); the limit is %g megapixels",
			format, w, h, float64(w)*float64(h)/1e6, float64(maxPixels)/1e6)
	}
	return nil
}

// DecodeBase64Image returns the bytes of an image sent as base64 text:
// plain base64 or a data URL ("data:image/png;base64,..."), in the standard
// or the URL-safe alphabet, with or without padding, possibly wrapped in
// lines. Decode the result with DecodeImage. Empty input, a data URL that is
// not base64 and invalid base64 are EINVALID errors.
func DecodeBase64Image(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 5 && strings.EqualFold(s[:5], "data:") {
		meta, payload, ok := strings.Cut(s[5:], ",")
		if !ok {
			return nil, abgate.Errorf(abgate.EINVALID, `the image data URL has no "," before its data`)
		}
		if len(meta) < 7 || !strings.EqualFold(meta[len(meta)-7:], ";base64") {
			return nil, abgate.Errorf(abgate.EINVALID, `the image data URL must be base64, like "data:image/png;base64,..."`)
		}
		s = payload
	}
	s = strings.TrimRight(s, "= \t\r\n")
	if s == "" {
		return nil, abgate.Errorf(abgate.EINVALID, "the image is empty")
	}
	if strings.ContainsAny(s, " \t") {
		s = strings.NewReplacer(" ", "", "\t", "").Replace(s)
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	out, err := enc.DecodeString(s)
	if err != nil {
		return nil, abgate.Errorf(abgate.EINVALID, "the image is not valid base64: %v", err)
	}
	return out, nil
}

// ImageSpec says how Preprocess turns an image into a float tensor.
type ImageSpec struct {
	// Height and Width are the size the image is resized to; zero keeps
	// the image's own.
	Height, Width int

	// Mean and Std normalise each channel: (pixel/Scale - Mean[c]) /
	// Std[c]. They are indexed by the channels of the output, that is in
	// ChannelOrder. A zero Std value means 1.
	Mean, Std [3]float32

	// ChannelOrder is "RGB" (also for "") or "BGR".
	ChannelOrder string

	// Layout is "NCHW" (also for ""), planes of channels, or "NHWC",
	// interleaved channels. Either has no batch dimension.
	Layout string

	// Scale divides the pixel values, which are 0 to 255; zero means 255.
	Scale float32
}

// Shape returns the shape of one preprocessed image, [3, Height, Width] or
// [Height, Width, 3] by Layout; a zero Height or Width is -1 (the image's
// own size).
func (s ImageSpec) Shape() []int64 {
	h, w := int64(s.Height), int64(s.Width)
	if h <= 0 {
		h = -1
	}
	if w <= 0 {
		w = -1
	}
	if strings.EqualFold(s.Layout, "NHWC") {
		return []int64{h, w, 3}
	}
	return []int64{3, h, w}
}

// Preprocess resizes img to spec's Height x Width with bilinear
// interpolation, converts it to RGB or BGR floats, divides them by Scale,
// normalises them per channel and writes them in spec's Layout into dst,
// whose capacity is reused when large enough: it returns dst[:3*H*W]. So a
// batch can be filled in place with dst = buf[i*n : (i+1)*n].
//
// The resize samples pixel centres (OpenCV's INTER_LINEAR, PyTorch's
// align_corners=False) without antialiasing: each output pixel mixes the
// four nearest source pixels. That is fast; on large downscales the result
// is a little sharper than PIL's antialiased resize.
// Alpha is ignored (PIL's convert("RGB")): colours are taken unpremultiplied.
// 16-bit images are reduced to 8 bits. JPEG (*image.YCbCr, *image.Gray),
// *image.RGBA, *image.NRGBA and *image.Paletted (GIF) images are read
// directly; other types through At, which is slower.
func Preprocess(img image.Image, spec ImageSpec, dst []float32) []float32 {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	h, w := spec.Height, spec.Width
	if h <= 0 {
		h = max(sh, 1)
	}
	if w <= 0 {
		w = max(sw, 1)
	}
	n := 3 * h * w
	if cap(dst) >= n {
		dst = dst[:n]
	} else {
		dst = make([]float32, n)
	}

	scale := spec.Scale
	if scale == 0 {
		scale = 255
	}
	var mul, add [3]float32
	var src [3]int // source channel (0 R, 1 G, 2 B) of each output channel
	bgr := strings.EqualFold(spec.ChannelOrder, "BGR")
	for c := range 3 {
		std := spec.Std[c]
		if std == 0 {
			std = 1
		}
		mul[c] = 1 / (scale * std)
		add[c] = -spec.Mean[c] / std
		src[c] = c
		if bgr {
			src[c] = 2 - c
		}
	}
	nhwc := strings.EqualFold(spec.Layout, "NHWC")

	if sw <= 0 || sh <= 0 { // an empty image is black
		for i := range dst {
			c := i / (h * w)
			if nhwc {
				c = i % 3
			}
			dst[i] = add[c]
		}
		return dst
	}

	xs, cols := resizeColumns(sw, w)
	ys := resizeTaps(sh, h)
	load := rowLoader(img)
	rgb := make([]uint8, 3*len(cols))
	// Two horizontally resized source rows, planar: [R(w) G(w) B(w)].
	var rows [2][]float32
	rows[0] = make([]float32, 3*w)
	rows[1] = make([]float32, 3*w)
	idx := [2]int{-1, -1}
	row := func(y, keep int) []float32 {
		if idx[0] == y {
			return rows[0]
		}
		if idx[1] == y {
			return rows[1]
		}
		s := 0
		if idx[0] == keep {
			s = 1
		}
		load(y, cols, rgb)
		resizeRow(rgb, xs, rows[s])
		idx[s] = y
		return rows[s]
	}

	plane := h * w
	for y, t := range ys {
		r0 := row(t.i0, -1)
		r1 := r0
		if t.f != 0 {
			r1 = row(t.i1, t.i0)
		}
		for c := range 3 {
			a := r0[src[c]*w : src[c]*w+w]
			bb := r1[src[c]*w : src[c]*w+w]
			m, k, f := mul[c], add[c], t.f
			if nhwc {
				out := dst[y*w*3 : y*w*3+w*3]
				for x := range a {
					v := a[x] + (bb[x]-a[x])*f
					out[x*3+c] = v*m + k
				}
			} else {
				out := dst[c*plane+y*w : c*plane+y*w+w]
				for x := range out {
					v := a[x] + (bb[x]-a[x])*f
					out[x] = v*m + k
				}
			}
		}
	}
	return dst
}

// resizeTap is where one output pixel samples along an axis: between source
// pixels i0 and i1 = i0+1 (or i0 at the edge) at fraction f.
type resizeTap struct {
	i0, i1 int
	f      float32
}

// resizeTaps returns the taps of a bilinear resize from src to dst pixels
// with aligned pixel centres: output i samples (i+0.5)*src/dst - 0.5,
// clamped to the edge pixels.
func resizeTaps(src, dst int) []resizeTap {
	taps := make([]resizeTap, dst)
	scale := float64(src) / float64(dst)
	for i := range taps {
		s := (float64(i)+0.5)*scale - 0.5
		if s < 0 {
			s = 0
		}
		i0 := min(int(s), src-1)
		i1 := min(i0+1, src-1)
		f := float32(s - float64(i0))
		if i1 == i0 {
			f = 0
		}
		taps[i] = resizeTap{i0, i1, f}
	}
	return taps
}

// resizeColumns returns the horizontal taps of a resize from src to dst
// pixels and the source columns they read, in order; the taps index that
// list, so that a row loader converts only the pixels the resize uses.
func resizeColumns(src, dst int) ([]resizeTap, []int) {
	taps := resizeTaps(src, dst)
	pos := make([]int, src) // position of each used column in cols, +1
	for _, t := range taps {
		pos[t.i0] = 1
		if t.f != 0 {
			pos[t.i1] = 1
		}
	}
	cols := make([]int, 0, min(src, 2*dst))
	for x, used := range pos {
		if used != 0 {
			cols = append(cols, x)
			pos[x] = len(cols)
		}
	}
	for i, t := range taps {
		taps[i].i0 = pos[t.i0] - 1
		if t.f != 0 {
			taps[i].i1 = pos[t.i1] - 1
		} else {
			taps[i].i1 = taps[i].i0
		}
	}
	return taps, cols
}

// resizeRow resizes one interleaved RGB row into planar out (3 x len(xs)).
func resizeRow(rgb []uint8, xs []resizeTap, out []float32) {
	w := len(xs)
	outR, outG, outB := out[:w], out[w:2*w], out[2*w:3*w]
	for x, t := range xs {
		p := rgb[t.i0*3 : t.i0*3+3]
		q := rgb[t.i1*3 : t.i1*3+3]
		r0, g0, b0 := float32(p[0]), float32(p[1]), float32(p[2])
		outR[x] = r0 + (float32(q[0])-r0)*t.f
		outG[x] = g0 + (float32(q[1])-g0)*t.f
		outB[x] = b0 + (float32(q[2])-b0)*t.f
	}
}

// rowLoader returns a function that writes the pixels at columns cols
// (counted from the left of the bounds) of row y (counted from the top) of
// img as interleaved 8-bit RGB into rgb, 3 bytes a pixel.
func rowLoader(img image.Image) func(y int, cols []int, rgb []uint8) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.YCbCr:
		if b.Min.X >= 0 && b.Min.Y >= 0 {
			if hs, vs, ok := chromaShifts(m.SubsampleRatio); ok {
				return func(y int, cols []int, rgb []uint8) { loadYCbCrRow(m, hs, vs, y, cols, rgb) }
			}
		}
	case *image.RGBA:
		return func(y int, cols []int, rgb []uint8) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			pix := m.Pix[i : i+4*b.Dx()]
			rgb = rgb[:3*len(cols)]
			for k, x := range cols {
				p := pix[4*x : 4*x+4]
				r, g, bl, a := p[0], p[1], p[2], p[3]
				if a != 255 && a != 0 {
					r, g, bl = unpremultiply(r, a), unpremultiply(g, a), unpremultiply(bl, a)
				}
				o := rgb[3*k : 3*k+3]
				o[0], o[1], o[2] = r, g, bl
			}
		}
	case *image.NRGBA:
		return func(y int, cols []int, rgb []uint8) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			pix := m.Pix[i : i+4*b.Dx()]
			rgb = rgb[:3*len(cols)]
			for k, x := range cols {
				p := pix[4*x : 4*x+3]
				o := rgb[3*k : 3*k+3]
				o[0], o[1], o[2] = p[0], p[1], p[2]
			}
		}
	case *image.Gray:
		return func(y int, cols []int, rgb []uint8) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			pix := m.Pix[i : i+b.Dx()]
			rgb = rgb[:3*len(cols)]
			for k, x := range cols {
				v := pix[x]
				o := rgb[3*k : 3*k+3]
				o[0], o[1], o[2] = v, v, v
			}
		}
	case *image.Paletted:
		var table [256][3]uint8
		for i, c := range m.Palette {
			if i == 256 {
				break
			}
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			table[i] = [3]uint8{n.R, n.G, n.B}
		}
		return func(y int, cols []int, rgb []uint8) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			pix := m.Pix[i : i+b.Dx()]
			rgb = rgb[:3*len(cols)]
			for k, x := range cols {
				c := &table[pix[x]]
				o := rgb[3*k : 3*k+3]
				o[0], o[1], o[2] = c[0], c[1], c[2]
			}
		}
	}
	return func(y int, cols []int, rgb []uint8) {
		for k, x := range cols {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			rgb[3*k], rgb[3*k+1], rgb[3*k+2] = c.R, c.G, c.B
		}
	}
}

// unpremultiply returns the straight value of a colour channel v
// premultiplied by alpha a (0 < a < 255), as color.NRGBAModel does.
func unpremultiply(v, a uint8) uint8 {
	return uint8((uint32(v) * 0x101 * 0xffff / (uint32(a) * 0x101)) >> 8)
}

// chromaShifts returns the horizontal and vertical shifts from luma to
// chroma coordinates of a subsample ratio.
func chromaShifts(r image.YCbCrSubsampleRatio) (hs, vs uint, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// loadYCbCrRow converts the pixels at columns cols of row y of m to RGB
// exactly as color.YCbCrToRGB does; m's bounds must not be negative.
func loadYCbCrRow(m *image.YCbCr, hs, vs uint, y int, cols []int, rgb []uint8) {
	b := m.Rect
	ay := b.Min.Y + y
	yrow := m.Y[y*m.YStride : y*m.YStride+b.Dx()]
	ci := (ay>>vs - b.Min.Y>>vs) * m.CStride
	cw := (b.Max.X-1)>>hs - b.Min.X>>hs + 1
	cbrow := m.Cb[ci : ci+cw]
	crrow := m.Cr[ci : ci+cw]
	cx0 := b.Min.X >> hs
	rgb = rgb[:3*len(cols)]
	for k, x := range cols {
		c := (b.Min.X+x)>>hs - cx0
		yy1 := int32(yrow[x]) * 0x10101
		cb1 := int32(cbrow[c]) - 128
		cr1 := int32(crrow[c]) - 128

		r := yy1 + 91881*cr1
		if uint32(r)&0xff000000 == 0 {
			r >>= 16
		} else {
			r = ^(r >> 31)
		}
		g := yy1 - 22554*cb1 - 46802*cr1
		if uint32(g)&0xff000000 == 0 {
			g >>= 16
		} else {
			g = ^(g >> 31)
		}
		bl := yy1 + 116130*cb1
		if uint32(bl)&0xff000000 == 0 {
			bl >>= 16
		} else {
			bl = ^(bl >> 31)
		}
		o := rgb[3*k : 3*k+3]
		o[0], o[1], o[2] = uint8(r), uint8(g), uint8(bl)
	}
}

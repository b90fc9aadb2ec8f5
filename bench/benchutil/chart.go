package benchutil

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
)

// Series is one line of a chart: a value per x step, negative where there is none.
type Series struct {
	Name   string
	Color  color.RGBA
	Values []float64
	Thick  bool
}

// Marker is a labelled vertical line, such as the start of a phase.
type Marker struct {
	X     float64
	Label string
}

// Chart is a line chart with a logarithmic y axis, drawn with image/png only.
type Chart struct {
	Title          string
	XLabel, YLabel string
	XStep          float64 // x units per value index
	Series         []Series
	Markers        []Marker
	Width, Height  int
}

// Palette is a set of distinguishable colours for series.
var Palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff}, {0x00, 0x00, 0x00, 0xff}, {0x99, 0x66, 0x00, 0xff},
}

const (
	marginLeft   = 90
	marginRight  = 300 // the legend
	marginTop    = 50
	marginBottom = 60
	glyphScale   = 2
)

// WritePNG draws the chart.
func (c Chart) WritePNG(w io.Writer) error {
	if c.Width == 0 {
		c.Width = 1400
	}
	if c.Height == 0 {
		c.Height = 700
	}
	img := image.NewRGBA(image.Rect(0, 0, c.Width, c.Height))
	fill(img, img.Bounds(), color.RGBA{0xff, 0xff, 0xff, 0xff})
	plot := image.Rect(marginLeft, marginTop, c.Width-marginRight, c.Height-marginBottom)

	// The y range, in decades around the data.
	lo, hi := math.Inf(1), math.Inf(-1)
	n := 0
	for _, s := range c.Series {
		n = max(n, len(s.Values))
		for _, v := range s.Values {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	xmax := math.Max(1, float64(n)*c.XStep)
	px := func(x float64) int { return plot.Min.X + int(x/xmax*float64(plot.Dx())) }
	py := func(v float64) int {
		f := (math.Log10(v) - dlo) / (dhi - dlo)
		return plot.Max.Y - int(f*float64(plot.Dy()))
	}

	grid := color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	ink := color.RGBA{0x20, 0x20, 0x20, 0xff}
	for d := dlo; d <= dhi; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if d == dhi && m > 1 {
				break
			}
			y := py(v)
			line(img, plot.Min.X, y, plot.Max.X, y, grid, false)
			if m == 1 {
				label := trimFloat(v)
				text(img, plot.Min.X-8-textWidth(label), y-glyphScale*3, label, ink)
			}
		}
	}
	step := niceStep(xmax / 10)
	for x := 0.0; x <= xmax; x += step {
		line(img, px(x), plot.Min.Y, px(x), plot.Max.Y, grid, false)
		label := trimFloat(x)
		text(img, px(x)-textWidth(label)/2, plot.Max.Y+8, label, ink)
	}
	for i, m := range c.Markers {
		x := px(m.X)
		for y := plot.Min.Y; y < plot.Max.Y; y += 6 {
			line(img, x, y, x, min(y+3, plot.Max.Y), color.RGBA{0x60, 0x60, 0x60, 0xff}, false)
		}
		text(img, x+4, plot.Min.Y+4+(i%2)*18, m.Label, ink) // staggered, for phases close together
	}
	line(img, plot.Min.X, plot.Min.Y, plot.Min.X, plot.Max.Y, ink, false)
	line(img, plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y, ink, false)
	text(img, plot.Min.X, 16, c.Title, ink)
	text(img, plot.Min.X+plot.Dx()/2-textWidth(c.XLabel)/2, c.Height-24, c.XLabel, ink)
	text(img, 8, plot.Min.Y-24, c.YLabel, ink)

	for _, s := range c.Series {
		prevX, prevY, have := 0, 0, false
		for i, v := range s.Values {
			if v <= 0 {
				have = false
				continue
			}
			x, y := px((float64(i)+0.5)*c.XStep), py(v)
			if have {
				line(img, prevX, prevY, x, y, s.Color, s.Thick)
			} else {
				line(img, x, y, x, y, s.Color, s.Thick)
			}
			prevX, prevY, have = x, y, true
		}
	}

	// The legend.
	lx, ly := c.Width-marginRight+16, marginTop
	for _, s := range c.Series {
		fill(img, image.Rect(lx, ly+3, lx+24, ly+5+boolInt(s.Thick)*3), s.Color)
		text(img, lx+32, ly, s.Name, ink)
		ly += 22
	}
	return png.Encode(w, img)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws from (x0,y0) to (x1,y1) with Bresenham's algorithm, two pixels wide when thick.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, thick bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if thick {
			img.SetRGBA(x0+1, y0, c)
			img.SetRGBA(x0, y0+1, c)
			img.SetRGBA(x0+1, y0+1, c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

func textWidth(s string) int { return len(s) * 6 * glyphScale }

// text draws s in the 5x7 font at (x, y), the top left corner; lower case is drawn as upper
// case and unknown characters as blanks.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g := font5x7[r]
		for col := range 5 {
			for row := range 7 {
				if g[col]&(1<<row) != 0 {
					fill(img, image.Rect(x+col*glyphScale, y+row*glyphScale, x+(col+1)*glyphScale, y+(row+1)*glyphScale), c)
				}
			}
		}
		x += 6 * glyphScale
	}
}

// font5x7 is the classic 5x7 LCD font: five columns per glyph, bit 0 at the top.
var font5x7 = map[rune][5]byte{
	'0': {0x3E, 0x51, 0x49, 0x45, 0x3E}, '1': {0x00, 0x42, 0x7F, 0x40, 0x00}, '2': {0x42, 0x61, 0x51, 0x49, 0x46},
	'3': {0x21, 0x41, 0x45, 0x4B, 0x31}, '4': {0x18, 0x14, 0x12, 0x7F, 0x10}, '5': {0x27, 0x45, 0x45, 0x45, 0x39},
	'6': {0x3C, 0x4A, 0x49, 0x49, 0x30}, '7': {0x01, 0x71, 0x09, 0x05, 0x03}, '8': {0x36, 0x49, 0x49, 0x49, 0x36},
	'9': {0x06, 0x49, 0x49, 0x29, 0x1E},
	'A': {0x7E, 0x11, 0x11, 0x11, 0x7E}, 'B': {0x7F, 0x49, 0x49, 0x49, 0x36}, 'C': {0x3E, 0x41, 0x41, 0x41, 0x22},
	'D': {0x7F, 0x41, 0x41, 0x22, 0x1C}, 'E': {0x7F, 0x49, 0x49, 0x49, 0x41}, 'F': {0x7F, 0x09, 0x09, 0x09, 0x01},
	'G': {0x3E, 0x41, 0x49, 0x49, 0x7A}, 'H': {0x7F, 0x08, 0x08, 0x08, 0x7F}, 'I': {0x00, 0x41, 0x7F, 0x41, 0x00},
	'J': {0x20, 0x40, 0x41, 0x3F, 0x01}, 'K': {0x7F, 0x08, 0x14, 0x22, 0x41}, 'L': {0x7F, 0x40, 0x40, 0x40, 0x40},
	'M': {0x7F, 0x02, 0x0C, 0x02, 0x7F}, 'N': {0x7F, 0x04, 0x08, 0x10, 0x7F}, 'O': {0x3E, 0x41, 0x41, 0x41, 0x3E},
	'P': {0x7F, 0x09, 0x09, 0x09, 0x06}, 'Q': {0x3E, 0x41, 0x51, 0x21, 0x5E}, 'R': {0x7F, 0x09, 0x19, 0x29, 0x46},
	'S': {0x46, 0x49, 0x49, 0x49, 0x31}, 'T': {0x01, 0x01, 0x7F, 0x01, 0x01}, 'U': {0x3F, 0x40, 0x40, 0x40, 0x3F},
	'V': {0x1F, 0x20, 0x40, 0x20, 0x1F}, 'W': {0x3F, 0x40, 0x38, 0x40, 0x3F}, 'X': {0x63, 0x14, 0x08, 0x14, 0x63},
	'Y': {0x07, 0x08, 0x70, 0x08, 0x07}, 'Z': {0x61, 0x51, 0x49, 0x45, 0x43},
	' ': {}, '.': {0x00, 0x60, 0x60, 0x00, 0x00}, ',': {0x00, 0x50, 0x30, 0x00, 0x00}, '-': {0x08, 0x08, 0x08, 0x08, 0x08},
	'/': {0x20, 0x10, 0x08, 0x04, 0x02}, ':': {0x00, 0x36, 0x36, 0x00, 0x00}, '(': {0x00, 0x1C, 0x22, 0x41, 0x00},
	')': {0x00, 0x41, 0x22, 0x1C, 0x00}, '%': {0x23, 0x13, 0x08, 0x64, 0x62}, '_': {0x40, 0x40, 0x40, 0x40, 0x40},
	'=': {0x14, 0x14, 0x14, 0x14, 0x14}, '+': {0x08, 0x08, 0x3E, 0x08, 0x08},
}

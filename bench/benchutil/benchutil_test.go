package benchutil

import (
	"bytes"
	"image/png"
	"testing"
	"time"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestQuantile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, ms(float64(i)))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, ms(50)}, {0.95, ms(95)}, {0.99, ms(99)}, {1, ms(100)}, {0, ms(1)}} {
		if got := Quantile(s, c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if Quantile(nil, 0.5) != 0 {
		t.Error("empty input")
	}
}

func TestSummarizeWindowAndErrors(t *testing.T) {
	samples := []Sample{
		{At: 0, Latency: ms(1)}, {At: time.Second, Latency: ms(3)}, {At: time.Second, Latency: ms(2)},
		{At: time.Second, Latency: ms(500), Failed: true}, {At: 5 * time.Second, Latency: ms(9)},
	}
	s := Summarize(samples, time.Second, 5*time.Second)
	if s.N != 3 || s.Errors != 1 || s.P50 != ms(2) || s.P99 != ms(3) || s.Mean != ms(2.5) {
		t.Fatalf("%+v", s)
	}
}

func TestPerInterval(t *testing.T) {
	samples := []Sample{{At: 100 * time.Millisecond, Latency: ms(1)}, {At: 200 * time.Millisecond, Latency: ms(3)},
		{At: 2500 * time.Millisecond, Latency: ms(7)}, {At: 2600 * time.Millisecond, Latency: ms(70), Failed: true}}
	got := PerInterval(samples, time.Second, 3*time.Second, 0.95)
	want := []time.Duration{ms(3), -1, ms(7)}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
}

func TestLogValue(t *testing.T) {
	l := `time=2026-01-01T00:00:00Z level=INFO msg="portal listening" url=http://127.0.0.1:4242 version=dev`
	if v := LogValue(l, "url"); v != "http://127.0.0.1:4242" {
		t.Errorf("url = %q", v)
	}
	if v := LogValue(l, "msg"); v != "portal listening" {
		t.Errorf("msg = %q", v)
	}
	if v := LogValue(l, "nope"); v != "" {
		t.Errorf("nope = %q", v)
	}
}

func TestChartDrawsSeriesAndLegend(t *testing.T) {
	c := Chart{Title: "latency", XLabel: "seconds", YLabel: "ms", XStep: 1, Width: 600, Height: 300,
		Series: []Series{{Name: "list p95", Color: Palette[0], Values: []float64{1, 2, -1, 40, 30}, Thick: true},
			{Name: "healthz", Color: Palette[3], Values: []float64{0.2, 0.3, 0.25, 0.2, 0.2}}},
		Markers: []Marker{{X: 2, Label: "load"}}}
	var buf bytes.Buffer
	if err := c.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 600 || b.Dy() != 300 {
		t.Fatalf("size %v", b)
	}
	counts := map[[3]uint32]int{}
	for y := range 300 {
		for x := range 600 {
			r, g, b, _ := img.At(x, y).RGBA()
			counts[[3]uint32{r >> 8, g >> 8, b >> 8}]++
		}
	}
	for _, s := range c.Series {
		if counts[[3]uint32{uint32(s.Color.R), uint32(s.Color.G), uint32(s.Color.B)}] < 20 {
			t.Errorf("series %s is hardly drawn", s.Name)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0.7: 1, 13: 20, 30: 50, 51: 100, 240: 500} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}

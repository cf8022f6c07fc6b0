package main

import (
	"errors"
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// advantage is how many times better a ustack result is than the
// reference: value/ref when higher is better, ref/value when lower is
// (latency, memory), so above 1 always means ustack ahead.
func advantage(rs []Result, r Result, ref string) (float64, bool) {
	x, ok := ratio(rs, r, ref)
	if !ok || x == 0 {
		return 0, false
	}
	if !r.HigherIsBetter {
		x = 1 / x
	}
	return x, true
}

// drawChart draws grouped bars, one group per ustack row (workload and
// ustack variant): its advantage over gVisor and over the kernel. The
// file type follows the extension (.svg, .png, .pdf).
// errNoRatios: the run had no pair of systems to compare (-systems
// picked one), so there is nothing to chart.
var errNoRatios = errors.New("no ratios to draw (the run compared no systems); chart not written")

func drawChart(path string, rs []Result) error {
	var (
		names     []string
		vsG, vsK  plotter.Values
		haveK     bool
		maxHeight = 1.0
	)
	for _, r := range rs {
		g, okG := advantage(rs, r, "gvisor")
		k, okK := advantage(rs, r, "kernel")
		if !okG && !okK {
			continue
		}
		name := r.Workload
		if r.System != "ustack" {
			name += " (" + strings.TrimPrefix(r.System, "ustack/") + ")"
		}
		names = append(names, name)
		vsG = append(vsG, g)
		vsK = append(vsK, k)
		haveK = haveK || okK
		maxHeight = max(maxHeight, g, k)
	}
	if len(names) == 0 {
		return errNoRatios
	}
	p := plot.New()
	p.Title.Text = "ustack vs gVisor netstack and Linux, medians of one run"
	p.Title.Padding = vg.Points(8)
	p.Y.Label.Text = "ustack advantage, × (above 1: ustack better)"
	p.Y.Min = 0
	p.Y.Max = maxHeight * 1.1
	p.Add(plotter.NewGrid())
	w := vg.Points(12)
	bg, err := plotter.NewBarChart(vsG, w)
	if err != nil {
		return err
	}
	bg.Color = color.RGBA{R: 0x33, G: 0x66, B: 0xcc, A: 0xff}
	bg.LineStyle.Width = 0
	p.Add(bg)
	p.Legend.Add("vs gVisor", bg)
	if haveK {
		bg.Offset = -w / 2
		bk, err := plotter.NewBarChart(vsK, w)
		if err != nil {
			return err
		}
		bk.Color = color.RGBA{R: 0xdd, G: 0x77, B: 0x22, A: 0xff}
		bk.LineStyle.Width = 0
		bk.Offset = w / 2
		p.Add(bk)
		p.Legend.Add("vs kernel", bk)
		if err := addLabels(p, vsK, bk.Offset); err != nil {
			return err
		}
	}
	if err := addLabels(p, vsG, bg.Offset); err != nil {
		return err
	}
	even, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(names)) - 0.5, Y: 1}})
	if err != nil {
		return err
	}
	even.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(even)
	p.Legend.Top = true
	p.Legend.XOffs = -vg.Points(4)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = -1
	p.X.Tick.Label.YAlign = -0.5
	width := vg.Length(max(6, len(names))) * vg.Centimeter * 1.6
	return p.Save(width, 12*vg.Centimeter, path)
}

// addLabels writes each bar's value above it; off is the bars' offset
// from their group's centre. Zero values get none.
func addLabels(p *plot.Plot, vs plotter.Values, off vg.Length) error {
	var xys plotter.XYs
	var text []string
	for i, v := range vs {
		if v == 0 {
			continue
		}
		xys = append(xys, plotter.XY{X: float64(i), Y: v})
		text = append(text, fmt.Sprintf("%.2f", v))
	}
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: text})
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = -0.5
		l.TextStyle[i].YAlign = 0
		l.TextStyle[i].Font.Size = vg.Points(8)
	}
	l.Offset = vg.Point{X: off, Y: vg.Points(2)}
	p.Add(l)
	return nil
}

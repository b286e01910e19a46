package main

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Chart geometry of the report, in SVG user units.
const (
	chartWidth  = 900.0
	chartHeight = 248.0
	chartLeft   = 50.0 // room for the y axis labels
	chartTop    = 48.0 // room for the marker labels, staggered on four rows
	chartBottom = 30.0 // room for the x axis labels
)

// palette colours the instances of a chart, in name order.
var palette = []string{"#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#7f7f7f"}

// chart is one model's timeline in one scenario: requests per second by
// instance, failed requests per second, and the recovery's markers.
type chart struct {
	Title   string
	Lines   []chartLine
	Fails   []chartBar
	Markers []chartMarker
	YTicks  []chartTick
	XTicks  []chartTick
}

type chartLine struct {
	Name, Color, Points string
}

type chartBar struct{ X, Y, W, H float64 }

type chartMarker struct {
	X, LabelY   float64
	Kind, Label string
}

type chartTick struct {
	Pos   float64
	Label string
}

// plotArea is where the data goes inside the chart.
type plotArea struct {
	width, height float64
	seconds       float64
	maxRate       float64
}

func (a plotArea) x(sec float64) float64 { return chartLeft + a.width*sec/a.seconds }

func (a plotArea) y(rate float64) float64 { return chartTop + a.height*(1-rate/a.maxRate) }

// newChart lays out one model's series of a scenario.
func newChart(title string, s series, start time.Time, markers []marker) chart {
	per := s.Bucket.Seconds()
	area := plotArea{
		width: chartWidth - chartLeft - 10, height: chartHeight - chartTop - chartBottom,
		seconds: math.Max(per*float64(len(s.Failed)), per), maxRate: niceCeil(maxRate(s) / per),
	}
	c := chart{Title: title}
	names := make([]string, 0, len(s.Instances))
	for name := range s.Instances {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		c.Lines = append(c.Lines, chartLine{Name: name, Color: palette[i%len(palette)], Points: polyline(area, s.Instances[name], per)})
	}
	for i, n := range s.Failed {
		if n > 0 {
			top := area.y(float64(n) / per)
			c.Fails = append(c.Fails, chartBar{X: area.x(float64(i) * per), Y: top, W: area.x(per) - chartLeft, H: chartTop + area.height - top})
		}
	}
	for i, m := range markers {
		// Stages often land within milliseconds: stagger their labels.
		c.Markers = append(c.Markers, chartMarker{X: area.x(m.At.Sub(start).Seconds()), LabelY: 10 + 11*float64(i%4), Kind: m.Kind, Label: m.Kind})
	}
	c.XTicks, c.YTicks = xTicks(area), yTicks(area)
	return c
}

// polyline is an SVG points attribute for counts per bucket, as rates.
func polyline(a plotArea, counts []int, per float64) string {
	var b strings.Builder
	for i, n := range counts {
		fmt.Fprintf(&b, "%.1f,%.1f ", a.x((float64(i)+0.5)*per), a.y(float64(n)/per))
	}
	return strings.TrimSpace(b.String())
}

func maxRate(s series) float64 {
	top := 1
	for _, counts := range s.Instances {
		top = max(top, slices.Max(counts))
	}
	if len(s.Failed) > 0 {
		top = max(top, slices.Max(s.Failed))
	}
	return float64(top)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func xTicks(a plotArea) []chartTick {
	step := niceCeil(a.seconds / 10)
	var ticks []chartTick
	for s := 0.0; s <= a.seconds; s += step {
		ticks = append(ticks, chartTick{Pos: a.x(s), Label: fmt.Sprintf("%gs", s)})
	}
	return ticks
}

func yTicks(a plotArea) []chartTick {
	var ticks []chartTick
	for i := range 5 {
		r := a.maxRate * float64(i) / 4
		ticks = append(ticks, chartTick{Pos: a.y(r), Label: fmt.Sprintf("%g", r)})
	}
	return ticks
}

// reportScenario is one scenario's section of the report.
type reportScenario struct {
	drillResult
	Charts []chart
}

// writeReport writes the results as one self-contained HTML page: the
// table, then per scenario a timeline for each model that lost an
// instance.
func writeReport(w io.Writer, results []drillResult, generated time.Time) error {
	data := struct {
		Generated string
		Results   []drillResult
		Scenarios []reportScenario
	}{Generated: generated.UTC().Format(time.RFC3339), Results: results}
	for _, r := range results {
		sc := reportScenario{drillResult: r}
		for _, model := range r.Models {
			sc.Charts = append(sc.Charts, newChart(model, r.Timeline[model], r.Start, r.Markers))
		}
		data.Scenarios = append(data.Scenarios, sc)
	}
	return reportTemplate.Execute(w, data)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"measured": func(r drillResult, stage string) string {
		return map[string]string{
			markDetected: r.measured(r.DetectedAt, r.Bound.Detection),
			markSwitched: r.measured(r.SwitchedAt, r.Bound.Switch),
			markRestored: r.measured(r.RestoredAt, r.Bound.RTO),
		}[stage]
	},
	"clock": func(t time.Time) string { return t.Format("15:04:05.000") },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>inferxds drill</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
svg{background:#fafafa;border:1px solid #ddd}
.axis{font-size:11px;fill:#555}.grid{stroke:#e4e4e4}
.fault{stroke:#d62728}.detected{stroke:#ff7f0e}.drained,.switched{stroke:#2ca02c}.promoted{stroke:#9467bd}.restored{stroke:#1f77b4}
.legend span{display:inline-block;margin-right:1em}
</style></head><body>
<h1>inferxds drill</h1>
<p>Run at {{.Generated}}. Each measurement is from the injected fault; the seed design's bound is in brackets.</p>
<table><tr><th>failure</th><th>detection</th><th>switch</th><th>total RTO</th><th>failed requests</th><th>data lost</th><th>goal</th></tr>
{{range .Results}}<tr><td>{{.Scenario}}</td><td>{{measured . "detected"}}</td><td>{{measured . "switched"}}</td><td>{{measured . "restored"}}</td><td>{{.FailedRequests}} of {{.Requests}}</td><td>{{.DataLost}}</td><td>{{.Goal}}</td></tr>
{{end}}</table>
{{range .Scenarios}}
<h2>{{.Scenario}}</h2>
<p>Failed: {{range $i, $f := .Failed}}{{if $i}}, {{end}}{{$f}}{{end}}.
Markers: {{range .Markers}}{{.Kind}} {{clock .At}}{{if .Label}} ({{.Label}}){{end}}; {{end}}</p>
{{range .Notes}}<p>{{.}}</p>{{end}}
{{range .Charts}}
<h3>{{.Title}}: requests/s by instance</h3>
<p class="legend">{{range .Lines}}<span style="color:{{.Color}}">■ {{.Name}}</span>{{end}}<span style="color:#d62728">■ failed</span></p>
<svg xmlns="http://www.w3.org/2000/svg" width="900" height="248" viewBox="0 0 900 248">
{{range .YTicks}}<line class="grid" x1="50" x2="890" y1="{{.Pos}}" y2="{{.Pos}}"/><text class="axis" x="45" y="{{.Pos}}" text-anchor="end">{{.Label}}</text>
{{end}}{{range .XTicks}}<text class="axis" x="{{.Pos}}" y="238" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .Fails}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="#d62728" opacity="0.6"/>
{{end}}{{range .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="1.5" points="{{.Points}}"/>
{{end}}{{range .Markers}}<line class="{{.Kind}}" x1="{{.X}}" x2="{{.X}}" y1="{{.LabelY}}" y2="218" stroke-dasharray="4 3"/><text class="axis" x="{{.X}}" y="{{.LabelY}}" text-anchor="start">{{.Label}}</text>
{{end}}</svg>
{{end}}{{end}}
</body></html>
`))

package main

import (
	"bytes"
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestWriteReportIsOneSelfContainedPage(t *testing.T) {
	var out bytes.Buffer
	if err := writeReport(&out, []drillResult{crashResult()}, t0); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	for _, want := range []string{"<h2>process-crash</h2>", "<h3>m: requests/s by instance</h3>", "<svg", "<polyline", "1 of 7", "RPO lag 1.5s"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if refs := regexp.MustCompile(`(?i)(src|href)=|<link|@import|url\(`).FindAllString(page, -1); len(refs) > 0 {
		t.Errorf("report loads external assets: %v", refs)
	}
	if n := strings.Count(page, "<polyline"); n != 2 {
		t.Errorf("%d lines, want one per instance (a, b)", n)
	}
	for _, kind := range []string{markFault, markDetected, markSwitched, markRestored} {
		if !strings.Contains(page, `<line class="`+kind+`"`) {
			t.Errorf("no %s marker on the timeline", kind)
		}
	}
	if strings.Contains(page, "ZgotmplZ") {
		t.Error("a value was rejected by the template's escaper")
	}
	if !strings.Contains(page, `fill="#d62728"`) {
		t.Error("the failed request is not drawn")
	}
}

func TestChartPlacesMarkersOnTheTimeAxis(t *testing.T) {
	r := crashResult()
	c := newChart("m", r.Timeline["m"], r.Start, r.Markers)
	fault, restored := c.Markers[0].X, c.Markers[3].X
	// 4 s of timeline over the plot's width: the fault at 1 s sits a
	// quarter of the way, the restore at 3.5 s seven eighths.
	width := chartWidth - chartLeft - 10
	seconds := 4.1 // 41 buckets of 100 ms
	for _, m := range []struct {
		name string
		got  float64
		sec  float64
	}{{"fault", fault, 1}, {"restored", restored, 3.5}} {
		if want := chartLeft + width*m.sec/seconds; math.Abs(m.got-want) > 0.01 {
			t.Errorf("%s marker at x=%.2f, want %.2f", m.name, m.got, want)
		}
	}
	if len(c.Fails) != 1 {
		t.Errorf("%d failure bars, want 1", len(c.Fails))
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.7: 1, 3: 5, 12: 20, 250: 500, 1000: 1000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%g) = %g, want %g", in, got, want)
		}
	}
}

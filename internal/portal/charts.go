package portal

import (
	"context"
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/identity"
)

// analyticsData is an app's analytics, bucketed for charts.
type analyticsData struct {
	App    *identity.App
	Base   string // the page's path, for the range links
	Range  string
	Ranges any
	Totals gateway.Stats
	Routes []gateway.RouteStats
	Bars   []bar
	Calls  template.HTML
	Errors template.HTML
	Lat    template.HTML
	Empty  bool
}

type bar struct {
	Start         time.Time
	Calls, Errors int64
}

// analytics reads an app's analytics for one of the ranges and draws them.
func (p *Portal) analytics(ctx context.Context, appID, key string) (*analyticsData, error) {
	rg := ranges[0]
	for _, x := range ranges {
		if x.Key == key {
			rg = x
		}
	}
	now := time.Now().UTC()
	end := now.Truncate(rg.Bar).Add(rg.Bar)
	start := end.Add(-rg.Span)
	a, err := p.d.Gateway.Analytics(ctx, appID, start, now)
	if err != nil {
		return nil, err
	}
	n := int(rg.Span / rg.Bar)
	bars := make([]bar, n)
	for i := range bars {
		bars[i].Start = start.Add(time.Duration(i) * rg.Bar)
	}
	for _, m := range a.Series {
		i := int(m.Minute.Sub(start) / rg.Bar)
		if i >= 0 && i < n {
			bars[i].Calls += m.Calls
			bars[i].Errors += m.Errors
		}
	}
	layout := "15:04"
	if rg.Bar >= time.Hour {
		layout = "Jan 2 15:04"
	}
	labels := make([]string, n)
	calls := make([]float64, n)
	errs := make([]float64, n)
	for i, b := range bars {
		labels[i] = b.Start.Format(layout)
		calls[i], errs[i] = float64(b.Calls), float64(b.Errors)
	}
	d := &analyticsData{Range: rg.Key, Ranges: ranges, Totals: a.Totals, Routes: a.Routes, Bars: bars, Empty: a.Totals.Calls == 0}
	d.Calls = barChart("API calls per "+durationWord(rg.Bar), labels, calls, "calls", "c-calls")
	d.Errors = barChart("Errors (4xx and 5xx) per "+durationWord(rg.Bar), labels, errs, "errors", "c-errors")
	var names []string
	var series [3][]float64
	for _, rs := range a.Routes {
		if rs.Timed() == 0 {
			continue // only event streams: no latency to draw
		}
		names = append(names, rs.Route)
		series[0] = append(series[0], rs.P50)
		series[1] = append(series[1], rs.P95)
		series[2] = append(series[2], rs.P99)
	}
	d.Lat = latencyChart("Latency by route (milliseconds)", names, series)
	return d, nil
}

func durationWord(d time.Duration) string {
	switch d {
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	}
	return fmt.Sprintf("%.0f hours", d.Hours())
}

var chartSeq atomic.Int64

// barChart draws one series as an inline SVG bar chart: an image with a
// title for screen readers and a tooltip on every bar. The numbers are
// also in a table next to it on the page.
func barChart(title string, labels []string, values []float64, unit, class string) template.HTML {
	// About the size it is shown at, so its text is the page's size.
	const w, h, left, bottom, top = 480.0, 180.0, 40.0, 24.0, 12.0
	id := fmt.Sprintf("chart%d", chartSeq.Add(1))
	maxV := 0.0
	for _, v := range values {
		maxV = math.Max(maxV, v)
	}
	// Counts: at least 0, 1, 2 on the axis, never half a call.
	scale := max(niceMax(maxV), 2)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart %s" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s">`, class, w, h, id)
	fmt.Fprintf(&b, `<title id="%s">%s</title>`, id, html.EscapeString(title))
	plotH := h - bottom - top
	// Grid lines at 0, half and the top of the scale.
	for _, f := range []float64{0, 0.5, 1} {
		y := top + plotH*(1-f)
		fmt.Fprintf(&b, `<line class="grid" x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f"/>`, left, w, y, y)
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.1f" text-anchor="end">%s</text>`, left-6, y+4, trimNum(scale*f))
	}
	if n := len(values); n > 0 {
		slot := (w - left) / float64(n)
		gap := math.Min(2, slot*0.2)
		for i, v := range values {
			bh := 0.0
			if scale > 0 {
				bh = plotH * v / scale
			}
			x := left + float64(i)*slot + gap/2
			fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s %s</title></rect>`,
				x, top+plotH-bh, slot-gap, math.Max(bh, 0), html.EscapeString(labels[i]), trimNum(v), unit)
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.0f">%s</text>`, left, h-6, html.EscapeString(labels[0]))
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.0f" text-anchor="end">%s</text>`, w, h-6, html.EscapeString(labels[n-1]))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// latencyChart draws p50, p95 and p99 per route as grouped horizontal bars.
func latencyChart(title string, routes []string, series [3][]float64) template.HTML {
	return hbarChart(title, routes, series[:], []string{"p50", "p95", "p99"}, "ms")
}

// hbarChart draws one group of horizontal bars per label, one bar per
// series, with a legend when there are several series and the largest
// value of each group written after it. Every bar has a tooltip, and the
// pages show the same numbers in a table.
func hbarChart(title string, labels []string, series [][]float64, names []string, unit string) template.HTML {
	if len(labels) == 0 {
		return ""
	}
	const w, left, right, top = 960.0, 300.0, 110.0, 24.0
	barH := 8.0
	if len(series) == 1 {
		barH = 16
	}
	rowH := barH*float64(len(series)) + 10
	h := top + rowH*float64(len(labels)) + 8
	id := fmt.Sprintf("chart%d", chartSeq.Add(1))
	maxV := 0.0
	for _, s := range series {
		for _, v := range s {
			maxV = math.Max(maxV, v)
		}
	}
	scale := niceMax(maxV)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart c-hbar" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s">`, w, h, id)
	fmt.Fprintf(&b, `<title id="%s">%s</title>`, id, html.EscapeString(title))
	if len(series) > 1 {
		for k, name := range names {
			fmt.Fprintf(&b, `<rect class="bar s%d" x="%.0f" y="4" width="10" height="10"/><text class="axis" x="%.0f" y="13">%s</text>`,
				k, left+float64(k)*90, left+float64(k)*90+14, html.EscapeString(name))
		}
	}
	plotW := w - left - right
	for i, label := range labels {
		y := top + float64(i)*rowH
		short := label
		if len(short) > 44 {
			short = short[:43] + "…"
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%.1f" text-anchor="end"><title>%s</title>%s</text>`,
			left-8, y+rowH/2+2, html.EscapeString(label), html.EscapeString(short))
		most := 0.0
		for k, s := range series {
			v := s[i]
			most = math.Max(most, v)
			by := y + 3 + float64(k)*(barH+1)
			fmt.Fprintf(&b, `<rect class="bar s%d" x="%.0f" y="%.1f" width="%.1f" height="%.0f"><title>%s %s: %s %s</title></rect>`,
				k, left, by, math.Max(plotW*v/scale, 1), barH, html.EscapeString(label), html.EscapeString(names[k]), trimNum(v), units(v, unit))
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.1f">%s %s</text>`, left+plotW*most/scale+6, y+rowH/2+2, trimNum(most), units(most, unit))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// units is unit for v: "events", but "event" for one.
func units(v float64, unit string) string {
	if v == 1 {
		return strings.TrimSuffix(unit, "s")
	}
	return unit
}

// niceMax rounds a chart's maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
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

func trimNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

package portal

import (
	"math"
	"regexp"
	"strconv"
	"testing"
)

// TestEveryPageHasADescription: each page template has its own meta
// description, and no description is left without a page.
func TestEveryPageHasADescription(t *testing.T) {
	t.Parallel()
	pages := parsePages()
	for name := range pages {
		if descriptions[name] == "" {
			t.Errorf("page %s has no description", name)
		}
	}
	for name := range descriptions {
		if pages[name] == nil {
			t.Errorf("description for %s, which is no page", name)
		}
	}
}

// TestFocusRingsAndFieldBordersContrast: the focus ring and the border of
// form fields reach 3:1 (WCAG 2.2, 1.4.11 and 2.4.13) against every
// background they are drawn on, as portal.css declares its colours.
func TestFocusRingsAndFieldBordersContrast(t *testing.T) {
	t.Parallel()
	css, err := staticFiles.ReadFile("static/portal.css")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(--[a-z-]+):\s*(#[0-9a-fA-F]{6})`).FindAllSubmatch(css, -1) {
		if _, seen := vars[string(m[1])]; !seen { // :root comes first
			vars[string(m[1])] = string(m[2])
		}
	}
	console := regexp.MustCompile(`body\.console \{[^}]*--top: (#[0-9a-fA-F]{6})`).FindSubmatch(css)
	if console == nil {
		t.Fatal("no console header colour in portal.css")
	}
	light := map[string]string{"page": vars["--bg"], "card": vars["--card"], "error": vars["--bad-bg"], "notice": vars["--ok-bg"],
		"secret panel": "#fffbea", "code": "#eef1f6", "table head": "#f0f2f7"}
	dark := map[string]string{"header": vars["--top"], "console header": string(console[1])}
	check := func(what, fg string, bgs map[string]string) {
		for name, bg := range bgs {
			c := contrast(t, fg, bg)
			t.Logf("%s %s on %s %s: %.2f:1", what, fg, name, bg, c)
			if c < 3 {
				t.Errorf("%s %s on the %s (%s) is %.2f:1, below 3:1", what, fg, name, bg, c)
			}
		}
	}
	check("focus ring", vars["--focus"], light)
	check("focus ring in the header", vars["--focus-on-dark"], dark)
	check("field border", vars["--field-border"], map[string]string{"field": "#ffffff", "page": vars["--bg"], "card": vars["--card"]})
}

// contrast is the WCAG contrast ratio of two #rrggbb colours.
func contrast(t *testing.T, a, b string) float64 {
	t.Helper()
	la, lb := luminance(t, a), luminance(t, b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	if len(hex) != 7 {
		t.Fatalf("colour %q", hex)
	}
	var rgb [3]float64
	for i := range rgb {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			t.Fatalf("colour %q: %v", hex, err)
		}
		c := float64(v) / 255
		if c <= 0.04045 {
			rgb[i] = c / 12.92
		} else {
			rgb[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]
}

func TestUnhashed(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"portal.0123456789.css": "portal.css",
		"portal.css":            "portal.css",
		"favicon.ico":           "favicon.ico",
		"a.b.ffff.js":           "a.b.js",
		"portal.XYZ.css":        "portal.XYZ.css",
	} {
		if got := unhashed(in); got != want {
			t.Errorf("unhashed(%q) = %q, want %q", in, got, want)
		}
	}
}

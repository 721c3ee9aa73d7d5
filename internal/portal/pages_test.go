package portal_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

var assetLink = regexp.MustCompile(`(?:href|src)="(/static/([a-z]+)\.([0-9a-f]{10})\.([a-z]+))"`)

// testStaticFilesAreHashedAndCachedForAYear: pages link the stylesheet,
// the script and the icon under content-hashed names, served with a
// year's immutable caching; plain or stale names redirect to the current
// file, unknown ones are 404, and /favicon.ico is an icon.
func testStaticFilesAreHashedAndCachedForAYear(t *testing.T, n *platformtest.Node) {
	_, page := testkit.Fetch(t, n.URL+"/", nil)
	links := assetLink.FindAllStringSubmatch(string(page), -1)
	kinds := map[string]string{}
	for _, l := range links {
		kinds[l[2]+"."+l[4]] = l[1]
	}
	for _, want := range []string{"portal.css", "portal.js", "favicon.svg"} {
		if kinds[want] == "" {
			t.Fatalf("the landing page links no hashed %s: %q", want, links)
		}
	}
	for name, path := range kinds {
		res, body := testkit.Fetch(t, n.URL+path, nil)
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || len(body) == 0 {
			t.Errorf("GET %s: %d, Cache-Control %q", path, res.StatusCode, res.Header.Get("Cache-Control"))
		}
		wantType := map[string]string{"portal.css": "text/css", "portal.js": "text/javascript", "favicon.svg": "image/svg+xml"}[name]
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
			t.Errorf("GET %s: Content-Type %q, want %s", path, ct, wantType)
		}
		// The old name and a stale hash lead to the current file.
		stem, ext, _ := strings.Cut(name, ".")
		for _, old := range []string{"/static/" + name, "/static/" + stem + ".0123456789." + ext} {
			res, _ := testkit.Fetch(t, n.URL+old, nil)
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != path || strings.Contains(res.Header.Get("Cache-Control"), "max-age") {
				t.Errorf("GET %s: %d to %q (Cache-Control %q), want 302 to %s", old, res.StatusCode, res.Header.Get("Location"), res.Header.Get("Cache-Control"), path)
			}
		}
	}
	if res, _ := testkit.Fetch(t, n.URL+"/static/nothing.css", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /static/nothing.css answered %d", res.StatusCode)
	}
	res, icon := testkit.Fetch(t, n.URL+"/favicon.ico", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/x-icon" || !bytes.HasPrefix(icon, []byte{0, 0, 1, 0}) {
		t.Errorf("GET /favicon.ico: %d %q % x", res.StatusCode, res.Header.Get("Content-Type"), icon[:min(len(icon), 4)])
	}

	// Pages and the stylesheet travel gzipped, and decode to the bytes
	// sent to a client that does not ask for it.
	for _, path := range []string{"/", "/reference", kinds["portal.css"]} {
		_, plain := testkit.Fetch(t, n.URL+path, nil)
		res, body := testkit.Fetch(t, n.URL+path, map[string]string{"Accept-Encoding": "gzip"})
		if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("GET %s with gzip: %v", path, res.Header)
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("GET %s: %d gzipped bytes decode to %d bytes (%v), plain is %d", path, len(body), len(got), err, len(plain))
		}
	}
}

var (
	titleTag = regexp.MustCompile(`<title>([^<]*)</title>`)
	metaDesc = regexp.MustCompile(`<meta name="description" content="([^"]+)">`)
)

// testPagesHaveTheirOwnTitlesAndDescriptions: no page is "Causeway ·
// Causeway"; each names itself once, and has a description of its own.
func testPagesHaveTheirOwnTitlesAndDescriptions(t *testing.T, n *platformtest.Node) {
	seen := map[string]string{}
	for path, want := range map[string]string{
		"/":              "Causeway developer portal",
		"/login":         "Log in · Causeway",
		"/signup":        "Sign up · Causeway",
		"/reference":     "API reference · Causeway",
		"/console/login": "Log in · Causeway bank console",
		"/no-such-page":  "Not Found · Causeway",
	} {
		_, body := testkit.Fetch(t, n.URL+path, map[string]string{"Accept": "text/html"})
		title, desc := titleTag.FindSubmatch(body), metaDesc.FindSubmatch(body)
		if title == nil || string(title[1]) != want {
			t.Errorf("GET %s: title %q, want %q", path, title, want)
		}
		if desc == nil {
			t.Errorf("GET %s has no meta description", path)
			continue
		}
		if other, dup := seen[string(desc[1])]; dup {
			t.Errorf("%s and %s share their description", path, other)
		}
		seen[string(desc[1])] = path
	}
}

// testFailedFormsMarkTheirFieldsAndTakeTheFocus: a form the server
// refuses comes back with the fields it is about marked aria-invalid and
// described by the error summary, which takes the focus; a taken email
// offers a link to log in instead.
func testFailedFormsMarkTheirFieldsAndTakeTheFocus(t *testing.T, n *platformtest.Node) {
	c := formClient(t)
	_, csrf := page(t, c, n.URL+"/signup")
	body := postPage(t, c, n.URL+"/signup", url.Values{"csrf": {csrf}, "email": {"short@example.com"}, "organization": {"Short"}, "password": {"aaaaaaaaaaaa"}}, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `<div class="error" role="alert" id="form-error" tabindex="-1" autofocus>`) {
		t.Errorf("the error summary is not focusable and focused:\n%s", body)
	}
	if tag := inputTag(t, body, "password"); !strings.Contains(tag, `aria-invalid="true"`) || !strings.Contains(tag, `aria-describedby="form-error password-hint"`) {
		t.Errorf("password field after a weak password: %s", tag)
	}
	if tag := inputTag(t, body, "email"); strings.Contains(tag, "aria-invalid") {
		t.Errorf("the email field is marked though it is fine: %s", tag)
	}

	// An email that has an account: a link to log in with it.
	post(t, c, n.URL+"/signup", url.Values{"csrf": {csrf}, "email": {"taken@example.com"}, "organization": {"T"}, "password": {"a long enough password"}})
	other := formClient(t)
	_, csrf = page(t, other, n.URL+"/signup")
	body = postPage(t, other, n.URL+"/signup", url.Values{"csrf": {csrf}, "email": {"taken@example.com"}, "organization": {"T"}, "password": {"a long enough password"}}, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `<a href="/login?email=taken%40example.com">Log in instead</a>`) {
		t.Errorf("no link to log in instead:\n%s", body)
	}
	if tag := inputTag(t, body, "email"); !strings.Contains(tag, `aria-invalid="true"`) || !strings.Contains(tag, `aria-describedby="form-error"`) {
		t.Errorf("email field after a taken email: %s", tag)
	}
	login, _ := page(t, other, n.URL+"/login?email=taken%40example.com")
	if tag := inputTag(t, login, "email"); !strings.Contains(tag, `value="taken@example.com"`) {
		t.Errorf("the login page does not carry the email over: %s", tag)
	}

	// Wrong credentials mark both fields.
	_, csrf = page(t, other, n.URL+"/login")
	body = postPage(t, other, n.URL+"/login", url.Values{"csrf": {csrf}, "email": {"taken@example.com"}, "password": {"not the password"}}, http.StatusUnauthorized)
	for _, name := range []string{"email", "password"} {
		if tag := inputTag(t, body, name); !strings.Contains(tag, `aria-invalid="true"`) {
			t.Errorf("%s field after wrong credentials: %s", name, tag)
		}
	}

	// In a browser the focus is on the error summary.
	ctx := tab(t, time.Minute)
	navigate(t, ctx, n.URL+"/signup")
	do(t, ctx, "filling in a weak password",
		chromedp.SendKeys(chromedp.ID("email"), "weak@example.com"),
		chromedp.SendKeys(chromedp.ID("organization"), "Weak"),
		chromedp.SendKeys(chromedp.ID("password"), "bbbbbbbbbbbb"))
	if st := submit(t, ctx, `main button[type="submit"]`); st != http.StatusUnprocessableEntity {
		t.Fatalf("a weak password answered %d", st)
	}
	waitFor(t, ctx, "the focus on the error summary", `document.activeElement && document.activeElement.id === "form-error"`, 10*time.Second)
}

// postPage posts a form and returns the page it answers with, which must
// have the given status.
func postPage(t *testing.T, c *http.Client, url string, form url.Values, status int) string {
	t.Helper()
	res, err := c.PostForm(url, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("POST %s answered %d, want %d:\n%s", url, res.StatusCode, status, b)
	}
	return string(b)
}

// inputTag is the <input> (or <textarea>, <select>) tag with the given
// id on a page.
func inputTag(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<(?:input|textarea|select) id="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindString(page)
	if m == "" {
		t.Fatalf("no field %s on the page", id)
	}
	return m
}

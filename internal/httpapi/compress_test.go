package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/testkit"
)

// compressServer serves a few answers through the platform's Server (so
// through Compress, as every node does) on loopback.
func compressServer(t *testing.T) (*httptest.Server, chan struct{}) {
	t.Helper()
	s := httpapi.New(httpapi.Config{Version: "test", Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	page := []byte("<!doctype html><title>x</title>" + strings.Repeat("<p>Build on the bank.</p>\n", 400))
	s.Handle("GET /page", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page[:100]) // in pieces, the first shorter than the minimum
		w.Write(page[100:])
	}))
	s.Handle("GET /small", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	s.Handle("GET /sized", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.Header().Set("ETag", `"v1"`)
		w.Write(page)
	}))
	blob := bytes.Repeat([]byte("age-encrypted-bytes "), 500)
	s.Handle("GET /blob", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/age")
		w.Header().Set("ETag", `"blob"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(blob))
	}))
	release := make(chan struct{})
	s.Handle("GET /stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		io.WriteString(w, "id: 1\ndata: first\n\n")
		http.NewResponseController(w).Flush()
		select { // the client must see the first frame while the stream is open
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "id: 2\ndata: last\n\n")
	}))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, release
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func TestTextAnswersAreGzippedAndDecodeToTheSameBytes(t *testing.T) {
	srv, _ := compressServer(t)
	_, plain := testkit.Fetch(t, srv.URL+"/page", nil)
	res, body := testkit.Fetch(t, srv.URL+"/page", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers = %v", res.Header)
	}
	if got := gunzip(t, body); !bytes.Equal(got, plain) || len(body) >= len(plain)/4 {
		t.Errorf("gzipped %d bytes decode to %d bytes (plain %d), equal=%v", len(body), len(got), len(plain), bytes.Equal(got, plain))
	}

	// A handler's Content-Length is of the plain body: it goes (net/http
	// may count the compressed one), and a strong ETag turns weak, since
	// the bytes sent differ.
	res, body = testkit.Fetch(t, srv.URL+"/sized", map[string]string{"Accept-Encoding": "gzip"})
	if res.Header.Get("Content-Encoding") != "gzip" || (res.ContentLength != -1 && res.ContentLength != int64(len(body))) || res.Header.Get("ETag") != `W/"v1"` {
		t.Errorf("sized answer headers = %v (length %d)", res.Header, res.ContentLength)
	}
	if got := gunzip(t, body); !bytes.Equal(got, plain) {
		t.Error("the sized answer decodes to other bytes")
	}

	// The OpenAPI document, a JSON answer of the API itself.
	res, body = testkit.Fetch(t, srv.URL+"/openapi.json", map[string]string{"Accept-Encoding": "gzip"})
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || !bytes.HasPrefix(gunzip(t, body), []byte("{")) {
		t.Errorf("openapi.json: %d %v", res.StatusCode, res.Header)
	}
}

func TestAnswersStayPlainWhenCompressionWouldNotHelpOrIsNotAsked(t *testing.T) {
	srv, _ := compressServer(t)
	for _, tc := range []struct {
		name, path string
		header     map[string]string
		vary       bool
	}{
		{"no Accept-Encoding", "/page", nil, true},
		{"gzip refused", "/page", map[string]string{"Accept-Encoding": "gzip;q=0, identity"}, true},
		{"a short body", "/small", map[string]string{"Accept-Encoding": "gzip"}, true},
		{"a request another site made", "/page", map[string]string{"Accept-Encoding": "gzip", "Sec-Fetch-Site": "cross-site"}, true},
		{"an age blob", "/blob", map[string]string{"Accept-Encoding": "gzip"}, false},
	} {
		res, body := testkit.Fetch(t, srv.URL+tc.path, tc.header)
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "" || bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: %d, Content-Encoding %q", tc.name, res.StatusCode, res.Header.Get("Content-Encoding"))
		}
		if got := res.Header.Get("Vary") == "Accept-Encoding"; got != tc.vary {
			t.Errorf("%s: Vary = %q", tc.name, res.Header.Get("Vary"))
		}
	}
}

// TestDownloadsKeepTheirLengthAndRanges: a dataset download is never
// compressed, so its Content-Length, ETag and Range answers are those of
// the ciphertext.
func TestDownloadsKeepTheirLengthAndRanges(t *testing.T) {
	srv, _ := compressServer(t)
	res, body := testkit.Fetch(t, srv.URL+"/blob", map[string]string{"Accept-Encoding": "gzip"})
	if res.ContentLength != 10000 || len(body) != 10000 || res.Header.Get("ETag") != `"blob"` || res.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("whole blob: length %d, body %d, headers %v", res.ContentLength, len(body), res.Header)
	}
	res, body = testkit.Fetch(t, srv.URL+"/blob", map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=4000-"})
	if res.StatusCode != http.StatusPartialContent || res.Header.Get("Content-Range") != "bytes 4000-9999/10000" ||
		res.ContentLength != 6000 || len(body) != 6000 || res.Header.Get("Content-Encoding") != "" {
		t.Errorf("ranged blob: %d, %v, body %d", res.StatusCode, res.Header, len(body))
	}
}

// TestEventStreamsAreNeitherCompressedNorHeldBack: the first frame of a
// stream reaches the client while the stream is still open, as sent.
func TestEventStreamsAreNeitherCompressedNorHeldBack(t *testing.T) {
	srv, release := compressServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/stream", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "" || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream headers = %v", res.Header)
	}
	rd := bufio.NewReader(res.Body)
	var first []string
	for len(first) < 2 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the first frame: %v", err)
		}
		first = append(first, strings.TrimSpace(line))
	}
	if first[0] != "id: 1" || first[1] != "data: first" {
		t.Fatalf("first frame = %q", first)
	}
	close(release)
	rest, _ := io.ReadAll(rd)
	if !strings.Contains(string(rest), "data: last") {
		t.Errorf("after the first frame: %q", rest)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"deflate, br"}, false},
		{[]string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"*, gzip;q=0"}, false},
		{[]string{"identity", "gzip"}, true},
		{[]string{"gzip;q=nonsense"}, false},
		{[]string{"x-gzip"}, true},
	} {
		if got := httpapi.AcceptsGzip(tc.header); got != tc.want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// FuzzAcceptsGzip: any Accept-Encoding is read without panicking; gzip is
// accepted only when the header names gzip or "*", and always when one of
// the header's lines is a plain "gzip".
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "br;q=1.0, gzip;q=0.8", "*;q=0", "gzip;q=", ";;,,", "gzip;q=1e309", "gzip;Q=0.5;level=9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		lower := strings.ToLower(header)
		if httpapi.AcceptsGzip([]string{header}) && !strings.Contains(lower, "gzip") && !strings.Contains(lower, "*") {
			t.Errorf("%q accepted gzip", header)
		}
		if !httpapi.AcceptsGzip([]string{header, "gzip"}) {
			t.Errorf("%q with a plain gzip line did not accept gzip", header)
		}
	})
}

// BenchmarkAcceptsGzip reads a browser's Accept-Encoding, as Compress
// does for every request.
func BenchmarkAcceptsGzip(b *testing.B) {
	header := []string{"gzip, deflate, br, zstd"}
	b.ReportAllocs()
	for b.Loop() {
		httpapi.AcceptsGzip(header)
	}
}

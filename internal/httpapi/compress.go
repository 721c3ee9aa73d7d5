package httpapi

import (
	"compress/gzip"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// compressMinSize is the smallest body worth compressing: below it the
// gzip framing (18 bytes) and the CPU buy nothing.
const compressMinSize = 1024

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return w
}}

// Compress gzips the text answers of next (HTML, CSS, JavaScript, JSON and
// problem documents, the OpenAPI document, SVG) for clients that accept
// gzip, and adds Vary: Accept-Encoding to them. It sits outside everything
// else, so the access log, the idempotency store and its replays all see
// the plain body, and signatures over bodies (webhooks, SPI calls) are made
// on requests the platform sends, which this never touches.
//
// It leaves alone, passing every write and flush straight through:
//   - event streams (text/event-stream) and every non-text type, so a
//     stream's frames flush one by one and a dataset download
//     (application/age) keeps its Content-Length, ETag and Range answers;
//   - Range requests and partial answers, answers without a body (HEAD,
//     204, 304), and answers already encoded (the metrics endpoint gzips
//     its own) or marked Cache-Control: no-transform;
//   - requests a browser marks as sent from another site (Sec-Fetch-Site
//     cross-site or same-site). A portal page holds a form token next to
//     text a visitor can put there; compressing it for a request another
//     site made the browser send would let that site guess the token from
//     the answers' sizes (BREACH). The portal's own navigations
//     (same-origin, or typed: none) are compressed.
//
// A body shorter than compressMinSize is sent as it is. Up to that much is
// held back until the handler writes more, flushes or returns.
func Compress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &compressWriter{ResponseWriter: w, gzipOK: mayCompress(r)}
		defer cw.close()
		next.ServeHTTP(cw, r)
	})
}

// mayCompress reports whether the answer to r may be gzipped, as far as
// the request tells.
func mayCompress(r *http.Request) bool {
	if r.Method == http.MethodHead || r.Header.Get("Range") != "" {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false
	}
	return AcceptsGzip(r.Header.Values("Accept-Encoding"))
}

// AcceptsGzip reports whether Accept-Encoding header values (RFC 9110
// §12.5.3) accept gzip: named with a non-zero weight, or not named and
// "*" has one. An identity-only or empty header does not.
func AcceptsGzip(values []string) bool {
	gzipQ, anyQ := -1.0, -1.0
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0
					}
					q = f
				}
			}
			switch name = strings.ToLower(strings.TrimSpace(name)); name {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				anyQ = max(anyQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return anyQ > 0
}

// compressible reports whether a Content-Type is text worth compressing.
// Event streams are text but must flush frame by frame, so they are not.
func compressible(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case mt == "text/event-stream":
		return false
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/javascript", mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/yaml", mt == "application/openapi+yaml", mt == "application/x-ndjson",
		mt == "application/jsonl":
		return true
	}
	return false
}

// compressWriter decides, when the handler first writes, flushes or
// returns, whether to gzip: until then it holds the status and up to
// compressMinSize bytes.
type compressWriter struct {
	http.ResponseWriter
	gzipOK bool // the request allows it

	status  int
	decided bool
	held    []byte       // body held back while it may still be too short
	gz      *gzip.Writer // set once compressing
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (c *compressWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *compressWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		c.ResponseWriter.WriteHeader(code) // 103 Early Hints and the like
		return
	}
	if c.status != 0 {
		return
	}
	c.status = code
	// The headers are final now: an answer that cannot be compressed goes
	// out at once (an event stream flushes its headers before any frame).
	if !c.candidate() {
		c.passThrough()
	}
}

// candidate reports whether the answer, by its request and headers so
// far, may be compressed. It adds Vary: Accept-Encoding to every text
// answer, whatever this request gets, for the caches in between.
func (c *compressWriter) candidate() bool {
	h := c.Header()
	if !compressible(h.Get("Content-Type")) {
		return false
	}
	if !varies(h) {
		h.Add("Vary", "Accept-Encoding")
	}
	status := c.status
	if status == 0 {
		status = http.StatusOK
	}
	if !c.gzipOK || status == http.StatusNoContent || status == http.StatusNotModified || status == http.StatusPartialContent ||
		h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" ||
		strings.Contains(strings.ToLower(h.Get("Cache-Control")), "no-transform") {
		return false
	}
	if n, err := strconv.Atoi(h.Get("Content-Length")); err == nil && n < compressMinSize {
		return false
	}
	return true
}

func varies(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Accept-Encoding") {
				return true
			}
		}
	}
	return false
}

func (c *compressWriter) Write(b []byte) (int, error) {
	if !c.decided {
		if c.status == 0 {
			c.WriteHeader(http.StatusOK)
		}
	}
	if c.decided {
		if c.gz != nil {
			return c.gz.Write(b)
		}
		return c.ResponseWriter.Write(b)
	}
	if len(c.held)+len(b) < compressMinSize && c.Header().Get("Content-Length") == "" {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	if err := c.startGzip(); err != nil {
		return 0, err
	}
	return c.gz.Write(b)
}

// Flush sends what is held: compressed, since a handler that flushes
// expects more to come.
func (c *compressWriter) Flush() {
	if !c.decided {
		if c.status == 0 && len(c.held) == 0 {
			return // nothing to send yet
		}
		if c.status == 0 {
			c.WriteHeader(http.StatusOK)
		}
		if !c.decided && c.startGzip() != nil {
			return
		}
	}
	if c.gz != nil {
		c.gz.Flush()
	}
	http.NewResponseController(c.ResponseWriter).Flush()
}

// passThrough sends the headers and anything held as they are.
func (c *compressWriter) passThrough() {
	c.decided = true
	if c.status != 0 {
		c.ResponseWriter.WriteHeader(c.status)
	}
	if len(c.held) > 0 {
		c.ResponseWriter.Write(c.held)
		c.held = nil
	}
}

func (c *compressWriter) startGzip() error {
	c.decided = true
	h := c.Header()
	h.Set("Content-Encoding", "gzip")
	h.Del("Content-Length")
	// The representation changed, so a strong validator must not match
	// the plain one: weaken it (RFC 9110 §8.8.1).
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("ETag", "W/"+et)
	}
	c.ResponseWriter.WriteHeader(c.status)
	c.gz = gzipWriters.Get().(*gzip.Writer)
	c.gz.Reset(c.ResponseWriter)
	if len(c.held) > 0 {
		held := c.held
		c.held = nil
		if _, err := c.gz.Write(held); err != nil {
			return err
		}
	}
	return nil
}

// close ends the answer once the handler returned: a short body goes out
// plain, a compressed one gets its gzip trailer.
func (c *compressWriter) close() {
	if !c.decided {
		if c.status == 0 && len(c.held) == 0 {
			return // the handler wrote nothing: net/http answers 200 itself
		}
		c.passThrough()
		return
	}
	if c.gz != nil {
		c.gz.Close()
		c.gz.Reset(nil)
		gzipWriters.Put(c.gz)
		c.gz = nil
	}
}

package portal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// assets are the portal's static files, each served under a name that
// carries a hash of its content (portal.3f2a9c1b0e.css): a new build that
// changes a file changes its name, so browsers may keep every file for a
// year without asking again. Templates name them through the asset
// function.
type assets struct {
	byBase   map[string]*asset // "portal.css"
	byHashed map[string]*asset // "portal.3f2a9c1b0e.css"
}

type asset struct {
	hashed string
	body   []byte
	etag   string
}

// immutable is the Cache-Control of a content-hashed file (RFC 8246).
const immutable = "public, max-age=31536000, immutable"

func loadAssets(fsys fs.FS) *assets {
	a := &assets{byBase: map[string]*asset{}, byHashed: map[string]*asset{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:5])
		ext := path.Ext(name)
		f := &asset{hashed: strings.TrimSuffix(name, ext) + "." + hash + ext, body: body, etag: `"` + hash + `"`}
		a.byBase[name], a.byHashed[f.hashed] = f, f
		return nil
	})
	if err != nil {
		panic(err)
	}
	return a
}

// url is the path a page links a static file by; it panics for a file
// that does not exist, so a template naming one fails its test.
func (a *assets) url(name string) string {
	f, ok := a.byBase[name]
	if !ok {
		panic("portal: no static file " + name)
	}
	return "/static/" + f.hashed
}

// ServeHTTP serves /static/{name}. A hashed name is the file, cached for
// good. A file's plain name, or its name with a hash this build does not
// have (a page from the previous build, during a rolling upgrade), is
// redirected to the current one and that redirect is not cached; any other
// name is 404.
func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	if f, ok := a.byHashed[name]; ok {
		h := w.Header()
		h.Set("Cache-Control", immutable)
		h.Set("ETag", f.etag)
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			h.Set("Content-Type", ct)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
		return
	}
	if f, ok := a.byBase[unhashed(name)]; ok {
		w.Header().Set("Cache-Control", "no-cache")
		http.Redirect(w, r, "/static/"+f.hashed, http.StatusFound)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.NotFound(w, r)
}

// unhashed drops a hash from a file name: "portal.0123456789.css" is
// "portal.css"; a name without one is itself.
func unhashed(name string) string {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if i := strings.LastIndexByte(stem, '.'); i >= 0 && isHex(stem[i+1:]) {
		return stem[:i] + ext
	}
	return name
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// favicon serves /favicon.ico, which browsers and crawlers ask for
// whatever the page links; pages link the SVG icon.
func (a *assets) favicon(w http.ResponseWriter, r *http.Request) {
	f := a.byBase["favicon.ico"]
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Content-Type", "image/x-icon")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/httpapi"
)

type noteLine struct {
	Text string `json:"text" maxLength:"100" text:"multiline"`
}

type noteInput struct {
	ID             string `path:"id" maxLength:"64"`
	Cursor         string `query:"cursor" maxLength:"64"`
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"64"`
	Body           struct {
		Title       string            `json:"title" maxLength:"100"`
		Description string            `json:"description,omitempty" maxLength:"1000" text:"multiline"`
		Lines       []noteLine        `json:"lines,omitempty" maxItems:"10"`
		Tags        []string          `json:"tags,omitempty" maxItems:"10" maxLength:"20" text:"multiline"`
		Extra       json.RawMessage   `json:"extra,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
	}
}

// newTextServer serves POST /v1/notes/{id}, counting the calls that reach
// the handler.
func newTextServer(t *testing.T) (*httptest.Server, *httpapi.Server, *atomic.Int64) {
	t.Helper()
	s := httpapi.New(httpapi.Config{Version: "test", Registerer: prometheus.NewRegistry(), MaxBodyBytes: 4096})
	var calls atomic.Int64
	huma.Register(s.API, huma.Operation{OperationID: "note", Method: http.MethodPost, Path: "/v1/notes/{id}"},
		func(ctx context.Context, in *noteInput) (*struct{}, error) {
			calls.Add(1)
			return nil, nil
		})
	s.Handle("POST /oauth2/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, s, &calls
}

func TestTextRuleRefusesControlCharactersInEveryPartOfARequest(t *testing.T) {
	srv, _, calls := newTextServer(t)
	for _, tt := range []struct {
		name     string
		path     string // after /v1/notes/
		header   string // Idempotency-Key
		body     string
		location string // "" when accepted
	}{
		{"clean", "n1?cursor=abc", "k1", `{"title":"Hello","description":"two\nlines\r\nand\ta tab","lines":[{"text":"a\nb"}],"tags":["x\ty"],"extra":{"any":"free\nform"},"labels":{"k":"v"}}`, ""},
		{"NUL in a name", "n1", "", `{"title":"Hel\u0000lo"}`, "body.title"},
		{"newline in a one-line field", "n1", "", `{"title":"two\nlines"}`, "body.title"},
		{"tab in a one-line field", "n1", "", `{"title":"a\tb"}`, "body.title"},
		{"lone CR in a multi-line field", "n1", "", `{"title":"t","description":"a\rb"}`, "body.description"},
		{"NUL in a multi-line field", "n1", "", `{"title":"t","description":"a\u0000b"}`, "body.description"},
		{"nested array member", "n1", "", `{"title":"t","lines":[{"text":"ok"},{"text":"\u0007"}]}`, "body.lines[1].text"},
		{"map value", "n1", "", `{"title":"t","labels":{"k":"a\nb"}}`, "body.labels.k"},
		{"member name", "n1", "", `{"title":"t","labels":{"k\u0000":"v"}}`, "body.labels"},
		{"free-form JSON still refuses NUL", "n1", "", `{"title":"t","extra":{"a":["\u0000"]}}`, "body.extra.a[0]"},
		{"DEL", "n1", "", `{"title":"t\u007f"}`, "body.title"},
		{"C1 control", "n1", "", `{"title":"t\u0085"}`, "body.title"},
		{"invalid UTF-8", "n1", "", "{\"title\":\"t\xff\"}", "body.title"},
		{"raw NUL", "n1", "", "{\"title\":\"t\x00\"}", "body.title"},
		{"path parameter", "n%00x", "", `{"title":"t"}`, "path.id"},
		{"path parameter with invalid UTF-8", "n%FF", "", `{"title":"t"}`, "path.id"},
		{"behind an escaped slash", "n%2F%00", "", `{"title":"t"}`, "path.id"},
		{"query parameter", "n1?cursor=a%01b", "", `{"title":"t"}`, "query.cursor"},
		{"undeclared query parameter", "n1?other=%0A", "", `{"title":"t"}`, "query.other"},
		{"header", "n1", "a\tb", `{"title":"t"}`, "header.Idempotency-Key"},
		{"header with invalid UTF-8", "n1", "k\xff", `{"title":"t"}`, "header.Idempotency-Key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := calls.Load()
			req, _ := http.NewRequest("POST", srv.URL+"/v1/notes/"+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.header != "" {
				req.Header.Set("Idempotency-Key", tt.header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if tt.location == "" {
				if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusNoContent {
					t.Fatalf("status %d, want 204: %s", res.StatusCode, b)
				}
				return
			}
			p := decodeProblem(t, res)
			if p.Status != 422 || p.Code != "invalid_text" || len(p.Errors) != 1 || p.Errors[0].Location != tt.location {
				t.Errorf("got %d %s %+v, want 422 invalid_text at %s", p.Status, p.Code, p.Errors, tt.location)
			}
			if calls.Load() != before {
				t.Error("the handler ran")
			}
		})
	}
}

func TestTextRuleChecksFormBodiesOutsideHuma(t *testing.T) {
	srv, _, calls := newTextServer(t)
	for _, tt := range []struct {
		form url.Values
		want int
	}{
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {"cw_1"}}, 204},
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {"cw\x00"}}, 422},
	} {
		before := calls.Load()
		res, err := http.PostForm(srv.URL+"/oauth2/token", tt.form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.want || (tt.want == 422) != (calls.Load() == before) {
			t.Errorf("%v: %d (handler ran: %v), want %d", tt.form, res.StatusCode, calls.Load() != before, tt.want)
		}
	}
}

func TestMultilineFieldsAreMarkedInTheDocument(t *testing.T) {
	_, s, _ := newTextServer(t)
	body := s.API.OpenAPI().Paths["/v1/notes/{id}"].Post.RequestBody.Content["application/json"].Schema
	reg := s.API.OpenAPI().Components.Schemas
	props := reg.SchemaFromRef(body.Ref).Properties
	marked := func(p *huma.Schema) bool { return p.Extensions[httpapi.MultilineExtension] == true }
	if !marked(props["description"]) || !marked(props["tags"].Items) || marked(props["title"]) {
		t.Errorf("description %v, tags %v, title %v: want only the first two marked",
			props["description"].Extensions, props["tags"].Items.Extensions, props["title"].Extensions)
	}
	line := reg.SchemaFromRef(props["lines"].Items.Ref)
	if !marked(line.Properties["text"]) {
		t.Errorf("lines[].text not marked: %v", line.Properties["text"].Extensions)
	}
}

func TestAWrongTextTagStopsTheStart(t *testing.T) {
	type bad struct {
		Body struct {
			Count int `json:"count" text:"multiline"`
		}
	}
	s := httpapi.New(httpapi.Config{Version: "test", Registerer: prometheus.NewRegistry()})
	defer func() {
		if recover() == nil {
			t.Error("a text tag on a number registered")
		}
	}()
	huma.Register(s.API, huma.Operation{OperationID: "bad", Method: http.MethodPost, Path: "/v1/bad"},
		func(ctx context.Context, in *bad) (*struct{}, error) { return nil, nil })
}

func TestValidationProblemsDoNotEchoText(t *testing.T) {
	srv, _, _ := newTextServer(t)
	secret := strings.Repeat("s3cret", 30)
	res, err := http.Post(srv.URL+"/v1/notes/n1", "application/json", strings.NewReader(`{"title":"`+secret+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 422 || strings.Contains(string(b), "s3cret") {
		t.Errorf("%d %s: want 422 without the text", res.StatusCode, b)
	}
}

func TestTextRuleChecksPathsNoRouteMatches(t *testing.T) {
	srv, _, _ := newTextServer(t)
	res, err := http.Get(srv.URL + "/v1/nothing%00here")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if p := decodeProblem(t, res); p.Status != 422 || p.Code != "invalid_text" || p.Errors[0].Location != "path" {
		t.Errorf("got %d %s %+v, want 422 invalid_text at path", p.Status, p.Code, p.Errors)
	}
}

// deadlineRecorder is a ResponseWriter with a connection's SetReadDeadline,
// counting the deadlines set on it (lifting one, the zero time, is not
// setting one).
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines int
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	if !t.IsZero() {
		d.deadlines++
	}
	return nil
}

// Reaching a body's end starts the server's background read of the
// connection; a read deadline set after it (huma sets one before reading a
// body) would time that read out and cancel the request's context, and
// every later one on the connection. Once checkText holds the body, no
// deadline reaches the connection.
func TestNoReadDeadlineReachesTheConnectionOnceTheBodyIsRead(t *testing.T) {
	_, s, calls := newTextServer(t)
	w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	r := httptest.NewRequest("POST", "/v1/notes/n1", strings.NewReader(`{"title":"t"}`))
	r.Header.Set("Content-Type", "application/json")
	s.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent || calls.Load() != 1 {
		t.Fatalf("status %d, %d calls: %s", w.Code, calls.Load(), w.Body)
	}
	if w.deadlines != 1 {
		t.Errorf("%d read deadlines reached the connection, want 1: the body's own", w.deadlines)
	}
}

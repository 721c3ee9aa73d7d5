package httpapi

import (
	"maps"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// noStoreKey marks, in an operation's Metadata, one that NoStore marked.
const noStoreKey = "causeway.noStore"

// NoStore marks op as answering with a secret or a token (a client secret,
// a signing secret, a developer or access token): every answer to it
// carries Cache-Control: no-store (RFC 9111 §5.2.2.5) and Pragma: no-cache
// (RFC 6749 §5.1 asks both of a token response), so no browser, proxy or
// CDN keeps a copy. The Server sets them before the request reaches the
// gateway, so its refusals and idempotent replays carry them too, and the
// OpenAPI document lists them on the operation's responses. It returns op
// marked, to register.
func NoStore(op huma.Operation) huma.Operation {
	op.Metadata = maps.Clone(op.Metadata)
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[noStoreKey] = true
	return op
}

// HandleNoStore registers a plain handler, like Handle, whose every answer
// carries the headers NoStore describes: the OAuth2 token endpoint.
func (s *Server) HandleNoStore(pattern string, h http.Handler) {
	s.noStore[pattern] = true
	s.mux.Handle(pattern, h)
}

// IsNoStore reports whether the route with the given ServeMux pattern
// answers with Cache-Control: no-store (see NoStore).
func (s *Server) IsNoStore(pattern string) bool { return s.noStore[pattern] }

// markNoStore is an OnAddOperation hook: it records the route of an
// operation NoStore marked, for instrument, and documents the headers on
// its responses.
func (s *Server) markNoStore(oapi *huma.OpenAPI, op *huma.Operation) {
	if marked, _ := op.Metadata[noStoreKey].(bool); !marked {
		return
	}
	s.noStore[op.Method+" "+op.Path] = true
	for status, res := range op.Responses {
		// A shared answer is copied, so that the headers are this
		// operation's alone.
		res = inline(oapi, res)
		op.Responses[status] = res
		if res.Headers == nil {
			res.Headers = map[string]*huma.Param{}
		}
		for _, name := range []string{headerCacheControl, headerPragma} {
			res.Headers[name] = headerRef(name)
			useHeader(oapi, name)
		}
	}
}

// setNoStore sets the headers of a route NoStore marked.
func setNoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

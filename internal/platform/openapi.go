package platform

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
)

// OpenAPI returns the OpenAPI document that a node with cfg serves at
// GET /openapi.json, without listening: it builds the node (on a temporary
// data directory when cfg names none), asks its handler for the document
// and closes it. The document's server is cfg's issuer (see Issuer), so
// give cfg the PublicURL or Addr the node will have.
func OpenAPI(ctx context.Context, cfg Config) ([]byte, error) {
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "causeway-openapi-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	p, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /openapi.json answered %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes(), nil
}

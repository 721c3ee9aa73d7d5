package openapitest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

const doc = `{"openapi":"3.1.0","info":{"title":"t","version":"1"},
"paths":{"/v1/things/{id}":{"get":{"responses":{"200":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Thing"}}}}}}}},
"components":{"schemas":{"Thing":{"type":"object","required":["id","amount"],"properties":{"id":{"type":"string"},"amount":{"type":"string","pattern":"^[0-9]+\\.[0-9]{2}$"}}}}}}`

func TestCheckCatchesResponsesThatDriftFromTheDocument(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(doc)) }))
	defer srv.Close()
	v := Fetch(t, srv.URL)
	for _, tt := range []struct {
		status int
		body   string
		ok     bool
	}{
		{200, `{"id":"x","amount":"1.00"}`, true},
		{200, `{"id":"x","amount":1.0}`, false},
		{200, `{"id":"x"}`, false},
		{200, `{"id":"x","amount":"1"}`, false},
		{404, `{}`, false},
	} {
		err := v.check("GET", "/v1/things/{id}", tt.status, "application/json", []byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%d %s: err = %v, want ok=%v", tt.status, tt.body, err, tt.ok)
		}
	}
	if err := v.check("GET", "/v1/other", 200, "application/json", []byte(`{}`)); err == nil {
		t.Error("an undocumented path passed")
	}
}

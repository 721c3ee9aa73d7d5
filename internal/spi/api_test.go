package spi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

const (
	appA = "app_a:spi:write"
	appB = "app_b:spi:write"
)

type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

type created struct {
	spi.Registration
	Secret string `json:"secret"`
}

func TestTheCatalogListsTheBuiltInPointsWithSchemasAndStandIns(t *testing.T) {
	a := newAPI(t, newService(t, storetest.OpenSQLite(t)))
	status, raw := a.do(t, "app_a", http.MethodGet, "/v1/extension-points", "/v1/extension-points", nil)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, raw)
	}
	points := into[page.Page[spi.Point]](t, raw)
	byName := map[string]spi.Point{}
	for _, p := range points.Data {
		byName[p.Name] = p
	}
	for _, name := range []string{core.PointFraudCheck, core.PointCreditDecision, core.PointKYCVerify, core.PointAccountsLookup} {
		p, ok := byName[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if !p.BuiltIn || len(p.RequestSchema) == 0 || len(p.ResponseSchema) == 0 || len(p.StandIn) == 0 ||
			p.DefaultTimeoutMS <= 0 || p.MaxTimeoutMS < p.DefaultTimeoutMS {
			t.Errorf("%s = %+v", name, p)
		}
	}
	if got := decode(t, byName[core.PointFraudCheck].StandIn); got != fraudStandIn {
		t.Errorf("fraud-check stand-in = %+v", got)
	}
	status, raw = a.do(t, "app_a", http.MethodGet, "/v1/extension-points/accounts.lookup", "/v1/extension-points/{name}", nil)
	if status != http.StatusOK || into[spi.Point](t, raw).Name != core.PointAccountsLookup {
		t.Errorf("one point: %d %s", status, raw)
	}
	if status, _ := a.do(t, "app_a", http.MethodGet, "/v1/extension-points/no.such", "/v1/extension-points/{name}", nil); status != http.StatusNotFound {
		t.Errorf("unknown point: %d", status)
	}
}

func TestRegistrationsOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		a := newAPI(t, s)
		srv := spitest.New(t, approve(4, "seen it"))

		// Create: 201 with the secret, shown once.
		status, raw := a.do(t, appA, http.MethodPost, "/v1/spi-registrations", "/v1/spi-registrations",
			map[string]any{"extension_point": core.PointFraudCheck, "url": srv.URL, "scope": "bank"})
		if status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, raw)
		}
		reg := into[created](t, raw)
		if !strings.HasPrefix(reg.ID, "spi_") || !strings.HasPrefix(reg.Secret, "whsec_") || reg.Status != spi.StatusPendingActivation ||
			reg.Scope != spi.ScopeBank || reg.AppID != "app_a" {
			t.Errorf("created = %+v", reg)
		}
		status, raw = a.do(t, appA, http.MethodGet, "/v1/spi-registrations/"+reg.ID, "/v1/spi-registrations/{id}", nil)
		if status != http.StatusOK || strings.Contains(string(raw), "whsec_") || strings.Contains(string(raw), "sealed") {
			t.Errorf("get: %d %s", status, raw)
		}
		if status, raw := a.do(t, appA, http.MethodGet, "/v1/spi-registrations", "/v1/spi-registrations", nil); status != http.StatusOK ||
			len(into[page.Page[spi.Registration]](t, raw).Data) != 1 {
			t.Errorf("list: %d %s", status, raw)
		}

		// Another app sees nothing of it.
		for _, path := range []string{"/v1/spi-registrations/" + reg.ID, "/v1/spi-registrations/" + reg.ID + "/invocations"} {
			status, raw := a.do(t, appB, http.MethodGet, path, "", nil)
			if status != http.StatusNotFound || into[problem](t, raw).Code != "registration_not_found" {
				t.Errorf("app b GET %s: %d %s", path, status, raw)
			}
		}
		if status, raw := a.do(t, appB, http.MethodGet, "/v1/spi-registrations", "", nil); len(into[page.Page[spi.Registration]](t, raw).Data) != 0 {
			t.Errorf("app b's list: %d %s", status, raw)
		}
		if status, _ := a.do(t, appB, http.MethodDelete, "/v1/spi-registrations/"+reg.ID, "", nil); status != http.StatusNotFound {
			t.Errorf("app b deleted it: %d", status)
		}

		// The bank activates it; the timeout may not exceed the point's maximum.
		status, raw = a.do(t, "", http.MethodPost, "/bank/v1/spi-registrations/"+reg.ID+"/activate", "/bank/v1/spi-registrations/{id}/activate",
			map[string]any{"timeout_ms": 9000, "on_failure": "reject", "priority": 3})
		if status != http.StatusUnprocessableEntity || into[problem](t, raw).Code != "invalid_timeout" {
			t.Errorf("activate over the max: %d %s", status, raw)
		}
		status, raw = a.do(t, "", http.MethodPost, "/bank/v1/spi-registrations/"+reg.ID+"/activate", "/bank/v1/spi-registrations/{id}/activate",
			map[string]any{"timeout_ms": 800, "on_failure": "reject", "priority": 3})
		if r := into[spi.Registration](t, raw); status != http.StatusOK || r.Status != spi.StatusActive || r.TimeoutMS != 800 ||
			r.OnFailure != spi.OnFailureReject || r.Priority != 3 {
			t.Errorf("activate: %d %s", status, raw)
		}
		if status, raw := a.do(t, "app_a", http.MethodPost, "/bank/v1/spi-registrations/"+reg.ID+"/activate", "", map[string]any{}); status != http.StatusUnauthorized {
			t.Errorf("an app activated: %d %s", status, raw)
		}
		// Activating it again is a conflict; its settings change with PATCH.
		status, raw = a.do(t, "", http.MethodPost, "/bank/v1/spi-registrations/"+reg.ID+"/activate", "/bank/v1/spi-registrations/{id}/activate",
			map[string]any{"priority": 4})
		if status != http.StatusConflict || into[problem](t, raw).Code != "registration_already_active" {
			t.Errorf("second activation: %d %s", status, raw)
		}
		status, raw = a.do(t, "", http.MethodPatch, "/bank/v1/spi-registrations/"+reg.ID, "/bank/v1/spi-registrations/{id}",
			map[string]any{"priority": 4})
		if r := into[spi.Registration](t, raw); status != http.StatusOK || r.Status != spi.StatusActive || r.TimeoutMS != 800 ||
			r.OnFailure != spi.OnFailureReject || r.Priority != 4 {
			t.Errorf("configure: %d %s", status, raw)
		}

		// App b's process calls it (a bank-scope registration serves
		// everyone); the owner sees the audit without app b's id, the bank
		// with it.
		call(t, s, "app_b")
		status, raw = a.do(t, appA, http.MethodGet, "/v1/spi-registrations/"+reg.ID+"/invocations", "/v1/spi-registrations/{id}/invocations", nil)
		invs := into[page.Page[spi.Invocation]](t, raw).Data
		if status != http.StatusOK || len(invs) != 1 || invs[0].Outcome != spi.OutcomeAnswered || invs[0].AppID != "" || invs[0].StatusCode != 200 {
			t.Errorf("owner's audit: %d %s", status, raw)
		}
		status, raw = a.do(t, "", http.MethodGet, "/bank/v1/spi-registrations/"+reg.ID+"/invocations", "/bank/v1/spi-registrations/{id}/invocations", nil)
		invs = into[page.Page[spi.Invocation]](t, raw).Data
		if status != http.StatusOK || len(invs) != 1 || invs[0].AppID != "app_b" {
			t.Errorf("bank's audit: %d %s", status, raw)
		}

		// Deactivate, then delete.
		status, raw = a.do(t, "", http.MethodPost, "/bank/v1/spi-registrations/"+reg.ID+"/deactivate", "/bank/v1/spi-registrations/{id}/deactivate", nil)
		if status != http.StatusOK || into[spi.Registration](t, raw).Status != spi.StatusInactive {
			t.Errorf("deactivate: %d %s", status, raw)
		}
		status, raw = a.do(t, "", http.MethodPost, "/bank/v1/spi-registrations/"+reg.ID+"/deactivate", "/bank/v1/spi-registrations/{id}/deactivate", nil)
		if status != http.StatusConflict || into[problem](t, raw).Code != "registration_not_active" {
			t.Errorf("second deactivation: %d %s", status, raw)
		}
		if status, raw := a.do(t, appA, http.MethodDelete, "/v1/spi-registrations/"+reg.ID, "/v1/spi-registrations/{id}", nil); status != http.StatusNoContent {
			t.Errorf("delete: %d %s", status, raw)
		}
		if status, _ := a.do(t, appA, http.MethodGet, "/v1/spi-registrations/"+reg.ID, "", nil); status != http.StatusNotFound {
			t.Errorf("get after delete: %d", status)
		}
		if status, raw := a.do(t, appA, http.MethodDelete, "/v1/spi-registrations/"+reg.ID, "/v1/spi-registrations/{id}", nil); status != http.StatusNotFound ||
			into[problem](t, raw).Code != "registration_not_found" {
			t.Errorf("second delete: %d %s", status, raw)
		}
		status, raw = a.do(t, "", http.MethodPost, "/bank/v1/spi-registrations/"+reg.ID+"/activate", "/bank/v1/spi-registrations/{id}/activate", nil)
		if status != http.StatusConflict || into[problem](t, raw).Code != "registration_deleted" {
			t.Errorf("activating a deleted registration: %d %s", status, raw)
		}
		status, raw = a.do(t, "", http.MethodGet, "/bank/v1/spi-registrations?status=deleted&app_id=app_a", "/bank/v1/spi-registrations", nil)
		if list := into[page.Page[spi.Registration]](t, raw).Data; status != http.StatusOK || len(list) != 1 || list[0].ID != reg.ID {
			t.Errorf("bank list of deleted: %d %s", status, raw)
		}
		if status, raw := a.do(t, "", http.MethodGet, "/bank/v1/spi-registrations/"+reg.ID+"/invocations", "", nil); status != http.StatusOK ||
			len(into[page.Page[spi.Invocation]](t, raw).Data) != 1 {
			t.Errorf("the bank lost the audit of a deleted registration: %d %s", status, raw)
		}
	})
}

func TestCreatingARegistrationRefusesBadInputWithProblems(t *testing.T) {
	a := newAPI(t, newService(t, storetest.OpenSQLite(t), func(o *spi.Options) { o.Guard.Allow = nil }))
	for _, tt := range []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"extension_point": core.PointFraudCheck, "url": "http://127.0.0.1:9/spi"}, 422, "url_not_allowed"},
		{map[string]any{"extension_point": "nope.nope", "url": "http://127.0.0.1:9/spi"}, 422, "unknown_extension_point"},
		{map[string]any{"extension_point": core.PointFraudCheck, "url": "http://127.0.0.1:9/spi", "scope": "world"}, 422, "validation_failed"},
		{map[string]any{"extension_point": core.PointFraudCheck}, 422, "validation_failed"},
	} {
		status, raw := a.do(t, appA, http.MethodPost, "/v1/spi-registrations", "/v1/spi-registrations", tt.body)
		if status != tt.status || into[problem](t, raw).Code != tt.code {
			t.Errorf("%v: %d %s, want %d %s", tt.body, status, raw, tt.status, tt.code)
		}
	}
	if status, _ := a.do(t, "", http.MethodPost, "/bank/v1/spi-registrations/spi_nope/activate", "", map[string]any{}); status != http.StatusNotFound {
		t.Errorf("activate unknown: %d", status)
	}
}

func TestTheBankDefinesAPointAndInvokesIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		a := newAPI(t, s)
		point := map[string]any{
			"name":        "cards.limit-check",
			"description": "Asked before a card limit is raised.",
			"request_schema": json.RawMessage(`{"type":"object","required":["card_id","new_limit"],
				"properties":{"card_id":{"type":"string"},"new_limit":{"type":"integer","minimum":0}}}`),
			"response_schema":    json.RawMessage(`{"type":"object","required":["allow"],"properties":{"allow":{"type":"boolean"},"note":{"type":"string"}}}`),
			"default_timeout_ms": 200, "max_timeout_ms": 1000,
			"stand_in": json.RawMessage(`{"allow":false,"note":"stand-in"}`),
		}
		remote := testkit.NewSentinel(t, `{"type":"object"}`)
		bad := func(field string, v any) map[string]any {
			m := map[string]any{}
			for k, x := range point {
				m[k] = x
			}
			m[field] = v
			return m
		}
		for _, tt := range []struct {
			body map[string]any
			code string
		}{
			{bad("request_schema", json.RawMessage(`{"type":"nonsense"}`)), "invalid_request_schema"},
			{bad("response_schema", json.RawMessage(`{"$ref":"`+remote.URL+`/schema.json"}`)), "invalid_response_schema"},
			{bad("response_schema", json.RawMessage(`{"$ref":"file:///etc/passwd"}`)), "invalid_response_schema"},
			{bad("stand_in", json.RawMessage(`{"allow":"no"}`)), "invalid_stand_in"},
			{bad("name", "Cards"), "invalid_name"},
			{bad("name", core.PointFraudCheck), "point_exists"},
			{bad("default_timeout_ms", 2000), "invalid_timeout"},
		} {
			status, raw := a.do(t, "", http.MethodPost, "/bank/v1/extension-points", "/bank/v1/extension-points", tt.body)
			if p := into[problem](t, raw); p.Code != tt.code || status < 400 || status >= 500 {
				t.Errorf("%s: %d %s", tt.code, status, raw)
			}
		}
		if n := remote.Hits(); n != 0 {
			t.Errorf("the remote $ref was fetched %d times", n)
		}
		status, raw := a.do(t, "", http.MethodPost, "/bank/v1/extension-points", "/bank/v1/extension-points", point)
		if status != http.StatusCreated {
			t.Fatalf("define: %d %s", status, raw)
		}
		if status, _ := a.do(t, "", http.MethodPost, "/bank/v1/extension-points", "", point); status != http.StatusConflict {
			t.Errorf("redefine: %d", status)
		}
		status, raw = a.do(t, "app_a", http.MethodGet, "/v1/extension-points", "/v1/extension-points", nil)
		if !strings.Contains(string(raw), `"name":"cards.limit-check"`) {
			t.Errorf("catalog lacks the new point: %d %s", status, raw)
		}

		invoke := func(body any) (int, spi.InvokeResult, []byte) {
			status, raw := a.do(t, "", http.MethodPost, "/bank/v1/extension-points/cards.limit-check/invoke",
				"/bank/v1/extension-points/{name}/invoke", body)
			var r spi.InvokeResult
			json.Unmarshal(raw, &r)
			return status, r, raw
		}
		payload := map[string]any{"card_id": "card_1", "new_limit": 5000}
		// Nobody registered: not answered, the bank uses its own rules.
		if status, r, raw := invoke(map[string]any{"payload": payload}); status != http.StatusOK || r.Answered {
			t.Errorf("no registration: %d %s", status, raw)
		}

		srv := spitest.New(t, map[string]any{"allow": true, "note": "good customer"})
		mine, _ := appReg(t, s, "app_a", "cards.limit-check", srv.URL, spi.NewRegistration{})
		status, r, raw := invoke(map[string]any{"app_id": "app_a", "payload": payload})
		if status != http.StatusOK || !r.Answered || r.Failed || r.StandIn || r.Provider != mine.ID ||
			string(r.Body) != `{"allow":true,"note":"good customer"}` {
			t.Errorf("invoke: %d %s", status, raw)
		}
		if req, _ := srv.Last(); req.Call.ExtensionPoint != "cards.limit-check" || string(req.Call.Payload) != `{"card_id":"card_1","new_limit":5000}` {
			t.Errorf("the endpoint got %s", req.Body)
		}
		// For another app's process, app a's registration does not run.
		if _, r, raw := invoke(map[string]any{"app_id": "app_b", "payload": payload}); r.Answered {
			t.Errorf("app b's process: %s", raw)
		}
		// A bad answer gives the stand-in.
		srv.Reply(map[string]any{"allow": "sure"})
		if _, r, raw := invoke(map[string]any{"app_id": "app_a", "payload": payload}); !r.StandIn || string(r.Body) != `{"allow":false,"note":"stand-in"}` {
			t.Errorf("stand-in: %s", raw)
		}
		// A payload that breaks the request schema is the caller's fault.
		status, _, raw = invoke(map[string]any{"app_id": "app_a", "payload": map[string]any{"card_id": 7}})
		if status != http.StatusUnprocessableEntity || into[problem](t, raw).Code != "invalid_payload" {
			t.Errorf("bad payload: %d %s", status, raw)
		}
		status, raw = a.do(t, "", http.MethodPost, "/bank/v1/extension-points/no.such/invoke", "", map[string]any{"payload": map[string]any{}})
		if status != http.StatusNotFound || into[problem](t, raw).Code != "unknown_extension_point" {
			t.Errorf("unknown point: %d %s", status, raw)
		}
		// The bank's built-in points can be invoked the same way.
		status, _, raw = invoke(map[string]any{"payload": payload})
		if status != http.StatusOK {
			t.Errorf("%d %s", status, raw)
		}
	})
}

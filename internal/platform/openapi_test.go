package platform_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
)

// TestOpenAPIDocumentFollowsTheLintRules checks the document a node
// serves (as `causeway openapi` prints it) against the rules Redocly's
// recommended ruleset and Spectral's spectral:oas hold it to, so that a
// new operation without a description, a tag or a security declaration
// fails here, in go test, and not only in .ci/run's linters. The failure
// lists everything to fix.
func TestOpenAPIDocumentFollowsTheLintRules(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	cfg.PublicURL = "https://api.bank.test"
	doc, err := platform.OpenAPI(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if findings := openapitest.Lint(doc); len(findings) > 0 {
		t.Errorf("the OpenAPI document breaks %d lint rules:\n%s", len(findings), strings.Join(findings, "\n"))
	}
	var d struct {
		Servers []struct{ URL string }
		Paths   map[string]map[string]struct {
			Security  []map[string][]string
			Responses map[string]any
		}
		Components struct {
			SecuritySchemes map[string]struct {
				Flows struct {
					ClientCredentials struct{ TokenURL string }
				}
			}
		}
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Servers) != 1 || d.Servers[0].URL != "https://api.bank.test" {
		t.Errorf("servers = %+v, want the node's public URL", d.Servers)
	}
	if got := d.Components.SecuritySchemes["oauth2"].Flows.ClientCredentials.TokenURL; got != "https://api.bank.test/oauth2/token" {
		t.Errorf("token URL = %q", got)
	}
	// The token endpoint is documented, and the operations the route
	// policy derives answers for have them.
	token := d.Paths["/oauth2/token"]["post"]
	for _, status := range []string{"200", "400", "401"} {
		if token.Responses[status] == nil {
			t.Errorf("POST /oauth2/token documents no %s", status)
		}
	}
	for _, want := range []struct{ method, path, status string }{
		{"post", "/v1/developers", "409"},                          // email_taken, declared by the operation
		{"get", "/v1/accounts/{id}", "404"},                        // a path id
		{"get", "/v1/accounts/{id}", "403"},                        // a scope
		{"post", "/v1/payments", "429"},                            // metered by the gateway
		{"post", "/v1/payments", "409"},                            // idempotency_in_progress
		{"get", "/v1/dataset-access-requests/{id}/content", "409"}, // content_not_ready
		{"post", "/bank/v1/payments/{id}/release", "409"},          // payment_not_held
	} {
		if d.Paths[want.path][want.method].Responses[want.status] == nil {
			t.Errorf("%s %s documents no %s", strings.ToUpper(want.method), want.path, want.status)
		}
	}
	if sec := d.Paths["/v1/developers/login"]["post"].Security; sec == nil || len(sec) != 0 {
		t.Errorf("login declares security %v, want [] (public)", sec)
	}
}

// TestEveryBankOperationDeclaresTheRoleItNeeds reads the roles from the
// document a node serves: every /bank/v1 operation takes the bank scheme
// and names exactly one known role (x-causeway-role), and only reads and an operator's own
// tokens are open to every role.
func TestEveryBankOperationDeclaresTheRoleItNeeds(t *testing.T) {
	t.Parallel()
	doc, err := platform.OpenAPI(context.Background(), platformtest.Embedded.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Security    []map[string][]string
			Role        string `json:"x-causeway-role"`
		}
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	// An operator's own tokens are theirs to manage; a proposal's role is
	// checked by package foureyes when it is decided.
	openToAll := map[string]bool{"bank-create-operator-token": true, "bank-revoke-operator-token": true,
		"bank-confirm-proposal": true, "bank-reject-proposal": true}
	seen := map[auth.Role]int{}
	for path, ops := range d.Paths {
		if !strings.HasPrefix(path, "/bank/v1/") || strings.HasPrefix(path, "/bank/v1/agent/") {
			continue
		}
		for method, op := range ops {
			role := auth.Role(op.Role)
			if _, bank := op.Security[0][httpapi.SchemeBankAdmin]; len(op.Security) != 1 || !bank || !auth.ValidRole(role) {
				t.Errorf("%s %s declares %v and role %q, want the bank scheme and one known role", method, path, op.Security, op.Role)
				continue
			}
			seen[role]++
			if method != "get" && role == auth.RoleViewer && !openToAll[op.OperationID] {
				t.Errorf("%s %s (%s) changes something but any viewer may call it", method, path, op.OperationID)
			}
		}
	}
	for _, r := range auth.AllRoles {
		if seen[r] == 0 {
			t.Errorf("no bank operation needs the role %s", r)
		}
	}
}

package platform_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// ticket asks for a stream ticket as c's app.
func (c *client) ticket() string {
	c.t.Helper()
	res := c.do("POST", "/v1/events/stream-tickets", "/v1/events/stream-tickets", nil)
	var tk struct {
		Ticket    string    `json:"ticket"`
		ExpiresAt time.Time `json:"expires_at"`
		ExpiresIn int       `json:"expires_in"`
	}
	res.decode(c.t, &tk)
	if res.status != 201 || !strings.HasPrefix(tk.Ticket, "cwst_") || tk.ExpiresIn < 50 || tk.ExpiresIn > 60 ||
		time.Until(tk.ExpiresAt) > time.Minute || res.header.Get("Cache-Control") != "no-store" {
		c.t.Fatalf("stream ticket: %d %s %v", res.status, res.body, res.header)
	}
	return tk.Ticket
}

// TestStreamTicketOpensOneStreamOnceOnAnyNode: on two nodes sharing
// PostgreSQL and NATS, a ticket issued by one opens the stream on either,
// exactly once however many requests race with it; the stream is the
// app's own (its events, never another app's), readable from any origin.
// Access tokens in the query stay refused, a ticket opens no other route,
// and a suspension kills the app's tickets.
func TestStreamTicketOpensOneStreamOnceOnAnyNode(t *testing.T) {
	t.Parallel()
	cfg := platformtest.ScaleOut.Config(t)
	cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	cfg.PublicURL = "http://causeway.nodes.test" // one issuer, as behind a load balancer
	n1 := platformtest.Start(t, cfg)
	second := cfg
	second.DataDir = t.TempDir()
	n2 := platformtest.Start(t, second)
	doc := openapitest.Fetch(t, n1.URL)
	a, _ := developerApp(t, n1, doc, "tickets@solarworld.example")
	b, _ := developerApp(t, n1, doc, "tickets-other@solarworld.example")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ticket := a.ticket()
	sum := sha256.Sum256([]byte(ticket))
	if got := countRows(t, n1, "SELECT COUNT(*) FROM identity_stream_tickets WHERE hash = $1", hex.EncodeToString(sum[:])); got != 1 {
		t.Errorf("%d tickets stored under the ticket's SHA-256, want 1", got)
	}
	if got := countRows(t, n1, "SELECT COUNT(*) FROM identity_stream_tickets WHERE hash = $1 OR app_id = $1 OR client_id = $1", ticket); got != 0 {
		t.Error("the ticket is stored in the clear")
	}

	// Ten requests at once, on both nodes: one stream, nine 401s.
	var mu sync.Mutex
	var won []*sseStream
	var lost []response
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 10 {
		base := []string{n1.URL, n2.URL}[i%2]
		wg.Go(func() {
			<-start
			res, s := openSSE(t, ctx, base, "?ticket="+url.QueryEscape(ticket), nil)
			mu.Lock()
			defer mu.Unlock()
			if s != nil {
				won = append(won, s)
				if res.header.Get("Access-Control-Allow-Origin") != "*" {
					t.Errorf("the stream's Access-Control-Allow-Origin = %q, want *", res.header.Get("Access-Control-Allow-Origin"))
				}
				return
			}
			lost = append(lost, res)
		})
	}
	close(start)
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d requests opened a stream with one ticket, want 1", len(won))
	}
	for _, res := range lost {
		if res.status != 401 || problemCode(t, res) != "invalid_ticket" {
			t.Errorf("a request with the used ticket: %d %s, want 401 invalid_ticket", res.status, res.body)
		}
	}

	// The stream is a's: b's event never shows, a's does, and fires
	// EventSource's onmessage (no event field).
	theirs := createCustomer(t, b)
	mine := createCustomer(t, a)
	testkit.WaitFor(t, "a's customer on the ticket's stream", func() bool { return won[0].contains(`"subject":"` + mine + `"`) })
	for _, f := range won[0].all() {
		if strings.Contains(f, theirs) {
			t.Errorf("a's stream shows b's customer: %s", f)
		}
		if strings.HasPrefix(f, "event:") || strings.Contains(f, "\nevent:") {
			t.Errorf("a frame carries an event name, so onmessage would not fire: %s", f)
		}
	}

	// Only the stream takes a ticket, and other routes do not consume it;
	// an access token in the query is refused.
	other := a.ticket()
	anon := &client{t: t, base: n2.URL, doc: doc}
	if res := anon.do("GET", "/v1/accounts?ticket="+url.QueryEscape(other), "", nil); res.status != 401 {
		t.Errorf("GET /v1/accounts with a ticket = %d, want 401", res.status)
	}
	if res, _ := openSSE(t, ctx, n2.URL, "?access_token="+url.QueryEscape(a.token), nil); res.status != 401 {
		t.Errorf("the stream with ?access_token= = %d, want 401", res.status)
	}
	if res, s := openSSE(t, ctx, n2.URL, "?ticket="+url.QueryEscape(other), nil); s == nil {
		t.Errorf("the ticket offered to another route first: %d %s", res.status, res.body)
	}

	// A suspension kills the tickets issued before it (on the node that
	// suspended at once, on the others within a second, as for tokens).
	unused := a.ticket()
	var apps struct{ Data []struct{ ID, Name string } }
	bankCall(t, n1, "GET", "/apps", nil, &apps)
	for _, app := range apps.Data {
		if code := bankCall(t, n1, "POST", "/apps/"+app.ID+"/suspend", nil, nil); code != 200 {
			t.Fatalf("suspend: %d", code)
		}
	}
	if res, _ := openSSE(t, ctx, n1.URL, "?ticket="+url.QueryEscape(unused), nil); res.status != 401 || problemCode(t, res) != "app_inactive" {
		t.Errorf("a ticket of a suspended app: %d %s, want 401 app_inactive", res.status, res.body)
	}
}

// createCustomer onboards a customer as c's app and returns its id.
func createCustomer(t *testing.T, c *client) string {
	t.Helper()
	res := c.do("POST", "/v1/customers", "/v1/customers", map[string]any{
		"type": "person", "name": "Maria Jansen", "date_of_birth": "1980-02-29", "email": "maria@example.com",
		"address": map[string]any{"line1": "Zonnelaan 7", "city": "Utrecht", "postcode": "3511 AB", "country": "NL"}})
	var cus struct{ ID string }
	if err := json.Unmarshal(res.body, &cus); res.status != 201 || err != nil {
		t.Fatalf("create customer: %d %s", res.status, res.body)
	}
	return cus.ID
}

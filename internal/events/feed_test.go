package events_test

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/causewayhq/causeway/internal/events"
)

// publishMix publishes n events for cus_a (which app_a may see), with an
// event for cus_b (which it may not) after each, and returns app_a's ids in
// publish order.
func publishMix(t *testing.T, e *env, n int) []string {
	t.Helper()
	var want []string
	for i := range n {
		data := map[string]any{"customer_id": "cus_a", "branch_id": "b" + strconv.Itoa(i), "arrived_at": "2026-03-14T09:26:53Z"}
		want = append(want, e.publish(t, cloudEvent("branch.customer.arrived", data, nil)))
		other := map[string]any{"customer_id": "cus_b", "branch_id": "x", "arrived_at": "2026-03-14T09:26:53Z"}
		e.publish(t, cloudEvent("branch.customer.arrived", other, nil))
	}
	return want
}

func TestPullPagesGiveEveryEventExactlyOnceInOrder(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.access.grant("app_a", "cus_a")
		e.access.grant("app_b", "cus_b")
		want := publishMix(t, e, 7)
		e.waitFor(t, "app_b", 7) // everything has reached the stream

		for _, limit := range []int{1, 2, 3, 50} {
			if got := ids(e.pullAll(t, "app_a", limit)); !slices.Equal(got, want) {
				t.Errorf("limit %d: pages give %v, want %v", limit, got, want)
			}
		}

		// after=<event id>: everything after that event, then on by cursor.
		var got []string
		query := "?limit=2&after=" + want[2]
		for range 10 {
			p := e.pull(t, "app_a", query)
			if len(p.Data) == 0 {
				break
			}
			got = append(got, ids(p.Data)...)
			query = "?limit=2&cursor=" + p.NextCursor
		}
		if !slices.Equal(got, want[3:]) {
			t.Errorf("after %s: %v, want %v", want[2], got, want[3:])
		}

		// Caught up: an empty page, and its cursor still points at the end,
		// so a client can keep polling with it.
		last := e.pull(t, "app_a", "?after="+want[6])
		if len(last.Data) != 0 || last.NextCursor == "" {
			t.Fatalf("after the last event: %d events, cursor %q", len(last.Data), last.NextCursor)
		}
		data := map[string]any{"customer_id": "cus_a", "branch_id": "late", "arrived_at": "2026-03-14T09:26:53Z"}
		late := e.publish(t, cloudEvent("branch.customer.arrived", data, nil))
		e.waitFor(t, "app_a", 8)
		if p := e.pull(t, "app_a", "?after="+last.NextCursor); len(p.Data) != 1 || p.Data[0].ID != late {
			t.Errorf("polling with the cursor gives %v, want [%s]", ids(p.Data), late)
		}
	})
}

func TestPullRefusesUnknownAndInvisibleEvents(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	e.access.grant("app_a", "cus_a")
	e.access.grant("app_b", "cus_b")
	want := publishMix(t, e, 2)
	bEvents := e.waitFor(t, "app_b", 2)

	for name, after := range map[string]string{
		"unknown platform id": "evt_01jqz8s0d6e8f0g2h4j6k8m0n2",
		"unknown other id":    "cam-42-9999",
		"another app's event": bEvents[0].ID,
	} {
		res := e.asApp(t, "app_a", "/v1/events?after="+after)
		if code, _ := res.problem(t); res.status != http.StatusNotFound || code != "unknown_event" {
			t.Errorf("%s: = %d %s, want 404 unknown_event", name, res.status, res.body)
		}
		e.doc.Check(t, http.MethodGet, "/v1/events", res.status, res.header.Get("Content-Type"), res.body)
	}
	if p := e.pull(t, "app_a", "?after="+want[0]); len(p.Data) != 1 || p.Data[0].ID != want[1] {
		t.Errorf("after a visible event: %v, want [%s]", ids(p.Data), want[1])
	}
	for _, q := range []string{"?limit=201", "?limit=-1", "?cursor=bm90LWEtY3Vyc29y", "?after=x&cursor=ZXZlbnRzOjE"} {
		if res := e.asApp(t, "app_a", "/v1/events"+q); res.status < 400 || res.status >= 500 {
			t.Errorf("GET /v1/events%s = %d %s, want a 4xx", q, res.status, res.body)
		}
	}
	if res := e.request(t, http.MethodGet, "/v1/events", nil, nil); res.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/events without an app = %d, want 401", res.status)
	}
}

// TestPullFindsEventsWithProducerIDs: an event id that is not a platform
// id carries no time; the feed still finds it by searching from the start.
func TestPullFindsEventsWithProducerIDs(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	e.access.grant("app_a", "cus_a")
	data := map[string]any{"customer_id": "cus_a", "branch_id": "b", "arrived_at": "2026-03-14T09:26:53Z"}
	first := e.publish(t, cloudEvent("branch.customer.arrived", data, map[string]any{"id": "cam-1"}))
	second := e.publish(t, cloudEvent("branch.customer.arrived", data, map[string]any{"id": "cam-2"}))
	e.waitFor(t, "app_a", 2)
	if p := e.pull(t, "app_a", "?after="+first); len(p.Data) != 1 || p.Data[0].ID != second {
		t.Errorf("after %s: %v, want [%s]", first, ids(p.Data), second)
	}
}

package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

func TestCommittedEventsReachTheStreamOnceAsCloudEventsWithRoutingHeaders(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		when := time.Date(2026, 3, 29, 1, 30, 0, 123456000, time.UTC)
		withIDs := event("payment.completed", 1)
		withIDs.ID = ids.New("evt")
		withIDs.Time = when
		withIDs.AppID = "app_solarworld"
		withIDs.CustomerID = "cus_alice"
		noData := outbox.Event{Type: "branch.customer.arrived", Source: "/bank/branch-cam", CustomerID: "cus_bob"}
		commit(t, e.db, withIDs, event("payment.rejected", 2))
		commit(t, e.db, noData)
		sent := []outbox.Event{withIDs, event("payment.rejected", 2), noData}

		r := e.relay(t, outbox.RelayOptions{})
		if n := flush(t, r); n != 3 {
			t.Errorf("Flush published %d, want 3", n)
		}
		if n := flush(t, r); n != 0 {
			t.Errorf("second Flush published %d, want 0", n)
		}
		if n := pending(t, e.db); n != 0 {
			t.Errorf("Pending = %d after Flush, want 0", n)
		}

		msgs := received(t, e.stream)
		if len(msgs) != len(sent) {
			t.Fatalf("stream holds %d messages, want %d", len(msgs), len(sent))
		}
		var gotIDs []string
		for i, m := range msgs {
			want := sent[i]
			var ce map[string]any
			if err := json.Unmarshal(m.Data(), &ce); err != nil {
				t.Fatalf("message %d is not JSON: %v\n%s", i, err, m.Data())
			}
			id, _ := ce["id"].(string)
			gotIDs = append(gotIDs, id)
			if !ids.Valid(id, "evt") {
				t.Errorf("message %d: id %q is not an evt_ id", i, id)
			}
			if want.ID != "" && id != want.ID {
				t.Errorf("message %d: id %q, want %q", i, id, want.ID)
			}
			checkCloudEvent(t, ce, want)
			// And as the CloudEvents SDK reads it, as subscribers will.
			var sdk cloudevents.Event
			if err := json.Unmarshal(m.Data(), &sdk); err != nil {
				t.Errorf("message %d: the CloudEvents SDK cannot read it: %v", i, err)
			} else if err := sdk.Validate(); err != nil {
				t.Errorf("message %d: the CloudEvents SDK finds it invalid: %v", i, err)
			} else if sdk.ID() != id || sdk.Type() != want.Type || sdk.SpecVersion() != "1.0" {
				t.Errorf("message %d: SDK reads id %q type %q specversion %q", i, sdk.ID(), sdk.Type(), sdk.SpecVersion())
			}
			if !want.Time.IsZero() && ce["time"] != "2026-03-29T01:30:00.123456Z" {
				t.Errorf("message %d: time %v, want 2026-03-29T01:30:00.123456Z", i, ce["time"])
			}

			if got := m.Subject(); got != outbox.Subject(e.bus, want.Type) || !strings.HasSuffix(got, ".events."+want.Type) {
				t.Errorf("message %d: subject %q, want %q", i, got, outbox.Subject(e.bus, want.Type))
			}
			h := m.Headers()
			for name, value := range map[string]string{
				jetstream.MsgIDHeader:   id,
				outbox.HeaderEventType:  want.Type,
				outbox.HeaderAppID:      want.AppID,
				outbox.HeaderCustomerID: want.CustomerID,
			} {
				if got := h.Get(name); got != value {
					t.Errorf("message %d: header %s = %q, want %q", i, name, got, value)
				}
			}
			for _, secret := range []string{want.AppID, want.CustomerID} {
				if secret != "" && strings.Contains(string(m.Data()), secret) {
					t.Errorf("message %d: body reveals %q to every subscriber:\n%s", i, secret, m.Data())
				}
			}
		}
		if !slices.IsSorted(gotIDs) {
			t.Errorf("published out of id order: %v", gotIDs)
		}
	})
}

// checkCloudEvent checks ce against the CloudEvents 1.0 JSON format and
// against the event it came from.
func checkCloudEvent(t *testing.T, ce map[string]any, want outbox.Event) {
	t.Helper()
	for _, attr := range []string{"specversion", "id", "type", "source", "time"} {
		if s, _ := ce[attr].(string); s == "" {
			t.Errorf("required attribute %q missing or empty in %v", attr, ce)
		}
	}
	if ce["specversion"] != "1.0" || ce["type"] != want.Type || ce["source"] != want.Source {
		t.Errorf("specversion/type/source = %v/%v/%v, want 1.0/%s/%s", ce["specversion"], ce["type"], ce["source"], want.Type, want.Source)
	}
	if subject, ok := ce["subject"]; want.Subject != "" && subject != want.Subject || want.Subject == "" && ok {
		t.Errorf("subject = %v, want %q", subject, want.Subject)
	}
	if ts, _ := ce["time"].(string); ts != "" {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
			t.Errorf("time %q is not RFC 3339 in UTC: %v", ts, err)
		}
	}
	if len(want.Data) == 0 {
		if _, ok := ce["data"]; ok {
			t.Errorf("event without data has data %v", ce["data"])
		}
		return
	}
	if ce["datacontenttype"] != "application/json" {
		t.Errorf("datacontenttype = %v, want application/json", ce["datacontenttype"])
	}
	var wantData any
	json.Unmarshal(want.Data, &wantData)
	if !reflect.DeepEqual(ce["data"], wantData) {
		t.Errorf("data = %v, want %v", ce["data"], wantData)
	}
	for attr := range ce {
		switch attr {
		case "specversion", "id", "type", "source", "subject", "time", "datacontenttype", "data":
		default:
			t.Errorf("unexpected attribute %q in the body", attr)
		}
	}
}

func TestRolledBackEventsAreNeverPublished(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		boom := errors.New("payment failed after the event was written")
		err := e.db.Tx(ctx, func(tx *sql.Tx) error {
			if err := outbox.Append(ctx, tx, event("payment.completed", 1), event("transaction.booked", 1)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx = %v, want the transaction's own error", err)
		}
		if n := pending(t, e.db); n != 0 {
			t.Errorf("Pending = %d after a rollback, want 0", n)
		}
		kept := event("payment.rejected", 2)
		commit(t, e.db, kept)

		if n := flush(t, e.relay(t, outbox.RelayOptions{})); n != 1 {
			t.Errorf("Flush published %d, want only the committed event", n)
		}
		msgs := received(t, e.stream)
		if len(msgs) != 1 || msgs[0].Headers().Get(outbox.HeaderEventType) != kept.Type {
			t.Errorf("stream holds %d messages, want only the committed %s", len(msgs), kept.Type)
		}
	})
}

// TestRepublishAfterCrashIsDeduplicated simulates a relay that died after
// JetStream stored its batch but before it marked the rows: the rows are
// unpublished again, and the restarted relay publishes them a second time.
func TestRepublishAfterCrashIsDeduplicated(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for i := range 5 {
			commit(t, e.db, event("payment.completed", i))
		}
		opts := outbox.RelayOptions{NodeID: "node-1"}
		if n := flush(t, e.relay(t, opts)); n != 5 {
			t.Fatalf("Flush published %d, want 5", n)
		}
		if _, err := e.db.ExecContext(context.Background(), "UPDATE outbox_events SET published_at = NULL"); err != nil {
			t.Fatal(err)
		}
		if n := pending(t, e.db); n != 5 {
			t.Fatalf("Pending = %d after the simulated crash, want 5", n)
		}

		restarted := e.relay(t, opts)
		if n := flush(t, restarted); n != 5 {
			t.Errorf("restarted relay published %d, want all 5 again", n)
		}
		if n := streamMsgs(t, e.stream); n != 5 {
			t.Errorf("stream holds %d messages, want 5: the re-publish must be deduplicated", n)
		}
		if n := pending(t, e.db); n != 0 {
			t.Errorf("Pending = %d, want 0", n)
		}
	})
}

func TestPendingCountsCommittedUnpublishedEvents(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		r := e.relay(t, outbox.RelayOptions{BatchSize: 2})
		steps := []struct {
			name string
			do   func()
			want int
		}{
			{"empty outbox", func() {}, 0},
			{"three committed", func() {
				commit(t, e.db, event("payment.completed", 1), event("payment.completed", 2))
				commit(t, e.db, event("payment.completed", 3))
			}, 3},
			{"rolled back", func() {
				e.db.Tx(ctx, func(tx *sql.Tx) error {
					outbox.Append(ctx, tx, event("payment.completed", 4))
					return errors.New("rollback")
				})
			}, 3},
			{"flushed in batches smaller than the backlog", func() {
				if n := flush(t, r); n != 3 {
					t.Errorf("Flush published %d, want 3", n)
				}
			}, 0},
			{"one more", func() { commit(t, e.db, event("payment.held", 5)) }, 1},
		}
		for _, s := range steps {
			s.do()
			if got := pending(t, e.db); got != s.want {
				t.Errorf("%s: Pending = %d, want %d", s.name, got, s.want)
			}
		}
	})
}

func TestPruneDeletesOnlyPublishedRowsOlderThanTheCutoff(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		r := e.relay(t, outbox.RelayOptions{})
		commit(t, e.db, event("payment.completed", 1), event("payment.completed", 2))
		flush(t, r)
		published := time.Now()
		// Old events the relay has not published yet (say, the bus was
		// down for a month) must survive any prune.
		old := event("payment.completed", 3)
		old.Time = time.Now().AddDate(0, -1, 0)
		commit(t, e.db, old, event("payment.completed", 4))

		if n, err := r.Prune(ctx, published.Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("Prune before publication = %d, %v; want 0", n, err)
		}
		if n, err := r.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 2 {
			t.Errorf("Prune = %d, %v; want the 2 published rows", n, err)
		}
		if got := rows(t, e.db); got != 2 {
			t.Errorf("%d rows left, want the 2 unpublished", got)
		}
		if got := pending(t, e.db); got != 2 {
			t.Errorf("Pending = %d, want 2", got)
		}
	})
}

func TestPruneDeletesLargeBacklogsInChunks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrate(t, db)
		const n = 1500 // more than one pruning chunk
		batch := make([]outbox.Event, n)
		for i := range batch {
			batch[i] = event("transaction.booked", i)
		}
		commit(t, db, batch...)
		if _, err := db.ExecContext(ctx, "UPDATE outbox_events SET published_at = $1", store.Micros(time.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		// Prune needs no bus; a relay without one is enough.
		r := outbox.NewRelay(db, bustest.OpenEmbedded(t, t.TempDir()), outbox.RelayOptions{Logger: testLogger(t)})
		if got, err := r.Prune(ctx, time.Now()); err != nil || got != n {
			t.Errorf("Prune = %d, %v; want %d", got, err, n)
		}
		if got := rows(t, db); got != 0 {
			t.Errorf("%d rows left, want 0", got)
		}
	})
}

// TestOversizedEventIsSkippedInsteadOfBlockingTheOutbox: an event larger
// than the bus accepts can never be published; holding it back would hold
// back every event after it, so the relay logs it as an error and moves on.
func TestOversizedEventIsSkippedInsteadOfBlockingTheOutbox(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		huge := event("payment.completed", 2)
		huge.Data = json.RawMessage(`{"blob":"` + strings.Repeat("x", int(e.bus.Conn().MaxPayload())) + `"}`)
		commit(t, e.db, event("payment.completed", 1), huge, event("payment.completed", 3))

		var errs atomic.Int64
		r := e.relay(t, outbox.RelayOptions{Logger: slog.New(countWarnings{testLogger(t).Handler(), &errs})})
		if n := flush(t, r); n != 2 {
			t.Errorf("Flush published %d, want the 2 that fit", n)
		}
		if n := pending(t, e.db); n != 0 {
			t.Errorf("Pending = %d, want 0", n)
		}
		if n := streamMsgs(t, e.stream); n != 2 {
			t.Errorf("stream holds %d messages, want 2", n)
		}
		if errs.Load() == 0 {
			t.Error("the skipped event was not logged")
		}
	})
}

func TestAppendRejectsEventsTheRelayCouldNeverPublish(t *testing.T) {
	valid := event("payment.completed", 1)
	tests := []struct {
		name  string
		event func(e outbox.Event) outbox.Event
	}{
		{"no type", func(e outbox.Event) outbox.Event { e.Type = ""; return e }},
		{"empty type token", func(e outbox.Event) outbox.Event { e.Type = "payment..completed"; return e }},
		{"trailing dot", func(e outbox.Event) outbox.Event { e.Type = "payment."; return e }},
		{"wildcard token", func(e outbox.Event) outbox.Event { e.Type = "payment.*"; return e }},
		{"full wildcard", func(e outbox.Event) outbox.Event { e.Type = "payment.>"; return e }},
		{"whitespace", func(e outbox.Event) outbox.Event { e.Type = "payment completed"; return e }},
		{"no source", func(e outbox.Event) outbox.Event { e.Source = ""; return e }},
		{"data not JSON", func(e outbox.Event) outbox.Event { e.Data = json.RawMessage(`{"id":`); return e }},
		{"data not UTF-8", func(e outbox.Event) outbox.Event { e.Data = json.RawMessage("{\"id\":\"\xff\"}"); return e }},
		{"source not UTF-8", func(e outbox.Event) outbox.Event { e.Source = "/bank/\xff"; return e }},
		{"NUL in subject", func(e outbox.Event) outbox.Event { e.Subject = "pay_\x00"; return e }},
		{"header injection in app id", func(e outbox.Event) outbox.Event { e.AppID = "app_1\r\nCauseway-Customer-Id: cus_x"; return e }},
		{"newline in id", func(e outbox.Event) outbox.Event { e.ID = "evt_1\n"; return e }},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrate(t, db)
		for _, tt := range tests {
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				// A valid event first: the whole call must fail, and the
				// caller's rollback takes the valid row with it.
				return outbox.Append(ctx, tx, valid, tt.event(valid))
			})
			if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != "invalid_event" {
				t.Errorf("%s: Append = %v, want an invalid_event error", tt.name, err)
			}
		}
		if got := rows(t, db); got != 0 {
			t.Errorf("%d rows written, want 0", got)
		}
	})
}

func TestAppendWritesLargeBatchesInOneCall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		migrate(t, db)
		batch := make([]outbox.Event, 250) // several INSERT chunks
		for i := range batch {
			batch[i] = event("transaction.booked", i)
		}
		commit(t, db, batch...)
		if got := pending(t, db); got != len(batch) {
			t.Errorf("Pending = %d, want %d", got, len(batch))
		}
	})
}

func TestCloudEventEncoding(t *testing.T) {
	at := time.Date(2026, 3, 29, 3, 30, 0, 5000, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name  string
		event outbox.Event
		want  string
	}{
		{
			name: "with data, time in UTC",
			event: outbox.Event{ID: "evt_1", Type: "payment.completed", Source: "/causeway/sandbox-bank", Subject: "pay_1",
				Time: at, Data: json.RawMessage(`{"id": "pay_1", "reference": "<R&D>"}`), AppID: "app_1", CustomerID: "cus_1"},
			want: `{"specversion":"1.0","id":"evt_1","type":"payment.completed","source":"/causeway/sandbox-bank","subject":"pay_1","time":"2026-03-29T01:30:00.000005Z","datacontenttype":"application/json","data":{"id":"pay_1","reference":"<R&D>"}}`,
		},
		{
			name:  "without data or subject",
			event: outbox.Event{ID: "evt_2", Type: "branch.customer.arrived", Source: "/bank/branch", Time: at},
			want:  `{"specversion":"1.0","id":"evt_2","type":"branch.customer.arrived","source":"/bank/branch","time":"2026-03-29T01:30:00.000005Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := outbox.CloudEvent(tt.event)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("CloudEvent =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// FuzzCloudEvent: every event Validate accepts encodes to CloudEvents JSON
// that carries its attributes and data unchanged, and its type makes a
// subject of plain tokens.
func FuzzCloudEvent(f *testing.F) {
	f.Add("payment.completed", "/causeway/sandbox-bank", "pay_1", `{"id":"pay_1","reference":"<R&D> \u00e9"}`)
	f.Add("branch.customer.arrived", "/bank/branch?cam=3&x=<y>", "", "")
	f.Add("a-b_c.D9", "src", "sub\"ject", `[1, 2.5e3, null, "\ud83d\ude00"]`)
	f.Fuzz(func(t *testing.T, typ, source, subject, data string) {
		e := outbox.Event{ID: "evt_1", Type: typ, Source: source, Subject: subject, Time: time.Unix(1, 2), Data: json.RawMessage(data)}
		if e.Validate() != nil {
			return
		}
		for tok := range strings.SplitSeq(typ, ".") {
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
				t.Fatalf("Validate accepted type %q, which is no plain subject", typ)
			}
		}
		body, err := outbox.CloudEvent(e)
		if err != nil {
			t.Fatalf("CloudEvent of a valid event: %v", err)
		}
		var ce struct {
			SpecVersion, ID, Type, Source, Subject, Time string
			Data                                         json.RawMessage
		}
		if err := json.Unmarshal(body, &ce); err != nil {
			t.Fatalf("body is not JSON: %v\n%s", err, body)
		}
		if ce.SpecVersion != "1.0" || ce.ID != e.ID || ce.Type != typ || ce.Source != source || ce.Subject != subject {
			t.Errorf("attributes changed: %+v from %+v", ce, e)
		}
		var want, got any
		if data != "" {
			json.Unmarshal([]byte(data), &want)
			json.Unmarshal(ce.Data, &got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("data %s, want %s", ce.Data, data)
		}
	})
}

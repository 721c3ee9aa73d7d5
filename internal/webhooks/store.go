package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// record is a subscription row: the API's view and the sealed secrets.
type record struct {
	Subscription
	sealedSecret   string
	sealedPrevious string
}

const subColumns = "id, app_id, url, event_types, filter, ordered, status, disabled_reason, secret, " +
	"previous_secret, previous_expires_at, failing_since, created_at, updated_at"

func scanRecord(row store.Scanner) (*record, error) {
	var (
		r                     record
		types                 string
		prevExpires, failing  sql.NullInt64
		createdAt, updatedAtU int64
	)
	err := row.Scan(&r.ID, &r.AppID, &r.URL, &types, &r.Filter, &r.Ordered, &r.Status, &r.DisabledReason,
		&r.sealedSecret, &r.sealedPrevious, &prevExpires, &failing, &createdAt, &updatedAtU)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(types), &r.EventTypes); err != nil {
		return nil, fmt.Errorf("webhooks: subscription %s: event types: %w", r.ID, err)
	}
	if prevExpires.Valid {
		t := store.FromMicros(prevExpires.Int64)
		r.PreviousSecretExpiresAt = &t
	}
	if failing.Valid {
		t := store.FromMicros(failing.Int64)
		r.FailingSince = &t
	}
	r.CreatedAt = store.FromMicros(createdAt)
	r.UpdatedAt = store.FromMicros(updatedAtU)
	return &r, nil
}

func notFound(id string) error {
	return causeway.Errorf(causeway.ENOTFOUND, "webhook_not_found", "no webhook subscription %s", id)
}

func insertSubscription(ctx context.Context, db *store.DB, r *record) error {
	types, _ := json.Marshal(r.EventTypes)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO webhook_subscriptions ("+subColumns+") VALUES "+
			"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $12)",
			r.ID, r.AppID, r.URL, string(types), r.Filter, r.Ordered, r.Status, r.DisabledReason,
			r.sealedSecret, r.sealedPrevious, store.Micros(r.CreatedAt), store.Micros(r.UpdatedAt))
		return err
	})
}

// owner says whose subscriptions a caller may see and change: an app its
// own (appID), the bank every one (all), anyone else none.
func owner(c auth.Caller) (appID string, all, ok bool) {
	if c.IsBank() {
		return "", true, true
	}
	appID, ok = c.App()
	return appID, false, ok
}

// getSubscription returns subscription id if the caller may see it;
// another app's id is not found, never forbidden.
func getSubscription(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, caller auth.Caller, id string) (*record, error) {
	appID, all, ok := owner(caller)
	if !ok {
		return nil, notFound(id)
	}
	query := "SELECT " + subColumns + " FROM webhook_subscriptions WHERE id = $1"
	args := []any{id}
	if !all {
		query += " AND app_id = $2"
		args = append(args, appID)
	}
	r, err := scanRecord(q.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	return r, nil
}

// listSubscriptions returns a page of the subscriptions the caller may
// see in id order, optionally of one status, after the id after.
func listSubscriptions(ctx context.Context, db *store.DB, caller auth.Caller, status string, limit int, after string) (*page.Page[*record], error) {
	appID, all, ok := owner(caller)
	if !ok {
		return &page.Page[*record]{Data: []*record{}}, nil
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !all {
		add("app_id = $%d", appID)
	}
	if status != "" {
		add("status = $%d", status)
	}
	if after != "" {
		add("id > $%d", after)
	}
	query := "SELECT " + subColumns + " FROM webhook_subscriptions"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY id LIMIT %d", limit+1)
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	return page.Collect(rows, limit, scanRecord, func(r *record) string { return r.ID })
}

// activeRecords returns every active subscription, for the dispatcher.
func activeRecords(ctx context.Context, db *store.DB) ([]*record, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+subColumns+" FROM webhook_subscriptions WHERE status = $1", StatusActive)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	var out []*record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, store.Classify(err)
		}
		out = append(out, r)
	}
	return out, store.Classify(rows.Err())
}

// subscriptionExists reports which of ids still have a row.
func existingIDs(ctx context.Context, db *store.DB) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT id FROM webhook_subscriptions")
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, store.Classify(err)
		}
		out[id] = true
	}
	return out, store.Classify(rows.Err())
}

// updateRecord writes a subscription's mutable fields back, if its status
// is still from; otherwise it is ECONFLICT webhook_changed.
func updateRecord(ctx context.Context, tx *sql.Tx, r *record, from string) error {
	types, _ := json.Marshal(r.EventTypes)
	var prevExpires, failing any
	if r.PreviousSecretExpiresAt != nil {
		prevExpires = store.Micros(*r.PreviousSecretExpiresAt)
	}
	if r.FailingSince != nil {
		failing = store.Micros(*r.FailingSince)
	}
	res, err := tx.ExecContext(ctx, `UPDATE webhook_subscriptions SET url = $2, event_types = $3, filter = $4,
		ordered = $5, status = $6, disabled_reason = $7, secret = $8, previous_secret = $9,
		previous_expires_at = $10, failing_since = $11, updated_at = $12 WHERE id = $1 AND status = $13`,
		r.ID, r.URL, string(types), r.Filter, r.Ordered, r.Status, r.DisabledReason, r.sealedSecret,
		r.sealedPrevious, prevExpires, failing, store.Micros(r.UpdatedAt), from)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return causeway.Errorf(causeway.ECONFLICT, "webhook_changed", "the subscription changed meanwhile; read it again")
	}
	return nil
}

const deliveryColumns = "id, subscription_id, event_id, event_type, stream_seq, attempt, origin, outcome, " +
	"status_code, latency_us, error, response_snippet, created_at"

// deliveryChunk bounds the attempts of one INSERT (13 parameters each).
const deliveryChunk = 200

// insertDeliveries writes attempts in as few statements as their number
// allows: on PostgreSQL every statement is a round trip the recorder,
// and the attempts waiting for it, would wait for.
func insertDeliveries(ctx context.Context, tx *sql.Tx, dialect store.Dialect, ds []*Delivery) error {
	for chunk := range slices.Chunk(ds, deliveryChunk) {
		args := make([]any, 0, 13*len(chunk))
		for _, d := range chunk {
			args = append(args, d.ID, d.SubscriptionID, d.EventID, d.EventType, int64(d.StreamSeq), d.Attempt, d.Origin,
				d.Outcome, d.StatusCode, int64(d.LatencyMS*1000), d.Error, d.Snippet, store.Micros(d.CreatedAt))
		}
		query := "INSERT INTO webhook_deliveries (" + deliveryColumns + ") VALUES " + dialect.Values(len(chunk), 13)
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return err
		}
	}
	return nil
}

func scanDelivery(row store.Scanner) (*Delivery, error) {
	var (
		d                  Delivery
		seq, latency, crea int64
	)
	err := row.Scan(&d.ID, &d.SubscriptionID, &d.EventID, &d.EventType, &seq, &d.Attempt, &d.Origin, &d.Outcome,
		&d.StatusCode, &latency, &d.Error, &d.Snippet, &crea)
	if err != nil {
		return nil, err
	}
	d.StreamSeq = uint64(seq)
	d.LatencyMS = float64(latency) / 1000
	d.CreatedAt = store.FromMicros(crea)
	return &d, nil
}

// DeliveryFilter selects delivery records.
type DeliveryFilter struct {
	Outcome   string
	EventType string
	EventID   string
	Limit     int
	Cursor    string
}

// listDeliveries returns a page of a subscription's deliveries, newest
// first; f.Cursor is the decoded key of the last delivery of the page
// before.
func listDeliveries(ctx context.Context, db *store.DB, subID string, f DeliveryFilter) (*page.Page[*Delivery], error) {
	where := []string{"subscription_id = $1"}
	args := []any{subID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Outcome != "" {
		add("outcome = $%d", f.Outcome)
	}
	if f.EventType != "" {
		add("event_type = $%d", f.EventType)
	}
	if f.EventID != "" {
		add("event_id = $%d", f.EventID)
	}
	if f.Cursor != "" {
		add("id < $%d", f.Cursor)
	}
	query := fmt.Sprintf("SELECT %s FROM webhook_deliveries WHERE %s ORDER BY id DESC LIMIT %d",
		deliveryColumns, strings.Join(where, " AND "), f.Limit+1)
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	return page.Collect(rows, f.Limit, scanDelivery, func(d *Delivery) string { return d.ID })
}

func getDelivery(ctx context.Context, db *store.DB, subID, id string) (*Delivery, error) {
	d, err := scanDelivery(db.QueryRowContext(ctx,
		"SELECT "+deliveryColumns+" FROM webhook_deliveries WHERE id = $1 AND subscription_id = $2", id, subID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "delivery_not_found", "no delivery %s for webhook %s", id, subID)
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	return d, nil
}

// Jobs are the webhooks' periodic jobs for the cluster's leader: pruning
// delivery records past Options.DeliveryRetention, hourly.
func (s *Service) Jobs() []leader.Job {
	return []leader.Job{{Name: "prune webhook delivery records", Every: time.Hour, Do: func(ctx context.Context) (int64, error) {
		return pruneDeliveries(ctx, s.db, s.opts.Now().Add(-s.opts.DeliveryRetention))
	}}}
}

// pruneDeliveries deletes delivery records older than before.
func pruneDeliveries(ctx context.Context, db *store.DB, before time.Time) (int64, error) {
	var n int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM webhook_deliveries WHERE created_at < $1", store.Micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

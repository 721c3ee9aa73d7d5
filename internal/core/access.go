package core

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/causewayhq/causeway/internal/store"
)

// Every event about a customer is checked against core_customer_access
// before it reaches an app: once per webhook subscription, stream and feed
// reader. Under load those checks would each hold a database connection
// for a round trip, and crowd out the payments that make the events. The
// checks asked at one moment are answered together instead, by one query
// on one connection. Nothing is cached: each answer is read after it was
// asked, so a grant or a revocation applies to the next check, on every
// node.

// maxAccessBatch bounds the pairs of one query (two parameters each).
const maxAccessBatch = 256

// accessBatchTimeout bounds one batch's query. A batch runs apart from its
// callers' contexts, so that one caller giving up fails no other.
const accessBatchTimeout = 10 * time.Second

// accessCheck is one app and customer waiting for an answer.
type accessCheck struct {
	appID, customerID string
	done              chan accessAnswer // buffered: the batch never waits on a caller
}

type accessAnswer struct {
	ok  bool
	err error
}

// CanSeeCustomer reports whether an app may see a customer: it created it,
// was seeded with it, or was granted it. Event visibility uses it.
func (b *Bank) CanSeeCustomer(ctx context.Context, appID, customerID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	c := &accessCheck{appID: appID, customerID: customerID, done: make(chan accessAnswer, 1)}
	b.access.Add(c)
	select {
	case a := <-c.done:
		return a.ok, a.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// checkAccess answers a batch of checks with one query.
func (b *Bank) checkAccess(checks []*accessCheck) {
	type pair struct{ app, customer string }
	ctx, cancel := context.WithTimeout(context.Background(), accessBatchTimeout)
	defer cancel()
	asked := make(map[pair]bool, len(checks))
	var q strings.Builder
	args := make([]any, 0, 2*len(checks))
	q.WriteString("SELECT app_id, customer_id FROM core_customer_access WHERE (app_id, customer_id) IN (")
	for _, c := range checks {
		p := pair{c.appID, c.customerID}
		if _, dup := asked[p]; dup {
			continue
		}
		asked[p] = false
		if len(args) > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "($%d, $%d)", len(args)+1, len(args)+2)
		args = append(args, c.appID, c.customerID)
	}
	q.WriteString(")")
	err := func() error {
		rows, err := b.db.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p pair
			if err := rows.Scan(&p.app, &p.customer); err != nil {
				return err
			}
			asked[p] = true
		}
		return rows.Err()
	}()
	err = store.Classify(err)
	for _, c := range checks {
		c.done <- accessAnswer{ok: err == nil && asked[pair{c.appID, c.customerID}], err: err}
	}
}

package core

import (
	"context"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// Grant is the bank's decision to let an app see a customer it did not
// create (see GrantCustomer).
type Grant struct {
	AppID        string    `json:"app_id"`
	CustomerID   string    `json:"customer_id"`
	CustomerName string    `json:"customer_name"`
	CreatedAt    time.Time `json:"created_at"`
}

// Grants lists the bank's grants, of one app when appID is set. Access an app has because it created
// or was seeded with a customer is not a grant and is not listed. The
// list is ordered by app, then customer. Only the bank may list them.
func (b *Bank) Grants(ctx context.Context, caller auth.Caller, appID string, limit int, cursor string) (*page.Page[*Grant], error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	limit, err := page.Limit(limit)
	if err != nil {
		return nil, err
	}
	afterApp, afterCustomer := "", ""
	if cursor != "" {
		key, err := page.Key(cursor, 2)
		if err != nil {
			return nil, err
		}
		afterApp, afterCustomer = key[0], key[1]
	}
	query := `SELECT a.app_id, a.customer_id, c.name, a.created_at
		FROM core_customer_access a JOIN core_customers c ON c.id = a.customer_id
		WHERE a.source = $1 AND (a.app_id > $2 OR (a.app_id = $2 AND a.customer_id > $3))`
	args := []any{AccessGranted, afterApp, afterCustomer, limit + 1}
	if appID != "" {
		query += ` AND a.app_id = $5`
		args = append(args, appID)
	}
	rows, err := b.db.QueryContext(ctx, query+` ORDER BY a.app_id, a.customer_id LIMIT $4`, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	pg := &page.Page[*Grant]{Data: []*Grant{}}
	for rows.Next() {
		var g Grant
		var created int64
		if err := rows.Scan(&g.AppID, &g.CustomerID, &g.CustomerName, &created); err != nil {
			return nil, store.Classify(err)
		}
		g.CreatedAt = store.FromMicros(created)
		pg.Data = append(pg.Data, &g)
	}
	if err := rows.Err(); err != nil {
		return nil, store.Classify(err)
	}
	if len(pg.Data) > limit {
		pg.Data = pg.Data[:limit]
		last := pg.Data[limit-1]
		pg.NextCursor = page.Cursor(last.AppID, last.CustomerID)
	}
	return pg, nil
}

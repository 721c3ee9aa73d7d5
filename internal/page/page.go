// Package page is the one implementation of list paging for every list in
// the API: `?limit=&cursor=` in, `next_cursor` out. A cursor is opaque to
// clients: base64url of a JSON array holding the sort key of the last item
// returned (usually its id, since ids sort by creation time).
package page

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/store"
)

// Page sizes.
const (
	DefaultSize = 50
	MaxSize     = 200
)

// Cursor encodes the sort key of the last item of a page.
func Cursor(key ...string) string {
	b, _ := json.Marshal(key)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Key decodes a cursor whose key has n parts.
func Key(cursor string, n int) ([]string, error) {
	bad := causeway.Errorf(causeway.EBADREQUEST, "invalid_cursor", "cursor is malformed; pass next_cursor from the previous page unchanged")
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, bad
	}
	var key []string
	if err := json.Unmarshal(raw, &key); err != nil || len(key) != n {
		return nil, bad
	}
	return key, nil
}

// Args checks limit (0 means DefaultSize) and decodes a one-part cursor;
// the key is "" for the first page.
func Args(limit int, cursor string) (int, string, error) {
	limit, err := Limit(limit)
	if err != nil {
		return 0, "", err
	}
	if cursor == "" {
		return limit, "", nil
	}
	key, err := Key(cursor, 1)
	if err != nil {
		return 0, "", err
	}
	return limit, key[0], nil
}

// Limit checks a page size: 0 means DefaultSize.
func Limit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultSize, nil
	case limit < 0 || limit > MaxSize:
		return 0, causeway.Errorf(causeway.EINVALID, "invalid_limit", "limit must be between 1 and %d", MaxSize)
	}
	return limit, nil
}

// Page is one page of a list: its items, oldest or newest first as the
// list says, and the cursor of the next page ("" on the last page).
type Page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// Of makes a page from up to limit+1 items read in the list's order: an
// item beyond limit says there is a next page, which starts after the
// key of the last item kept.
func Of[T any](items []T, limit int, key func(T) string) *Page[T] {
	p := &Page[T]{Data: items}
	if len(items) > limit {
		p.Data = items[:limit]
		p.NextCursor = Cursor(key(p.Data[limit-1]))
	}
	if p.Data == nil {
		p.Data = []T{}
	}
	return p
}

// Collect reads the rows of a list, queried for up to limit+1 in the
// list's order, and makes the page as Of does: scan reads one row, key
// gives an item's sort key. It closes rows. Errors are classified as the
// store does (see store.Classify).
func Collect[T any](rows *sql.Rows, limit int, scan func(store.Scanner) (T, error), key func(T) string) (*Page[T], error) {
	defer rows.Close()
	items := make([]T, 0, limit+1)
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return nil, store.Classify(err)
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return nil, store.Classify(err)
	}
	return Of(items, limit, key), nil
}

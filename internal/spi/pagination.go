package spi

import (
	"encoding/base64"
	"encoding/json"

	"github.com/causewayhq/causeway"
)

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// A cursor is opaque to clients: base64url of a JSON array holding the id
// of the last item returned (ids sort by creation time).
func encodeCursor(id string) string {
	b, _ := json.Marshal([]string{id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// pageArgs checks limit and decodes cursor ("" for the first page).
func pageArgs(limit int, cursor string) (int, string, error) {
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 0 || limit > MaxPageSize:
		return 0, "", causeway.Errorf(causeway.EINVALID, "invalid_limit", "limit must be between 1 and %d", MaxPageSize)
	}
	if cursor == "" {
		return limit, "", nil
	}
	bad := causeway.Errorf(causeway.EBADREQUEST, "invalid_cursor", "cursor is malformed; pass next_cursor from the previous page unchanged")
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, "", bad
	}
	var key []string
	if err := json.Unmarshal(raw, &key); err != nil || len(key) != 1 {
		return 0, "", bad
	}
	return limit, key[0], nil
}

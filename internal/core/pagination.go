package core

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

// A cursor is opaque to clients: base64url of a JSON array of the sort key
// of the last item returned.
func encodeCursor(key ...string) string {
	b, _ := json.Marshal(key)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(cursor string, n int) ([]string, error) {
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

// pageArgs checks limit and decodes a one-part cursor ("" for the start).
func pageArgs(limit int, cursor string) (int, string, error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return 0, "", err
	}
	if cursor == "" {
		return limit, "", nil
	}
	key, err := decodeCursor(cursor, 1)
	if err != nil {
		return 0, "", err
	}
	return limit, key[0], nil
}

func checkLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageSize, nil
	case limit < 0 || limit > MaxPageSize:
		return 0, causeway.Errorf(causeway.EINVALID, "invalid_limit", "limit must be between 1 and %d", MaxPageSize)
	}
	return limit, nil
}

package store

// Scanner is a row to read: *sql.Row or *sql.Rows, so one scan function
// reads a row from either.
type Scanner interface {
	Scan(dest ...any) error
}

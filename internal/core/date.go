package core

import (
	"time"

	"github.com/causewayhq/causeway"
)

// Date is a calendar day, written in JSON as "YYYY-MM-DD".
type Date struct{ time.Time }

// MarshalJSON writes the date as a JSON string "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.Format(time.DateOnly) + `"`), nil
}

// UnmarshalJSON reads a JSON string "YYYY-MM-DD".
func (d *Date) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return causeway.Errorf(causeway.EBADREQUEST, "invalid_date", "a date is a string YYYY-MM-DD")
	}
	t, err := time.Parse(time.DateOnly, string(b[1:len(b)-1]))
	if err != nil {
		return causeway.Errorf(causeway.EBADREQUEST, "invalid_date", "a date is a string YYYY-MM-DD")
	}
	d.Time = t
	return nil
}

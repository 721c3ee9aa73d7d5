package audit

import (
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
)

// FuzzParseFilter feeds the audit routes' query parameters to ParseFilter:
// it never panics, refuses only with a 400 or 422 problem, and a filter it
// accepts becomes SQL with exactly one placeholder per argument.
func FuzzParseFilter(f *testing.F) {
	f.Add("admin-token", "app", "app_1", "app.approve", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
	f.Add("operator:op_1", "", "", "dataset_access.*", "", "")
	f.Add("operator:", "App", "", "app..approve", "yesterday", "2026-01-01T00:00:00+01:00")
	f.Add("", "payment", "pay_1", "*", "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, operator, targetType, targetID, action, from, to string) {
		flt, err := ParseFilter(operator, targetType, targetID, action, from, to)
		if err != nil {
			if k := causeway.ErrorKind(err); k != causeway.EBADREQUEST && k != causeway.EINVALID {
				t.Fatalf("refused with %v (%s)", err, k)
			}
			return
		}
		prior := []any{"x"}
		cond, args := flt.where(prior)
		if n := strings.Count(cond, "$"); n != len(args)-len(prior) {
			t.Fatalf("%q has %d placeholders for %d arguments", cond, n, len(args)-len(prior))
		}
		if strings.Contains(cond, "'") {
			t.Fatalf("%q carries a value in its text, not as an argument", cond)
		}
		if strings.Contains(cond, "$1 ") || strings.HasSuffix(cond, "$1") {
			t.Fatalf("%q reuses a placeholder of the arguments before it", cond)
		}
	})
}

package portal

import (
	"strings"
	"testing"
)

// FuzzDatasetForm: the console's publishing form turns any text into a
// dataset to publish or a clear error, never a panic; every non-blank
// column line becomes one column, every non-blank sample line one row.
func FuzzDatasetForm(f *testing.F) {
	f.Add("branch string Branch code\nvisits integer Visits that day", `{"branch":"LDN-01","visits":42}`, "120")
	f.Add("x", "not json", "-1")
	f.Add("\n\n a  b \n", "{}\n\n[1]", "99999999999999999999")
	f.Fuzz(func(t *testing.T, columns, sample, rows string) {
		form := &datasetForm{Name: "fuzzed", Kind: "file", Path: "/srv/x.csv", Columns: columns, Sample: sample, RowCount: rows}
		n, err := form.dataset()
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		lines := 0
		for _, l := range strings.Split(columns, "\n") {
			if len(strings.Fields(l)) > 0 {
				lines++
			}
		}
		if len(n.Columns) != lines {
			t.Fatalf("%d column lines gave %d columns", lines, len(n.Columns))
		}
		rowsIn := 0
		for _, l := range strings.Split(sample, "\n") {
			if strings.TrimSpace(l) != "" {
				rowsIn++
			}
		}
		if len(n.Sample) != rowsIn || n.RowCount < 0 {
			t.Fatalf("%d sample lines gave %d rows, row count %d", rowsIn, len(n.Sample), n.RowCount)
		}
	})
}

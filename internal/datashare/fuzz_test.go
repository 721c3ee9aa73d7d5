package datashare_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/datashare"
)

// FuzzAccessRequestBody feeds arbitrary bodies of POST
// /v1/dataset-access-requests through decoding and validation: nothing may
// panic, every refusal is a 422 domain error with a code, and whatever is
// accepted keeps the rules (purpose 1-2000 characters, 1-365 days, a
// parseable age recipient, a known format).
func FuzzAccessRequestBody(f *testing.F) {
	rcpt := "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	for _, s := range []string{
		`{"dataset_id":"ds_01jqz6k8m0p2r4t6v8w0y2a4c6","purpose":"churn","duration_days":30,"recipient":"` + rcpt + `"}`,
		`{"dataset_id":"ds_x","purpose":"  ","duration_days":0,"recipient":"age1"}`,
		`{"dataset_id":"ds_x","purpose":"p","duration_days":366,"recipient":"` + rcpt + `","format":"jsonl"}`,
		`{"dataset_id":"","purpose":"\u0000","duration_days":-1}`,
		`{"recipient":"AGE-SECRET-KEY-1QQQ"}`,
		`[]`, `null`, `{"duration_days":1e309}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var n datashare.NewAccessRequest
		if err := json.Unmarshal(body, &n); err != nil {
			return // huma answers 400/422 before the handler
		}
		err := n.Validate()
		if err != nil {
			var ce *causeway.Error
			if !errors.As(err, &ce) || ce.Kind != causeway.EINVALID || ce.Code == "" {
				t.Fatalf("refusal %v is not an EINVALID domain error with a code", err)
			}
			return
		}
		if n.Purpose == "" || utf8.RuneCountInString(n.Purpose) > datashare.MaxPurpose || strings.ContainsRune(n.Purpose, 0) || !utf8.ValidString(n.Purpose) {
			t.Fatalf("accepted purpose %q", n.Purpose)
		}
		if n.DurationDays < 1 || n.DurationDays > datashare.MaxDurationDays {
			t.Fatalf("accepted duration %d", n.DurationDays)
		}
		if _, err := age.ParseX25519Recipient(n.Recipient); err != nil {
			t.Fatalf("accepted recipient %q", n.Recipient)
		}
		if n.Format != "csv" && n.Format != "jsonl" {
			t.Fatalf("accepted format %q", n.Format)
		}
		if n.DatasetID == "" {
			t.Fatal("accepted an empty dataset id")
		}
	})
}

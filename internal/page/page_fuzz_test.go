package page

import "testing"

// FuzzDecodeCursor feeds arbitrary client cursors to the decoder: it must
// never panic, and whatever it accepts must re-encode to the same cursor.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(Cursor("cus_01jd3k7m9q6x4t2w8y5z0abcde"))
	f.Add(Cursor("1732550400000000", "txn_01jd3k7m9q6x4t2w8y5z0abcde"))
	f.Add("not-a-cursor")
	f.Add("")
	f.Fuzz(func(t *testing.T, cursor string) {
		for n := 1; n <= 2; n++ {
			key, err := Key(cursor, n)
			if err != nil {
				continue
			}
			if len(key) != n {
				t.Fatalf("decoded %d parts, want %d", len(key), n)
			}
			if again, err := Key(Cursor(key...), n); err != nil || len(again) != n {
				t.Fatalf("re-encoded cursor does not decode: %v", err)
			}
		}
	})
}

package seal_test

import (
	"bytes"
	"testing"

	"github.com/causewayhq/causeway/internal/seal"
)

// FuzzOpen: a stored value, whatever it holds, opens or fails with an
// error, never a panic; and what Seal makes opens to what was sealed, with
// the current key and after a rotation made it an older one.
func FuzzOpen(f *testing.F) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	old, err := seal.New(oldKey)
	if err != nil {
		f.Fatal(err)
	}
	rotated, err := seal.New(newKey, oldKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(old.Seal("whsec_abc"))
	f.Add("sealed1:")
	f.Add("sealed1:AAAA")
	f.Add("plain")
	f.Fuzz(func(t *testing.T, stored string) {
		rotated.Open(stored)
		if _, _, err := rotated.Reseal(stored); err == nil && !seal.IsSealed(stored) {
			t.Fatalf("Reseal accepted %q, which is not sealed", stored)
		}
		for _, s := range []*seal.Sealer{old, rotated} {
			if got, err := rotated.Open(s.Seal(stored)); err != nil || got != stored {
				t.Fatalf("round trip of %q: %q, %v", stored, got, err)
			}
		}
	})
}

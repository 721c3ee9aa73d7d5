package seal_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/seal"
)

func TestSealedSecretsOpenOnlyWithTheirKey(t *testing.T) {
	dir := t.TempDir()
	key, err := seal.LoadKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(filepath.Join(dir, seal.KeyFile))
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", info.Mode().Perm())
	}
	again, _ := seal.LoadKey("", dir)
	if string(again) != string(key) {
		t.Error("the key changed on the second load")
	}
	s, _ := seal.New(key)
	sealed := s.Seal("whsec_secret")
	if strings.Contains(sealed, "whsec_secret") || sealed == s.Seal("whsec_secret") {
		t.Errorf("sealed value leaks or is deterministic: %s", sealed)
	}
	if got, err := s.Open(sealed); err != nil || got != "whsec_secret" {
		t.Errorf("Open = %q, %v", got, err)
	}
	other, _ := seal.LoadKey("", t.TempDir())
	o, _ := seal.New(other)
	if _, err := o.Open(sealed); err == nil {
		t.Error("opened with another key")
	}
	if _, err := s.Open(sealed[:len(sealed)-2] + "AA"); err == nil {
		t.Error("opened a tampered value")
	}
	if _, err := seal.LoadKey("not base64!", ""); err == nil {
		t.Error("accepted a malformed key")
	}
}

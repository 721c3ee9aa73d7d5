package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/seal"
)

func TestSealedSecretsOpenOnlyWithTheirKey(t *testing.T) {
	dir := t.TempDir()
	keys, err := seal.LoadKeys("", dir)
	if err != nil || len(keys) != 1 {
		t.Fatalf("LoadKeys = %d keys, %v", len(keys), err)
	}
	key := keys[0]
	info, _ := os.Stat(filepath.Join(dir, seal.KeyFile))
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", info.Mode().Perm())
	}
	again, _ := seal.LoadKeys("", dir)
	if len(again) != 1 || !bytes.Equal(again[0], key) {
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
	other, _ := seal.LoadKeys("", t.TempDir())
	o, _ := seal.New(other[0])
	if _, err := o.Open(sealed); !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), "--secret-key") {
		t.Errorf("opened with another key, or said so unclearly: %v", err)
	}
	if _, err := s.Open(sealed[:len(sealed)-2] + "AA"); err == nil {
		t.Error("opened a tampered value")
	}
	if _, err := seal.LoadKeys("not base64!", ""); err == nil {
		t.Error("accepted a malformed key")
	}
}

func testKey(id byte) []byte { return bytes.Repeat([]byte{id}, 32) }

func TestAKeyRingSealsWithTheFirstKeyAndOpensWithEvery(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	old, _ := seal.New(oldKey)
	ring, err := seal.New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := seal.New(newKey)
	if ring.Keys() != 2 || onlyNew.Keys() != 1 {
		t.Errorf("Keys = %d and %d, want 2 and 1", ring.Keys(), onlyNew.Keys())
	}
	if got, err := ring.Open(old.Seal("by old")); err != nil || got != "by old" {
		t.Errorf("the ring opens a value of its older key: %q, %v", got, err)
	}
	byRing := ring.Seal("by ring")
	if got, err := onlyNew.Open(byRing); err != nil || got != "by ring" {
		t.Errorf("the ring does not seal with its first key: %q, %v", got, err)
	}
	if _, err := old.Open(byRing); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("the older key opens what the ring sealed: %v", err)
	}
	if same, _ := seal.New(newKey, newKey, oldKey, newKey); same.Keys() != 2 {
		t.Errorf("a repeated key counts: Keys = %d", same.Keys())
	}
	if _, err := seal.New(newKey, []byte("short")); err == nil {
		t.Error("accepted a short older key")
	}
}

func TestResealRewritesOnlyValuesOfAnOlderKey(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	old, _ := seal.New(oldKey)
	ring, _ := seal.New(newKey, oldKey)
	onlyNew, _ := seal.New(newKey)

	byOld := old.Seal("whsec_a")
	resealed, changed, err := ring.Reseal(byOld)
	if err != nil || !changed || resealed == byOld {
		t.Fatalf("Reseal of an older key's value = %q, %v, %v", resealed, changed, err)
	}
	if got, err := onlyNew.Open(resealed); err != nil || got != "whsec_a" {
		t.Errorf("the re-sealed value opens with the new key alone as %q, %v", got, err)
	}
	again, changed, err := ring.Reseal(resealed)
	if err != nil || changed || again != resealed {
		t.Errorf("Reseal of a current value = changed %v, same %v, %v", changed, again == resealed, err)
	}
	if _, _, err := onlyNew.Reseal(byOld); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("Reseal without the value's key: %v, want ErrWrongKey", err)
	}
	for _, v := range []string{"", "plain", "sealed1:!!", "sealed1:AAAA"} {
		if _, _, err := ring.Reseal(v); err == nil || errors.Is(err, seal.ErrWrongKey) {
			t.Errorf("Reseal(%q) = %v, want a not-sealed or malformed error", v, err)
		}
	}
}

func TestLoadKeysReadsNewThenOldFromTheFlagOrTheFile(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	enc := base64.StdEncoding.EncodeToString
	list := enc(newKey) + " , " + enc(oldKey)

	fromFlag, err := seal.LoadKeys(list, "")
	if err != nil || len(fromFlag) != 2 || !bytes.Equal(fromFlag[0], newKey) || !bytes.Equal(fromFlag[1], oldKey) {
		t.Errorf("from the flag: %d keys, %v", len(fromFlag), err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, seal.KeyFile), []byte(list+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := seal.LoadKeys("", dir)
	if err != nil || len(fromFile) != 2 || !bytes.Equal(fromFile[0], newKey) || !bytes.Equal(fromFile[1], oldKey) {
		t.Errorf("from the file: %d keys, %v", len(fromFile), err)
	}

	for _, bad := range []string{enc(newKey) + ",", enc(newKey) + "," + enc([]byte("short")), "," + enc(oldKey)} {
		_, err := seal.LoadKeys(bad, "")
		if err == nil || !strings.Contains(err.Error(), "--secret-key") || !strings.Contains(err.Error(), " of 2 ") {
			t.Errorf("LoadKeys(%q) = %v, want an error naming --secret-key and the key's position", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), enc(newKey)) {
			t.Errorf("the error shows a key: %v", err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	oldKey, newKey := testKey(1), testKey(2)
	old, _ := seal.New(oldKey)
	ring, _ := seal.New(newKey, oldKey)
	for _, bm := range []struct{ name, sealed string }{
		{"current key", ring.Seal("whsec_" + strings.Repeat("A", 43))},
		{"older key", old.Seal("whsec_" + strings.Repeat("A", 43))},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ring.Open(bm.sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A secret file is created once, mode 0600, and read back as it was
// written; callers racing to create it all get the one that was written.
func TestSecretFileIsCreatedOnceAndShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	var made atomic.Int32
	generate := func() string { return fmt.Sprintf("secret-%d", made.Add(1)) }

	const racers = 8
	got := make([]string, racers)
	created := make([]bool, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, c, err := seal.SecretFile(path, generate)
			if err != nil {
				t.Error(err)
			}
			got[i], created[i] = s, c
		}()
	}
	wg.Wait()
	creators := 0
	for i := range racers {
		if got[i] != got[0] || got[i] == "" {
			t.Fatalf("racers got different secrets: %q", got)
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d racers say they created the file; want 1", creators)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v, %v; want mode 0600", info, err)
	}
	if s, c, err := seal.SecretFile(path, generate); err != nil || c || s != got[0] {
		t.Errorf("reading it again = %q, %v, %v; want %q, not created", s, c, err, got[0])
	}
	if _, err := seal.KeyFile32("test key", "", t.TempDir(), "key"); err != nil {
		t.Errorf("a new key file: %v", err)
	}
}

// A temporary file a process left behind when it stopped between writing
// a secret and linking it holds that secret: the next SecretFile removes
// it once it is older than a racer's could be, and keeps a fresh one and
// every other file.
func TestSecretFileRemovesLeftoverTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-token")
	write := func(name string, age time.Duration) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("cwadm_left-behind\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := write(".admin-token.123456", 2*time.Minute)
	racing := write(".admin-token.654321", 0)
	other := write(".admin-token-backup", 2*time.Minute)
	if _, created, err := seal.SecretFile(path, func() string { return "cwadm_new" }); err != nil || !created {
		t.Fatalf("SecretFile = %v, created %v", err, created)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the leftover temporary file is still there: %v", err)
	}
	for _, p := range []string{racing, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}

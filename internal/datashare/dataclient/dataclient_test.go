package dataclient

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
)

func encrypt(t *testing.T, plain []byte, r age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	return buf.Bytes()
}

func TestDecryptFileFailsOnTamperedCiphertextAndLeavesNoPlaintext(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	plain := bytes.Repeat([]byte("row,1,2,3\n"), 30000) // several 64 KiB chunks
	good := encrypt(t, plain, id.Recipient())
	other, _ := age.GenerateX25519Identity()
	tests := []struct {
		name string
		ct   func() []byte
		ids  []age.Identity
		want string
	}{
		{"byte flipped in a middle chunk", func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 1; return b }, []age.Identity{id}, "damaged or was tampered"},
		{"byte flipped in the last chunk", func() []byte { b := bytes.Clone(good); b[len(b)-3] ^= 1; return b }, []age.Identity{id}, "damaged or was tampered"},
		{"truncated at a chunk boundary", func() []byte { return good[:len(good)-len(good)%65552] }, []age.Identity{id}, "damaged or was tampered"},
		{"truncated", func() []byte { return good[:len(good)-100] }, []age.Identity{id}, "damaged or was tampered"},
		{"header damaged", func() []byte { b := bytes.Clone(good); b[40] ^= 1; return b }, []age.Identity{id}, ""},
		{"not age at all", func() []byte { return plain[:1000] }, []age.Identity{id}, "decrypting"},
		{"wrong identity", func() []byte { return good }, []age.Identity{other}, "not the recipient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "in.age"), filepath.Join(dir, "out.csv")
			os.WriteFile(src, tt.ct(), 0o600)
			_, err := DecryptFile(src, dst, tt.ids)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("files left: %v (want only the input)", entries)
			}
		})
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.age"), filepath.Join(dir, "out.csv")
	os.WriteFile(src, good, 0o600)
	os.WriteFile(dst, []byte("previous"), 0o600)
	if n, err := DecryptFile(src, dst, []age.Identity{id}); err != nil || n != int64(len(plain)) {
		t.Fatalf("good file: %d, %v", n, err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, plain) {
		t.Error("decrypted output differs")
	}
}

func TestKeygenWritesAPrivateAgeKeyFileOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.txt")
	recipient, err := Keygen(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v", st.Mode().Perm(), err)
	}
	if _, err := age.ParseX25519Recipient(recipient); err != nil {
		t.Fatalf("recipient %q: %v", recipient, err)
	}
	if got, err := RecipientOf(path); err != nil || got != recipient {
		t.Errorf("RecipientOf = %q, %v", got, err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "# public key: "+recipient) || !strings.Contains(string(b), "AGE-SECRET-KEY-1") {
		t.Errorf("key file:\n%s", b)
	}
	if _, err := Keygen(path); err == nil {
		t.Error("keygen overwrote an existing key")
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Error("the key file changed")
	}
}

func TestDecryptTellsDamageFromAFullDisk(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	ct := encrypt(t, []byte("hello"), id.Recipient())
	_, err := Decrypt(failWriter{}, bytes.NewReader(ct), []age.Identity{id})
	if err == nil || !strings.Contains(err.Error(), "writing the plaintext") {
		t.Errorf("err = %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

var _ io.Writer = failWriter{}

func TestContentRangeParses(t *testing.T) {
	for in, want := range map[string][2]int64{"bytes 10-99/100": {10, 100}, "bytes */42": {0, 42}} {
		s, n, ok := contentRange(in)
		if !ok || s != want[0] || n != want[1] {
			t.Errorf("%q = %d %d %v", in, s, n, ok)
		}
	}
	for _, in := range []string{"", "bytes", "bytes 1-2", "items 1-2/3", "bytes x-2/3"} {
		if _, _, ok := contentRange(in); ok {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestBarShowsBytesAndPercentage(t *testing.T) {
	var out syncBuffer
	b := NewBar(&out, "dar_x")
	b.Start(4<<20, 1<<20)
	for range 48 {
		b.Add(64 << 10)
	}
	b.Finish()
	s := out.String()
	if !strings.Contains(s, "dar_x") || !strings.Contains(s, "4.0 MiB") || !strings.Contains(s, "100 %") {
		t.Errorf("bar output: %q", s)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

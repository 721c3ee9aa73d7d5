package datashare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/dataclient"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// cutOnce is a transport whose first content download breaks off after
// n bytes, as a dropped connection does.
type cutOnce struct {
	n    int64
	done atomic.Bool
}

func (c *cutOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && res.StatusCode == 200 && strings.HasSuffix(r.URL.Path, "/content") && c.done.CompareAndSwap(false, true) {
		res.Body = &cutBody{r: io.LimitReader(res.Body, c.n), c: res.Body}
	}
	return res, err
}

type cutBody struct {
	r io.Reader
	c io.Closer
}

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *cutBody) Close() error { return b.c.Close() }

func TestPullResumesAfterAnInterruptionChecksTheETagAndDecryptsLocally(t *testing.T) {
	h := newHub(t, storetest.OpenSQLite(t))
	d := h.publishSynthetic("s", 30000)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.txt")
	recipient, err := dataclient.Keygen(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := dataclient.New(ctx, h.url, dataclient.Credentials{Token: "app_a"}, dataclient.WithTransport(&cutOnce{n: 200 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Request(ctx, datashare.NewAccessRequest{DatasetID: d.ID, Purpose: "test", DurationDays: 7, Recipient: recipient})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := dataclient.ReadIdentities(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.csv")
	if _, err := c.Pull(ctx, r.ID, dataclient.PullOptions{Output: out, Identities: ids}); dataclient.ProblemCode(err) != "access_not_granted" {
		t.Fatalf("pull before approval: %v", err)
	}
	h.approve(r.ID)
	// The agent starts late: the pull waits for the content.
	go func() { time.Sleep(300 * time.Millisecond); h.runProducer(newAgent(t, nil)) }()

	waited := false
	_, err = c.Pull(ctx, r.ID, dataclient.PullOptions{Output: out, Identities: ids, Wait: time.Minute,
		OnWait: func(time.Duration) { waited = true }})
	if err == nil || !waited {
		t.Fatalf("interrupted pull: err %v, waited %v", err, waited)
	}
	part, err := os.Stat(out + ".age.part")
	if err != nil || part.Size() != 200<<10 {
		t.Fatalf("no partial ciphertext kept: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an output exists after an interrupted pull: %v", err)
	}

	res, err := c.Pull(ctx, r.ID, dataclient.PullOptions{Output: out, Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if want := synthetic(t, "csv", 30000, 7); !bytes.Equal(got, want) || res.PlaintextBytes != int64(len(want)) || !res.Resumed {
		t.Fatalf("pulled %d bytes (resumed %v), want %d", len(got), res.Resumed, len(want))
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("plaintext mode %v, want 0600", st.Mode().Perm())
	}
	for _, leftover := range []string{out + ".age.part", out + ".age.part.etag"} {
		if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", filepath.Base(leftover))
		}
	}
	var audit page.Page[*datashare.AuditEntry]
	h.json("GET", "/bank/v1/dataset-access-requests/"+r.ID+"/audit", adminToken, nil, 200, &audit)
	resumed := false
	for _, e := range audit.Data {
		var d map[string]any
		json.Unmarshal(e.Detail, &d)
		if e.Action == "download" && d["status"] == 206.0 && strings.HasPrefix(d["range"].(string), "bytes=") {
			resumed = true
		}
	}
	if !resumed {
		t.Error("the audit shows no ranged download")
	}
	st, err := c.Status(ctx, r.ID)
	if err != nil || st.Status != "approved" || st.Content[0].Status != "ready" {
		t.Errorf("status = %+v, %v", st, err)
	}
}

func TestPullRefusesCiphertextThatDoesNotMatchItsETagAndLeavesNoPlaintext(t *testing.T) {
	h := newHub(t, storetest.OpenSQLite(t))
	h.runProducer(newAgent(t, nil))
	d := h.publishSynthetic("s", 5000)
	id := newIdentity(t)
	r := h.request("app_a", d.ID, id.Recipient().String())
	h.approve(r.ID)
	h.waitReady("app_a", r.ID, "")
	// Someone with access to the hub's disk changes the stored ciphertext.
	blob := filepath.Join(h.dataDir, "datashare", r.ID+".csv.age")
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	os.WriteFile(blob, b, 0o600)

	c, _ := dataclient.New(context.Background(), h.url, dataclient.Credentials{Token: "app_a"})
	out := filepath.Join(t.TempDir(), "out.csv")
	_, err = c.Pull(context.Background(), r.ID, dataclient.PullOptions{Output: out, Identities: []age.Identity{id}})
	if err == nil || !strings.Contains(err.Error(), "ETag") {
		t.Fatalf("pull of changed ciphertext: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestTheAgeCommandDecryptsTheSameDownload: the standard age tool, given
// the key file `causeway data keygen` writes, decrypts what the hub serves.
func TestTheAgeCommandDecryptsTheSameDownload(t *testing.T) {
	agePath, err := exec.LookPath("age")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the age command is not installed; CI must install Debian's age")
		}
		testkit.Unavailable(t, "CAUSEWAY_REQUIRE_AGE", "the age command is not installed")
	}
	h := newHub(t, storetest.OpenSQLite(t))
	h.runProducer(newAgent(t, nil))
	d := h.publishSynthetic("s", 3000)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.txt")
	recipient, err := dataclient.Keygen(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r := h.request("app_a", d.ID, recipient)
	h.approve(r.ID)
	ciphertext, _ := h.waitReady("app_a", r.ID, "jsonl")
	encFile := filepath.Join(dir, "data.jsonl.age")
	os.WriteFile(encFile, ciphertext, 0o600)
	cmd := exec.Command(agePath, "-d", "-i", keyFile, encFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	plain, err := cmd.Output()
	if err != nil {
		t.Fatalf("age -d: %v: %s", err, stderr.String())
	}
	if want := synthetic(t, "jsonl", 3000, 7); !bytes.Equal(plain, want) {
		t.Fatalf("age decrypted %d bytes, want %d", len(plain), len(want))
	}
}

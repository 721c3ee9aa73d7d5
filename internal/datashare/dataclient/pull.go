package dataclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
)

// Progress follows a download. Start is called once the size is known,
// with the bytes already on disk from an earlier attempt; Add as bytes
// arrive.
type Progress interface {
	Start(total, done int64)
	Add(n int)
	Finish()
}

// PullOptions configure Pull.
type PullOptions struct {
	// Output is where the plaintext goes. The ciphertext is kept in
	// Output+".age.part" until it is complete and decrypted (so an
	// interrupted pull resumes), its ETag in Output+".age.part.etag".
	Output string
	// Format is csv or jsonl; "" means the request's format.
	Format string
	// Identities decrypt the content (see ReadIdentities).
	Identities []age.Identity
	// Wait is how long to wait while the bank's data agent prepares the
	// content (409 content_not_ready), following Retry-After; 0 fails at
	// once.
	Wait time.Duration
	// Progress, if set, follows the download.
	Progress Progress
	// OnWait, if set, is told each time the pull waits for the content.
	OnWait func(after time.Duration)
}

// PullResult describes a finished pull.
type PullResult struct {
	CiphertextBytes int64
	PlaintextBytes  int64
	ETag            string
	Resumed         bool // part of the ciphertext came from an earlier attempt
}

// Pull downloads the request's content with resume, checks it against its
// ETag (the SHA-256 of the ciphertext), decrypts it to a temporary file
// beside Output and renames that to Output only when decryption succeeded.
// Damaged or tampered ciphertext fails and leaves no Output.
func (c *Client) Pull(ctx context.Context, id string, o PullOptions) (*PullResult, error) {
	if o.Output == "" || o.Output == "-" {
		return nil, errors.New("an output file is required")
	}
	if len(o.Identities) == 0 {
		return nil, errors.New("an identity is required to decrypt")
	}
	part := o.Output + ".age.part"
	res, err := c.download(ctx, id, o, part)
	if err != nil {
		return nil, err
	}
	n, err := DecryptFile(part, o.Output, o.Identities)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if !errors.As(err, &nm) {
			// Damaged beyond what the ETag caught: start afresh next time.
			os.Remove(part)
			os.Remove(part + ".etag")
		}
		return nil, err
	}
	res.PlaintextBytes = n
	os.Remove(part)
	os.Remove(part + ".etag")
	return res, nil
}

// download fetches the ciphertext into part, resuming what is there.
func (c *Client) download(ctx context.Context, id string, o PullOptions, part string) (*PullResult, error) {
	deadline := time.Now().Add(o.Wait)
	for {
		res, err := c.downloadOnce(ctx, id, o, part)
		var p *Problem
		if errors.As(err, &p) && p.Code == "content_not_ready" && time.Now().Before(deadline) {
			wait := min(max(p.RetryAfter, time.Second), time.Until(deadline)+time.Millisecond)
			if o.OnWait != nil {
				o.OnWait(wait)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		return res, err
	}
}

// downloadOnce makes one attempt at the download into part: it resumes
// what an earlier attempt left there, when the content is still the same
// (its ETag), and verifies the whole file against the ETag at the end.
func (c *Client) downloadOnce(ctx context.Context, id string, o PullOptions, part string) (*PullResult, error) {
	req, have, savedTag, err := c.resumeRequest(ctx, id, o.Format, part)
	if err != nil {
		return nil, err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var total int64
	var tag = res.Header.Get("ETag")
	switch res.StatusCode {
	case http.StatusOK:
		have, total = 0, res.ContentLength
	case http.StatusPartialContent:
		start, size, ok := contentRange(res.Header.Get("Content-Range"))
		if !ok || start != have || tag != savedTag {
			return nil, fmt.Errorf("the server answered the resume with range %q and ETag %s; expected bytes %d- of %s",
				res.Header.Get("Content-Range"), tag, have, savedTag)
		}
		total = size
	case http.StatusRequestedRangeNotSatisfiable:
		// Everything may already be here; otherwise start over.
		_, size, ok := contentRange(res.Header.Get("Content-Range"))
		if ok && size == have {
			return &PullResult{CiphertextBytes: have, ETag: savedTag, Resumed: true}, verify(part, savedTag)
		}
		os.Remove(part)
		os.Remove(part + ".etag")
		return c.downloadOnce(ctx, id, o, part)
	default:
		return nil, problemOf(res)
	}
	if total < 0 {
		return nil, errors.New("the server did not say how large the content is")
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if have == 0 {
		flag |= os.O_TRUNC
		if err := os.WriteFile(part+".etag", []byte(tag+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(part, flag, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if o.Progress != nil {
		o.Progress.Start(total, have)
		defer o.Progress.Finish()
	}
	var w io.Writer = f
	if o.Progress != nil {
		w = &progressWriter{w: f, p: o.Progress}
	}
	n, err := io.Copy(w, res.Body)
	if err != nil {
		return nil, fmt.Errorf("download interrupted after %d of %d bytes (run pull again to resume): %w", have+n, total, err)
	}
	if have+n != total {
		return nil, fmt.Errorf("download ended after %d of %d bytes (run pull again to resume)", have+n, total)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := verify(part, tag); err != nil {
		os.Remove(part)
		os.Remove(part + ".etag")
		return nil, err
	}
	return &PullResult{CiphertextBytes: total, ETag: tag, Resumed: have > 0}, nil
}

// resumeRequest is the request for the content of access request id in
// format: from the start, or, when part holds an earlier attempt's bytes
// and their ETag, for the bytes after them (have) if the content is still
// savedTag.
func (c *Client) resumeRequest(ctx context.Context, id, format, part string) (req *http.Request, have int64, savedTag string, err error) {
	if st, err := os.Stat(part); err == nil {
		if b, err := os.ReadFile(part + ".etag"); err == nil {
			have, savedTag = st.Size(), strings.TrimSpace(string(b))
		}
	}
	u := c.server + "/v1/dataset-access-requests/" + url.PathEscape(id) + "/content"
	if format != "" {
		u += "?format=" + url.QueryEscape(format)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, "", err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		// If the content changed, the server sends all of it (200) rather
		// than a range of something else.
		req.Header.Set("If-Range", savedTag)
	}
	return req, have, savedTag, nil
}

// verify checks that the file's SHA-256 is the one its ETag names (the
// platform's ETag is the quoted hex SHA-256 of the ciphertext).
func verify(path, tag string) error {
	want := strings.Trim(strings.TrimPrefix(tag, "W/"), `"`)
	if len(want) != 64 {
		return nil // not a hash ETag: nothing to check against
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("the downloaded ciphertext does not match its ETag (SHA-256 %s, want %s): it was damaged on the way; run pull again", got, want)
	}
	return nil
}

// contentRange parses "bytes start-end/size" or "bytes */size".
func contentRange(s string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if rng == "*" {
		return 0, size, true
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err = strconv.ParseInt(a, 10, 64)
	return start, size, err == nil
}

type progressWriter struct {
	w io.Writer
	p Progress
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.Add(n)
	return n, err
}

// Stream downloads the whole ciphertext into w without touching disk (the
// benchmark's client). It returns the bytes written and the ETag.
func (c *Client) Stream(ctx context.Context, id, format string, w io.Writer) (int64, string, error) {
	u := c.server + "/v1/dataset-access-requests/" + url.PathEscape(id) + "/content"
	if format != "" {
		u += "?format=" + url.QueryEscape(format)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	if res.StatusCode != http.StatusOK {
		return 0, "", problemOf(res)
	}
	defer res.Body.Close()
	n, err := io.Copy(w, res.Body)
	return n, res.Header.Get("ETag"), err
}

// ---- keys and decryption ----

// Keygen writes a new age X25519 identity to path (mode 0600, refusing to
// overwrite), in the format of age-keygen, and returns its recipient.
func Keygen(path string) (string, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("%s exists; not overwriting a key", path)
	}
	if err != nil {
		return "", err
	}
	_, err = fmt.Fprintf(f, "# created: %s\n# public key: %s\n%s\n", time.Now().Format(time.RFC3339), id.Recipient(), id)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return id.Recipient().String(), nil
}

// ReadIdentities reads an age identity file (as written by Keygen or
// age-keygen).
func ReadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// RecipientOf returns the X25519 recipient of the first identity in the
// file at path.
func RecipientOf(path string) (string, error) {
	ids, err := ReadIdentities(path)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			return x.Recipient().String(), nil
		}
	}
	return "", fmt.Errorf("%s holds no X25519 identity", path)
}

// DecryptFile decrypts the age file src to dst: into a temporary file in
// dst's directory, renamed to dst only once the whole file decrypted and
// authenticated. On any error dst is untouched and no partial plaintext is
// left behind. It returns the plaintext size.
func DecryptFile(src, dst string, ids []age.Identity) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".decrypting-*")
	if err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := Decrypt(tmp, in, ids)
	if err != nil {
		return 0, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, err
	}
	ok = true
	return n, nil
}

// Decrypt copies the plaintext of the age stream src to dst. age
// authenticates every 64 KiB chunk and the end of the stream, so a
// damaged, truncated or tampered stream fails, though dst may by then hold
// the chunks before the damage: write to a temporary place (DecryptFile
// does).
func Decrypt(dst io.Writer, src io.Reader, ids []age.Identity) (int64, error) {
	r, err := age.Decrypt(src, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return 0, fmt.Errorf("the identity given is not the recipient of this content: %w", err)
		}
		return 0, fmt.Errorf("decrypting: %w", err)
	}
	er := &readErr{r: r}
	n, err := io.Copy(dst, er)
	if er.err != nil {
		return n, fmt.Errorf("decrypting: the ciphertext is damaged or was tampered with: %w", er.err)
	}
	if err != nil {
		return n, fmt.Errorf("writing the plaintext: %w", err)
	}
	return n, nil
}

// readErr remembers a read error other than EOF, to tell damaged
// ciphertext from a full disk.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// HashingWriter is an io.Writer that counts and hashes (SHA-256) what
// passes, and keeps nothing.
type HashingWriter struct {
	h hash.Hash
	N int64
}

// NewHashingWriter returns a HashingWriter.
func NewHashingWriter() *HashingWriter { return &HashingWriter{h: sha256.New()} }

func (h *HashingWriter) Write(b []byte) (int, error) {
	h.N += int64(len(b))
	return h.h.Write(b)
}

// Sum returns the hex SHA-256 so far.
func (h *HashingWriter) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

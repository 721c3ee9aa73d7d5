package datashare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// BlobStore keeps the ciphertext the hub relays. A blob is written as a
// partial upload, appended to in order (possibly over several HTTP
// requests, which may reach different nodes), then committed; only
// committed blobs can be opened.
//
// DBBlobs keeps blobs in the database, so every node sharing it sees the
// same ones: the platform uses it on PostgreSQL (the scale-out runtime).
// FileBlobs keeps files under the node's data dir: the platform uses it on
// the embedded SQLite, where there is one node and files are fastest (see
// DefaultBlobs).
type BlobStore interface {
	// Reset discards any partial upload under key and starts an empty one.
	Reset(ctx context.Context, key string) error
	// Append writes r at offset to the partial upload under key,
	// atomically: all of r or nothing, and of two appends at the same
	// offset at most one succeeds. offset must equal the partial upload's
	// size, else ErrOffset (wrapped in an *OffsetError carrying the size);
	// without a partial upload, fs.ErrNotExist. It returns the new size.
	Append(ctx context.Context, key string, offset int64, r io.Reader) (int64, error)
	// OpenPartial opens the partial upload for reading, as it is now
	// (fs.ErrNotExist if none).
	OpenPartial(ctx context.Context, key string) (Blob, error)
	// Commit makes the partial upload the blob under key, durably,
	// replacing any blob there was (fs.ErrNotExist if no partial upload).
	Commit(ctx context.Context, key string) error
	// Open opens the committed blob under key (fs.ErrNotExist if none).
	// Reads go on under ctx.
	Open(ctx context.Context, key string) (Blob, error)
	// Delete removes the blob and any partial upload under key; a missing
	// one is not an error.
	Delete(ctx context.Context, key string) error
}

// Blob is a blob (or a partial upload) opened for reading.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// ErrOffset means an append did not start where the partial upload ends.
var ErrOffset = errors.New("offset does not match the upload's size")

// OffsetError is ErrOffset with the size the upload has.
type OffsetError struct{ Size int64 }

func (e *OffsetError) Error() string { return fmt.Sprintf("%v (%d bytes)", ErrOffset, e.Size) }
func (e *OffsetError) Unwrap() error { return ErrOffset }

// FileBlobs stores blobs as files in Dir: <key>.age when committed,
// <key>.age.part while uploading. Files are mode 0600. Only the process
// that holds Dir may write there: appends are atomic within a process,
// not across processes.
type FileBlobs struct {
	Dir string

	mu    sync.Mutex
	locks map[string]*keyLock // key -> its writers, while any
}

// keyLock serializes the writers of one key.
type keyLock struct {
	sync.Mutex
	users int
}

// lock takes key's lock and returns its release.
func (b *FileBlobs) lock(key string) (unlock func()) {
	b.mu.Lock()
	if b.locks == nil {
		b.locks = map[string]*keyLock{}
	}
	l, ok := b.locks[key]
	if !ok {
		l = &keyLock{}
		b.locks[key] = l
	}
	l.users++
	b.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		b.mu.Lock()
		if l.users--; l.users == 0 {
			delete(b.locks, key)
		}
		b.mu.Unlock()
	}
}

var blobKey = regexp.MustCompile(`^[a-z0-9_]{1,64}(\.[a-z0-9]{1,8})?$`)

func checkKey(key string) error {
	if !blobKey.MatchString(key) {
		return fmt.Errorf("blob key %q is malformed", key)
	}
	return nil
}

func (b *FileBlobs) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(b.Dir, key+".age"), nil
}

// Reset implements BlobStore.
func (b *FileBlobs) Reset(_ context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	defer b.lock(key)()
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p+".part", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// Append implements BlobStore.
func (b *FileBlobs) Append(_ context.Context, key string, offset int64, r io.Reader) (int64, error) {
	p, err := b.path(key)
	if err != nil {
		return 0, err
	}
	defer b.lock(key)()
	f, err := os.OpenFile(p+".part", os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if end != offset {
		return end, &OffsetError{Size: end}
	}
	n, err := io.Copy(f, r)
	if err != nil {
		// Cut back to where this append started, so a retry of the same
		// part finds the offset it expects.
		f.Truncate(offset)
		return offset, err
	}
	return offset + n, nil
}

// OpenPartial implements BlobStore.
func (b *FileBlobs) OpenPartial(_ context.Context, key string) (Blob, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	return openFile(p + ".part")
}

// Commit implements BlobStore.
func (b *FileBlobs) Commit(_ context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	defer b.lock(key)()
	f, err := os.OpenFile(p+".part", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := os.Rename(p+".part", p); err != nil {
		return err
	}
	if d, err := os.Open(b.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Open implements BlobStore.
func (b *FileBlobs) Open(_ context.Context, key string) (Blob, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	return openFile(p)
}

func openFile(name string) (Blob, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileBlob{File: f, size: st.Size(), mod: st.ModTime()}, nil
}

// Delete implements BlobStore.
func (b *FileBlobs) Delete(_ context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	defer b.lock(key)()
	var errs []error
	for _, name := range []string{p, p + ".part"} {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type fileBlob struct {
	*os.File
	size int64
	mod  time.Time
}

func (f *fileBlob) Size() int64        { return f.size }
func (f *fileBlob) ModTime() time.Time { return f.mod }

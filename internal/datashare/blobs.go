package datashare

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// BlobStore keeps the ciphertext the hub relays. A blob is written as a
// partial upload, appended to in order (possibly over several HTTP
// requests), then committed; only committed blobs can be opened.
//
// FileBlobs, the implementation used today, keeps files under the node's
// data dir. Several nodes behind a load balancer must then share that
// directory (a shared volume), or route the agent and downloads to one
// node; a store in the database or an object store would lift that, behind
// this same interface.
type BlobStore interface {
	// Reset discards any partial upload under key and starts an empty one.
	Reset(key string) error
	// Append writes r at offset to the partial upload under key. offset
	// must equal the partial upload's size, else ErrOffset (wrapped in an
	// *OffsetError carrying the size). It returns the new size.
	Append(key string, offset int64, r io.Reader) (int64, error)
	// OpenPartial opens the partial upload for reading.
	OpenPartial(key string) (io.ReadCloser, error)
	// Commit makes the partial upload the blob under key, durably.
	Commit(key string) error
	// Open opens the committed blob under key (fs.ErrNotExist if none).
	Open(key string) (Blob, error)
	// Delete removes the blob and any partial upload under key; a missing
	// one is not an error.
	Delete(key string) error
}

// Blob is a committed blob opened for reading.
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
// <key>.age.part while uploading. Files are mode 0600.
type FileBlobs struct {
	Dir string
}

var blobKey = regexp.MustCompile(`^[a-z0-9_]{1,64}(\.[a-z0-9]{1,8})?$`)

func (b *FileBlobs) path(key string) (string, error) {
	if !blobKey.MatchString(key) {
		return "", fmt.Errorf("blob key %q is malformed", key)
	}
	return filepath.Join(b.Dir, key+".age"), nil
}

// Reset implements BlobStore.
func (b *FileBlobs) Reset(key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
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
func (b *FileBlobs) Append(key string, offset int64, r io.Reader) (int64, error) {
	p, err := b.path(key)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(p+".part", os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, &OffsetError{Size: 0}
		}
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
func (b *FileBlobs) OpenPartial(key string) (io.ReadCloser, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	return os.Open(p + ".part")
}

// Commit implements BlobStore.
func (b *FileBlobs) Commit(key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
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
func (b *FileBlobs) Open(key string) (Blob, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
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
func (b *FileBlobs) Delete(key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
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

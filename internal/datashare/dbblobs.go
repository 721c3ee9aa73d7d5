package datashare

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// BlobChunkBytes is the most a DBBlobs chunk row holds. An append is
// stored in chunks of this size (the last one shorter), so a blob of any
// size never needs more than one chunk in memory, nor a giant row. It
// equals MaxPartBytes: a remote agent's part is one chunk.
const BlobChunkBytes = 1 << 20

// DBBlobs stores blobs in the platform's database (tables datashare_blobs
// and datashare_blob_chunks), so that every node sharing the database sees
// the same blobs: an upload's parts may reach different nodes, any node
// serves (and resumes) a download, and a delete is seen by all.
//
// A blob is a row of datashare_blobs (its key, state, size and time) and
// the rows of datashare_blob_chunks holding its bytes, keyed by where each
// chunk starts. A key has at most one partial and one committed blob;
// committing turns the partial row into the committed one, without
// copying. The size column is the truth: an append becomes visible when
// the transaction that moves its chunks in also moves the size.
type DBBlobs struct {
	DB *store.DB
}

// Blob states in datashare_blobs.state.
const (
	blobPartial   = "partial"
	blobCommitted = "committed"
	// blobStaged holds the chunks of an append longer than one chunk
	// while they are written, before one transaction moves them into the
	// partial blob. Reset and Delete of the key remove leftovers.
	blobStaged = "staged"
)

// chunkPool recycles chunk buffers: appends read into them, reads copy
// rows into them.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, BlobChunkBytes); return &b }}

func (b *DBBlobs) now() int64 { return store.Micros(time.Now()) }

// lazyTx runs fn in a transaction of an append. On PostgreSQL its commit
// does not wait for the disk (synchronous_commit off): an append need not
// be durable before Commit, whose synchronous commit flushes the log and
// with it every append before, the way FileBlobs syncs its file only on
// Commit. A crash of the database server's machine may lose appends
// acknowledged since the last flush (a fraction of a second); the agent
// then finds the upload shorter than it sent, and the job is produced
// again.
func (b *DBBlobs) lazyTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return b.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := asyncCommit(ctx, b.DB, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// asyncCommit lets tx commit without waiting for the disk, on PostgreSQL:
// for writes whose loss in a crash costs only redoing work.
func asyncCommit(ctx context.Context, db *store.DB, tx *sql.Tx) error {
	if db.Dialect != store.Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`)
	return err
}

// Reset implements BlobStore. Staged chunks of appends still running for
// key are discarded with the partial upload; such an append then fails.
func (b *DBBlobs) Reset(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var err error
	// Two resets of one key at once may both find no partial row and both
	// insert one: the unique index refuses the second, which tries again
	// and now deletes the first's.
	for range 3 {
		err = b.DB.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM datashare_blobs WHERE blob_key = $1 AND state <> $2`, key, blobCommitted); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO datashare_blobs (id, blob_key, state, size, modified_at) VALUES ($1, $2, $3, 0, $4)`,
				ids.New("blb"), key, blobPartial, b.now())
			return err
		})
		if !store.IsUniqueViolation(err) {
			break
		}
	}
	return err
}

// Append implements BlobStore. An append of at most one chunk (a remote
// agent's part) is read into memory first and then stored in one short
// transaction that checks the offset and moves the size: on PostgreSQL
// the UPDATE of the partial row locks it, so a second append at the same
// offset waits for the first and then finds the size moved; on SQLite
// writers are serialized anyway. A longer append (the in-process agent's)
// writes its chunks as a staged blob first, one short transaction each,
// and then moves them into the partial blob the same way. No transaction
// waits on r.
func (b *DBBlobs) Append(ctx context.Context, key string, offset int64, r io.Reader) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	first := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(first)
	n, err := readChunk(r, (*first)[:BlobChunkBytes])
	if err != nil {
		return offset, err
	}
	if n == 0 {
		return offset, partialAt(ctx, b.DB, key, offset)
	}
	next := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(next)
	m, err := readChunk(r, (*next)[:BlobChunkBytes])
	if err != nil {
		return offset, err
	}
	if m == 0 {
		end := offset + int64(n)
		err := b.lazyTx(ctx, func(tx *sql.Tx) error {
			id, err := b.grow(ctx, tx, key, offset, end)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO datashare_blob_chunks (blob_id, pos, data) VALUES ($1, $2, $3)`, id, offset, (*first)[:n])
			return err
		})
		if err != nil {
			return offset, err
		}
		return end, nil
	}
	end, err := b.appendStaged(ctx, key, offset, r, (*first)[:n], (*next)[:m])
	if err != nil {
		return offset, err
	}
	return end, nil
}

// appendStaged stores an append of more than one chunk: head and then the
// rest of r.
//
// It is long because the staging is one sequence with one clean-up: a
// staging row, each chunk in a short transaction of its own (SQLite's
// writer is never held for the whole upload), and one conditional move
// into place; until the move, a failure deletes the staged chunks.
func (b *DBBlobs) appendStaged(ctx context.Context, key string, offset int64, r io.Reader, head ...[]byte) (int64, error) {
	// Fail early, before reading and storing what cannot land.
	if err := partialAt(ctx, b.DB, key, offset); err != nil {
		return 0, err
	}
	staged := ids.New("blb")
	err := b.lazyTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO datashare_blobs (id, blob_key, state, size, modified_at) VALUES ($1, $2, $3, 0, $4)`,
			staged, key, blobStaged, b.now())
		return err
	})
	if err != nil {
		return 0, err
	}
	moved := false
	defer func() {
		if moved {
			return
		}
		// The staged chunks go with their row. Should this fail too, the
		// key's next Reset or Delete removes them.
		ctx := context.WithoutCancel(ctx)
		b.lazyTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM datashare_blobs WHERE id = $1`, staged)
			return err
		})
	}()
	end, chunks := offset, int64(0)
	put := func(data []byte) error {
		err := b.lazyTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO datashare_blob_chunks (blob_id, pos, data) VALUES ($1, $2, $3)`, staged, end, data)
			return err
		})
		if err != nil {
			return err
		}
		end += int64(len(data))
		chunks++
		return nil
	}
	for _, data := range head {
		if err := put(data); err != nil {
			return 0, err
		}
	}
	buf := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(buf)
	for {
		n, err := readChunk(r, (*buf)[:BlobChunkBytes])
		if err != nil {
			return 0, err
		}
		if n == 0 {
			break
		}
		if err := put((*buf)[:n]); err != nil {
			return 0, err
		}
	}
	err = b.lazyTx(ctx, func(tx *sql.Tx) error {
		id, err := b.grow(ctx, tx, key, offset, end)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE datashare_blob_chunks SET blob_id = $1 WHERE blob_id = $2`, id, staged)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != chunks {
			// A Reset (a new claim) or a Delete removed the staged chunks.
			return fmt.Errorf("blob %s: the upload was reset while appending: %w", key, fs.ErrNotExist)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM datashare_blobs WHERE id = $1`, staged)
		return err
	})
	if err != nil {
		return 0, err
	}
	moved = true
	return end, nil
}

// grow moves the size of key's partial blob from offset to end, locking
// its row until tx ends, and returns the blob's id. A size other than
// offset is an *OffsetError, no partial blob fs.ErrNotExist.
func (b *DBBlobs) grow(ctx context.Context, tx *sql.Tx, key string, offset, end int64) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `UPDATE datashare_blobs SET size = $1, modified_at = $2
		WHERE blob_key = $3 AND state = $4 AND size = $5 RETURNING id`, end, b.now(), key, blobPartial, offset).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		if err := partialAt(ctx, tx, key, offset); err != nil {
			return "", err
		}
		return "", fmt.Errorf("blob %s: the partial upload changed while appending", key)
	}
	return id, err
}

// partialAt checks that key's partial blob holds offset bytes.
func partialAt(ctx context.Context, q store.Querier, key string, offset int64) error {
	var size int64
	err := q.QueryRowContext(ctx, `SELECT size FROM datashare_blobs WHERE blob_key = $1 AND state = $2`, key, blobPartial).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("blob %s: no partial upload: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return store.Classify(err)
	}
	if size != offset {
		return &OffsetError{Size: size}
	}
	return nil
}

// readChunk reads r until buf is full or r ends; n == 0 means r ended.
func readChunk(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return n, err
}

// OpenPartial implements BlobStore. The reader sees the partial upload as
// it was when opened.
func (b *DBBlobs) OpenPartial(ctx context.Context, key string) (Blob, error) {
	return b.open(ctx, key, blobPartial)
}

// Commit implements BlobStore. Its transaction commits synchronously,
// which makes the appends before it durable too (see lazyTx). Readers of
// the blob it replaces fail on their next chunk.
func (b *DBBlobs) Commit(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return b.DB.Tx(ctx, func(tx *sql.Tx) error {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM datashare_blobs WHERE blob_key = $1 AND state = $2`, key, blobPartial).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("blob %s: no partial upload: %w", key, fs.ErrNotExist)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM datashare_blobs WHERE blob_key = $1 AND state = $2`, key, blobCommitted); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE datashare_blobs SET state = $1, modified_at = $2 WHERE id = $3 AND state = $4`,
			blobCommitted, b.now(), id, blobPartial)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("blob %s: the partial upload changed while committing: %w", key, fs.ErrNotExist)
		}
		return nil
	})
}

// Open implements BlobStore.
func (b *DBBlobs) Open(ctx context.Context, key string) (Blob, error) {
	return b.open(ctx, key, blobCommitted)
}

func (b *DBBlobs) open(ctx context.Context, key, state string) (Blob, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	bl := &dbBlob{ctx: ctx, db: b.DB, key: key}
	var mod int64
	err := b.DB.QueryRowContext(ctx, `SELECT id, size, modified_at FROM datashare_blobs WHERE blob_key = $1 AND state = $2`, key, state).
		Scan(&bl.id, &bl.size, &mod)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("blob %s (%s): %w", key, state, fs.ErrNotExist)
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	bl.mod = store.FromMicros(mod)
	return bl, nil
}

// Delete implements BlobStore. Readers of the blob fail on their next
// chunk.
func (b *DBBlobs) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return b.DB.Tx(ctx, func(tx *sql.Tx) error {
		// The chunks go with their rows (ON DELETE CASCADE).
		_, err := tx.ExecContext(ctx, `DELETE FROM datashare_blobs WHERE blob_key = $1`, key)
		return err
	})
}

// dbBlob reads a DBBlobs blob one chunk at a time: a read loads the chunk
// holding the position from the database (one indexed query), later reads
// in the same chunk are served from memory.
type dbBlob struct {
	ctx  context.Context
	db   *store.DB
	key  string
	id   string
	size int64
	mod  time.Time

	pos      int64
	buf      *[]byte // from chunkPool; holds the chunk at bufPos
	bufLen   int
	bufPos   int64
	released bool
}

func (b *dbBlob) Size() int64        { return b.size }
func (b *dbBlob) ModTime() time.Time { return b.mod }

func (b *dbBlob) Read(p []byte) (int, error) {
	if b.released {
		return 0, os.ErrClosed
	}
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.buf == nil || b.pos < b.bufPos || b.pos >= b.bufPos+int64(b.bufLen) {
		if err := b.load(); err != nil {
			return 0, err
		}
	}
	avail := (*b.buf)[b.pos-b.bufPos : b.bufLen]
	if rest := b.size - b.pos; int64(len(avail)) > rest {
		avail = avail[:rest]
	}
	n := copy(p, avail)
	b.pos += int64(n)
	return n, nil
}

// load reads the chunk that holds b.pos into b.buf.
func (b *dbBlob) load() error {
	rows, err := b.db.QueryContext(b.ctx, `SELECT pos, data FROM datashare_blob_chunks WHERE blob_id = $1 AND pos <= $2 ORDER BY pos DESC LIMIT 1`, b.id, b.pos)
	if err != nil {
		return store.Classify(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return store.Classify(err)
		}
		return b.gone()
	}
	var pos int64
	var data sql.RawBytes // the driver's memory: copied below, not kept
	if err := rows.Scan(&pos, &data); err != nil {
		return store.Classify(err)
	}
	if pos+int64(len(data)) <= b.pos {
		return b.gone()
	}
	if b.buf == nil {
		b.buf = chunkPool.Get().(*[]byte)
	}
	if len(data) > cap(*b.buf) {
		*b.buf = make([]byte, len(data))
	}
	*b.buf = (*b.buf)[:cap(*b.buf)]
	b.bufLen = copy(*b.buf, data)
	b.bufPos = pos
	return rows.Close()
}

func (b *dbBlob) gone() error {
	return fmt.Errorf("blob %s: no bytes at %d of %d: the blob was deleted or replaced while being read: %w", b.key, b.pos, b.size, io.ErrUnexpectedEOF)
}

func (b *dbBlob) Seek(offset int64, whence int) (int64, error) {
	if b.released {
		return 0, os.ErrClosed
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.pos
	case io.SeekEnd:
		offset += b.size
	default:
		return 0, fmt.Errorf("blob %s: seek: invalid whence %d", b.key, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("blob %s: seek: negative position %d", b.key, offset)
	}
	b.pos = offset
	return offset, nil
}

func (b *dbBlob) Close() error {
	if b.released {
		return nil
	}
	b.released = true
	if b.buf != nil {
		chunkPool.Put(b.buf)
		b.buf = nil
	}
	return nil
}

package datashare_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

const chunk = datashare.BlobChunkBytes

// payload is n bytes of seeded noise (ciphertext looks like this).
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// blobStore is one BlobStore implementation under test.
type blobStore struct {
	name string
	open func(t *testing.T, db *store.DB) datashare.BlobStore
}

var blobStores = []blobStore{
	{"files", func(t *testing.T, _ *store.DB) datashare.BlobStore { return &datashare.FileBlobs{Dir: t.TempDir()} }},
	{"database", func(t *testing.T, db *store.DB) datashare.BlobStore {
		if err := datashare.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		return &datashare.DBBlobs{DB: db}
	}},
}

// eachShared runs fn per database backend with two handles on one
// database: two nodes.
func eachShared(t *testing.T, fn func(t *testing.T, db1, db2 *store.DB)) {
	t.Helper()
	open := func(t *testing.T, cfg store.Config) *store.DB {
		db, err := store.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	t.Run("sqlite", func(t *testing.T) {
		cfg := store.Config{DataDir: testkit.DataDir(t)}
		fn(t, open(t, cfg), open(t, cfg))
	})
	t.Run("postgres", func(t *testing.T) {
		cfg := store.Config{URL: storetest.PostgresURL(t)}
		fn(t, open(t, cfg), open(t, cfg))
	})
}

func TestBlobStoresKeepTheContract(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, s := range blobStores {
			t.Run(s.name, func(t *testing.T) { testBlobContract(t, s.open(t, db)) })
		}
	})
}

var errBroken = errors.New("the connection broke")

// breaksAfter reads b, then fails.
func breaksAfter(b []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(b), iotestErrReader{})
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errBroken }

func wantOffsetError(t *testing.T, what string, err error, size int64) {
	t.Helper()
	var oe *datashare.OffsetError
	if !errors.Is(err, datashare.ErrOffset) || !errors.As(err, &oe) || oe.Size != size {
		t.Fatalf("%s: %v, want an *OffsetError at %d", what, err, size)
	}
}

func wantNotExist(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: %v, want fs.ErrNotExist", what, err)
	}
}

// readBlob opens key with open (a store's Open or OpenPartial) and reads
// it all.
func readBlob(t *testing.T, what string, open func(context.Context, string) (datashare.Blob, error), key string) []byte {
	t.Helper()
	b, err := open(context.Background(), key)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if int64(len(got)) != b.Size() {
		t.Fatalf("%s: read %d bytes of a blob of size %d", what, len(got), b.Size())
	}
	return got
}

func testBlobContract(t *testing.T, bs datashare.BlobStore) {
	ctx := context.Background()
	const key = "dar_01jqz9a0c2e4g6j8m0p2r4t6v8.csv"

	// Nothing stored yet.
	_, err := bs.Open(ctx, key)
	wantNotExist(t, "Open before anything", err)
	_, err = bs.OpenPartial(ctx, key)
	wantNotExist(t, "OpenPartial before Reset", err)
	_, err = bs.Append(ctx, key, 0, bytes.NewReader([]byte("x")))
	wantNotExist(t, "Append before Reset", err)
	wantNotExist(t, "Commit before Reset", bs.Commit(ctx, key))
	if err := bs.Delete(ctx, key); err != nil {
		t.Fatalf("Delete of nothing: %v", err)
	}
	if err := bs.Reset(ctx, "../etc/passwd"); err == nil {
		t.Fatal("Reset took a malformed key")
	}

	// An upload in parts: small, over several chunks, exactly one chunk,
	// the rest.
	whole := payload(3*chunk+12345, 1)
	cuts := []int{0, 1000, 1000 + chunk + 7, 1000 + 2*chunk + 7, len(whole)}
	if err := bs.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n, err := bs.Append(ctx, key, 0, bytes.NewReader(nil)); n != 0 || err != nil {
		t.Fatalf("empty Append = %d, %v", n, err)
	}
	for i := 1; i < len(cuts); i++ {
		off, part := int64(cuts[i-1]), whole[cuts[i-1]:cuts[i]]
		if off > 0 {
			_, err := bs.Append(ctx, key, off-1, bytes.NewReader(part))
			wantOffsetError(t, "Append before the end", err, off)
			_, err = bs.Append(ctx, key, off+1, bytes.NewReader(part))
			wantOffsetError(t, "Append past the end", err, off)
		}
		// A part that breaks on the way, within one chunk and over
		// several, leaves nothing behind.
		for _, n := range []int{len(part) / 2, min(len(part), 2*chunk+3)} {
			if _, err := bs.Append(ctx, key, off, breaksAfter(part[:n])); !errors.Is(err, errBroken) {
				t.Fatalf("Append of a broken part (%d bytes): %v, want the reader's error", n, err)
			}
		}
		if got := readBlob(t, "OpenPartial", bs.OpenPartial, key); !bytes.Equal(got, whole[:off]) {
			t.Fatalf("partial upload after %d parts: %d bytes, want the first %d", i-1, len(got), off)
		}
		n, err := bs.Append(ctx, key, off, bytes.NewReader(part))
		if err != nil || n != int64(cuts[i]) {
			t.Fatalf("Append at %d = %d, %v; want %d", off, n, err, cuts[i])
		}
		_, err = bs.Open(ctx, key)
		wantNotExist(t, "Open before Commit", err)
	}
	_, err = bs.Append(ctx, key, 7, bytes.NewReader(nil))
	wantOffsetError(t, "empty Append at the wrong offset", err, int64(len(whole)))

	if err := bs.Commit(ctx, key); err != nil {
		t.Fatal(err)
	}
	b, err := bs.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if b.Size() != int64(len(whole)) || b.ModTime().IsZero() || time.Since(b.ModTime()) > time.Hour {
		t.Errorf("Size %d, ModTime %v; want %d and about now", b.Size(), b.ModTime(), len(whole))
	}
	b.Close()
	if got := readBlob(t, "Open", bs.Open, key); !bytes.Equal(got, whole) {
		t.Fatal("the committed blob differs from what was appended")
	}
	_, err = bs.OpenPartial(ctx, key)
	wantNotExist(t, "OpenPartial after Commit", err)
	_, err = bs.Append(ctx, key, int64(len(whole)), bytes.NewReader([]byte("more")))
	wantNotExist(t, "Append after Commit", err)

	t.Run("seek", func(t *testing.T) { testBlobSeeks(t, bs, key, whole) })
	t.Run("ranges", func(t *testing.T) { testBlobRanges(t, bs, key, whole) })

	// A new upload under the key leaves the committed blob readable until
	// it is committed in its place.
	if err := bs.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	next := payload(chunk+99, 2)
	if _, err := bs.Append(ctx, key, 0, bytes.NewReader(next[:50])); err != nil {
		t.Fatal(err)
	}
	if err := bs.Reset(ctx, key); err != nil { // the agent claimed again
		t.Fatal(err)
	}
	if got := readBlob(t, "OpenPartial after a second Reset", bs.OpenPartial, key); len(got) != 0 {
		t.Fatalf("Reset left %d bytes", len(got))
	}
	if _, err := bs.Append(ctx, key, 0, bytes.NewReader(next)); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, "Open while a new upload runs", bs.Open, key); !bytes.Equal(got, whole) {
		t.Fatal("the committed blob changed before the new upload was committed")
	}
	if err := bs.Commit(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, "Open after the second Commit", bs.Open, key); !bytes.Equal(got, next) {
		t.Fatal("Commit did not replace the blob")
	}

	// Delete takes the blob and any partial upload.
	if err := bs.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := bs.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, err = bs.Open(ctx, key)
	wantNotExist(t, "Open after Delete", err)
	_, err = bs.OpenPartial(ctx, key)
	wantNotExist(t, "OpenPartial after Delete", err)
	if err := bs.Delete(ctx, key); err != nil {
		t.Fatalf("second Delete: %v", err)
	}

	if dbb, ok := bs.(*datashare.DBBlobs); ok {
		// Nothing is left, not even the staged chunks of the broken
		// parts; no chunk was ever larger than BlobChunkBytes.
		var blobs, chunks int
		if err := dbb.DB.QueryRow(`SELECT (SELECT count(*) FROM datashare_blobs), (SELECT count(*) FROM datashare_blob_chunks)`).Scan(&blobs, &chunks); err != nil {
			t.Fatal(err)
		}
		if blobs != 0 || chunks != 0 {
			t.Errorf("after Delete: %d blob rows, %d chunk rows", blobs, chunks)
		}
	}
}

// testBlobSeeks reads from positions around the chunk boundaries, then
// follows a seeded walk of seeks and reads against bytes.Reader.
func testBlobSeeks(t *testing.T, bs datashare.BlobStore, key string, whole []byte) {
	b, err := bs.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	size := int64(len(whole))
	buf := make([]byte, 100)
	for _, pos := range []int64{0, 1, chunk - 1, chunk, chunk + 1, 1000 + chunk + 6, 1000 + chunk + 7, 2*chunk - 1, 2 * chunk, size - 1, size, size + 10} {
		if got, err := b.Seek(pos, io.SeekStart); got != pos || err != nil {
			t.Fatalf("Seek(%d) = %d, %v", pos, got, err)
		}
		n, err := io.ReadFull(b, buf)
		want := whole[min(pos, size):min(pos+100, size)]
		if !bytes.Equal(buf[:n], want) || (n < len(buf) && err != io.ErrUnexpectedEOF && err != io.EOF) {
			t.Fatalf("100 bytes at %d: got %d bytes (%v), want %d", pos, n, err, len(want))
		}
	}
	if _, err := b.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 succeeded")
	}
	if _, err := b.Seek(0, 42); err == nil {
		t.Error("Seek with a bad whence succeeded")
	}

	oracle := bytes.NewReader(whole)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 200 {
		off, whence := rng.Int64N(size+20)-10, rng.IntN(3)
		if whence == io.SeekStart && off < 0 {
			off = -off
		}
		want, werr := oracle.Seek(off, whence)
		got, gerr := b.Seek(off, whence)
		if (werr == nil) != (gerr == nil) || (werr == nil && got != want) {
			t.Fatalf("step %d: Seek(%d, %d) = %d, %v; bytes.Reader: %d, %v", i, off, whence, got, gerr, want, werr)
		}
		if werr != nil {
			oracle.Seek(got, io.SeekStart) // stay in step
			continue
		}
		p := make([]byte, rng.IntN(3*chunk/2))
		wn, _ := io.ReadFull(oracle, p)
		gn, err := io.ReadFull(b, p)
		if gn != wn || (err != nil && err != io.EOF && err != io.ErrUnexpectedEOF) {
			t.Fatalf("step %d: read %d bytes (%v) at %d, bytes.Reader %d", i, gn, err, got, wn)
		}
		if at := min(got, size); !bytes.Equal(p[:gn], whole[at:at+int64(gn)]) {
			t.Fatalf("step %d: the bytes at %d differ", i, got)
		}
	}
}

// testBlobRanges serves the blob as the download handler does, with
// ranges across chunk boundaries.
func testBlobRanges(t *testing.T, bs datashare.BlobStore, key string, whole []byte) {
	for _, rg := range [][2]int{{0, 10}, {chunk - 5, chunk + 5}, {1000, 2*chunk + 1000}, {len(whole) - 3, len(whole) - 1}} {
		b, err := bs.Open(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))
		w := httptest.NewRecorder()
		http.ServeContent(w, req, "", b.ModTime(), b)
		b.Close()
		if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), whole[rg[0]:rg[1]+1]) {
			t.Errorf("range %d-%d: %d, %d bytes", rg[0], rg[1], w.Code, w.Body.Len())
		}
	}
}

func TestDBBlobsStoreChunksOfAtMostBlobChunkBytes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := datashare.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		bs := &datashare.DBBlobs{DB: db}
		const key = "dar_01jqz9a0c2e4g6j8m0p2r4t6v8.jsonl"
		whole := payload(5*chunk/2, 3)
		if err := bs.Reset(ctx, key); err != nil {
			t.Fatal(err)
		}
		// One append of 2.5 chunks, the way the in-process agent writes;
		// then small parts, the way a remote agent's last parts come.
		if _, err := bs.Append(ctx, key, 0, bytes.NewReader(whole[:2*chunk+1])); err != nil {
			t.Fatal(err)
		}
		for off := 2*chunk + 1; off < len(whole); off += chunk / 8 {
			if _, err := bs.Append(ctx, key, int64(off), bytes.NewReader(whole[off:min(off+chunk/8, len(whole))])); err != nil {
				t.Fatal(err)
			}
		}
		if err := bs.Commit(ctx, key); err != nil {
			t.Fatal(err)
		}
		var rows, largest int64
		if err := db.QueryRow(`SELECT count(*), max(length(data)) FROM datashare_blob_chunks`).Scan(&rows, &largest); err != nil {
			t.Fatal(err)
		}
		if largest != chunk || rows != 3+4 {
			t.Errorf("%d chunk rows, the largest %d bytes; want 7, %d", rows, largest, chunk)
		}
		if got := readBlob(t, "Open", bs.Open, key); !bytes.Equal(got, whole) {
			t.Fatal("the blob differs from what was appended")
		}
	})
}

// TestConcurrentAppendsAtOneOffsetExactlyOneWins races two appends at the
// same offset, from two nodes sharing the database (DBBlobs) or within
// one node (FileBlobs, whose directory belongs to one node): exactly one
// lands, whole, and the other is told the size it made.
func TestConcurrentAppendsAtOneOffsetExactlyOneWins(t *testing.T) {
	eachShared(t, func(t *testing.T, db1, db2 *store.DB) {
		ctx := context.Background()
		if err := datashare.Migrate(ctx, db1); err != nil {
			t.Fatal(err)
		}
		files := &datashare.FileBlobs{Dir: t.TempDir()}
		for _, nodes := range []struct {
			name string
			a, b datashare.BlobStore
		}{
			{"files", files, files},
			{"database", &datashare.DBBlobs{DB: db1}, &datashare.DBBlobs{DB: db2}},
		} {
			t.Run(nodes.name, func(t *testing.T) {
				const key = "dar_01jqz9a0c2e4g6j8m0p2r4t6v8.csv"
				wins := map[string]int{}
				for round := range 16 {
					// Parts of one chunk and of several alternate.
					size := 1000 + round
					if round%2 == 1 {
						size = chunk + 1000 + round
					}
					base := payload(500, byte(round))
					if err := nodes.a.Reset(ctx, key); err != nil {
						t.Fatal(err)
					}
					if _, err := nodes.b.Append(ctx, key, 0, bytes.NewReader(base)); err != nil {
						t.Fatal(err)
					}
					parts := map[string][]byte{"a": payload(size, 100+byte(round)), "b": payload(size, 200+byte(round))}
					type result struct {
						n   int64
						err error
					}
					results := map[string]result{}
					var mu sync.Mutex
					var wg sync.WaitGroup
					start := make(chan struct{})
					for name, s := range map[string]datashare.BlobStore{"a": nodes.a, "b": nodes.b} {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							n, err := s.Append(ctx, key, int64(len(base)), bytes.NewReader(parts[name]))
							mu.Lock()
							results[name] = result{n, err}
							mu.Unlock()
						}()
					}
					close(start)
					wg.Wait()
					var winner, loser string
					switch {
					case results["a"].err == nil && results["b"].err != nil:
						winner, loser = "a", "b"
					case results["b"].err == nil && results["a"].err != nil:
						winner, loser = "b", "a"
					default:
						t.Fatalf("round %d: a: %v, b: %v; want exactly one to land", round, results["a"].err, results["b"].err)
					}
					wins[winner]++
					end := int64(len(base) + size)
					if results[winner].n != end {
						t.Fatalf("round %d: the winner's size is %d, want %d", round, results[winner].n, end)
					}
					wantOffsetError(t, fmt.Sprintf("round %d: the loser", round), results[loser].err, end)
					if got := readBlob(t, "OpenPartial", nodes.a.OpenPartial, key); !bytes.Equal(got, append(base, parts[winner]...)) {
						t.Fatalf("round %d: the upload is not the base and the winner's part", round)
					}
				}
				t.Logf("wins: %v", wins)
				if nodes.name == "database" {
					var staged int
					if err := db1.QueryRow(`SELECT count(*) FROM datashare_blobs WHERE state = 'staged'`).Scan(&staged); err != nil || staged != 0 {
						t.Errorf("%d staged rows left (%v)", staged, err)
					}
				}
			})
		}
	})
}

// BenchmarkBlobStores appends a blob in parts of one chunk (the way a
// remote agent uploads) and reads it back (the way a download does),
// per store and database; b.N counts MiB.
func BenchmarkBlobStores(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			var db *store.DB
			if dialect == "sqlite" {
				db = storetest.OpenSQLite(b)
			} else {
				db = storetest.OpenPostgres(b)
			}
			if err := datashare.Migrate(context.Background(), db); err != nil {
				b.Fatal(err)
			}
			for _, s := range []struct {
				name string
				bs   datashare.BlobStore
			}{{"files", &datashare.FileBlobs{Dir: b.TempDir()}}, {"database", &datashare.DBBlobs{DB: db}}} {
				b.Run(s.name, func(b *testing.B) { benchmarkBlobStore(b, s.bs) })
			}
		})
	}
}

func benchmarkBlobStore(b *testing.B, bs datashare.BlobStore) {
	ctx := context.Background()
	const key = "dar_bench.csv"
	part := payload(chunk, 5)
	b.Run("append", func(b *testing.B) {
		b.SetBytes(chunk)
		if err := bs.Reset(ctx, key); err != nil {
			b.Fatal(err)
		}
		var off int64
		for b.Loop() {
			n, err := bs.Append(ctx, key, off, bytes.NewReader(part))
			if err != nil {
				b.Fatal(err)
			}
			off = n
		}
		if err := bs.Commit(ctx, key); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("read", func(b *testing.B) {
		blob, err := bs.Open(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		defer blob.Close()
		b.SetBytes(chunk)
		buf := make([]byte, 32<<10)
		chunks := blob.Size() / chunk
		var i int64
		for b.Loop() {
			// Chunk after chunk, as a download goes.
			if _, err := blob.Seek(i%chunks*chunk, io.SeekStart); err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, io.LimitReader(blob, chunk), buf); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

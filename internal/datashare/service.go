package datashare

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	trail "github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates or updates the data partnering tables. The outbox's
// tables must exist too (outbox.Migrate): decisions write events.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "datashare", migrationFiles, "migrations")
}

// Options configure a Service.
type Options struct {
	// DataDir holds the blobs, under DataDir/datashare, on SQLite (see
	// DefaultBlobs), unless Blobs is set.
	DataDir string
	// Blobs overrides the blob store; default DefaultBlobs(db, DataDir).
	Blobs BlobStore
	// Logger; default slog.Default. Nothing of a dataset's content is ever
	// logged.
	Logger *slog.Logger
	// Notify, when set, is called after a transaction that wrote outbox
	// events commits (the platform passes the outbox relay's Notify).
	Notify func()
	// AgentToken, when set, is a second bearer token (besides the bank's
	// admin token) accepted on the agent routes /bank/v1/agent/... and
	// nowhere else, for a `causeway agent` that should not hold the admin
	// token.
	AgentToken string
	// SourceDirs, when set, are the directories file sources must lie
	// under for the bank to publish them (the in-process agent's allowed
	// directories). The agent checks again when it reads.
	SourceDirs []string
	// LeaseTTL is how long a claimed job stays with its agent without
	// progress; default 2 minutes.
	LeaseTTL time.Duration
	// Leader, when set, says whether this node does the cluster's periodic
	// work now (Run's sweep: expiring access, deleting retired
	// ciphertext); nodes sharing a database agree on one leader (the
	// platform passes its lease's Held, package leader), and another takes over
	// when it dies. Nil means always (one node).
	Leader func() bool
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time
	// Rows, when set, counts the rows of the built-in generators that read
	// the bank's data, each time the catalog is read (see RowCounter).
	// Without it those datasets show the count stored when they were
	// published or last ensured.
	Rows RowCounter
}

// RowCounter counts the rows a built-in generator would write if a
// download were produced now, so the catalog's row_count is what a
// requester receives, not what the bank held when the dataset was
// published (the sandbox's datasets grow as the bank runs). It counts
// only: no row leaves the bank side. ok is false for a generator it does
// not know. Package datashare/agent implements it over the sandbox bank.
type RowCounter interface {
	CountRows(ctx context.Context, generator string) (n int64, ok bool, err error)
}

// Service is data partnering's hub: catalog, access requests, decisions,
// jobs for data agents, stored ciphertext and the audit trail. Safe for
// concurrent use.
type Service struct {
	db         *store.DB
	blobs      BlobStore
	log        *slog.Logger
	notify     func()
	agentToken [sha256.Size]byte
	hasAgent   bool
	sourceDirs []string
	leaseTTL   time.Duration
	leader     func() bool
	now        func() time.Time
	rows       RowCounter

	wake chan struct{} // new work for in-process producers
}

// DefaultBlobs is where ciphertext lives unless Options.Blobs says
// otherwise: in the database on PostgreSQL (DBBlobs), where nodes share
// nothing but the database and NATS; in files under dataDir/datashare on
// the embedded SQLite (FileBlobs), where there is one node and files are
// the fastest store (no chunking, and the one SQLite writer stays free for
// everything else).
func DefaultBlobs(db *store.DB, dataDir string) BlobStore {
	if db.Dialect == store.Postgres {
		return &DBBlobs{DB: db}
	}
	return &FileBlobs{Dir: filepath.Join(dataDir, "datashare")}
}

// New returns a Service over db. Migrate must have run.
func New(db *store.DB, opts Options) (*Service, error) {
	s := &Service{
		db:         db,
		blobs:      opts.Blobs,
		log:        cmp.Or(opts.Logger, slog.Default()),
		notify:     opts.Notify,
		sourceDirs: opts.SourceDirs,
		leaseTTL:   cmp.Or(opts.LeaseTTL, 2*time.Minute),
		leader:     opts.Leader,
		now:        opts.Now,
		rows:       opts.Rows,
		wake:       make(chan struct{}, 1),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.blobs == nil {
		if opts.DataDir == "" && db.Dialect != store.Postgres {
			return nil, errors.New("datashare: Options.DataDir or Options.Blobs is required")
		}
		s.blobs = DefaultBlobs(db, opts.DataDir)
	}
	if opts.AgentToken != "" {
		s.agentToken = sha256.Sum256([]byte(opts.AgentToken))
		s.hasAgent = true
	}
	for i, d := range s.sourceDirs {
		s.sourceDirs[i] = filepath.Clean(d)
	}
	return s, nil
}

func (s *Service) nowUTC() time.Time { return s.now().UTC() }

// signal wakes in-process producers; it never blocks.
func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) committedEvents() {
	if s.notify != nil {
		s.notify()
	}
}

// ---- catalog ----

// PublishDataset adds a dataset to the catalog. A name already in the
// catalog is a conflict (code dataset_exists).
func (s *Service) PublishDataset(ctx context.Context, n NewDataset) (*Dataset, error) {
	if err := n.Normalize(); err != nil {
		return nil, err
	}
	if n.Source.Kind == SourceFile && len(s.sourceDirs) > 0 && !under(n.Source.Path, s.sourceDirs) {
		return nil, invalid("invalid_source", "source.path must lie under one of the agent's allowed directories (%s)", strings.Join(s.sourceDirs, ", "))
	}
	now := s.nowUTC()
	d := &Dataset{
		ID: ids.New("ds"), Name: n.Name, Description: n.Description, Columns: n.Columns, Sample: n.Sample,
		Formats: n.Formats, RowCount: n.RowCount, Licence: n.Licence, Version: n.Version,
		CreatedAt: now, UpdatedAt: now, Source: &n.Source,
	}
	cols, _ := json.Marshal(d.Columns)
	sample, err := json.Marshal(d.Sample)
	if err != nil {
		return nil, invalid("invalid_sample", "sample rows must be plain JSON values")
	}
	formats, _ := json.Marshal(d.Formats)
	src, _ := json.Marshal(d.Source)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO datashare_datasets
			(id, name, description, columns, sample, formats, row_count, licence, version, source, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
			d.ID, d.Name, d.Description, string(cols), string(sample), string(formats), d.RowCount, d.Licence, d.Version, string(src), store.Micros(now))
		if err != nil {
			return err
		}
		return trail.Record(ctx, tx, trail.Change{Action: "dataset.publish", TargetType: "dataset", TargetID: d.ID,
			After: map[string]any{"name": d.Name, "version": d.Version, "licence": d.Licence, "formats": d.Formats, "source": d.Source.Kind}})
	})
	if store.IsUniqueViolation(err) {
		return nil, causeway.Errorf(causeway.ECONFLICT, "dataset_exists", "a dataset named %s is already in the catalog", n.Name)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// EnsureDataset publishes n unless a dataset of that name exists, in which
// case it refreshes only its row count (the sandbox's datasets grow as the
// bank runs). It reports whether it created the dataset.
func (s *Service) EnsureDataset(ctx context.Context, n NewDataset) (*Dataset, bool, error) {
	d, err := s.PublishDataset(ctx, n)
	if err == nil {
		return d, true, nil
	}
	if causeway.ErrorCode(err) != "dataset_exists" {
		return nil, false, err
	}
	if n.RowCount > 0 {
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE datashare_datasets SET row_count = $1, updated_at = $2 WHERE name = $3 AND row_count <> $1`,
				n.RowCount, store.Micros(s.nowUTC()), n.Name)
			return err
		})
		if err != nil {
			return nil, false, err
		}
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+datasetColumns+` FROM datashare_datasets WHERE name = $1`, n.Name)
	d, _, err = scanDataset(row, true)
	return d, false, err
}

const datasetColumns = `id, name, description, columns, sample, formats, row_count, licence, version, source, created_at, updated_at`

// scanDataset reads a dataset row. The source is parsed always (it
// decides how rows are counted) but shown only to the bank.
func scanDataset(row store.Scanner, bank bool) (*Dataset, *Source, error) {
	var d Dataset
	var cols, sample, formats, src string
	var created, updated int64
	if err := row.Scan(&d.ID, &d.Name, &d.Description, &cols, &sample, &formats, &d.RowCount, &d.Licence, &d.Version, &src, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil, causeway.Errorf(causeway.ENOTFOUND, "not_found", "no such dataset")
		}
		return nil, nil, store.Classify(err)
	}
	d.CreatedAt, d.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	var source Source
	if err := errors.Join(json.Unmarshal([]byte(cols), &d.Columns), json.Unmarshal([]byte(sample), &d.Sample),
		json.Unmarshal([]byte(formats), &d.Formats), json.Unmarshal([]byte(src), &source)); err != nil {
		return nil, nil, fmt.Errorf("dataset %s: %w", d.ID, err)
	}
	if bank {
		d.Source = &source
	}
	return &d, &source, nil
}

// countRows sets d.RowCount to what a download produced now would hold,
// where that is known: the synthetic generator makes exactly the rows it
// is asked for, and the RowCounter counts the generators over the bank's
// data. A file's count is the one the bank declared.
func (s *Service) countRows(ctx context.Context, d *Dataset, src *Source) error {
	if src.Kind != SourceGenerator {
		return nil
	}
	if src.Generator == GenSynthetic {
		d.RowCount = src.Rows
		return nil
	}
	if s.rows == nil {
		return nil
	}
	n, ok, err := s.rows.CountRows(ctx, src.Generator)
	if err != nil {
		return fmt.Errorf("dataset %s: counting rows: %w", d.ID, err)
	}
	if ok {
		d.RowCount = n
	}
	return nil
}

// scanCounted reads a dataset row and counts its rows (countRows).
func (s *Service) scanCounted(ctx context.Context, row store.Scanner, bank bool) (*Dataset, error) {
	d, src, err := scanDataset(row, bank)
	if err != nil {
		return nil, err
	}
	if err := s.countRows(ctx, d, src); err != nil {
		return nil, err
	}
	return d, nil
}

// Dataset returns one dataset of the catalog, which every app and
// developer may browse; the bank sees where its data comes from (Source)
// too. The zero Caller sees nothing (ENOTFOUND).
func (s *Service) Dataset(ctx context.Context, caller auth.Caller, id string) (*Dataset, error) {
	if caller.IsNobody() {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "not_found", "no such dataset")
	}
	return s.scanCounted(ctx, s.db.QueryRowContext(ctx, `SELECT `+datasetColumns+` FROM datashare_datasets WHERE id = $1`, id), caller.IsBank())
}

// Datasets lists the catalog, oldest first, as Dataset shows each one.
func (s *Service) Datasets(ctx context.Context, caller auth.Caller, limit int, cursor string) (*page.Page[*Dataset], error) {
	limit, after, err := page.Args(limit, cursor)
	if err != nil {
		return nil, err
	}
	if caller.IsNobody() {
		return &page.Page[*Dataset]{Data: []*Dataset{}}, nil
	}
	bank := caller.IsBank()
	rows, err := s.db.QueryContext(ctx, `SELECT `+datasetColumns+` FROM datashare_datasets WHERE id > $1 ORDER BY id LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	pg := &page.Page[*Dataset]{Data: []*Dataset{}}
	var sources []*Source
	for rows.Next() {
		d, src, err := scanDataset(rows, bank)
		if err != nil {
			return nil, err
		}
		pg.Data = append(pg.Data, d)
		sources = append(sources, src)
	}
	if err := rows.Err(); err != nil {
		return nil, store.Classify(err)
	}
	rows.Close() // the counts below need connections of their own
	if len(pg.Data) > limit {
		pg.Data = pg.Data[:limit]
		pg.NextCursor = page.Cursor(pg.Data[limit-1].ID)
	}
	for i, d := range pg.Data {
		if err := s.countRows(ctx, d, sources[i]); err != nil {
			return nil, err
		}
	}
	return pg, nil
}

// under reports whether path lies in one of dirs.
func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if rel, err := filepath.Rel(d, path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel) {
			return true
		}
	}
	return false
}

// Page sizes of the lists.
const (
	DefaultPageSize = page.DefaultSize
	MaxPageSize     = page.MaxSize
)

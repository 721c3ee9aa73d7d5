// Package agent is the data agent: the only component of data partnering
// that reads the bank's data in plaintext. For each job it reads a
// dataset's rows (from a built-in generator over the bank's database, or a
// file on the bank's side), writes them as CSV or JSON Lines straight into
// an age encryptor for the request's recipient, and hands the hub nothing
// but the ciphertext, streaming, in constant memory.
//
// It runs in two ways. In-process, the platform passes an *Agent to
// datashare.Service.RunProducer as a datashare.Producer. Remote, `causeway
// agent --hub URL --token T` runs a Remote, which polls the hub's
// /bank/v1/agent routes, claims jobs and uploads their ciphertext in parts.
//
// Customer, account and loan ids are pseudonymized with HMAC-SHA256 under
// a key only the agent holds (LoadKey), so the hashes are stable across
// datasets and requests, and useless to anyone without the key.
package agent

import (
	"bufio"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/store"
)

// Config configures an Agent.
type Config struct {
	// DB is the bank's database, read by the sandbox generators
	// (pseudonymized-transactions, loan-performance); nil makes jobs of
	// those generators fail with a clear error.
	DB *store.DB
	// PseudonymKey keys the HMAC that replaces ids (at least 16 bytes).
	PseudonymKey []byte
	// AllowedDirs are the directories file sources may be read from (after
	// resolving symbolic links). Empty: no file sources.
	AllowedDirs []string
	Logger      *slog.Logger
}

// Agent produces the encrypted content of jobs. It implements
// datashare.Producer. Safe for concurrent use.
type Agent struct {
	db      *store.DB
	key     []byte
	allowed []string
	log     *slog.Logger
}

// New returns an Agent.
func New(cfg Config) (*Agent, error) {
	if len(cfg.PseudonymKey) < 16 {
		return nil, errors.New("data agent: the pseudonym key must be at least 16 bytes")
	}
	a := &Agent{db: cfg.DB, key: append([]byte(nil), cfg.PseudonymKey...), log: cmp.Or(cfg.Logger, slog.Default())}
	for _, d := range cfg.AllowedDirs {
		if d == "" {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("data agent: allowed dir %s: %w", d, err)
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		a.allowed = append(a.allowed, abs)
	}
	return a, nil
}

// Produce starts producing job's content and returns the ciphertext as it
// is made: the rows, encoded in job.Format, encrypted with age to
// job.Recipient. A failure while producing (a query, a missing file) is
// returned by Read. Close stops the production early.
func (a *Agent) Produce(ctx context.Context, job *datashare.Job) (io.ReadCloser, error) {
	recipient, err := age.ParseX25519Recipient(job.Recipient)
	if err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	src, err := a.source(job)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		defer cancel()
		pw.CloseWithError(encryptTo(ctx, pw, recipient, func(w io.Writer) error { return src(ctx, w, job.Format) }))
	}()
	return &producing{PipeReader: pr, cancel: cancel}, nil
}

type producing struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (p *producing) Close() error {
	p.cancel()
	return p.PipeReader.Close()
}

// encryptTo runs write into an age encryptor for recipient over dst.
func encryptTo(ctx context.Context, dst io.Writer, recipient age.Recipient, write func(io.Writer) error) error {
	// Buffer the ciphertext so the pipe sees large writes, not age's 64 KiB
	// chunks one by one.
	bw := bufio.NewWriterSize(dst, 256<<10)
	enc, err := age.Encrypt(bw, recipient)
	if err != nil {
		return err
	}
	if err := write(enc); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// sourceFunc writes a dataset's rows in format to w.
type sourceFunc func(ctx context.Context, w io.Writer, format string) error

func (a *Agent) source(job *datashare.Job) (sourceFunc, error) {
	if job.Format != datashare.FormatCSV && job.Format != datashare.FormatJSONL {
		return nil, fmt.Errorf("format %q is not csv or jsonl", job.Format)
	}
	src := job.Dataset.Source
	switch src.Kind {
	case datashare.SourceGenerator:
		switch src.Generator {
		case datashare.GenPseudonymizedTransactions:
			return a.needDB(a.transactions)
		case datashare.GenLoanPerformance:
			return a.needDB(a.loans)
		case datashare.GenSynthetic:
			return func(ctx context.Context, w io.Writer, format string) error {
				return Synthetic(ctx, w, format, src.Rows, src.Seed)
			}, nil
		}
		return nil, fmt.Errorf("this agent has no generator %q", src.Generator)
	case datashare.SourceFile:
		path, err := a.allowedFile(src.Path)
		if err != nil {
			return nil, err
		}
		cols := job.Dataset.Columns
		return func(ctx context.Context, w io.Writer, format string) error {
			return copyFile(ctx, w, path, format, cols)
		}, nil
	}
	return nil, fmt.Errorf("source kind %q is not generator or file", src.Kind)
}

func (a *Agent) needDB(f sourceFunc) (sourceFunc, error) {
	if a.db == nil {
		return nil, errors.New("this agent has no bank database configured (causeway agent --database-url or --bank-data-dir)")
	}
	return f, nil
}

// allowedFile resolves path (symbolic links included) and checks it lies
// under an allowed directory.
func (a *Agent) allowedFile(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("file source %s is not an absolute path", path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("file source: %w", errors.Unwrap(err))
	}
	for _, d := range a.allowed {
		rel, err := filepath.Rel(d, real)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel) {
			st, err := os.Stat(real)
			if err != nil {
				return "", fmt.Errorf("file source: %w", errors.Unwrap(err))
			}
			if !st.Mode().IsRegular() {
				return "", fmt.Errorf("file source %s is not a regular file", path)
			}
			return real, nil
		}
	}
	return "", fmt.Errorf("file source %s is outside the agent's allowed directories", path)
}

// pseudonymizer replaces ids by keyed hashes: the first 16 bytes of
// HMAC-SHA256(key, kind + ":" + id), in hex. Not safe for concurrent use.
type pseudonymizer struct {
	mac hash.Hash
	buf []byte
}

func (a *Agent) pseudonymizer() *pseudonymizer {
	return &pseudonymizer{mac: hmac.New(sha256.New, a.key)}
}

func (p *pseudonymizer) hash(kind, id string) []byte {
	p.mac.Reset()
	p.mac.Write([]byte(kind))
	p.mac.Write([]byte{':'})
	p.mac.Write([]byte(id))
	sum := p.mac.Sum(p.buf[:0])
	out := make([]byte, 32)
	hex.Encode(out, sum[:16])
	return out
}

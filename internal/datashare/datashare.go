// Package datashare is data partnering, the hub side: the bank's dataset
// catalog, apps' access requests and the bank's decisions on them, the audit
// trail, and the delivery of age-encrypted content that only the requesting
// data scientist can decrypt.
//
// The hub never holds plaintext. A data agent (package datashare/agent, run
// in-process behind the Producer interface or as `causeway agent` on the
// bank's premises) reads the bank's data and streams it through age to the
// request's recipient; the hub stores the ciphertext as a blob and relays it
// on download, with Content-Length, ETag (SHA-256 of the ciphertext) and
// Range support.
//
// A request's life: awaiting_approval -> approved | rejected; approved ->
// revoked (by the bank) | expired (when its expiry passes). Each decision
// records who, when and why, writes a dataset.access.* event for the
// requesting app through the outbox in the same transaction, and lands in
// the audit trail with every download.
//
// Content is produced per (request, format): approval queues a job for the
// request's format, and a download in another offered format queues one for
// that format. A job is claimed by one agent at a time under a lease, filled
// in order (in parts of at most 1 MiB over HTTP, since the platform caps
// request bodies), then completed with its size and SHA-256, which the hub
// checks against what it received.
package datashare

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/causewayhq/causeway"
)

// Formats a dataset can be delivered in.
const (
	FormatCSV   = "csv"   // RFC 4180 with a header line
	FormatJSONL = "jsonl" // JSON Lines: one object per row
)

// Access request statuses. StatusExpired is reported for an approved
// request whose expiry has passed, before or after the sweeper writes it.
const (
	StatusAwaitingApproval = "awaiting_approval"
	StatusApproved         = "approved"
	StatusRejected         = "rejected"
	StatusRevoked          = "revoked"
	StatusExpired          = "expired"
)

// Content (job) statuses.
const (
	ContentPending   = "pending"   // waiting for an agent
	ContentProducing = "producing" // an agent holds the lease and is uploading
	ContentReady     = "ready"     // stored; downloadable
	ContentFailed    = "failed"    // the agent gave up; the bank may retry
	ContentDeleted   = "deleted"   // removed after revocation or expiry
)

// Source kinds.
const (
	SourceGenerator = "generator" // a generator built into the agent
	SourceFile      = "file"      // a CSV or JSON Lines file on the agent's side
)

// Limits.
const (
	MaxPurpose      = 2000
	MaxDurationDays = 365
	MaxSampleRows   = 20
	MaxColumns      = 200
)

// EventSource is the CloudEvents source of dataset.access.* events.
const EventSource = "/causeway/datashare"

// Column describes one column of a dataset.
type Column struct {
	Name        string `json:"name" minLength:"1" maxLength:"64" example:"customer_hash"`
	Type        string `json:"type" enum:"string,integer,number,boolean,date,datetime" example:"string"`
	Description string `json:"description,omitempty" maxLength:"1000" text:"multiline" example:"Keyed hash of the customer id"`
}

// Source tells the data agent where a dataset's rows come from. Only the
// bank and the agent see it.
type Source struct {
	Kind string `json:"kind" enum:"generator,file" doc:"generator: built into the agent; file: a CSV or JSON Lines file on the agent's side"`
	// Generator names a built-in generator (see Generators).
	Generator string `json:"generator,omitempty" maxLength:"64" example:"pseudonymized-transactions"`
	// Path is an absolute path on the agent's machine; the agent reads it
	// only if it lies under one of its allowed directories.
	Path string `json:"path,omitempty" maxLength:"4096" example:"/srv/bank-exports/transactions.csv"`
	// Rows and Seed parameterise the synthetic generator (tests and
	// benchmarks).
	Rows int64 `json:"rows,omitempty" minimum:"0"`
	Seed int64 `json:"seed,omitempty"`
}

// Dataset is an entry of the catalog.
type Dataset struct {
	ID          string           `json:"id" example:"ds_01jqz6k8m0p2r4t6v8w0y2a4c6"`
	Name        string           `json:"name" example:"pseudonymized-transactions"`
	Description string           `json:"description"`
	Columns     []Column         `json:"columns"`
	Sample      []map[string]any `json:"sample" doc:"Illustrative rows with the dataset's schema"`
	Formats     []string         `json:"formats" example:"[\"csv\",\"jsonl\"]"`
	RowCount    int64            `json:"row_count"`
	Licence     string           `json:"licence"`
	Version     string           `json:"version" example:"1"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
	// Source is shown to the bank only.
	Source *Source `json:"source,omitempty"`
}

// NewDataset is what the bank publishes.
type NewDataset struct {
	Name        string           `json:"name" minLength:"1" maxLength:"100" example:"pseudonymized-transactions" doc:"Unique slug: lower-case letters, digits and dashes"`
	Description string           `json:"description,omitempty" maxLength:"10000" text:"multiline" doc:"What the data is and how it was made; generators bring their own"`
	Columns     []Column         `json:"columns,omitempty" maxItems:"200" doc:"Required for file sources; generators bring their own"`
	Sample      []map[string]any `json:"sample,omitempty" maxItems:"20" doc:"Illustrative rows (never real customer data: every developer sees them)"`
	Formats     []string         `json:"formats,omitempty" maxItems:"2" maxLength:"16" doc:"Default csv and jsonl"`
	RowCount    int64            `json:"row_count,omitempty" minimum:"0"`
	Licence     string           `json:"licence,omitempty" maxLength:"10000" text:"multiline" doc:"Licence and terms of use"`
	Version     string           `json:"version,omitempty" maxLength:"64" doc:"Default 1"`
	Source      Source           `json:"source"`
}

var (
	slug       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,99}$`)
	columnName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

var columnTypes = map[string]bool{"string": true, "integer": true, "number": true, "boolean": true, "date": true, "datetime": true}

func invalid(code, format string, args ...any) error {
	return causeway.Errorf(causeway.EINVALID, code, format, args...)
}

// Normalize fills defaults (formats, version, a generator's columns and
// sample) and checks the dataset. The file path is checked for form only:
// whether it lies under an allowed directory is the agent's decision, since
// only the agent knows its file system (see also Options.SourceDirs).
func (n *NewDataset) Normalize() error {
	n.Name = strings.TrimSpace(n.Name)
	if !slug.MatchString(n.Name) {
		return invalid("invalid_name", "name must be 1-100 lower-case letters, digits and dashes, starting with a letter or digit")
	}
	if !validText(n.Description) || !validText(n.Licence) || !validText(n.Version) {
		return invalid("invalid_text", "description, licence and version must be valid UTF-8 without NUL")
	}
	if n.Version = strings.TrimSpace(n.Version); n.Version == "" {
		n.Version = "1"
	}
	if n.RowCount < 0 {
		return invalid("invalid_row_count", "row_count must not be negative")
	}
	if err := n.normalizeSource(); err != nil {
		return err
	}
	if strings.TrimSpace(n.Description) == "" {
		return invalid("invalid_description", "a description is required: say what the data is and how it was made")
	}
	columns, err := n.checkColumns()
	if err != nil {
		return err
	}
	if len(n.Sample) > MaxSampleRows {
		return invalid("invalid_sample", "at most %d sample rows", MaxSampleRows)
	}
	for i, row := range n.Sample {
		for k := range row {
			if !columns[k] {
				return invalid("invalid_sample", "sample row %d has column %q, which is not among the columns", i, k)
			}
		}
	}
	if n.Sample == nil {
		n.Sample = []map[string]any{}
	}
	return n.normalizeFormats()
}

// normalizeSource checks the source and, for a generator, fills the
// columns, sample and description it has.
func (n *NewDataset) normalizeSource() error {
	switch n.Source.Kind {
	case SourceGenerator:
		g, ok := Generators[n.Source.Generator]
		if !ok {
			return invalid("unknown_generator", "source.generator %q is not one of the agent's generators (%s)", n.Source.Generator, strings.Join(GeneratorNames(), ", "))
		}
		if n.Source.Path != "" {
			return invalid("invalid_source", "a generator source takes no path")
		}
		if n.Source.Rows < 0 {
			return invalid("invalid_source", "source.rows must not be negative")
		}
		if len(n.Columns) == 0 {
			n.Columns = g.Columns
		}
		if n.Sample == nil {
			n.Sample = g.Sample
		}
		if n.Description == "" {
			n.Description = g.Description
		}
	case SourceFile:
		p := n.Source.Path
		if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) || !utf8.ValidString(p) {
			return invalid("invalid_source", "source.path must be a clean absolute path on the agent's machine")
		}
		ext := strings.ToLower(filepath.Ext(p))
		if ext != ".csv" && ext != ".jsonl" && ext != ".ndjson" {
			return invalid("invalid_source", "source.path must name a .csv or .jsonl file")
		}
		if n.Source.Generator != "" || n.Source.Rows != 0 || n.Source.Seed != 0 {
			return invalid("invalid_source", "a file source takes only a path")
		}
		if len(n.Columns) == 0 {
			return invalid("invalid_columns", "a file source needs its columns described")
		}
	default:
		return invalid("invalid_source", "source.kind must be generator or file")
	}
	return nil
}

// checkColumns checks the columns and returns their names.
func (n *NewDataset) checkColumns() (map[string]bool, error) {
	if len(n.Columns) > MaxColumns {
		return nil, invalid("invalid_columns", "at most %d columns", MaxColumns)
	}
	seen := map[string]bool{}
	for i, c := range n.Columns {
		if !columnName.MatchString(c.Name) {
			return nil, invalid("invalid_columns", "column %d: name must be a letter or underscore followed by up to 63 letters, digits or underscores", i)
		}
		if seen[c.Name] {
			return nil, invalid("invalid_columns", "column %q appears twice", c.Name)
		}
		seen[c.Name] = true
		if !columnTypes[c.Type] {
			return nil, invalid("invalid_columns", "column %q: type must be string, integer, number, boolean, date or datetime", c.Name)
		}
		if !validText(c.Description) {
			return nil, invalid("invalid_columns", "column %q: description must be valid UTF-8 without NUL", c.Name)
		}
	}
	return seen, nil
}

// normalizeFormats checks the formats, both by default.
func (n *NewDataset) normalizeFormats() error {
	if len(n.Formats) == 0 {
		n.Formats = []string{FormatCSV, FormatJSONL}
	}
	fs := map[string]bool{}
	for _, f := range n.Formats {
		if f != FormatCSV && f != FormatJSONL {
			return invalid("invalid_formats", "formats may be csv and jsonl")
		}
		if fs[f] {
			return invalid("invalid_formats", "format %s appears twice", f)
		}
		fs[f] = true
	}
	return nil
}

// AccessRequest is an app's request for a dataset, with the bank's
// decision.
type AccessRequest struct {
	ID             string     `json:"id" example:"dar_01jqz9a0c2e4g6j8m0p2r4t6v8"`
	AppID          string     `json:"app_id"`
	DatasetID      string     `json:"dataset_id"`
	DatasetName    string     `json:"dataset_name"`
	DatasetVersion string     `json:"dataset_version"`
	Purpose        string     `json:"purpose"`
	DurationDays   int        `json:"duration_days"`
	Recipient      string     `json:"recipient" doc:"The age X25519 public key content is encrypted to"`
	Format         string     `json:"format" enum:"csv,jsonl"`
	Status         string     `json:"status" enum:"awaiting_approval,approved,rejected,revoked,expired"`
	CreatedAt      time.Time  `json:"created_at"`
	DecidedAt      *time.Time `json:"decided_at,omitempty"`
	DecidedBy      string     `json:"decided_by,omitempty" doc:"Who at the bank approved or rejected it"`
	Reason         string     `json:"reason,omitempty" doc:"The bank's reason for its approval or rejection"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	RevokedBy      string     `json:"revoked_by,omitempty"`
	RevokeReason   string     `json:"revoke_reason,omitempty"`
	// Content lists the prepared (or preparing) encrypted files.
	Content []ContentInfo `json:"content"`
}

// ContentInfo is the state of one format's ciphertext.
type ContentInfo struct {
	Format  string     `json:"format"`
	Status  string     `json:"status" enum:"pending,producing,ready,failed,deleted"`
	Size    int64      `json:"size,omitempty" doc:"Bytes of ciphertext"`
	ETag    string     `json:"etag,omitempty" doc:"The download's ETag: the quoted SHA-256 of the ciphertext"`
	ReadyAt *time.Time `json:"ready_at,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// NewAccessRequest is the body of POST /v1/dataset-access-requests.
type NewAccessRequest struct {
	DatasetID    string `json:"dataset_id" maxLength:"64" example:"ds_01jqz6k8m0p2r4t6v8w0y2a4c6"`
	Purpose      string `json:"purpose" maxLength:"8000" text:"multiline" doc:"What the data is for; required, at most 2000 characters"`
	DurationDays int    `json:"duration_days" doc:"How long access is asked for: 1 to 365 days" example:"90"`
	Recipient    string `json:"recipient" maxLength:"200" doc:"age X25519 public key (age1…) the content is encrypted to" example:"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"`
	Format       string `json:"format,omitempty" maxLength:"16" doc:"csv (default) or jsonl; another offered format can still be downloaded later"`
}

// Validate trims and checks the request on its own (the dataset's existence
// and formats are the service's to check). Errors are EINVALID with the
// codes invalid_purpose, invalid_duration, invalid_recipient,
// invalid_format or unknown_dataset.
func (n *NewAccessRequest) Validate() error {
	n.DatasetID = strings.TrimSpace(n.DatasetID)
	if n.DatasetID == "" || len(n.DatasetID) > 64 || !validText(n.DatasetID) {
		return invalid("unknown_dataset", "dataset_id is required; take it from GET /v1/datasets")
	}
	n.Purpose = strings.TrimSpace(n.Purpose)
	if n.Purpose == "" {
		return invalid("invalid_purpose", "purpose is required: say what the data will be used for")
	}
	if !validText(n.Purpose) {
		return invalid("invalid_purpose", "purpose must be valid UTF-8 without NUL")
	}
	if utf8.RuneCountInString(n.Purpose) > MaxPurpose {
		return invalid("invalid_purpose", "purpose must be at most %d characters", MaxPurpose)
	}
	if n.DurationDays < 1 || n.DurationDays > MaxDurationDays {
		return invalid("invalid_duration", "duration_days must be between 1 and %d", MaxDurationDays)
	}
	n.Recipient = strings.TrimSpace(n.Recipient)
	if _, err := age.ParseX25519Recipient(n.Recipient); err != nil {
		return invalid("invalid_recipient", "recipient must be an age X25519 public key (age1…), as printed by `causeway data keygen` or age-keygen")
	}
	switch n.Format {
	case "":
		n.Format = FormatCSV
	case FormatCSV, FormatJSONL:
	default:
		return invalid("invalid_format", "format must be csv or jsonl")
	}
	return nil
}

// Decision is the body of the bank's approve, reject and revoke calls.
type Decision struct {
	// By names who decided (an officer, a committee); default "bank".
	By     string `json:"by,omitempty" maxLength:"200" doc:"Who decided; default bank"`
	Reason string `json:"reason,omitempty" maxLength:"2000" text:"multiline" doc:"Why"`
	// ExpiresAt applies to approvals only; default now + duration_days.
	ExpiresAt *time.Time `json:"expires_at,omitempty" maxLength:"64" doc:"Approval only: when access ends; default now plus the requested duration, at most 365 days ahead"`
}

func (d *Decision) normalize() error {
	d.By = strings.TrimSpace(d.By)
	if d.By == "" {
		d.By = "bank"
	}
	d.Reason = strings.TrimSpace(d.Reason)
	if !validText(d.By) || !validText(d.Reason) || utf8.RuneCountInString(d.By) > 200 || utf8.RuneCountInString(d.Reason) > 2000 {
		return invalid("invalid_decision", "by (at most 200) and reason (at most 2000 characters) must be valid UTF-8 without NUL")
	}
	return nil
}

// AuditEntry is one line of a request's audit trail.
type AuditEntry struct {
	ID        string          `json:"id"`
	RequestID string          `json:"request_id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor" doc:"app:<id>, bank:<who>, agent or system"`
	Action    string          `json:"action" doc:"requested, approved, rejected, revoked, expired, content_ready, content_failed, download, download_refused"`
	Detail    json.RawMessage `json:"detail,omitempty" doc:"bytes, range, status, format, reason…"`
}

// Job is a unit of work for a data agent: produce the ciphertext of one
// request's dataset in one format for its recipient.
type Job struct {
	ID        string    `json:"id" example:"dsj_01jqz9a0c2e4g6j8m0p2r4t6v8"`
	RequestID string    `json:"request_id"`
	Format    string    `json:"format"`
	Recipient string    `json:"recipient"`
	Dataset   JobSource `json:"dataset"`
	Attempts  int       `json:"attempts"`
	// Lease and LeaseUntil are set on a claimed job: every upload call
	// carries the lease.
	Lease      string     `json:"lease,omitempty"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
}

// JobSource is what the agent needs to know about the dataset.
type JobSource struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Columns []Column `json:"columns"`
	Source  Source   `json:"source"`
}

// validText reports valid UTF-8 without NUL, which PostgreSQL's TEXT
// refuses.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/store"
)

// EventType is one entry of the event catalog: what an event of this type
// means, the JSON Schema its data follows, and an example.
type EventType struct {
	Type        string `json:"type" example:"payment.completed" doc:"The CloudEvents type"`
	Description string `json:"description" doc:"What happened when an event of this type is sent"`
	Version     string `json:"version" example:"1.0" doc:"Version of the data schema"`
	// Public types reach every app when an event concerns no app and no
	// customer (see Visibility); other events reach only the apps they
	// concern.
	Public bool `json:"public" doc:"Whether events of this type that concern no particular app or customer reach every app"`
	// Schema is the JSON Schema (draft 2020-12 unless it says otherwise)
	// of the event's data.
	Schema json.RawMessage `json:"schema" doc:"JSON Schema of the event's data"`
	// Example is a whole CloudEvent of this type.
	Example json.RawMessage `json:"example,omitempty" doc:"A whole CloudEvent of this type, as delivered"`
	// Builtin types come with the platform and cannot be replaced; the
	// others were registered by the bank.
	Builtin bool `json:"builtin" doc:"Whether the type comes with the platform (else the bank registered it)"`
}

// typePattern is the form of a type name: dot-separated lower-case tokens,
// at least two. Every such name is also a valid NATS subject tail.
var typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// Limits on registered types.
const (
	maxTypeLength    = 128
	maxSchemaBytes   = 64 << 10
	maxExampleBytes  = 64 << 10
	maxDescription   = 1000
	maxVersionLength = 32
	defaultVersion   = "1.0"
)

// compiledType is a catalog entry with its schema compiled.
type compiledType struct {
	EventType
	schema *jsonschema.Schema
}

// validate checks data (nil or empty: the event has none) against the
// type's schema. The error is EINVALID invalid_event_data with the
// validator's findings.
func (t *compiledType) validate(data json.RawMessage) error {
	var inst any
	if len(data) > 0 {
		var err error
		inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return causeway.Errorf(causeway.EINVALID, "invalid_event_data", "data is not valid JSON: %v", err)
		}
	}
	if err := t.schema.Validate(inst); err != nil {
		what := "data"
		if inst == nil {
			what = "the event has no data, but it"
		}
		return causeway.Errorf(causeway.EINVALID, "invalid_event_data",
			"%s does not match the schema of %s: %s", what, t.Type, findings(err))
	}
	return nil
}

// findings turns a jsonschema validation error into one line: the
// validator's messages, each with the place in the data it concerns.
func findings(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var parts []string
	for line := range strings.SplitSeq(ve.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "jsonschema validation failed") {
			continue
		}
		parts = append(parts, strings.TrimPrefix(line, "- "))
	}
	if len(parts) == 0 {
		return ve.Error()
	}
	return strings.Join(parts, "; ")
}

// compileSchema compiles a type's schema. References may point only inside
// the schema itself (and to the JSON Schema meta-schemas): nothing is
// fetched from the network or the file system.
func compileSchema(typ string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the schema is not valid JSON: %w", err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, errors.New("a JSON Schema is an object (or true/false)")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	loc := "mem://causeway/event-types/" + typ + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

// noLoader refuses every external reference.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external references are not supported (%s); keep every definition inside the schema, under $defs", url)
}

// schemaCache keeps compiled schemas of bank-registered types by the hash
// of their text, so a publish compiles a schema once per node, and a
// schema replaced on another node is picked up at once.
type schemaCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*jsonschema.Schema
}

// maxCachedSchemas bounds the cache; it is cleared when full.
const maxCachedSchemas = 512

func (c *schemaCache) compile(typ string, raw json.RawMessage) (*jsonschema.Schema, error) {
	key := sha256.Sum256(append([]byte(typ+"\x00"), raw...))
	c.mu.Lock()
	s, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := compileSchema(typ, raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedSchemas {
		c.m = map[[sha256.Size]byte]*jsonschema.Schema{}
	}
	c.m[key] = s
	c.mu.Unlock()
	return s, nil
}

// publicCache remembers which bank-registered types are public. IsPublic
// is asked for every event a feed reads and has no context to query with,
// so it reads this snapshot, refreshed at most every publicTTL.
type publicCache struct {
	mu     sync.Mutex
	types  map[string]bool
	loaded time.Time
}

const publicTTL = 5 * time.Second

// Catalog returns every event type, built-in and bank-registered, sorted by
// type.
func (s *Service) Catalog(ctx context.Context) ([]EventType, error) {
	out := make([]EventType, 0, len(s.builtin)+8)
	for _, t := range s.builtin {
		out = append(out, t.EventType)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT type, description, version, public, schema, example FROM event_types ORDER BY type`)
	if err != nil {
		return nil, fmt.Errorf("events: catalog: %w", store.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanType(rows)
		if err != nil {
			return nil, fmt.Errorf("events: catalog: %w", err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events: catalog: %w", store.Classify(err))
	}
	slices.SortFunc(out, func(a, b EventType) int { return strings.Compare(a.Type, b.Type) })
	return out, nil
}

// TypeExists reports whether typ is in the catalog.
func (s *Service) TypeExists(ctx context.Context, typ string) (bool, error) {
	if _, ok := s.builtin[typ]; ok {
		return true, nil
	}
	t, err := s.bankType(ctx, s.db, typ)
	return t != nil, err
}

// IsPublic reports whether typ is a public type, whose events reach every
// app when they concern no app and no customer. It has the signature of
// Visibility.Public. Bank-registered types are read from a snapshot at most
// a few seconds old; if the database cannot be read, the last snapshot
// stands (and a type not in it is not public).
func (s *Service) IsPublic(typ string) bool {
	if t, ok := s.builtin[typ]; ok {
		return t.Public
	}
	c := &s.public
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.loaded) > publicTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		types, err := s.loadPublic(ctx)
		cancel()
		if err != nil {
			s.log.WarnContext(ctx, "cannot read which event types are public; using the last known list", "error", err.Error())
		} else {
			c.types = types
		}
		// Also after a failure: a database outage must not turn every
		// event of the feed into a query.
		c.loaded = time.Now()
	}
	return c.types[typ]
}

func (s *Service) loadPublic(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT type FROM event_types WHERE public = $1`, true)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := map[string]bool{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		types[t] = true
	}
	return types, rows.Err()
}

// RegisterType adds a bank-defined event type to the catalog, or replaces
// the bank's earlier definition of it; created reports which. Built-in
// types cannot be replaced (ECONFLICT builtin_event_type). The schema must
// compile, and an example, if given, must be a CloudEvent of the type whose
// data matches it (EINVALID).
func (s *Service) RegisterType(ctx context.Context, t EventType) (created bool, err error) {
	t.Builtin = false
	if t.Version == "" {
		t.Version = defaultVersion
	}
	if err := s.checkType(&t); err != nil {
		return false, err
	}
	now := store.Micros(time.Now())
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// The row's lock (PostgreSQL) makes the audit entry's before what
		// this registration replaced.
		if _, err := tx.ExecContext(ctx, `UPDATE event_types SET updated_at = updated_at WHERE type = $1`, t.Type); err != nil {
			return err
		}
		var before any
		var version string
		var public bool
		err := tx.QueryRowContext(ctx, `SELECT version, public FROM event_types WHERE type = $1`, t.Type).Scan(&version, &public)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
		case err != nil:
			return err
		default:
			before = typeSummary(version, public)
		}
		if created {
			_, err = tx.ExecContext(ctx,
				`INSERT INTO event_types (type, description, version, public, schema, example, created_at, updated_at)
				 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
				t.Type, t.Description, t.Version, t.Public, string(t.Schema), string(t.Example), now)
		} else {
			_, err = tx.ExecContext(ctx,
				`UPDATE event_types SET description = $2, version = $3, public = $4, schema = $5, example = $6, updated_at = $7
				 WHERE type = $1`,
				t.Type, t.Description, t.Version, t.Public, string(t.Schema), string(t.Example), now)
		}
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "event_type.register", TargetType: "event_type", TargetID: t.Type,
			Before: before, After: typeSummary(t.Version, t.Public)})
	})
	if err != nil {
		if store.IsUniqueViolation(err) {
			return false, causeway.Errorf(causeway.ECONFLICT, "event_type_conflict",
				"event type %s was registered at the same moment by another request; try again", t.Type)
		}
		return false, fmt.Errorf("events: register type: %w", err)
	}
	s.public.mu.Lock()
	s.public.loaded = time.Time{}
	s.public.mu.Unlock()
	s.log.InfoContext(ctx, "event type registered", "type", t.Type, "version", t.Version, "public", t.Public, "created", created)
	return created, nil
}

// typeSummary is a bank type in the audit trail: its schema and example
// are in the catalog.
func typeSummary(version string, public bool) map[string]any {
	return map[string]any{"version": version, "public": public}
}

// checkType validates a type the bank registers.
func (s *Service) checkType(t *EventType) error {
	invalid := func(code, format string, args ...any) error {
		return causeway.Errorf(causeway.EINVALID, code, format, args...)
	}
	switch {
	case len(t.Type) > maxTypeLength || !typePattern.MatchString(t.Type):
		return invalid("invalid_event_type_name",
			"type %q must be at most %d characters of dot-separated lower-case words (letters, digits, '_'), like branch.visit.ended",
			t.Type, maxTypeLength)
	case s.builtin[t.Type] != nil:
		return causeway.Errorf(causeway.ECONFLICT, "builtin_event_type",
			"%s is a built-in event type and cannot be replaced; register the bank's variant under another name", t.Type)
	case strings.TrimSpace(t.Description) == "" || len(t.Description) > maxDescription:
		return invalid("invalid_description", "description is required, at most %d characters", maxDescription)
	case len(t.Version) > maxVersionLength:
		return invalid("invalid_version", "version is at most %d characters", maxVersionLength)
	case len(t.Schema) == 0 || string(t.Schema) == "null":
		return invalid("invalid_schema", "schema is required: the JSON Schema of the event's data")
	case len(t.Schema) > maxSchemaBytes:
		return invalid("invalid_schema", "schema is larger than %d bytes", maxSchemaBytes)
	case len(t.Example) > maxExampleBytes:
		return invalid("invalid_example", "example is larger than %d bytes", maxExampleBytes)
	}
	compiled, err := compileSchema(t.Type, t.Schema)
	if err != nil {
		return invalid("invalid_schema", "schema does not compile: %v", err)
	}
	t.Schema = compact(t.Schema)
	if len(t.Example) == 0 || string(t.Example) == "null" {
		t.Example = nil
		return nil
	}
	ce, err := decodeStructured(t.Example)
	if err != nil {
		return invalid("invalid_example", "example is not a structured CloudEvent: %s", message(err))
	}
	if ce.Type != t.Type {
		return invalid("invalid_example", "example has type %q, want %q", ce.Type, t.Type)
	}
	ct := &compiledType{EventType: *t, schema: compiled}
	if err := ct.validate(ce.Data); err != nil {
		return invalid("invalid_example", "example's %s", message(err))
	}
	t.Example = compact(t.Example)
	return nil
}

// lookup returns the catalog entry of typ with its compiled schema, or an
// EINVALID unknown_event_type error.
func (s *Service) lookup(ctx context.Context, q store.Querier, typ string) (*compiledType, error) {
	if t, ok := s.builtin[typ]; ok {
		return t, nil
	}
	t, err := s.bankType(ctx, q, typ)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, causeway.Errorf(causeway.EINVALID, "unknown_event_type",
			"event type %q is not in the catalog (GET /bank/v1/event-types lists it; POST /bank/v1/event-types registers a new one)", typ)
	}
	schema, err := s.schemas.compile(t.Type, t.Schema)
	if err != nil {
		// It compiled when it was registered; only a library change can
		// get here.
		return nil, fmt.Errorf("events: schema of %s: %w", t.Type, err)
	}
	return &compiledType{EventType: *t, schema: schema}, nil
}

// bankType reads a bank-registered type, or nil if there is none.
func (s *Service) bankType(ctx context.Context, q store.Querier, typ string) (*EventType, error) {
	if !typePattern.MatchString(typ) || len(typ) > maxTypeLength {
		return nil, nil
	}
	t, err := scanType(q.QueryRowContext(ctx,
		`SELECT type, description, version, public, schema, example FROM event_types WHERE type = $1`, typ))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("events: event type %s: %w", typ, store.Classify(err))
	}
	return t, nil
}

func scanType(row interface{ Scan(...any) error }) (*EventType, error) {
	var t EventType
	var schema, example string
	if err := row.Scan(&t.Type, &t.Description, &t.Version, &t.Public, &schema, &example); err != nil {
		return nil, err
	}
	t.Schema = json.RawMessage(schema)
	if example != "" {
		t.Example = json.RawMessage(example)
	}
	return &t, nil
}

// compact removes insignificant white space from valid JSON.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// message is the human part of err: a causeway error's message, or the
// error text.
func message(err error) string {
	var ce *causeway.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return err.Error()
}

// Package audit is the bank's audit trail: every bank-side change (an app
// approved, a limit raised, an SPI activated, a held payment released, data
// access granted…) appends an entry naming who made it, what changed on
// which target, a small before and after summary, the four-eyes proposal
// it belongs to, and the request id and client address it came with.
//
// Entries are appended by Record in the transaction of the change itself,
// so a change that rolls back leaves no entry and a change that commits
// always has one. The trail is append-only: no route updates or deletes an
// entry, and the entries form a hash chain, each entry's hash covering the
// previous entry's hash and every column of its own, so an entry edited,
// deleted or re-ordered directly in the database is found by Verify.
//
// The hash of an entry is the lower-case hex SHA-256 of the netstrings
// ("<length>:<bytes>,"; a NULL column is "-,") of, in this order:
// "causeway-audit-v1", prev_hash, seq, id, at (microseconds since the
// epoch), actor, bank_id, action, target_type, target_id, before, after,
// proposal_id, confirms, request_id and client_addr, integers in decimal.
// An export (JSON Lines) carries every column, so anyone can recompute
// the chain from it (Entry.ComputeHash).
//
// What the bank's own process does (seeding the sandbox, periodic sweeps:
// auth.BankProcess) is not a decision of anyone and is not recorded.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates or updates the audit trail's tables. It runs before any
// capability's, since their changes record entries.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "audit", migrationFiles, "migrations")
}

// Change is a bank-side change to record: what was done (Action, such as
// "app.approve" or "payment.release") to which resource (TargetType and
// TargetID), with a small summary of the state before and after it.
type Change struct {
	Action     string
	TargetType string
	TargetID   string
	// Before and After summarise what changed (a status, limits), as JSON;
	// nil is none (NULL). Never put a secret in them.
	Before, After any
	// ProposalID is the four-eyes proposal this change opens, and Confirms
	// the proposal it confirms; empty without four-eyes.
	ProposalID, Confirms string
	// By is who made the change; the zero Caller means the caller in the
	// context (auth.CallerFrom).
	By auth.Caller
}

// Origin is where a change came from: the HTTP request's id and its
// client's address. The HTTP layer sets it for every request (WithOrigin).
type Origin struct {
	RequestID  string
	ClientAddr string
	// Confirms is the four-eyes proposal the request carries out, when a
	// second operator confirmed one: its changes name it.
	Confirms string
}

type originKey struct{}

// WithOrigin returns ctx carrying o, for the entries recorded while
// serving the request.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the origin set with WithOrigin, or the zero Origin
// (a change made outside an HTTP request).
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// Entry is one entry of the trail, as stored and shown.
type Entry struct {
	Seq        int64     `json:"seq" doc:"Position in the chain: 1, 2, 3… without gaps"`
	ID         string    `json:"id" example:"aud_01jd3k7m9q6x4t2w8y5z0abcde"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor" example:"operator:admin-token" doc:"Who made the change: operator:<id> for a named operator, operator:admin-token for whoever holds the admin token"`
	BankID     string    `json:"bank_id" example:"bank" doc:"The bank whose decision this is"`
	Action     string    `json:"action" example:"app.approve"`
	TargetType string    `json:"target_type" example:"app"`
	TargetID   string    `json:"target_id" example:"app_01jd3k7m9q6x4t2w8y5z0abcde"`
	// Before and After are the JSON summaries exactly as stored, so an
	// entry read back hashes as it was written.
	Before     json.RawMessage `json:"before" doc:"What the target was before the change (null: nothing, or not summarised)"`
	After      json.RawMessage `json:"after" doc:"What the target is after the change (null: nothing, or not summarised)"`
	ProposalID string          `json:"proposal_id" doc:"The four-eyes proposal this change opened, if any"`
	Confirms   string          `json:"confirms" doc:"The four-eyes proposal this change confirmed, if any"`
	RequestID  string          `json:"request_id" doc:"X-Request-Id of the request that made the change"`
	ClientAddr string          `json:"client_addr" doc:"The client's address (an IPv6 client's /64)"`
	PrevHash   string          `json:"prev_hash" doc:"hash of the entry before ('' for the first)"`
	Hash       string          `json:"hash" doc:"hex SHA-256 over prev_hash and every other field (see the operations guide)"`
}

// hashVersion opens every hashed encoding, so a later format can be told
// from this one.
const hashVersion = "causeway-audit-v1"

// ComputeHash returns the hash e should carry: the hex SHA-256 of
// PrevHash and every other field, each as a netstring (package comment).
func (e *Entry) ComputeHash() string {
	h := sha256.New()
	for _, s := range []string{hashVersion, e.PrevHash, strconv.FormatInt(e.Seq, 10), e.ID,
		strconv.FormatInt(store.Micros(e.At), 10), e.Actor, e.BankID, e.Action, e.TargetType, e.TargetID} {
		netstring(h, s)
	}
	nullable(h, e.Before)
	nullable(h, e.After)
	for _, s := range []string{e.ProposalID, e.Confirms, e.RequestID, e.ClientAddr} {
		netstring(h, s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func netstring(h hash.Hash, s string) {
	h.Write([]byte(strconv.Itoa(len(s))))
	h.Write([]byte{':'})
	h.Write([]byte(s))
	h.Write([]byte{','})
}

// nullable writes a NULL column as "-," and any other as a netstring. A
// JSON null is NULL too: Record never stores one, and an entry decoded
// from an export holds its NULL summaries so.
func nullable(h hash.Hash, b json.RawMessage) {
	if b == nil || string(b) == "null" {
		h.Write([]byte("-,"))
		return
	}
	netstring(h, string(b))
}

// Record appends c to the trail inside tx, the transaction of the change
// it describes, so both commit or neither does. Call it last in the
// transaction: it locks the head of the chain until the transaction ends,
// and every other bank-side change waits for that lock.
//
// The actor is c.By, else the caller in ctx; a change by the bank's own
// process (auth.BankProcess) is not recorded. The request id and client
// address come from ctx (WithOrigin).
func Record(ctx context.Context, tx *sql.Tx, c Change) error {
	by := c.By
	if by.IsNobody() {
		by = auth.CallerFrom(ctx)
	}
	if by == auth.BankProcess() {
		return nil
	}
	if c.Action == "" || c.TargetType == "" || c.TargetID == "" {
		return fmt.Errorf("audit: a change needs an action, a target type and a target id: %+v", c)
	}
	before, err := summary(c.Before)
	if err != nil {
		return err
	}
	after, err := summary(c.After)
	if err != nil {
		return err
	}
	o := OriginFrom(ctx)
	if c.Confirms == "" {
		c.Confirms = o.Confirms
	}
	bank := auth.HomeBank
	if op, ok := auth.OperatorFrom(ctx); ok && op.BankID != "" {
		bank = op.BankID
	}
	e := Entry{
		ID: ids.New("aud"), At: time.Now().UTC().Truncate(time.Microsecond), Actor: by.String(), BankID: bank,
		Action: c.Action, TargetType: c.TargetType, TargetID: c.TargetID, Before: before, After: after,
		ProposalID: c.ProposalID, Confirms: c.Confirms, RequestID: o.RequestID, ClientAddr: o.ClientAddr,
	}
	// Taking the next number locks the head row until tx ends (PostgreSQL),
	// so the entry before this one is committed and its hash is final.
	err = tx.QueryRowContext(ctx, `UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash`).Scan(&e.Seq, &e.PrevHash)
	if errors.Is(err, sql.ErrNoRows) {
		return errors.New("audit: the head of the trail is missing (audit_head has no row 1)")
	}
	if err != nil {
		return err
	}
	e.Hash = e.ComputeHash()
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_entries (seq, id, at, actor, bank_id, action, target_type, target_id,
		before, after, proposal_id, confirms, request_id, client_addr, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		e.Seq, e.ID, store.Micros(e.At), e.Actor, e.BankID, e.Action, e.TargetType, e.TargetID, text(e.Before), text(e.After),
		e.ProposalID, e.Confirms, e.RequestID, e.ClientAddr, e.PrevHash, e.Hash); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE audit_head SET hash = $1 WHERE id = 1 AND seq = $2`, e.Hash, e.Seq)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("audit: the head of the trail moved under entry %d", e.Seq)
	}
	return nil
}

// summary encodes a before or after summary; nil stays NULL.
func summary(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if v == nil {
			return nil, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: summary: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	return b, nil
}

// text is a summary as a column value: NULL for none.
func text(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// CarriedOut reports whether the trail holds a change that carries out
// the four-eyes proposal id: an entry that confirms it, other than its
// rejection (which names it too, as a proposal). Guarded operations record
// their entry in the transaction of their change, so an entry means the
// change is committed.
func CarriedOut(ctx context.Context, q store.Querier, proposalID string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_entries WHERE confirms = $1 AND target_type <> 'proposal'`,
		proposalID).Scan(&n)
	return n > 0, err
}

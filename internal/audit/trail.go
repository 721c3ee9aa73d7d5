package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// Trail reads the audit trail: lists, exports and the chain's check. It
// never changes an entry; Record appends them.
type Trail struct {
	db *store.DB
}

// New returns the trail stored in db, whose tables Migrate has created.
func New(db *store.DB) *Trail { return &Trail{db: db} }

// Export sizes: an export holds at most MaxExport entries; the next one
// starts after the last entry's seq.
const (
	DefaultExport = 10000
	MaxExport     = 100000
	// batch is how many entries one query of an export or a check reads.
	batch = 500
)

// Filter narrows the trail to the entries that match every field set.
type Filter struct {
	// Operator is an operator's name: entries whose actor is
	// operator:<Operator> ("admin-token" for the admin token's holder).
	Operator   string
	TargetType string
	TargetID   string
	// Action is an action ("app.approve") or every action under a prefix
	// ("dataset_access.*").
	Action string
	// From (inclusive) and To (exclusive) bound the entries' time; zero is
	// unbounded.
	From, To time.Time
}

var (
	validAction     = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$`)
	validTargetType = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// ParseFilter reads a Filter from the query parameters of the audit
// routes. from and to are RFC 3339 times. Errors: EBADREQUEST
// invalid_time; EINVALID invalid_action, invalid_target_type,
// invalid_operator, invalid_range.
func ParseFilter(operator, targetType, targetID, action, from, to string) (Filter, error) {
	f := Filter{Operator: strings.TrimPrefix(operator, "operator:"), TargetType: targetType, TargetID: targetID, Action: action}
	if operator != "" && f.Operator == "" {
		return Filter{}, causeway.Errorf(causeway.EINVALID, "invalid_operator", "operator names an operator, such as admin-token")
	}
	if action != "" && !validAction.MatchString(action) {
		return Filter{}, causeway.Errorf(causeway.EINVALID, "invalid_action",
			"action is an action such as app.approve, or a prefix such as dataset_access.*")
	}
	if targetType != "" && !validTargetType.MatchString(targetType) {
		return Filter{}, causeway.Errorf(causeway.EINVALID, "invalid_target_type", "target_type is a type such as app or payment")
	}
	var err error
	if f.From, err = parseTime("from", from); err != nil {
		return Filter{}, err
	}
	if f.To, err = parseTime("to", to); err != nil {
		return Filter{}, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return Filter{}, causeway.Errorf(causeway.EINVALID, "invalid_range", "from must be before to")
	}
	return f, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, causeway.Errorf(causeway.EBADREQUEST, "invalid_time", "%s must be an RFC 3339 time", name)
	}
	return t, nil
}

// where is the filter as SQL conditions joined by AND ("" for none), with
// its arguments appended to args; placeholders continue after args.
func (f Filter) where(args []any) (string, []any) {
	var conds []string
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Operator != "" {
		conds = append(conds, "actor = "+arg("operator:"+f.Operator))
	}
	if f.TargetType != "" {
		conds = append(conds, "target_type = "+arg(f.TargetType))
	}
	if f.TargetID != "" {
		conds = append(conds, "target_id = "+arg(f.TargetID))
	}
	if prefix, ok := strings.CutSuffix(f.Action, "*"); ok {
		// Not LIKE: "_" in an action is a wildcard there. The prefix is
		// ASCII, so characters and bytes count alike.
		conds = append(conds, "substr(action, 1, "+arg(len(prefix))+") = "+arg(prefix))
	} else if f.Action != "" {
		conds = append(conds, "action = "+arg(f.Action))
	}
	if !f.From.IsZero() {
		conds = append(conds, "at >= "+arg(store.Micros(f.From)))
	}
	if !f.To.IsZero() {
		conds = append(conds, "at < "+arg(store.Micros(f.To)))
	}
	return strings.Join(conds, " AND "), args
}

const entryColumns = `seq, id, at, actor, bank_id, action, target_type, target_id, before, after,
	proposal_id, confirms, request_id, client_addr, prev_hash, hash`

func scanEntry(row interface{ Scan(...any) error }) (*Entry, error) {
	var e Entry
	var at int64
	var before, after sql.NullString
	if err := row.Scan(&e.Seq, &e.ID, &at, &e.Actor, &e.BankID, &e.Action, &e.TargetType, &e.TargetID, &before, &after,
		&e.ProposalID, &e.Confirms, &e.RequestID, &e.ClientAddr, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.At = store.FromMicros(at)
	if before.Valid {
		e.Before = []byte(before.String)
	}
	if after.Valid {
		e.After = []byte(after.String)
	}
	return &e, nil
}

// query reads the entries matching f with seq beyond bound (after it going
// up, before it going down; 0: from the start), at most limit of them.
func (t *Trail) query(ctx context.Context, f Filter, newestFirst bool, bound int64, limit int) ([]*Entry, error) {
	cond, args := f.where(nil)
	if cond != "" {
		cond = " AND " + cond
	}
	order := "ASC"
	seqCond := "seq > $" + strconv.Itoa(len(args)+1)
	if newestFirst {
		order = "DESC"
		if bound == 0 {
			bound = 1<<63 - 1
		}
		seqCond = "seq < $" + strconv.Itoa(len(args)+1)
	}
	args = append(args, bound, limit)
	rows, err := t.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM audit_entries WHERE `+seqCond+cond+
		` ORDER BY seq `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	var out []*Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, store.Classify(err)
		}
		out = append(out, e)
	}
	return out, store.Classify(rows.Err())
}

// EntryPage is a page of the trail.
type EntryPage struct {
	Data       []*Entry `json:"data"`
	NextCursor string   `json:"next_cursor" doc:"Pass as cursor for the next (older) page; empty on the last"`
}

// List returns the entries matching f, newest first, a page at a time.
// Only the bank reads the trail (EFORBIDDEN bank_only). Errors:
// EBADREQUEST invalid_cursor; EINVALID invalid_limit.
func (t *Trail) List(ctx context.Context, caller auth.Caller, f Filter, limit int, cursor string) (*EntryPage, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	limit, key, err := page.Args(limit, cursor)
	if err != nil {
		return nil, err
	}
	var before int64
	if key != "" {
		if before, err = strconv.ParseInt(key, 10, 64); err != nil || before < 1 {
			return nil, causeway.Errorf(causeway.EBADREQUEST, "invalid_cursor", "cursor is malformed; pass next_cursor from the previous page unchanged")
		}
	}
	entries, err := t.query(ctx, f, true, before, limit+1)
	if err != nil {
		return nil, err
	}
	pg := &EntryPage{Data: entries}
	if pg.Data == nil {
		pg.Data = []*Entry{}
	}
	if len(pg.Data) > limit {
		pg.Data = pg.Data[:limit]
		pg.NextCursor = page.Cursor(strconv.FormatInt(pg.Data[limit-1].Seq, 10))
	}
	return pg, nil
}

// Export hands the entries matching f with seq greater than after to
// emit, oldest first (in the chain's order), at most limit of them (0:
// DefaultExport), reading them a batch at a time. It stops at emit's
// first error and returns it. Only the bank reads the trail (EFORBIDDEN
// bank_only). Errors: EINVALID invalid_limit, invalid_after.
func (t *Trail) Export(ctx context.Context, caller auth.Caller, f Filter, after int64, limit int, emit func(*Entry) error) error {
	if err := t.CheckExport(caller, after, limit); err != nil {
		return err
	}
	if limit == 0 {
		limit = DefaultExport
	}
	for limit > 0 {
		entries, err := t.query(ctx, f, false, after, min(batch, limit))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := emit(e); err != nil {
				return err
			}
		}
		if len(entries) < min(batch, limit) {
			return nil
		}
		limit -= len(entries)
		after = entries[len(entries)-1].Seq
	}
	return nil
}

// CheckExport refuses what Export would refuse before it reads anything,
// so the HTTP layer can answer a problem before it starts streaming.
func (t *Trail) CheckExport(caller auth.Caller, after int64, limit int) error {
	if err := caller.RequireBank(); err != nil {
		return err
	}
	if limit < 0 || limit > MaxExport {
		return causeway.Errorf(causeway.EINVALID, "invalid_limit", "limit must be between 1 and %d", MaxExport)
	}
	if after < 0 {
		return causeway.Errorf(causeway.EINVALID, "invalid_after", "after is the seq of an entry, 0 or more")
	}
	return nil
}

// Verdict is the result of checking the chain.
type Verdict struct {
	OK bool `json:"ok" doc:"True when every entry up to the head verifies"`
	// Entries is how many entries the check read.
	Entries int64 `json:"entries" doc:"Entries checked, from seq 1 to the head as it was when the check began (or to the break)"`
	// BrokenAt is the seq of the first entry that does not verify (0: none).
	BrokenAt int64  `json:"broken_at,omitempty" doc:"seq of the first entry that does not verify, when one does not"`
	Reason   string `json:"reason,omitempty" doc:"Why the chain is broken there"`
	// Head is the last entry's hash, as the head of the chain records it.
	Head string `json:"head" doc:"The last entry's hash: kept outside the platform, it proves later that the trail up to here was not rewritten as a whole"`
}

func broken(n, at int64, format string, args ...any) *Verdict {
	return &Verdict{Entries: n, BrokenAt: at, Reason: fmt.Sprintf(format, args...)}
}

// Verify walks the chain from its first entry to its head (as it is when
// the check begins; entries appended meanwhile wait for the next check)
// and reports the first entry that does not verify: one missing (deleted,
// or its seq changed), one whose prev_hash is not its predecessor's hash
// (re-ordered, or replaced), one whose hash does not match its content
// (edited), or a head that does not match the last entry (the newest
// entries deleted). Only the bank checks the trail (EFORBIDDEN bank_only).
func (t *Trail) Verify(ctx context.Context, caller auth.Caller) (*Verdict, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	var headSeq int64
	var headHash string
	err := t.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash)
	if errors.Is(err, sql.ErrNoRows) {
		return broken(0, 1, "the head of the trail (audit_head) is missing"), nil
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	var n, last int64
	prev := ""
	for last < headSeq {
		entries, err := t.query(ctx, Filter{}, false, last, int(min(batch, headSeq-last)))
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			switch {
			case e.Seq != last+1:
				return broken(n, last+1, "entry %d is missing", last+1), nil
			case e.PrevHash != prev:
				return broken(n, e.Seq, "entry %d does not follow entry %d: its prev_hash is not that entry's hash", e.Seq, last), nil
			case e.ComputeHash() != e.Hash:
				return broken(n, e.Seq, "entry %d was changed: its hash does not match its content", e.Seq), nil
			}
			n, last, prev = n+1, e.Seq, e.Hash
		}
	}
	switch {
	case last < headSeq:
		return broken(n, last+1, "entry %d is missing: the head says the trail has %d entries", last+1, headSeq), nil
	case prev != headHash:
		return broken(n, last, "the head of the trail does not match entry %d", last), nil
	}
	return &Verdict{OK: true, Entries: n, Head: headHash}, nil
}

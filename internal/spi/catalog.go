package spi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/store"
)

// Points lists the extension points: the built-in ones, then those the bank
// defined, by name.
func (s *Service) Points(ctx context.Context) ([]*Point, error) {
	out := append([]*Point(nil), s.builtinList...)
	rows, err := s.db.QueryContext(ctx, `SELECT name, description, request_schema, response_schema,
		default_timeout_ms, max_timeout_ms, stand_in, example, combine FROM spi_extension_points ORDER BY name`)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		p, err := s.scanPoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, store.Classify(rows.Err())
}

// Point returns the extension point called name, or ENOTFOUND
// unknown_extension_point.
func (s *Service) Point(ctx context.Context, name string) (*Point, error) {
	if p, ok := s.builtins[name]; ok {
		return p, nil
	}
	if p, ok := s.defined.Load(name); ok {
		return p.(*Point), nil
	}
	row := s.db.QueryRowContext(ctx, `SELECT name, description, request_schema, response_schema,
		default_timeout_ms, max_timeout_ms, stand_in, example, combine FROM spi_extension_points WHERE name = $1`, name)
	p, err := s.scanPoint(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "unknown_extension_point", "no extension point %q", name)
	}
	return p, err
}

// scanPoint reads a bank-defined point and compiles it (once per node:
// points are immutable, so the compiled one is cached).
func (s *Service) scanPoint(row store.Scanner) (*Point, error) {
	var n NewPoint
	var req, resp, standIn, example, combine string
	if err := row.Scan(&n.Name, &n.Description, &req, &resp, &n.DefaultTimeoutMS, &n.MaxTimeoutMS, &standIn, &example, &combine); err != nil {
		return nil, store.Classify(err)
	}
	if p, ok := s.defined.Load(n.Name); ok {
		return p.(*Point), nil
	}
	n.RequestSchema, n.ResponseSchema, n.StandIn = json.RawMessage(req), json.RawMessage(resp), json.RawMessage(standIn)
	if example != "" {
		n.Example = json.RawMessage(example)
	}
	if combine != "" {
		if err := json.Unmarshal([]byte(combine), &n.Combine); err != nil {
			return nil, fmt.Errorf("spi: combine of point %s: %w", n.Name, err)
		}
	}
	p, err := n.compile(false)
	if err != nil {
		return nil, err
	}
	actual, _ := s.defined.LoadOrStore(p.Name, p)
	return actual.(*Point), nil
}

// DefinePoint lets the bank define a new extension point, which any bank
// process can then invoke (Invoke) and apps can register at. The schemas
// must compile and be self-contained, and the stand-in result must satisfy
// the response schema: it is what the bank uses when nobody answers. The
// combination rule is first (the default), strictest or merge, and must fit
// the stand-in (EINVALID invalid_combine). A point cannot be redefined; a
// taken name is ECONFLICT point_exists.
func (s *Service) DefinePoint(ctx context.Context, n NewPoint) (*Point, error) {
	if _, ok := s.builtins[n.Name]; ok {
		return nil, causeway.Errorf(causeway.ECONFLICT, "point_exists", "%s is a built-in extension point", n.Name)
	}
	p, err := n.compile(false)
	if err != nil {
		return nil, err
	}
	combine, err := json.Marshal(p.Combine)
	if err != nil {
		return nil, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO spi_extension_points (name, description, request_schema,
			response_schema, default_timeout_ms, max_timeout_ms, stand_in, example, combine, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			p.Name, p.Description, string(p.RequestSchema), string(p.ResponseSchema),
			p.DefaultTimeoutMS, p.MaxTimeoutMS, string(p.StandIn), string(p.Example), string(combine), store.Micros(s.timestamp()))
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "extension_point.define", TargetType: "extension_point", TargetID: p.Name,
			After: map[string]any{"default_timeout_ms": p.DefaultTimeoutMS, "max_timeout_ms": p.MaxTimeoutMS,
				"combine": p.Combine, "stand_in": p.StandIn}})
	})
	if store.IsUniqueViolation(err) {
		return nil, causeway.Errorf(causeway.ECONFLICT, "point_exists", "the extension point %s already exists", n.Name)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

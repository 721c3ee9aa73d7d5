package webhooks

import (
	"context"
	"database/sql"
)

// DisableNow disables a subscription the way the dispatcher does after a
// 410 or a long run of failures, in a transaction of its own, and reports
// whether this call disabled it. The race tests call it from several
// goroutines at once.
func (s *Service) DisableNow(ctx context.Context, id, reason string) (bool, error) {
	var r *record
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = s.disable(ctx, tx, id, reason)
		return err
	})
	if err != nil || r == nil {
		return false, err
	}
	s.afterDisable(id, r.AppID, reason)
	return true, nil
}

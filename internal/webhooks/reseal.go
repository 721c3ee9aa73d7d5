package webhooks

import (
	"context"
	"fmt"

	"github.com/causewayhq/causeway/internal/seal/sealstore"
)

// ResealSecrets re-seals with the sealer's current key every stored
// signing secret (and previous secret) that an older key of the sealer
// sealed, and returns how many it re-sealed. The platform calls it at
// start, so that after a --secret-key rotation the older key can go.
//
// It opens every stored secret on the way: an error, which names
// --secret-key, means one opens with none of this node's keys; the node
// should not start, since it would fail that subscription's deliveries.
// Nodes starting together, and secret rotations meanwhile, are safe (see
// sealstore.Reseal).
func (s *Service) ResealSecrets(ctx context.Context) (int, error) {
	n, err := sealstore.Reseal(ctx, s.db, s.sealer, sealstore.Table{
		Name: "webhook_subscriptions", Key: "id", Columns: []string{"secret", "previous_secret"},
	})
	if n > 0 {
		s.log.InfoContext(ctx, "re-sealed webhook signing secrets with the current secret key", "secrets", n)
	}
	if err != nil {
		return n, fmt.Errorf("webhooks: %w", err)
	}
	return n, nil
}

package gateway

import (
	"context"
	"fmt"

	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/seal/sealstore"
)

// ResealSecrets seals with the sealer's current key every upstream's
// signing secret that is not sealed with it: those an older key sealed
// (after a --secret-key rotation), and those stored in the clear by
// versions before sealing. It returns how many it rewrote. The platform
// calls it at start, so that an upgraded database holds no secret in the
// clear and, after a rotation, the older key can go.
//
// It opens every sealed secret on the way: an error, which names
// --secret-key, means one opens with none of this node's keys; the node
// should not start, since every call to that upstream would fail. Nodes
// starting together are safe (see sealstore.Reseal).
func (g *Gateway) ResealSecrets(ctx context.Context) (int, error) {
	n, err := sealstore.Reseal(ctx, g.db, g.sealer, sealstore.Table{
		Name: "gateway_upstreams", Key: "id", Columns: []string{"signing_secret"}, SealPlain: true,
	})
	if n > 0 {
		g.log.InfoContext(ctx, "sealed upstream signing secrets with the current secret key", "secrets", n)
	}
	if err != nil {
		return n, fmt.Errorf("gateway: %w", err)
	}
	return n, nil
}

// openSecret returns the signing secret stored as stored: sealed, or in
// the clear by a version before sealing, until ResealSecrets has run.
func (g *Gateway) openSecret(stored string) (string, error) {
	if !seal.IsSealed(stored) {
		return stored, nil
	}
	return g.sealer.Open(stored)
}

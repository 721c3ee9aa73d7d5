package spi

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/core"
)

// Combination rules: how the replies of a point's registrations make one
// answer.
const (
	// CombineFirst asks the registrations one after the other (the app's
	// own first, then the bank's by priority) and the first valid reply is
	// the answer. The default for a point the bank defines.
	CombineFirst = "first"
	// CombineStrictest asks every registration at once and the strictest
	// reply is the answer: the one whose Field comes first in Order.
	CombineStrictest = "strictest"
	// CombineTightenOnly asks the bank-scope registrations as CombineFirst
	// does, for the bank's answer, and the app's own registrations at the
	// same time; their replies come back beside the bank's answer, for the
	// bank process to apply only where they tighten it.
	CombineTightenOnly = "tighten_only"
	// CombineMerge asks every registration at once; the answer is the
	// first reply with the array Field holding every reply's items, each
	// object item marked with the "provider" that gave it.
	CombineMerge = "merge"
)

// Combination is a point's rule for making one answer of its
// registrations' replies. However they combine, each registration's
// failure policy applies to its own attempt: reject makes a failed reply
// (failed closed), stand_in a reply with the point's stand-in answer, next
// no reply at all; and when no registration replies, the stand-in is the
// answer.
type Combination struct {
	Rule string `json:"rule" enum:"first,strictest,tighten_only,merge" doc:"first: the first valid reply, the app's own asked first; strictest: every registration is asked at once and the strictest reply wins; tighten_only: the bank's registrations decide, the app's own replies may only tighten; merge: every reply's items are merged"`
	// Field is what strictest ranks and merge merges: a top-level field of
	// the answer.
	Field string `json:"field,omitempty" maxLength:"100" doc:"strictest: the answer field ranked; merge: the array field merged" example:"decision"`
	// Order lists the values of Field, strictest first.
	Order []string `json:"order,omitempty" maxItems:"20" maxLength:"100" doc:"strictest: the values of field, strictest first"`
	// FailedAs is the value a reply that failed closed ranks as; "" ranks
	// it the strictest.
	FailedAs string `json:"failed_as,omitempty" maxLength:"100" doc:"strictest: the value a registration that failed closed (on_failure reject) counts as; default the strictest"`
}

// compile checks c for a point whose stand-in answer is standIn, and
// returns it with its defaults. builtIn allows tighten_only, which needs a
// bank rule to tighten that only a built-in point's caller has.
func (c Combination) compile(standIn json.RawMessage, builtIn bool) (Combination, error) {
	bad := func(format string, args ...any) (Combination, error) {
		return Combination{}, causeway.Errorf(causeway.EINVALID, "invalid_combine", "combine: "+format, args...)
	}
	if c.Rule == "" {
		c.Rule = CombineFirst
	}
	switch c.Rule {
	case CombineFirst, CombineTightenOnly:
		if c.Rule == CombineTightenOnly && !builtIn {
			return bad("tighten_only is for built-in points only: the platform cannot know what tightens a bank-defined answer; use first, strictest or merge")
		}
		if c.Field != "" || len(c.Order) > 0 || c.FailedAs != "" {
			return bad("rule %s takes no field, order or failed_as", c.Rule)
		}
		return c, nil
	case CombineStrictest, CombineMerge:
	default:
		return bad("rule must be first, strictest or merge")
	}
	if c.Field == "" || len(c.Field) > 100 {
		return bad("rule %s needs the field it works on (at most 100 characters)", c.Rule)
	}
	var standInDoc map[string]json.RawMessage
	if json.Unmarshal(standIn, &standInDoc) != nil {
		return bad("rule %s needs answers that are JSON objects; the stand-in is not", c.Rule)
	}
	if c.Rule == CombineMerge {
		if len(c.Order) > 0 || c.FailedAs != "" {
			return bad("rule merge takes no order or failed_as")
		}
		var items []json.RawMessage
		if json.Unmarshal(standInDoc[c.Field], &items) != nil {
			return bad("field %q of the stand-in answer must be an array", c.Field)
		}
		return c, nil
	}
	if len(c.Order) < 2 || len(c.Order) > 20 {
		return bad("rule strictest needs an order of 2 to 20 values, strictest first")
	}
	for i, v := range c.Order {
		if v == "" || len(v) > 100 || slices.Contains(c.Order[:i], v) {
			return bad("order must list distinct values of 1 to 100 characters")
		}
	}
	if c.FailedAs != "" && !slices.Contains(c.Order, c.FailedAs) {
		return bad("failed_as %q is not in order", c.FailedAs)
	}
	if c.rank(core.ExtensionReply{Body: standIn}) < 0 {
		return bad("field %q of the stand-in answer must be a string listed in order", c.Field)
	}
	return c, nil
}

// rank places a reply for strictest: 0 is the strictest value of Order. A
// reply that failed closed ranks as FailedAs. A value Order does not list
// ranks -1 (the stand-in check uses it); combine ranks it strictest, as a
// bank control would treat an answer it cannot read.
func (c Combination) rank(r core.ExtensionReply) int {
	if r.Failed {
		return max(slices.Index(c.Order, c.FailedAs), 0)
	}
	var doc map[string]json.RawMessage
	var v string
	if json.Unmarshal(r.Body, &doc) != nil || json.Unmarshal(doc[c.Field], &v) != nil {
		return -1
	}
	return slices.Index(c.Order, v)
}

// combine makes one answer of replies (at least one, in the order the
// registrations were asked) under rule strictest or merge.
func (c Combination) combine(replies []core.ExtensionReply) core.ExtensionAnswer {
	if c.Rule == CombineMerge {
		return c.merge(replies)
	}
	return answerOf(replies[c.strictest(replies)], replies)
}

// strictest returns the index of the deciding reply: the lowest rank; of
// equal ranks a failure before a stand-in before an answer, so that the
// result shows when a control did not really answer; then the order asked.
func (c Combination) strictest(replies []core.ExtensionReply) int {
	key := func(r core.ExtensionReply) (int, int) {
		rank := c.rank(r)
		if rank < 0 {
			rank = 0
		}
		switch {
		case r.Failed:
			return rank, 0
		case r.StandIn:
			return rank, 1
		}
		return rank, 2
	}
	best := 0
	for i, r := range replies[1:] {
		rank, kind := key(r)
		bestRank, bestKind := key(replies[best])
		if rank < bestRank || (rank == bestRank && kind < bestKind) {
			best = i + 1
		}
	}
	return best
}

// merge puts every reply's items of Field into the first answer, each
// object item marked with its provider. The answer is a stand-in only if
// every reply is; it failed if any reply failed closed (that registration's
// policy asked for it), and then names that registration.
func (c Combination) merge(replies []core.ExtensionReply) core.ExtensionAnswer {
	var base map[string]json.RawMessage
	items := []json.RawMessage{}
	var providers []string
	standIn := true
	var failed *core.ExtensionReply
	for i, r := range replies {
		if r.Failed {
			if failed == nil {
				failed = &replies[i]
			}
			continue
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(r.Body, &doc) != nil {
			continue
		}
		if base == nil {
			base = doc
		}
		providers = append(providers, r.Provider)
		standIn = standIn && r.StandIn
		var own []json.RawMessage
		json.Unmarshal(doc[c.Field], &own)
		for _, item := range own {
			items = append(items, withProvider(item, r.Provider))
		}
	}
	if failed != nil {
		a := answerOf(*failed, replies)
		if base != nil {
			a.Body = mergedBody(base, c.Field, items)
		}
		return a
	}
	a := core.ExtensionAnswer{Answered: true, StandIn: standIn, Provider: strings.Join(providers, ","), Replies: replies}
	if standIn {
		// Only stand-ins: say why, as a single stand-in would.
		a.Reason = replies[len(replies)-1].Reason
	}
	a.Body = mergedBody(base, c.Field, items)
	return a
}

func mergedBody(base map[string]json.RawMessage, field string, items []json.RawMessage) json.RawMessage {
	out := make(map[string]json.RawMessage, len(base)+1)
	for k, v := range base {
		out[k] = v
	}
	out[field], _ = json.Marshal(items)
	b, _ := json.Marshal(out)
	return b
}

// withProvider marks an object item with the registration that gave it;
// any other item is kept as it is.
func withProvider(item json.RawMessage, provider string) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(item, &obj) != nil || obj == nil {
		return item
	}
	obj["provider"], _ = json.Marshal(provider)
	b, _ := json.Marshal(obj)
	return b
}

// answerOf is the answer r decides, with every reply it was chosen from.
func answerOf(r core.ExtensionReply, replies []core.ExtensionReply) core.ExtensionAnswer {
	return core.ExtensionAnswer{Answered: true, Failed: r.Failed, Provider: r.Provider, StandIn: r.StandIn,
		Reason: r.Reason, Body: r.Body, Replies: replies}
}

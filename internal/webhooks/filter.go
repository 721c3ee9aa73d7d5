package webhooks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/causewayhq/causeway"
)

// A filter is a CEL expression over the event, evaluated against:
//
//	event                           the whole CloudEvent as a map
//	id, type, source, subject, time the CloudEvent attributes, as strings
//	data                            the event's data (dyn)
//
// so both `data.amount.amount > 1000.0` and
// `event.type == "payment.completed"` work.
//
// Money amounts are decimal strings on the wire ("1234.50"), and CEL does
// not compare a string with a number. So that filters read the way the
// data looks, an ordering comparison (<, <=, >, >=) between a value of
// dynamic type and a number compares a decimal string numerically:
// `data.amount.amount > 1000.0` is true for "1234.50". A string that is not
// a plain decimal (digits, an optional sign and fraction) makes the filter
// fail, which counts as no match. Equality is CEL's own:
// `data.amount.amount == "1234.50"` compares strings, and
// `double(data.amount.amount) == 1234.5` compares numbers.
//
// Expressions are compiled and type-checked when a subscription is created
// or changed; one that does not compile is refused with the compiler's
// message. At delivery, an evaluation error or a result that is not true
// means no match, and evaluation is cost-limited.

// maxFilterLength bounds a filter's source text.
const maxFilterLength = 4096

// filterCostLimit bounds the work of one evaluation (CEL cost units, about
// one per operation); a filter that exceeds it does not match.
const filterCostLimit = 100000

// decimalComparisons are the functions an ordering comparison involving a
// dynamic value is rewritten to. Their names start with '@', which the
// parser never produces, so no filter can call them by name.
var decimalComparisons = map[string]string{
	operators.Less:          "@decimal_less",
	operators.LessEquals:    "@decimal_less_equals",
	operators.Greater:       "@decimal_greater",
	operators.GreaterEquals: "@decimal_greater_equals",
}

var (
	filterEnvOnce sync.Once
	filterEnv     *cel.Env
	filterEnvErr  error
)

func celEnv() (*cel.Env, error) {
	filterEnvOnce.Do(func() {
		opts := []cel.EnvOption{
			cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("id", cel.StringType),
			cel.Variable("type", cel.StringType),
			cel.Variable("source", cel.StringType),
			cel.Variable("subject", cel.StringType),
			cel.Variable("time", cel.StringType),
			cel.Variable("data", cel.DynType),
			cel.ParserExpressionSizeLimit(maxFilterLength),
		}
		for op, name := range decimalComparisons {
			holds := comparisonHolds(op)
			opts = append(opts, cel.Function(name,
				cel.Overload(strings.TrimPrefix(name, "@")+"_dyn_dyn", []*cel.Type{cel.DynType, cel.DynType}, cel.BoolType,
					cel.BinaryBinding(func(l, r ref.Val) ref.Val { return compareDecimal(l, r, holds) }))))
		}
		filterEnv, filterEnvErr = cel.NewEnv(opts...)
	})
	return filterEnv, filterEnvErr
}

// comparisonHolds returns whether a comparison result (-1, 0, 1) satisfies
// the operator.
func comparisonHolds(op string) func(c int) bool {
	switch op {
	case operators.Less:
		return func(c int) bool { return c < 0 }
	case operators.LessEquals:
		return func(c int) bool { return c <= 0 }
	case operators.Greater:
		return func(c int) bool { return c > 0 }
	default:
		return func(c int) bool { return c >= 0 }
	}
}

var plainDecimal = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)

// compareDecimal is CEL's ordering comparison, except that a decimal
// string compared with a number is compared as a number.
func compareDecimal(l, r ref.Val, holds func(int) bool) ref.Val {
	l, r = decimalOperand(l, r), decimalOperand(r, l)
	if types.IsError(l) {
		return l
	}
	if types.IsError(r) {
		return r
	}
	c, ok := l.(traits.Comparer)
	if !ok {
		return types.NoSuchOverloadErr()
	}
	res := c.Compare(r)
	n, ok := res.(types.Int)
	if !ok {
		return res // an error: incomparable types
	}
	return types.Bool(holds(int(n)))
}

// decimalOperand turns v into a double when it is a string and other a
// number.
func decimalOperand(v, other ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return v
	}
	switch other.(type) {
	case types.Double, types.Int, types.Uint:
	default:
		return v
	}
	if !plainDecimal.MatchString(string(s)) {
		return types.NewErr("%q is not a decimal number", string(s))
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return types.NewErr("%q is not a decimal number", string(s))
	}
	return types.Double(f)
}

// filter is a compiled filter, safe for concurrent use.
type filter struct {
	src string
	prg cel.Program
}

// compileFilter compiles and type-checks src. The error is EINVALID
// invalid_filter with the compiler's message.
func compileFilter(src string) (*filter, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	invalid := func(format string, args ...any) error {
		return causeway.Errorf(causeway.EINVALID, "invalid_filter", format, args...)
	}
	if len(src) > maxFilterLength {
		return nil, invalid("filter is longer than %d bytes", maxFilterLength)
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("webhooks: cel environment: %w", err)
	}
	parsed, iss := env.Parse(src)
	if iss.Err() != nil {
		return nil, invalid("%s", iss.Err())
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, invalid("%s", iss.Err())
	}
	if rewriteDecimalComparisons(checked.NativeRep()) {
		// Check again: the rewritten calls need their overloads resolved.
		if checked, iss = env.Check(checked); iss.Err() != nil {
			return nil, invalid("%s", iss.Err())
		}
	}
	if t := checked.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, invalid("filter must be a boolean expression, not %s", t)
	}
	prg, err := env.Program(checked, cel.CostLimit(filterCostLimit))
	if err != nil {
		return nil, invalid("%s", err)
	}
	return &filter{src: src, prg: prg}, nil
}

// rewriteDecimalComparisons replaces, in place, every ordering comparison
// with an operand of dynamic type by its decimal-aware twin. Comparisons
// whose operand types are known keep CEL's own checking. It reports
// whether it changed anything.
func rewriteDecimalComparisons(a *ast.AST) bool {
	fac := ast.NewExprFactory()
	changed := false
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		name, ok := decimalComparisons[call.FunctionName()]
		if !ok || call.IsMemberFunction() || len(call.Args()) != 2 {
			return
		}
		args := call.Args()
		if !isDyn(a.GetType(args[0].ID())) && !isDyn(a.GetType(args[1].ID())) {
			return
		}
		e.SetKindCase(fac.NewCall(e.ID(), name, args...))
		changed = true
	}))
	return changed
}

func isDyn(t *types.Type) bool {
	return t == nil || t.Kind() == types.DynKind || t.Kind() == types.AnyKind
}

// match evaluates the filter on a CloudEvent body. An error (bad JSON, an
// evaluation error, the cost limit) is returned with a false result; the
// caller counts it as no match.
func (f *filter) match(vars map[string]any) (bool, error) {
	out, _, err := f.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("filter gave %s, not a boolean", out.Type().TypeName())
	}
	return b, nil
}

// filterVars decodes a CloudEvent body into the filter's variables.
func filterVars(body []byte) (map[string]any, error) {
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, err
	}
	str := func(k string) string { s, _ := ev[k].(string); return s }
	return map[string]any{
		"event":   ev,
		"id":      str("id"),
		"type":    str("type"),
		"source":  str("source"),
		"subject": str("subject"),
		"time":    str("time"),
		"data":    ev["data"],
	}, nil
}

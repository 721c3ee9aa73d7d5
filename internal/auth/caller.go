package auth

import (
	"context"

	"github.com/causewayhq/causeway"
)

// Caller is who asks a service for something: an app, a developer, one of
// the bank's operators, or the bank's own process (seeding, sweeps,
// relays). Every service decides what a caller may see and do from its
// Caller alone.
//
// The zero Caller is nobody and may see nothing: a caller forgotten on
// the way is refused, never taken for the bank. Make one with AppCaller,
// DeveloperCaller, OperatorCaller or BankProcess.
type Caller struct {
	kind callerKind
	id   string
}

type callerKind uint8

const (
	nobody callerKind = iota
	appCaller
	developerCaller
	operatorCaller
	bankProcess
)

// AppCaller is the app with the given id, calling with an access token.
// An empty id is nobody.
func AppCaller(appID string) Caller {
	if appID == "" {
		return Caller{}
	}
	return Caller{kind: appCaller, id: appID}
}

// DeveloperCaller is the developer with the given id, calling with a
// developer token (or a portal session). An empty id is nobody.
func DeveloperCaller(developerID string) Caller {
	if developerID == "" {
		return Caller{}
	}
	return Caller{kind: developerCaller, id: developerID}
}

// AdminTokenOperator names whoever holds the bank's shared admin token
// (kept for automation and bootstrap) in the audit and in Callers; named
// operators are called by their ids ("op_…").
const AdminTokenOperator = "admin-token"

// OperatorCaller is a person at the bank, by operator id, or the admin
// token (AdminTokenOperator). An empty id is nobody.
func OperatorCaller(name string) Caller {
	if name == "" {
		return Caller{}
	}
	return Caller{kind: operatorCaller, id: name}
}

// BankProcess is the bank's own process acting without a person: the
// sandbox seeding, periodic sweeps, bench and demo drivers.
func BankProcess() Caller { return Caller{kind: bankProcess, id: "bank"} }

// App returns the calling app's id, and whether the caller is an app.
func (c Caller) App() (string, bool) { return c.id, c.kind == appCaller }

// Developer returns the calling developer's id, and whether the caller is
// a developer.
func (c Caller) Developer() (string, bool) { return c.id, c.kind == developerCaller }

// IsBank reports whether the caller acts for the bank, an operator or the
// bank's own process, and so may see every tenant's resources.
func (c Caller) IsBank() bool { return c.kind == operatorCaller || c.kind == bankProcess }

// RequireBank refuses what only the bank may do (its decisions on money,
// access and controls) to anyone else: EFORBIDDEN bank_only.
func (c Caller) RequireBank() error {
	if c.IsBank() {
		return nil
	}
	return causeway.Errorf(causeway.EFORBIDDEN, "bank_only", "only the bank may do this, not %s", c)
}

// IsNobody reports whether c is the zero Caller.
func (c Caller) IsNobody() bool { return c.kind == nobody }

// String names the caller for logs and audit trails: "app:app_…",
// "developer:dev_…", "operator:<name>", "bank" or "nobody".
func (c Caller) String() string {
	switch c.kind {
	case appCaller:
		return "app:" + c.id
	case developerCaller:
		return "developer:" + c.id
	case operatorCaller:
		return "operator:" + c.id
	case bankProcess:
		return "bank"
	}
	return "nobody"
}

type callerKey struct{}

// WithCaller returns ctx carrying c; the HTTP layer sets it once it knows
// who is calling.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns who is calling: the caller set with WithCaller, else
// the app or developer the gateway authenticated, else nobody.
func CallerFrom(ctx context.Context) Caller {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		return c
	}
	if a, ok := AppFrom(ctx); ok {
		return AppCaller(a.ID)
	}
	if d, ok := DeveloperFrom(ctx); ok {
		return DeveloperCaller(d.ID)
	}
	return Caller{}
}

// AppCallerFrom returns the calling app, for routes the gateway lets in
// only with an app's access token: its absence there is a wiring bug,
// answered EUNAUTHORIZED and never taken for anyone else.
func AppCallerFrom(ctx context.Context) (Caller, error) {
	c := CallerFrom(ctx)
	if _, ok := c.App(); !ok {
		return Caller{}, causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "an app access token is required")
	}
	return c, nil
}

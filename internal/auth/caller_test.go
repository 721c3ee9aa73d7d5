package auth_test

import (
	"context"
	"testing"

	"github.com/causewayhq/causeway/internal/auth"
)

func TestTheZeroCallerIsNobodyAndNeverTheBank(t *testing.T) {
	for name, c := range map[string]auth.Caller{
		"zero": {}, "app without id": auth.AppCaller(""), "developer without id": auth.DeveloperCaller(""),
		"operator without name": auth.OperatorCaller(""), "empty context": auth.CallerFrom(context.Background()),
	} {
		if !c.IsNobody() || c.IsBank() || c.String() != "nobody" {
			t.Errorf("%s = %s (bank %v)", name, c, c.IsBank())
		}
		if _, ok := c.App(); ok {
			t.Errorf("%s is an app", name)
		}
	}
	if c := auth.OperatorCaller(auth.AdminTokenOperator); !c.IsBank() || c.String() != "operator:admin-token" {
		t.Errorf("operator = %s", c)
	}
	if c := auth.BankProcess(); !c.IsBank() {
		t.Errorf("bank process = %s", c)
	}
	if id, ok := auth.AppCaller("app_1").App(); !ok || id != "app_1" || auth.AppCaller("app_1").IsBank() {
		t.Errorf("app caller = %q %v", id, ok)
	}
}

func TestCallerFromTheContext(t *testing.T) {
	ctx := auth.WithApp(context.Background(), &auth.App{ID: "app_1"})
	if c := auth.CallerFrom(ctx); c.String() != "app:app_1" {
		t.Errorf("an app's request = %s", c)
	}
	ctx = auth.WithDeveloper(context.Background(), &auth.Developer{ID: "dev_1"})
	if c := auth.CallerFrom(ctx); c.String() != "developer:dev_1" {
		t.Errorf("a developer's request = %s", c)
	}
	ctx = auth.WithCaller(context.Background(), auth.OperatorCaller("ops@bank"))
	if c := auth.CallerFrom(ctx); c.String() != "operator:ops@bank" {
		t.Errorf("an operator's request = %s", c)
	}
	if c := auth.CallerFrom(auth.WithApp(context.Background(), &auth.App{})); !c.IsNobody() {
		t.Errorf("an app without id = %s", c)
	}
}

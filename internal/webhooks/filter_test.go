package webhooks

import (
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
)

const sampleEvent = `{"specversion":"1.0","id":"evt_1","type":"payment.completed","source":"/causeway/sandbox-bank",
"subject":"pay_1","time":"2026-03-29T01:30:00Z","datacontenttype":"application/json",
"data":{"id":"pay_1","status":"completed","amount":{"amount":"1234.50","currency":"EUR"},"count":3,
"lines":[{"amount":"5.00"},{"amount":"50.00"}],"reference":"12345"}}`

func TestFilterMatches(t *testing.T) {
	vars, err := filterVars([]byte(sampleEvent))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		expr string
		want bool
	}{
		// The example: a decimal string compares with a number.
		{`data.amount.amount > 1000.0`, true},
		{`data.amount.amount > 2000.0`, false},
		{`data.amount.amount >= 1234.5`, true},
		{`data.amount.amount < 1234.5`, false},
		{`data.amount.amount <= 1234`, false},
		{`1000.0 < data.amount.amount`, true},
		{`data.amount.amount > 1000`, true},
		{`double(data.amount.amount) == 1234.5`, true},
		{`data.amount.amount == "1234.50"`, true},
		{`data.amount.amount == 1234.5`, false}, // equality stays CEL's: a string is not a number
		{`data.count > 2`, true},
		{`data.count > 2.5`, true},
		{`data.lines.exists(l, l.amount > 10.0)`, true},
		{`data.lines.all(l, l.amount > 10.0)`, false},
		{`data.reference == "12345"`, true},
		// Attributes, top level and through event.
		{`type == "payment.completed"`, true},
		{`event.type == "payment.completed"`, true},
		{`type.startsWith("payment.")`, true},
		{`subject == "pay_1" && source == "/causeway/sandbox-bank" && id == "evt_1"`, true},
		{`time > "2026-01-01"`, true},
		{`timestamp(time) > timestamp("2026-03-01T00:00:00Z")`, true},
		{`data.status in ["completed", "held"]`, true},
		{`has(data.amount) && !has(data.nosuch)`, true},
		// Errors are no match.
		{`data.amount.currency > 1.0`, false},
		{`data.nosuch == 1`, false},
		{`data.amount.amount > "1000"`, true}, // string with string: lexical, CEL's own
	} {
		f, err := compileFilter(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		got, _ := f.match(vars)
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
}

func TestFilterCompileErrorsCarryTheCompilerMessage(t *testing.T) {
	for _, c := range []struct{ expr, msg string }{
		{`data.amount.amount >`, "Syntax error"},
		{`nosuch == 1`, "undeclared reference to 'nosuch'"},
		{`type > 3`, "found no matching overload"},
		{`type`, "must be a boolean"},
		{`@decimal_greater(1, 2)`, "Syntax error"}, // the rewrite's functions cannot be called by name
		{strings.Repeat("a", maxFilterLength+1), "longer than"},
	} {
		_, err := compileFilter(c.expr)
		if causeway.ErrorCode(err) != "invalid_filter" || causeway.ErrorKind(err) != causeway.EINVALID || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%.40s: %v, want invalid_filter with %q", c.expr, err, c.msg)
		}
	}
	if f, err := compileFilter("  "); f != nil || err != nil {
		t.Errorf("an empty filter: %v %v, want none", f, err)
	}
}

func TestFilterCostIsLimited(t *testing.T) {
	f, err := compileFilter(`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a + b + c + d + e > 0)))))`)
	if err != nil {
		t.Fatal(err)
	}
	vars, _ := filterVars([]byte(sampleEvent))
	ok, err := f.match(vars)
	if ok || err == nil || !strings.Contains(err.Error(), "cost") {
		t.Errorf("an expensive filter: %v %v, want a cost limit error", ok, err)
	}
}

func TestPatterns(t *testing.T) {
	for p, want := range map[string]bool{
		"*": true, "payment.completed": true, "payment.*": true, "kyc.check.completed": true, "loan.application.*": true,
		"": false, "payment.": false, ".*": false, "payment.*.x": false, "pay ment": false, "payment.>": false, "*.completed": false,
	} {
		if got := validPattern(p); got != want {
			t.Errorf("validPattern(%q) = %v", p, got)
		}
	}
	if got := strings.Join(normalizePatterns([]string{"payment.completed", "payment.*", "kyc.*", "payment.*"}), ","); got != "payment.*,kyc.*" {
		t.Errorf("normalized %s", got)
	}
	if got := normalizePatterns([]string{"payment.*", "*"}); len(got) != 1 || got[0] != "*" {
		t.Errorf("normalized %v", got)
	}
	for _, c := range []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{[]string{"payment.*"}, "payment.completed", true},
		{[]string{"kyc.*"}, "kyc.check.completed", true},
		{[]string{"payment.*"}, "payments.completed", false},
		{[]string{"payment.*"}, "payment", false},
		{[]string{"*"}, "anything.at.all", true},
		{[]string{"loan.funded", "payment.completed"}, "payment.completed", true},
	} {
		if got := Matches(c.patterns, c.typ); got != c.want {
			t.Errorf("Matches(%v, %s) = %v", c.patterns, c.typ, got)
		}
	}
}

func FuzzCompileFilter(f *testing.F) {
	for _, s := range []string{`data.amount.amount > 1000.0`, `event.type == "payment.completed"`, `data.lines.exists(l, l.amount < 1)`,
		`type.matches("^pay")`, `size(data) > 2u`, `1 > 2`, `((`} {
		f.Add(s)
	}
	vars, err := filterVars([]byte(sampleEvent))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src string) {
		flt, err := compileFilter(src)
		if err != nil {
			if causeway.ErrorCode(err) != "invalid_filter" {
				t.Fatalf("%q: error %v is not invalid_filter", src, err)
			}
			return
		}
		if flt != nil {
			flt.match(vars) // must not panic
		}
	})
}

func BenchmarkFilter(b *testing.B) {
	f, err := compileFilter(`data.amount.amount > 1000.0 && type == "payment.completed"`)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(sampleEvent)
	b.ReportAllocs()
	for b.Loop() {
		vars, _ := filterVars(body)
		if ok, _ := f.match(vars); !ok {
			b.Fatal("no match")
		}
	}
}

func TestServerAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"2.9.10": false, "2.10.0": true, "v2.11.3": true, "3.0.0": true, "1.99.0": false, "": false, "junk": false} {
		if got := serverAtLeast(v, 2, 10); got != want {
			t.Errorf("serverAtLeast(%q, 2, 10) = %v", v, got)
		}
	}
}

package spi

import (
	"encoding/json"
	"testing"

	"github.com/causewayhq/causeway/internal/core"
)

// An endpoint's answer is outside input. Whatever it sends, checking it
// must not panic, and an answer the fraud-check schema accepts must be one
// the bank can read: a schema-valid answer that core cannot decode would
// turn into a denied payment.
func FuzzCheckAnswer(f *testing.F) {
	for _, seed := range []string{
		`{"decision":"approve","score":42,"reason":"ok"}`,
		`{"decision":"deny","score":42.0}`,
		`{"decision":"review","score":1e2}`,
		`{"decision":"review","score":-0}`,
		`{"decision":"approve","score":0.5}`,
		`{"decision":"approve","score":100,"reason":"\u0000"}`,
		`{"result":"pass","checks":[{"name":"a","result":"fail","detail":"x"}]}`,
		`{"insights":[{"kind":"k","title":"t","confidence":1.0}]}`,
		`[`, `null`, `"x"`, `{"decision":"approve","score":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	points, _ := compileBuiltins()
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, p := range points {
			answer, err := checkAnswer(p, raw)
			if err != nil {
				continue
			}
			if _, err := checkAnswer(p, answer); err != nil {
				t.Fatalf("%s: re-encoded answer %s no longer valid: %v", p.Name, answer, err)
			}
			switch p.Name {
			case core.PointFraudCheck:
				var body struct {
					Decision string `json:"decision"`
					Score    int    `json:"score"`
					Reason   string `json:"reason"`
				}
				if err := json.Unmarshal(answer, &body); err != nil {
					t.Fatalf("valid fraud answer %s (from %s) cannot be read: %v", answer, raw, err)
				}
			case core.PointKYCVerify:
				var body struct {
					Result string          `json:"result"`
					Checks []core.KYCCheck `json:"checks"`
				}
				if err := json.Unmarshal(answer, &body); err != nil {
					t.Fatalf("valid KYC answer %s cannot be read: %v", answer, err)
				}
			}
		}
	})
}

func TestWholeFloatsInAnAnswerBecomeIntegers(t *testing.T) {
	points, _ := compileBuiltins()
	answer, err := checkAnswer(points[core.PointFraudCheck], []byte(`{"decision":"approve","score":42.0,"reason":"python"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(answer) != `{"decision":"approve","reason":"python","score":42}` {
		t.Errorf("answer = %s", answer)
	}
	if _, err := checkAnswer(points[core.PointFraudCheck], []byte(`{"decision":"approve","score":42.5}`)); err == nil {
		t.Error("a fractional score passed")
	}
}

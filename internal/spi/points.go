package spi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/core"
)

// Point is an extension point: a place where a bank process asks an outside
// party for an answer, with the shape of the question and of the answer, how
// long the bank waits, and what it uses when no valid answer arrives.
type Point struct {
	Name             string          `json:"name" example:"payments.fraud-check"`
	Description      string          `json:"description"`
	RequestSchema    json.RawMessage `json:"request_schema" doc:"JSON Schema (2020-12) of the payload the bank sends"`
	ResponseSchema   json.RawMessage `json:"response_schema" doc:"JSON Schema (2020-12) an answer must satisfy; anything else counts as a failure"`
	DefaultTimeoutMS int             `json:"default_timeout_ms" doc:"Deadline of a call unless the registration sets its own"`
	MaxTimeoutMS     int             `json:"max_timeout_ms" doc:"The longest deadline a registration may have; also bounds a whole call across registrations"`
	StandIn          json.RawMessage `json:"stand_in" doc:"The answer the bank uses when no valid answer arrives in time and the policy says stand_in or next"`
	Example          json.RawMessage `json:"example,omitempty" doc:"An example answer"`
	BuiltIn          bool            `json:"builtin" doc:"True for the points the platform defines; false for points the bank defined"`
	// Combine is how the replies of several registrations make one answer.
	Combine Combination `json:"combine" doc:"How the replies of the registrations at this point make one answer"`

	request, response *jsonschema.Schema
}

// NewPoint is what the bank gives to define an extension point.
type NewPoint struct {
	Name             string
	Description      string
	RequestSchema    json.RawMessage
	ResponseSchema   json.RawMessage
	DefaultTimeoutMS int
	MaxTimeoutMS     int
	StandIn          json.RawMessage
	Example          json.RawMessage
	// Combine is the combination rule; the zero value is CombineFirst.
	Combine Combination
}

// pointName is a dotted lower-case name with at least two parts, like the
// built-in "payments.fraud-check".
var pointName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}(\.[a-z][a-z0-9-]{0,39}){1,3}$`)

// compile checks n and returns the point it defines; builtIn is true for
// the platform's own points.
func (n NewPoint) compile(builtIn bool) (*Point, error) {
	if !pointName.MatchString(n.Name) {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_name",
			"name must be dotted lower-case words such as \"payments.fraud-check\"")
	}
	if len(n.Description) > 1000 {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_description", "description is at most 1000 characters")
	}
	if n.DefaultTimeoutMS < 1 || n.MaxTimeoutMS < n.DefaultTimeoutMS || n.MaxTimeoutMS > MaxTimeoutMS {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_timeout",
			"need 1 <= default_timeout_ms <= max_timeout_ms <= %d", MaxTimeoutMS)
	}
	p := &Point{
		Name: n.Name, Description: strings.TrimSpace(n.Description),
		RequestSchema: compactJSON(n.RequestSchema), ResponseSchema: compactJSON(n.ResponseSchema),
		DefaultTimeoutMS: n.DefaultTimeoutMS, MaxTimeoutMS: n.MaxTimeoutMS,
		StandIn: compactJSON(n.StandIn), BuiltIn: builtIn,
	}
	if len(n.Example) > 0 && string(n.Example) != "null" {
		p.Example = compactJSON(n.Example)
	}
	var err error
	if p.request, err = compileSchema(p.Name+"/request", p.RequestSchema); err != nil {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_request_schema", "request_schema: %v", err)
	}
	if p.response, err = compileSchema(p.Name+"/response", p.ResponseSchema); err != nil {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_response_schema", "response_schema: %v", err)
	}
	if len(p.StandIn) == 0 {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_stand_in", "stand_in is required")
	}
	if err := validate(p.response, p.StandIn); err != nil {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_stand_in", "stand_in does not match response_schema: %s", shorten(err.Error()))
	}
	if p.Example != nil {
		if err := validate(p.response, p.Example); err != nil {
			return nil, causeway.Errorf(causeway.EINVALID, "invalid_example", "example does not match response_schema: %s", shorten(err.Error()))
		}
	}
	if p.Combine, err = n.Combine.compile(p.StandIn, builtIn); err != nil {
		return nil, err
	}
	return p, nil
}

// timeout is the deadline of one call to a registration asking for ms
// milliseconds (0 for the point's default), capped by the point's maximum.
func (p *Point) timeout(ms int) int {
	if ms <= 0 {
		ms = p.DefaultTimeoutMS
	}
	return min(ms, p.MaxTimeoutMS)
}

// refuseLoader keeps schemas self-contained: a $ref to a file or a remote
// URL would let whoever writes a schema make the platform read local files
// or reach into the bank's network.
type refuseLoader struct{}

func (refuseLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("schemas must be self-contained; cannot load %s", u)
}

// compileSchema compiles a JSON Schema, draft 2020-12 unless it says
// otherwise.
func compileSchema(name string, raw json.RawMessage) (*jsonschema.Schema, error) {
	if len(raw) == 0 {
		return nil, errors.New("a schema is required")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, errors.New("a schema is a JSON object or boolean")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	loc := "mem://causeway/extension-points/" + url.PathEscape(name)
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, errors.New(shorten(err.Error()))
	}
	return sch, nil
}

// validate checks the JSON document raw against sch.
func validate(sch *jsonschema.Schema, raw []byte) error {
	_, err := validated(sch, raw)
	return err
}

func validated(sch *jsonschema.Schema, raw []byte) (any, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	return doc, sch.Validate(doc)
}

// checkAnswer validates an endpoint's answer against p's response schema
// and returns it re-encoded, with every integral number written as an
// integer. JSON
// Schema's "integer" accepts 42.0, which is what a Python service sends for
// a float that happens to be whole; a reader decoding into an int (as the
// bank does) would refuse it, and turn a valid answer into a failure.
func checkAnswer(p *Point, raw []byte) (json.RawMessage, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("answer is not JSON: %v", err)
	}
	if err := p.response.Validate(doc); err != nil {
		return nil, fmt.Errorf("answer does not match the response schema of %s: %v", p.Name, err)
	}
	return json.Marshal(integral(doc))
}

func integral(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = integral(x)
		}
	case []any:
		for i, x := range v {
			v[i] = integral(x)
		}
	case json.Number:
		if !strings.ContainsAny(string(v), ".eE") {
			return v
		}
		// Beyond 2^53 a float64 is no longer exact: leave such numbers be.
		if f, err := strconv.ParseFloat(string(v), 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return json.Number(strconv.FormatInt(int64(f), 10))
		}
	}
	return v
}

// shorten keeps error text fit for an audit row or a problem detail.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}

// The built-in points. Their request schemas describe what package core
// sends (fields beyond the required ones are welcome); their response
// schemas are what core reads from an answer.
//
// The fraud-check stand-in is "approve", marked as a stand-in on the
// payment: a provider outage must not stop the bank's customers from
// paying (the SPI issue's own acceptance rule). A bank that prefers to fail
// closed activates its registration with on_failure "reject"; the
// alternative stand-in "review" (hold every payment while the provider is
// down) was considered and is one line away.
var builtinPoints = []NewPoint{
	{
		Name:             core.PointFraudCheck,
		Description:      "Asked before a payment is booked. Answer approve, deny or review (the payment is held for the bank to decide), with a risk score from 0 (safe) to 100 and a reason. Every registration is asked, the bank's and the paying app's own, and the strictest decision wins.",
		DefaultTimeoutMS: 1500, MaxTimeoutMS: 5000,
		RequestSchema: json.RawMessage(`{
			"type": "object", "required": ["payment", "debtor"],
			"properties": {
				"payment": {"type": "object", "required": ["id", "debtor_account_id", "amount"],
					"properties": {
						"id": {"type": "string"},
						"debtor_account_id": {"type": "string"},
						"creditor": {"type": "object", "properties": {
							"account_id": {"type": "string"}, "iban": {"type": "string"}, "name": {"type": "string"}}},
						"amount": {"$ref": "#/$defs/money"},
						"reference": {"type": "string"}}},
				"debtor": {"$ref": "#/$defs/customer"}},
			"$defs": ` + sharedDefs + `}`),
		ResponseSchema: json.RawMessage(`{
			"type": "object", "required": ["decision", "score"],
			"properties": {
				"decision": {"enum": ["approve", "deny", "review"]},
				"score": {"type": "integer", "minimum": 0, "maximum": 100},
				"reason": {"type": "string", "maxLength": 500}}}`),
		StandIn: json.RawMessage(`{"decision": "approve", "score": 50, "reason": "stand-in: no answer from the fraud provider in time"}`),
		Example: json.RawMessage(`{"decision": "approve", "score": 12, "reason": "known payee, usual amount"}`),
		Combine: Combination{Rule: CombineStrictest, Field: "decision", Order: []string{"deny", "review", "approve"}, FailedAs: "deny"},
	},
	{
		Name:             core.PointCreditDecision,
		Description:      "Asked when a loan application is decided. Answer approve, decline or refer (a person decides), optionally with the rate in basis points, a limit and a score; what the answer leaves out comes from the bank's scorecard. The bank's rule decides (its own registration, or its scorecard); an app's own registration can decline, refer, lower the limit or raise the rate, never approve what the bank's rule does not. An approval never exceeds its limit.",
		DefaultTimeoutMS: 3000, MaxTimeoutMS: 10000,
		RequestSchema: json.RawMessage(`{
			"type": "object", "required": ["application", "customer"],
			"properties": {
				"application": {"type": "object", "required": ["id", "amount", "term_months"],
					"properties": {
						"id": {"type": "string"},
						"amount": {"$ref": "#/$defs/money"},
						"term_months": {"type": "integer"},
						"purpose": {"type": "string"},
						"monthly_income": {"$ref": "#/$defs/money"}}},
				"customer": {"$ref": "#/$defs/customer"},
				"existing_monthly_debt": {"$ref": "#/$defs/money"},
				"builtin": {"type": "object", "description": "The bank's own scorecard decision",
					"properties": {"decision": {"type": "string"}, "reason": {"type": "string"}, "rate_bp": {"type": "integer"}}}},
			"$defs": ` + sharedDefs + `}`),
		ResponseSchema: json.RawMessage(`{
			"type": "object", "required": ["decision"],
			"properties": {
				"decision": {"enum": ["approve", "decline", "refer"]},
				"reason": {"type": "string", "maxLength": 500},
				"rate_bp": {"type": "integer", "minimum": 0, "maximum": 10000},
				"limit": {"type": "object", "required": ["amount", "currency"], "properties": {
					"amount": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"},
					"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
				"score": {"type": "integer"}}}`),
		StandIn: json.RawMessage(`{"decision": "refer", "reason": "stand-in: no answer from the credit-decision provider in time"}`),
		Example: json.RawMessage(`{"decision": "approve", "reason": "affordable", "rate_bp": 549, "limit": {"amount": "10000.00", "currency": "EUR"}, "score": 720}`),
		Combine: Combination{Rule: CombineTightenOnly},
	},
	{
		Name:             core.PointKYCVerify,
		Description:      "Asked when a customer's KYC check runs, after the bank's own rules. Answer pass, fail or refer with the checks you made; the worst of every registration's result and the bank's wins.",
		DefaultTimeoutMS: 5000, MaxTimeoutMS: 15000,
		RequestSchema: json.RawMessage(`{
			"type": "object", "required": ["customer"],
			"properties": {
				"customer": {"$ref": "#/$defs/customer"},
				"rules": {"type": "object", "description": "The result of the bank's own rules",
					"properties": {"result": {"type": "string"}, "checks": {"type": "array"}}}},
			"$defs": ` + sharedDefs + `}`),
		ResponseSchema: json.RawMessage(`{
			"type": "object", "required": ["result"],
			"properties": {
				"result": {"enum": ["pass", "fail", "refer"]},
				"checks": {"type": "array", "maxItems": 50, "items": {
					"type": "object", "required": ["name", "result"],
					"properties": {
						"name": {"type": "string", "maxLength": 100},
						"result": {"enum": ["pass", "fail", "refer"]},
						"detail": {"type": "string", "maxLength": 500}}}}}}`),
		StandIn: json.RawMessage(`{"result": "refer", "checks": [{"name": "provider", "result": "refer", "detail": "stand-in: no answer from the KYC provider in time"}]}`),
		Example: json.RawMessage(`{"result": "pass", "checks": [{"name": "document", "result": "pass", "detail": "passport verified"}]}`),
		// A registration that fails closed refers the customer to a person,
		// as the bank does when its own provider fails.
		Combine: Combination{Rule: CombineStrictest, Field: "result", Order: []string{"fail", "refer", "pass"}, FailedAs: "refer"},
	},
	{
		Name:             core.PointAccountsLookup,
		Description:      "Asked by a bank process that wants outside intelligence about a customer (for example a bank officer's app when the customer walks in). Answer with a list of insights; every registration's are merged, each marked with its provider.",
		DefaultTimeoutMS: 2000, MaxTimeoutMS: 5000,
		RequestSchema: json.RawMessage(`{
			"type": "object", "required": ["customer"],
			"properties": {
				"customer": {"$ref": "#/$defs/customer"},
				"context": {"type": "string", "description": "Why the bank asks, e.g. branch.customer.arrived"}},
			"$defs": ` + sharedDefs + `}`),
		ResponseSchema: json.RawMessage(`{
			"type": "object", "required": ["insights"],
			"properties": {
				"insights": {"type": "array", "maxItems": 100, "items": {
					"type": "object", "required": ["kind", "title"],
					"properties": {
						"kind": {"type": "string", "maxLength": 100},
						"title": {"type": "string", "maxLength": 200},
						"detail": {"type": "string", "maxLength": 2000},
						"confidence": {"type": "number", "minimum": 0, "maximum": 1}}}}}}`),
		StandIn: json.RawMessage(`{"insights": []}`),
		Example: json.RawMessage(`{"insights": [{"kind": "life_event", "title": "Recently moved house", "detail": "new address registered last month", "confidence": 0.8}]}`),
		Combine: Combination{Rule: CombineMerge, Field: "insights"},
	},
}

// sharedDefs are the $defs the built-in request schemas share: money and a
// customer as the API shows them.
const sharedDefs = `{
	"money": {"type": "object", "required": ["amount", "currency"], "properties": {
		"amount": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"},
		"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
	"customer": {"type": "object", "required": ["id"], "properties": {
		"id": {"type": "string"},
		"type": {"enum": ["person", "business"]},
		"name": {"type": "string"},
		"date_of_birth": {"type": "string"},
		"email": {"type": "string"},
		"address": {"type": "object"},
		"kyc_status": {"type": "string"}}}}`

// compileBuiltins compiles the built-in points once, at start.
func compileBuiltins() (map[string]*Point, []*Point) {
	byName := map[string]*Point{}
	var list []*Point
	for _, n := range builtinPoints {
		p, err := n.compile(true)
		if err != nil {
			panic("spi: built-in point " + n.Name + ": " + err.Error())
		}
		byName[p.Name] = p
		list = append(list, p)
	}
	return byName, list
}

package httpapi

import (
	"encoding/json"
	"testing"
	"time"
)

type tree struct {
	Name     string           `json:"name"`
	Children []*tree          `json:"children"`
	Tags     []string         `json:"tags,omitempty"`
	Zero     []string         `json:"zero,omitzero"`
	Meta     map[string][]int `json:"meta"`
	Any      any              `json:"any"`
	Raw      json.RawMessage  `json:"raw"`
	At       time.Time        `json:"at"`
	Skipped  []string         `json:"-"`
	//lint:ignore U1000 an unexported field is what fillNilSlices must leave alone
	hidden []string
}

func encode(t *testing.T, v any) string {
	t.Helper()
	filled, err := fillNilSlices(nil, "200", v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(filled)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFillNilSlicesReachesEveryDepthAndLeavesTheRest(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v := &tree{Name: "root", At: at,
		Children: []*tree{{Name: "leaf", At: at, Any: &tree{Name: "in any", At: at}}},
		Meta:     map[string][]int{"none": nil, "some": {1}},
	}
	got := encode(t, v)
	want := `{"name":"root","children":[{"name":"leaf","children":[],"meta":null,"any":{"name":"in any","children":[],` +
		`"meta":null,"any":null,"raw":null,"at":"2026-01-02T03:04:05Z"},"raw":null,"at":"2026-01-02T03:04:05Z"}],` +
		`"meta":{"none":[],"some":[1]},"any":null,"raw":null,"at":"2026-01-02T03:04:05Z"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// The value given is the handler's: it is left as it was.
	if v.Children[0].Children != nil || v.Meta["none"] != nil || v.Children[0].Any.(*tree).Children != nil {
		t.Error("the handler's value was modified")
	}
	// Omitted fields, skipped ones and values that write themselves are
	// not touched: a nil json.RawMessage stays null, as it says.
	if encode(t, []string(nil)) != `[]` || encode(t, nil) != `null` || encode(t, [2][]int{}) != `[[],[]]` {
		t.Error("top-level values are not filled")
	}
	// A value without nil slices comes back as it is.
	full := &tree{Children: []*tree{}, Meta: map[string][]int{}}
	if filled, _ := fillNilSlices(nil, "200", full); filled != any(full) {
		t.Error("a value without nil slices was copied")
	}
}

func BenchmarkFillNilSlicesOnAPage(b *testing.B) {
	type account struct {
		ID, Name, IBAN, Currency string
		Balance                  int64
		OpenedAt                 time.Time
	}
	type page struct {
		Data       []*account `json:"data"`
		NextCursor string     `json:"next_cursor"`
	}
	p := &page{Data: make([]*account, 200)}
	for i := range p.Data {
		p.Data[i] = &account{ID: "acc_1", Name: "Current", IBAN: "NL00", Currency: "EUR"}
	}
	b.ReportAllocs()
	for b.Loop() {
		fillNilSlices(nil, "200", p)
	}
}

// BenchmarkFillNilSlicesOnAPageOfItemsWithSlices: a page whose items hold
// slices of their own (a subscription's event types), none of them nil,
// so every item is visited and none is copied.
func BenchmarkFillNilSlicesOnAPageOfItemsWithSlices(b *testing.B) {
	type subscription struct {
		ID         string    `json:"id"`
		URL        string    `json:"url"`
		EventTypes []string  `json:"event_types"`
		Filter     string    `json:"filter,omitempty"`
		CreatedAt  time.Time `json:"created_at"`
	}
	type page struct {
		Data       []*subscription `json:"data"`
		NextCursor string          `json:"next_cursor"`
	}
	p := &page{Data: make([]*subscription, 200)}
	for i := range p.Data {
		p.Data[i] = &subscription{ID: "wh_1", URL: "http://127.0.0.1:9/hooks", EventTypes: []string{"payment.*"}}
	}
	b.ReportAllocs()
	for b.Loop() {
		fillNilSlices(nil, "200", p)
	}
}

// BenchmarkFillNilSlicesOnAValueWithoutSlices: most single resources hold
// no slice at all; they should cost one lookup.
func BenchmarkFillNilSlicesOnAValueWithoutSlices(b *testing.B) {
	type payment struct {
		ID, Status, Currency string
		Amount               int64
		CreatedAt            time.Time
	}
	v := &payment{ID: "pay_1", Status: "completed", Currency: "EUR", Amount: 1234}
	b.ReportAllocs()
	for b.Loop() {
		fillNilSlices(nil, "200", v)
	}
}

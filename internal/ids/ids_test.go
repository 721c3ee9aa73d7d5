package ids_test

import (
	"sort"
	"sync"
	"testing"

	"github.com/causewayhq/causeway/internal/ids"
)

func TestIDsArePrefixedUniqueAndSorted(t *testing.T) {
	const n = 20000
	got := make([]string, n)
	for i := range got {
		got[i] = ids.New("pay")
	}
	if !sort.StringsAreSorted(got) {
		t.Error("ids made one after another are not sorted")
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		if !ids.Valid(id, "pay") {
			t.Fatalf("Valid(%q) = false", id)
		}
	}
}

func TestIDsAreUniqueAcrossGoroutines(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				id := ids.New("evt")
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate %s", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestValidRejectsMalformedIDs(t *testing.T) {
	for _, s := range []string{"", "pay_", "acc_01jd3k7m9q6x4t2w8y5z0abcde", "pay_01JD3K7M9Q6X4T2W8Y5Z0ABCDE", "pay_01jd3k7m9q6x4t2w8y5z0abcd", "pay_01jd3k7m9q6x4t2w8y5z0abcdu"} {
		if ids.Valid(s, "pay") {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}

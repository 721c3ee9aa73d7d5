package testkit

import (
	"sync"
	"testing"

	"github.com/causewayhq/causeway"
)

// Race runs fn(i) for i in [0, n) at once, all released together, and
// returns each call's error: two operators clicking at once, n times over.
func Race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// OneWinner stops the test unless exactly one of errs is nil and every
// other one is a causeway error of kind and code: the race had one winner
// and each loser was told why. It returns the winner's index.
func OneWinner(t testing.TB, errs []error, kind causeway.Kind, code string) int {
	t.Helper()
	winner, won := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			won++
		case causeway.ErrorKind(err) != kind || causeway.ErrorCode(err) != code:
			t.Errorf("a loser got %v, want %s %s", err, kind, code)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d calls won, want exactly 1", won, len(errs))
	}
	return winner
}

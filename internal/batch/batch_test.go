package batch_test

import (
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/batch"
)

// Items added while a batch runs wait for the next one, which takes at
// most Max of them, in the order they came; every item is run once.
func TestItemsAddedWhileABatchRunsFormTheNext(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	q := &batch.Queue[int]{Max: 4, Run: func(items []int) {
		if items[0] == 0 {
			close(started)
			<-release // hold the first batch until the rest are queued
		}
		mu.Lock()
		batches = append(batches, items)
		mu.Unlock()
	}}
	q.Add(0)
	<-started
	for i := 1; i <= 9; i++ {
		q.Add(i)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, b := range batches {
			n += len(b)
		}
		mu.Unlock()
		if n == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 10 items ran", n)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	next := 0
	for i, b := range batches {
		if len(b) > 4 {
			t.Errorf("batch %d has %d items, more than Max", i, len(b))
		}
		for _, item := range b {
			if item != next {
				t.Fatalf("batches %v: items out of order", batches)
			}
			next++
		}
	}
	// The first batch held the queue: the nine items behind it came in
	// batches of the most Max allows.
	if len(batches) != 4 || len(batches[1]) != 4 || len(batches[2]) != 4 || len(batches[3]) != 1 {
		t.Errorf("batches %v: want [0] then 4, 4 and 1 items", batches)
	}
}

// Package batch gathers work that arrives at the same moment into batches,
// for group commit: the items added while a batch runs form the next one.
package batch

import (
	"slices"
	"sync"
)

// Queue runs batches of the items added to it, one batch at a time, each
// of at most Max items, in the order they were added. Its goroutine runs
// only while items wait: the first Add to find it idle starts it, and it
// ends when the queue is empty, so a Queue needs no Close. The zero Queue
// is not usable; set Max and Run.
type Queue[T any] struct {
	// Max bounds the items of one batch.
	Max int
	// Run handles one batch. It must answer every item itself (say, on a
	// channel in the item), and not panic: a panic ends the process.
	Run func(items []T)

	mu      sync.Mutex
	waiting []T
	running bool
}

// Add queues item for a coming batch and returns at once.
func (q *Queue[T]) Add(item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting = append(q.waiting, item)
	if !q.running {
		q.running = true
		go q.loop()
	}
}

func (q *Queue[T]) loop() {
	for {
		q.mu.Lock()
		n := min(len(q.waiting), q.Max)
		if n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		items := slices.Clone(q.waiting[:n])
		q.waiting = slices.Delete(q.waiting, 0, n)
		q.mu.Unlock()
		q.Run(items)
	}
}

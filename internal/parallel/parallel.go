// Package parallel runs bounded numbers of calls at once.
package parallel

import "sync"

// Each calls fn(i) for every i in [0, n), at most limit at once (limit < 1 means 1), and returns
// when all have returned.
func Each(n, limit int, fn func(i int)) {
	if n <= 0 {
		return
	}
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

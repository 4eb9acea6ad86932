// Package parallel runs bounded numbers of calls at once.
package parallel

import "sync"

// Each calls fn(i) for every i in [0, n), at most limit at once (limit < 1 means 1), and returns
// when all have returned. With serialFirst, fn(0) returns before the others start: a first
// registry request settles what the registry supports (its referrers API), so that the
// concurrent ones do not each probe it.
func Each(n, limit int, serialFirst bool, fn func(i int)) {
	if n <= 0 {
		return
	}
	if limit < 1 {
		limit = 1
	}
	start := 0
	if serialFirst {
		fn(0)
		start = 1
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := start; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

package parallel

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEach(t *testing.T) {
	var running, peak atomic.Int32
	var mu sync.Mutex
	seen := map[int]bool{}
	firstDone := false
	Each(20, 3, true, func(i int) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		mu.Lock()
		if i != 0 && !firstDone {
			t.Errorf("call %d started before the first returned", i)
		}
		seen[i] = true
		mu.Unlock()
		time.Sleep(time.Millisecond)
		if i == 0 {
			mu.Lock()
			firstDone = true
			mu.Unlock()
		}
	})
	if len(seen) != 20 || peak.Load() > 3 {
		t.Fatalf("calls %d, peak %d", len(seen), peak.Load())
	}
	Each(0, 3, true, func(int) { t.Fatal("called for n = 0") })
}

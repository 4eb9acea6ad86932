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
	Each(20, 3, func(i int) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		mu.Lock()
		seen[i] = true
		mu.Unlock()
		time.Sleep(time.Millisecond)
	})
	if len(seen) != 20 || peak.Load() > 3 || peak.Load() < 2 {
		t.Fatalf("calls %d, peak %d", len(seen), peak.Load())
	}
	Each(0, 3, func(int) { t.Fatal("called for n = 0") })
}

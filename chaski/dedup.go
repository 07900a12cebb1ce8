package chaski

import (
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// dedupFilter remembers message ids seen recently, bounded both by count and
// by age, with O(1) insert and lookup: a map for membership and a ring that
// records insertion order so the oldest entry is evicted first. An id is
// recorded on first sight (including ids this node originates), so a message
// that comes back around a cycle is recognised.
type dedupFilter struct {
	mu     sync.Mutex
	seen   map[wire.MessageID]int64 // id → insertion time (unix nanos)
	ring   []wire.MessageID
	head   int // index of the oldest entry
	count  int
	maxAge time.Duration
	now    func() time.Time
}

func newDedupFilter(capacity int, maxAge time.Duration) *dedupFilter {
	if capacity <= 0 {
		capacity = 1 << 16
	}
	return &dedupFilter{
		seen:   make(map[wire.MessageID]int64, capacity),
		ring:   make([]wire.MessageID, capacity),
		maxAge: maxAge,
		now:    time.Now,
	}
}

// firstSight records id and reports whether it was new.
func (d *dedupFilter) firstSight(id wire.MessageID) bool {
	now := d.now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.seen[id]; ok {
		return false
	}
	// Expire by age from the oldest end: amortised O(1), since every entry
	// is removed at most once.
	if d.maxAge > 0 {
		limit := now - int64(d.maxAge)
		for d.count > 0 {
			old := d.ring[d.head]
			if t, ok := d.seen[old]; ok && t > limit {
				break
			}
			d.evictOldest()
		}
	}
	if d.count == len(d.ring) {
		d.evictOldest()
	}
	tail := (d.head + d.count) % len(d.ring)
	d.ring[tail] = id
	d.count++
	d.seen[id] = now
	return true
}

func (d *dedupFilter) evictOldest() {
	delete(d.seen, d.ring[d.head])
	d.head = (d.head + 1) % len(d.ring)
	d.count--
}

func (d *dedupFilter) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}

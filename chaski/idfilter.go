package chaski

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// idFilter remembers request ids (discovery and store requests, which
// have no per-origin ordering to exploit; published messages use seqFilter)
// seen recently, bounded both by count and by age, with O(1) insert and
// lookup. A ring records the ids (and their insertion times) in insertion
// order, so the oldest entry is evicted first; an open-addressing index
// (linear probing with backward-shift deletion, keyed by a randomly seeded
// hash, each slot keeping its home so that neither probing nor shifting
// touches the ring) maps ids to ring slots. Unlike a Go map under this FIFO
// insert/delete pattern, the index never accumulates tombstones, so lookups
// stay at a probe or two (docs/PERFORMANCE.md). An id is recorded on first
// sight (including ids this node originates), so a request that comes back
// around a cycle is recognised.
type idFilter struct {
	mu     sync.Mutex
	ring   []idFilterEntry
	head   int // index of the oldest entry
	count  int
	index  []idFilterSlot // len is a power of two ≥ 2×len(ring)
	mask   uint32
	seed   [4]uint64
	maxAge time.Duration
	now    func() time.Time
}

type idFilterSlot struct {
	pos  uint32 // ring position + 1, 0 = empty
	home uint32 // the slot the id hashes to
}

type idFilterEntry struct {
	id wire.MessageID
	at int64 // insertion time, unix nanos
}

func newIDFilter(capacity int, maxAge time.Duration) *idFilter {
	if capacity <= 0 {
		capacity = 1 << 16
	}
	size := 16
	for size < 2*capacity {
		size <<= 1
	}
	d := &idFilter{
		ring:   make([]idFilterEntry, capacity),
		index:  make([]idFilterSlot, size),
		mask:   uint32(size - 1),
		maxAge: maxAge,
		now:    time.Now,
	}
	for i := range d.seed {
		d.seed[i] = randUint64() | 1
	}
	return d
}

// home hashes id to its slot, wyhash-style (128-bit multiply and fold)
// with a random seed: ids come from the network, and the seed keeps a peer
// from choosing colliding ones.
func (d *idFilter) home(id *wire.MessageID) uint32 {
	a := binary.LittleEndian.Uint64(id.Origin[:8]) ^ d.seed[0]
	b := binary.LittleEndian.Uint64(id.Origin[8:]) ^ d.seed[1]
	hi, lo := bits.Mul64(a, b)
	h := hi ^ lo
	hi, lo = bits.Mul64(h^id.Seq^d.seed[2], d.seed[3])
	h = hi ^ lo
	return uint32(h^h>>32) & d.mask
}

// firstSight records id and reports whether it was new.
func (d *idFilter) firstSight(id wire.MessageID) bool {
	return d.firstSightAt(id, d.now().UnixNano())
}

// firstSightAt is firstSight with the current time (unix nanos) supplied by
// a caller that already read the clock.
func (d *idFilter) firstSightAt(id wire.MessageID, now int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	home := d.home(&id)
	i := home
	for {
		sl := d.index[i]
		if sl.pos == 0 {
			break
		}
		if sl.home == home && d.ring[sl.pos-1].id == id {
			return false
		}
		i = (i + 1) & d.mask
	}
	// Expire by age from the oldest end: amortised O(1), since every entry
	// is removed at most once.
	evicted := false
	if d.maxAge > 0 {
		limit := now - int64(d.maxAge)
		for d.count > 0 && d.ring[d.head].at <= limit {
			d.evictOldest()
			evicted = true
		}
	}
	if d.count == len(d.ring) {
		d.evictOldest()
		evicted = true
	}
	if evicted {
		// Deletion may have shifted entries into the probe sequence.
		i = home
		for d.index[i].pos != 0 {
			i = (i + 1) & d.mask
		}
	}
	tail := d.head + d.count
	if tail >= len(d.ring) {
		tail -= len(d.ring)
	}
	d.ring[tail] = idFilterEntry{id: id, at: now}
	d.count++
	d.index[i] = idFilterSlot{pos: uint32(tail + 1), home: home}
	return true
}

// evictOldest removes the oldest entry from the ring and the index.
func (d *idFilter) evictOldest() {
	pos := uint32(d.head + 1)
	i := d.home(&d.ring[d.head].id)
	for d.index[i].pos != pos {
		i = (i + 1) & d.mask
	}
	// Backward-shift deletion: move later members of the probe run into
	// the hole when their home slot allows it, so no tombstone is needed.
	d.index[i] = idFilterSlot{}
	j := i
	for {
		j = (j + 1) & d.mask
		sl := d.index[j]
		if sl.pos == 0 {
			break
		}
		k := sl.home
		// The entry at j may fill the hole at i unless its home k lies
		// cyclically in (i, j].
		if i <= j {
			if i < k && k <= j {
				continue
			}
		} else if i < k || k <= j {
			continue
		}
		d.index[i] = sl
		d.index[j] = idFilterSlot{}
		i = j
	}
	d.ring[d.head] = idFilterEntry{}
	d.head++
	if d.head == len(d.ring) {
		d.head = 0
	}
	d.count--
}

func (d *idFilter) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}

package chaski

import (
	"container/list"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// seqFilter is the duplicate filter of published messages. Message ids are
// (origin, sequence number) and every origin numbers its messages in
// increasing order, so instead of remembering ids one by one the filter
// keeps, per origin, a sliding window of seqWindow sequence numbers below the
// highest one seen, as a bitmap (like IPsec's anti-replay window):
//
//   - memory is bounded by origins, not by traffic: 32 KiB per origin (seqWindow bits), at
//     most maxOrigins origins (least recently heard evicted first), and an
//     origin not heard from for maxAge is forgotten;
//   - a duplicate delayed behind any backlog shorter than the window is
//     recognised, however many other messages passed meanwhile (a filter
//     bounded by message count forgets ids under heavy traffic and lets late
//     copies through);
//   - a number more than a window below the highest seen is treated as
//     already seen: a copy that late is dropped rather than risking a second
//     delivery.
//
// Insert and lookup are O(1); sliding the window clears at most one word per
// 64 sequence numbers skipped.
type seqFilter struct {
	mu         sync.Mutex
	origins    map[wire.NodeID]*list.Element // of *seqWindowState
	lru        *list.List                    // front = most recently heard
	maxOrigins int
	maxAge     time.Duration
	// The origin of the previous call and its element (at the front of
	// lru): a stream from one publisher skips the map and the list.
	lastOrigin wire.NodeID
	lastEl     *list.Element
	// late counts numbers dropped for being older than their window: a
	// copy that late, or a first copy delayed more than seqWindow
	// messages of its origin behind another path (then lost).
	late uint64
	// Leaps contained (a second window opened) and refused; alts is the
	// number of second windows in use.
	leaps, leapsRefused uint64
	alts                int
}

const seqWindow = 1 << 18 // sequence numbers remembered per origin: 32 KiB of bits

// defaultDedupOrigins is Config.DedupOrigins' default, also used by
// newSeqFilter when given none.
const defaultDedupOrigins = 1024

// Leap containment. Nothing ties a message's origin to the edge it came
// from, so a peer could send one message "from" another origin with a
// sequence number far ahead and so move that origin's window past the
// real publisher, whose later messages would all look older than the
// window and be dropped as seen. So a jump of a window or more is a leap,
// and a leap may move the window only when it comes from the edge that
// moved it last, or when the window has not moved for leapGuard (an honest
// origin's numbers also leap: it numbers all its topics together, and we
// see only ours). Any other leap opens the origin's second window
// (seqAltWindow) at that number: the numbers from there up belong to it,
// the ones below to the first, so neither disturbs the other. A third
// region while both windows are in use within leapGuard is refused (the
// message dropped and counted): honest traffic never has three.
const (
	leapGuard     = int64(10 * time.Second)
	maxAltWindows = 64 // node-wide, 32 KiB each
)

type seqWindowState struct {
	origin wire.NodeID
	seqWin
	heard  int64  // unix nanos
	slidBy uint64 // the edge (serial; 0 = this node) that last moved max
	slidAt int64  // when, unix nanos; 0 = never
	alt    *seqAltWindow
}

// seqWin is a window: the highest number seen and a bitmap of the
// seqWindow numbers up to it.
type seqWin struct {
	max  uint64
	bits [seqWindow / 64]uint64
}

// seqAltWindow is an origin's second window, for the numbers from start up.
type seqAltWindow struct {
	start uint64
	seqWin
	slidBy uint64
	slidAt int64
}

func newSeqFilter(maxOrigins int, maxAge time.Duration) *seqFilter {
	if maxOrigins <= 0 {
		maxOrigins = defaultDedupOrigins
	}
	return &seqFilter{origins: make(map[wire.NodeID]*list.Element), lru: list.New(), maxOrigins: maxOrigins, maxAge: maxAge}
}

// firstSight records id and reports whether it was new; now is the caller's
// clock reading (unix nanos), edge the serial of the edge it came from (0
// for this node's own messages).
func (f *seqFilter) firstSight(id wire.MessageID, now int64, edge uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	// lookupLocked, written out: through the helper this path measured
	// 23 ns instead of 16 (BenchmarkSeqFilter).
	var el *list.Element
	ok := false
	if f.lastEl != nil && id.Origin == f.lastOrigin {
		el, ok = f.lastEl, true // already at the front
	} else if el, ok = f.origins[id.Origin]; ok {
		f.lru.MoveToFront(el)
	}
	var w *seqWindowState
	if ok {
		w = el.Value.(*seqWindowState)
		if f.maxAge > 0 && now-w.heard > int64(f.maxAge) {
			// Silent for longer than the age bound: start afresh.
			f.dropAlt(w)
			*w = seqWindowState{origin: id.Origin}
		}
	} else {
		f.expire(now)
		if f.lru.Len() >= f.maxOrigins {
			oldest := f.lru.Back()
			f.dropAlt(oldest.Value.(*seqWindowState))
			delete(f.origins, oldest.Value.(*seqWindowState).origin)
			f.lru.Remove(oldest)
		}
		w = &seqWindowState{origin: id.Origin}
		el = f.lru.PushFront(w)
		f.origins[id.Origin] = el
	}
	// Only the insertion above evicts or expires, and it makes el the
	// front; so the cached element is always live.
	f.lastOrigin, f.lastEl = id.Origin, el
	// Callers pass a cheap clock reading that may lag; never let it move
	// an origin's last-heard time backwards, or a lagging reading followed
	// by a fresh one could look like silence and reset the window.
	if now > w.heard {
		w.heard = now
	}
	seq := id.Seq
	if a := w.alt; a != nil && seq >= a.start {
		return f.altSight(a, seq, now, edge)
	}
	switch {
	case seq > w.max:
		if seq-w.max >= seqWindow && edge != w.slidBy && w.slidAt != 0 && now-w.slidAt < leapGuard {
			return f.leap(w, seq, now, edge)
		}
		w.slide(seq)
		w.slidBy, w.slidAt = edge, now
	case w.max-seq >= seqWindow:
		f.late++
		return false // older than the window: treat as seen
	}
	return w.mark(seq)
}

// mark records seq (within the window) and reports whether it was new.
func (w *seqWin) mark(seq uint64) bool {
	word, bit := (seq/64)%(seqWindow/64), seq%64
	if w.bits[word]&(1<<bit) != 0 {
		return false
	}
	w.bits[word] |= 1 << bit
	return true
}

func (w *seqWin) has(seq uint64) bool {
	switch {
	case seq > w.max:
		return false
	case w.max-seq >= seqWindow:
		return true
	}
	word, bit := (seq/64)%(seqWindow/64), seq%64
	return w.bits[word]&(1<<bit) != 0
}

// leap handles a jump of a window or more that may not move the first
// window: it opens (or, for the edge that owns it or once it is idle,
// reopens) the origin's second window at seq.
func (f *seqFilter) leap(w *seqWindowState, seq uint64, now int64, edge uint64) bool {
	a := w.alt
	switch {
	case a == nil:
		if f.alts >= maxAltWindows {
			f.leapsRefused++
			return false
		}
		a = new(seqAltWindow)
		f.alts++
		w.alt = a
	case a.slidBy == edge || now-a.slidAt >= leapGuard:
		*a = seqAltWindow{}
	default:
		f.leapsRefused++
		return false
	}
	f.leaps++
	a.start, a.max, a.slidBy, a.slidAt = seq, seq, edge, now
	return a.mark(seq)
}

// altSight is firstSight for a number in an origin's second window, with
// the same leap rule.
func (f *seqFilter) altSight(a *seqAltWindow, seq uint64, now int64, edge uint64) bool {
	switch {
	case seq > a.max:
		if seq-a.max >= seqWindow && edge != a.slidBy && now-a.slidAt < leapGuard {
			f.leapsRefused++
			return false
		}
		a.slide(seq)
		a.slidBy, a.slidAt = edge, now
	case a.max-seq >= seqWindow:
		f.late++
		return false
	}
	return a.mark(seq)
}

func (f *seqFilter) dropAlt(w *seqWindowState) {
	if w.alt != nil {
		w.alt = nil
		f.alts--
	}
}

// lookupLocked finds origin's element, from the last-origin memo when it
// matches (memo true) or from the map; nil when the origin is unknown.
func (f *seqFilter) lookupLocked(origin wire.NodeID) (el *list.Element, memo bool) {
	if f.lastEl != nil && origin == f.lastOrigin {
		return f.lastEl, true
	}
	return f.origins[origin], false
}

// seen reports whether id was already recorded (or is older than its
// origin's window), without recording anything. A true answer stays true.
func (f *seqFilter) seen(id wire.MessageID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	el, _ := f.lookupLocked(id.Origin)
	if el == nil {
		return false
	}
	w := el.Value.(*seqWindowState)
	if a := w.alt; a != nil && id.Seq >= a.start {
		return a.has(id.Seq)
	}
	return w.has(id.Seq)
}

// slide moves the window's top to seq, forgetting the numbers that fall out.
func (w *seqWin) slide(seq uint64) {
	if seq-w.max >= seqWindow {
		w.bits = [seqWindow / 64]uint64{}
	} else {
		// Clear the bits of (max, seq]: partial first word, whole words,
		// partial last word.
		for s := w.max + 1; s <= seq; {
			word := (s / 64) % (seqWindow / 64)
			if s%64 == 0 && seq-s >= 63 {
				w.bits[word] = 0
				s += 64
				continue
			}
			w.bits[word] &^= 1 << (s % 64)
			s++
		}
	}
	w.max = seq
}

// expire forgets origins not heard from for maxAge (from the old end).
func (f *seqFilter) expire(now int64) {
	if f.maxAge <= 0 {
		return
	}
	for el := f.lru.Back(); el != nil; el = f.lru.Back() {
		w := el.Value.(*seqWindowState)
		if now-w.heard <= int64(f.maxAge) {
			return
		}
		f.dropAlt(w)
		delete(f.origins, w.origin)
		f.lru.Remove(el)
	}
}

func (f *seqFilter) lateDrops() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.late
}

func (f *seqFilter) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lru.Len()
}

// leapStats reports the leaps contained and refused (see leap).
func (f *seqFilter) leapStats() (contained, refused uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaps, f.leapsRefused
}

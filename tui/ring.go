package tui

// ring is a bounded FIFO that overwrites its oldest element. It grows
// lazily up to its capacity, so empty topics cost nothing.
type ring[T any] struct {
	buf    []T
	start  int
	max    int
	pushed int // elements ever pushed: the sequence number of the next one
}

func newRing[T any](max int) *ring[T] {
	if max < 1 {
		max = 1
	}
	return &ring[T]{max: max}
}

func (r *ring[T]) Len() int { return len(r.buf) }

func (r *ring[T]) Push(v T) {
	r.pushed++
	if len(r.buf) < r.max {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.start] = v
	r.start++
	if r.start == r.max {
		r.start = 0
	}
}

// At returns a pointer to the i-th element, 0 being the oldest.
func (r *ring[T]) At(i int) *T {
	j := r.start + i
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	return &r.buf[j]
}

func (r *ring[T]) Clear() { r.buf, r.start = r.buf[:0], 0 }

// Seq is the sequence number of the i-th element (0 for the first ever pushed).
func (r *ring[T]) Seq(i int) int { return r.pushed - len(r.buf) + i }

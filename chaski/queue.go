package chaski

import (
	"context"
	"errors"
	"sync"
	"time"
)

// sendQueue holds the frames waiting for an edge's writer. Control frames
// (pings, pongs, goodbyes, small protocol messages) have their own lane that
// the writer always drains first, so a long data backlog never delays a pong
// behind it on the sender's side. The data lane is bounded in bytes: a full
// lane blocks the producer (backpressure), never grows.
type sendQueue struct {
	mu        sync.Mutex
	ctrl      [][]byte
	data      [][]byte
	dataHead  int
	dataBytes int
	maxBytes  int
	maxCtrl   int
	wake      chan struct{} // capacity 1: "there is something to write"
	space     chan struct{} // closed when bytes are released and a producer waits
	waiting   bool
}

func newSendQueue(maxBytes int) *sendQueue {
	return &sendQueue{maxBytes: maxBytes, maxCtrl: 512, wake: make(chan struct{}, 1)}
}

func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pushCtrl queues a control frame; it reports false when the control lane is
// full (a peer flooding us with pings gets its pongs dropped).
func (q *sendQueue) pushCtrl(f []byte) bool {
	q.mu.Lock()
	if len(q.ctrl) >= q.maxCtrl {
		q.mu.Unlock()
		return false
	}
	q.ctrl = append(q.ctrl, f)
	q.mu.Unlock()
	q.signal()
	return true
}

// pushData queues a data frame, waiting for room while the lane is full.
// A frame larger than the whole bound is accepted when the lane is empty.
func (q *sendQueue) pushData(ctx context.Context, done <-chan struct{}, f []byte) error {
	for {
		q.mu.Lock()
		if q.dataBytes == 0 || q.dataBytes+len(f) <= q.maxBytes {
			q.data = append(q.data, f)
			q.dataBytes += len(f)
			q.mu.Unlock()
			q.signal()
			return nil
		}
		if !q.waiting {
			q.space = make(chan struct{})
			q.waiting = true
		}
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return ErrEdgeLost
		}
	}
}

// errQueueOverflow: a relayed frame found the data lane over its hard limit.
var errQueueOverflow = errors.New("send queue over its hard limit")

// pushRelay queues a frame relayed for another node. Like pushData it waits
// for room below the bound, but only for patience: in a mesh where every
// node relays for every other, readers waiting on each other's full queues
// could otherwise wait in a circle for ever. After that it queues anyway, up
// to hardMax bytes, which lets the circle drain while publishers (who always
// wait in pushData) stay throttled. Beyond hardMax the peer is not draining
// at all and errQueueOverflow is returned.
func (q *sendQueue) pushRelay(ctx context.Context, done <-chan struct{}, f []byte, patience time.Duration, hardMax int) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	expired := false
	for {
		q.mu.Lock()
		if q.dataBytes == 0 || q.dataBytes+len(f) <= q.maxBytes || (expired && q.dataBytes+len(f) <= hardMax) {
			q.data = append(q.data, f)
			q.dataBytes += len(f)
			q.mu.Unlock()
			q.signal()
			return nil
		}
		if expired {
			q.mu.Unlock()
			return errQueueOverflow
		}
		if !q.waiting {
			q.space = make(chan struct{})
			q.waiting = true
		}
		space := q.space
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(patience)
		}
		select {
		case <-space:
		case <-timer.C:
			expired = true
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return ErrEdgeLost
		}
	}
}

// take moves queued frames into the given slices: every control frame, and
// data frames up to budget bytes (at least one), so that control frames that
// arrive meanwhile are interleaved with a large backlog.
func (q *sendQueue) take(ctrl, data [][]byte, budget int) ([][]byte, [][]byte) {
	q.mu.Lock()
	ctrl = append(ctrl, q.ctrl...)
	clear(q.ctrl)
	q.ctrl = q.ctrl[:0]
	taken := 0
	for q.dataHead < len(q.data) && (taken == 0 || taken+len(q.data[q.dataHead]) <= budget) {
		f := q.data[q.dataHead]
		q.data[q.dataHead] = nil
		q.dataHead++
		data = append(data, f)
		taken += len(f)
	}
	if q.dataHead == len(q.data) {
		q.data = q.data[:0]
		q.dataHead = 0
	} else if q.dataHead >= 1024 && 2*q.dataHead >= len(q.data) {
		// A producer that never lets the lane run dry would otherwise grow
		// the slice without bound (the taken head is never reused): move
		// the rest to the front, amortised O(1) per frame.
		k := copy(q.data, q.data[q.dataHead:])
		clear(q.data[k:])
		q.data = q.data[:k]
		q.dataHead = 0
	}
	q.mu.Unlock()
	return ctrl, data
}

// release returns the bytes of written data frames to the bound.
func (q *sendQueue) release(n int) {
	if n == 0 {
		return
	}
	q.mu.Lock()
	q.dataBytes -= n
	if q.waiting {
		close(q.space)
		q.waiting = false
	}
	q.mu.Unlock()
}

func (q *sendQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ctrl) == 0 && q.dataHead == len(q.data)
}

func (q *sendQueue) backlog() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dataBytes
}

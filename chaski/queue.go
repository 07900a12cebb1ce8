package chaski

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// sendQueue holds the frames waiting for an edge's writer. Control frames
// (pings, pongs, goodbyes, small protocol messages) have their own lane that
// the writer always drains first, so a long data backlog never delays a pong
// behind it on the sender's side. The data lane is bounded in bytes: a full
// lane blocks the producer (backpressure), never grows.
//
// Small data frames are copied into pooled 64 KiB segments instead of being
// queued one slice each: a stream of 100-byte messages then costs no
// allocation per message, and producers may hand in a scratch buffer they
// reuse at once. Frames above segCopyMax are queued as they are (the
// producer gives up the slice), so a file chunk is never copied twice.
type sendQueue struct {
	mu        sync.Mutex
	ctrl      [][]byte
	data      []dataSeg
	dataHead  int
	dataBytes int
	maxBytes  int
	maxCtrl   int
	// ctrlBytes counts the control frames queued or taken by the writer
	// and not yet written: the lane is bounded in bytes as well as in
	// frames, because a pong echoes its ping's padding (up to a frame
	// body) and a peer that pings but never reads would otherwise park
	// hundreds of megabytes here.
	ctrlBytes    int
	maxCtrlBytes int
	echo         *echoBudget   // node-wide bound on queued echo padding; nil = none
	echoBytes    int           // of ctrlBytes, bytes of padded pongs holding echo budget
	peak         int           // the most bytes the lanes ever held (see releaseEdgeMemory)
	free         [][]byte      // empty pooled segments, at most maxFreeSegs
	wake         chan struct{} // capacity 1: "there is something to write"
	space        chan struct{} // closed when bytes are released and a producer waits
	waiting      bool
	overfill     bool // a relay waited out its patience: see pushRelay

	frames atomic.Uint64 // frames queued since the edge came up
}

// dataSeg is one piece of the data lane: either a pooled segment holding
// whole frames back to back (it may still grow while it is the lane's last
// piece) or one large frame owned by the queue.
type dataSeg struct {
	b      []byte
	pooled bool
	// file, when set, follows b on the wire: fileLen bytes of it from
	// fileOff, the body of a file chunk whose header is b. The writer
	// sends them with sendfile(2) on plain TCP, so the sender neither
	// reads them nor copies them into the socket (see pushFileData).
	file    *os.File
	fileOff int64
	fileLen int
}

// size is the segment's bytes on the wire.
func (s *dataSeg) size() int { return len(s.b) + s.fileLen }

const (
	segSize    = 64 << 10
	segCopyMax = 16 << 10
	// A busy lane recycles up to maxFreeSegs segments (512 KiB); an idle
	// one keeps idleFreeSegs.
	maxFreeSegs  = 8
	idleFreeSegs = 1
)

// maxCtrlLaneBytes bounds the control lane of one edge in bytes. A single
// frame larger than that is still accepted into an empty lane (a padded
// pong answering a peer that reads), never a second one.
const maxCtrlLaneBytes = 1 << 20

func newSendQueue(maxBytes int) *sendQueue {
	return &sendQueue{maxBytes: maxBytes, maxCtrl: 512, maxCtrlBytes: maxCtrlLaneBytes, wake: make(chan struct{}, 1)}
}

// echoBudget bounds, node-wide, the bytes of padded pongs waiting in control
// lanes: each edge's lane is bounded, but hundreds of edges each holding a
// padded pong would still add up.
type echoBudget struct {
	mu    sync.Mutex
	used  int
	limit int
}

func (b *echoBudget) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *echoBudget) give(n int) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pushCtrl queues a control frame; it reports false when the control lane is
// full, in frames or in bytes (a peer flooding us with pings gets its pongs
// dropped).
func (q *sendQueue) pushCtrl(f []byte) bool {
	q.mu.Lock()
	if len(q.ctrl) >= q.maxCtrl || (q.ctrlBytes > 0 && q.ctrlBytes+len(f) > q.maxCtrlBytes) {
		q.mu.Unlock()
		return false
	}
	q.ctrl = append(q.ctrl, f)
	q.ctrlBytes += len(f)
	q.notePeakLocked()
	q.mu.Unlock()
	q.frames.Add(1)
	q.signal()
	return true
}

// ctrlRoom reports whether a control frame of n bytes would fit now (a
// cheap check before building a large one).
func (q *sendQueue) ctrlRoom(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ctrl) < q.maxCtrl && (q.ctrlBytes == 0 || q.ctrlBytes+n <= q.maxCtrlBytes)
}

// pushEcho queues a padded pong. Beyond the lane's own bounds it needs room
// in the node-wide echo budget, which it holds until the writer has put the
// pong on the socket (see ctrlDone).
func (q *sendQueue) pushEcho(f []byte) bool {
	if q.echo != nil && !q.echo.take(len(f)) {
		return false
	}
	if !q.pushCtrl(f) {
		if q.echo != nil {
			q.echo.give(len(f))
		}
		return false
	}
	q.mu.Lock()
	q.echoBytes += len(f)
	q.mu.Unlock()
	return true
}

// ctrlDone tells the queue that the writer is finished with control frames
// it took (written, or dropped at shutdown): their bytes leave the bound.
func (q *sendQueue) ctrlDone(ctrl [][]byte) {
	n := 0
	for _, f := range ctrl {
		n += len(f)
	}
	if n == 0 {
		return
	}
	q.mu.Lock()
	q.ctrlBytes -= n
	echo := 0
	if q.ctrlBytes <= 0 {
		// Every echo counted is among the frames written or dropped.
		q.ctrlBytes = 0
		echo, q.echoBytes = q.echoBytes, 0
	} else if q.echoBytes > q.ctrlBytes {
		echo = q.echoBytes - q.ctrlBytes
		q.echoBytes = q.ctrlBytes
	}
	q.mu.Unlock()
	if echo > 0 && q.echo != nil {
		q.echo.give(echo)
	}
}

func (q *sendQueue) notePeakLocked() {
	if b := q.dataBytes + q.ctrlBytes; b > q.peak {
		q.peak = b
	}
}

func (q *sendQueue) peakBytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.peak
}

// release drops everything still queued once the writer has ended, so that
// a dropped peer's backlog is garbage at once even while something still
// refers to the edge.
func (q *sendQueue) release() {
	q.mu.Lock()
	ctrl := q.ctrl
	q.ctrl = nil
	q.data = nil
	q.dataHead = 0
	q.dataBytes = 0
	q.free = nil
	q.mu.Unlock()
	q.ctrlDone(ctrl)
}

// appendLocked adds f to the data lane. Small frames are copied (f may be
// reused by the caller as soon as the push returns); a large frame is kept
// as it is unless borrowed, in which case it is copied into its own slice.
func (q *sendQueue) appendLocked(f []byte, borrowed bool) {
	q.dataBytes += len(f)
	q.notePeakLocked()
	if len(f) > segCopyMax {
		if borrowed {
			f = append([]byte(nil), f...)
		}
		q.data = append(q.data, dataSeg{b: f})
		return
	}
	seg := q.tailLocked(len(f))
	*seg = append(*seg, f...)
}

// tailLocked returns the pooled segment that the next n (<= segCopyMax)
// bytes go into: the lane's last one when they fit, else a fresh one.
func (q *sendQueue) tailLocked(n int) *[]byte {
	if k := len(q.data) - 1; k >= q.dataHead && q.data[k].pooled && len(q.data[k].b)+n <= cap(q.data[k].b) {
		return &q.data[k].b
	}
	var seg []byte
	if k := len(q.free); k > 0 {
		seg = q.free[k-1]
		q.free[k-1] = nil
		q.free = q.free[:k-1]
	} else {
		seg = make([]byte, 0, segSize)
	}
	q.data = append(q.data, dataSeg{b: seg, pooled: true})
	return &q.data[len(q.data)-1].b
}

// relayFrame is a Publish frame relayed for another node: it is assembled
// straight into the lane (one copy of the message), with the copy's TTL
// and hop count rewritten. A signed publish (signedHead > 0: the length of
// its body before the signature block) keeps its kind, unless strip is set
// for a target that does not know signed publishes: that one gets the
// plain frame, the block cut out.
type relayFrame struct {
	topic      string
	body       []byte
	ttl, hops  uint8
	signedHead int
	strip      bool
}

func (r *relayFrame) size() int {
	n := wire.HeaderLen + len(r.topic) + len(r.body)
	if r.strip {
		n -= wire.SigBlockLen
	}
	return n
}

func (r *relayFrame) appendTo(b []byte) []byte {
	// The reader already checked the topic and body lengths.
	var h [wire.HeaderLen]byte
	kind, body := wire.KindPublish, r.body
	switch {
	case r.strip:
		wire.PutHeader(h[:], kind, len(r.topic), len(body)-wire.SigBlockLen)
	case r.signedHead > 0:
		kind = wire.KindPublishSigned
		fallthrough
	default:
		wire.PutHeader(h[:], kind, len(r.topic), len(body))
	}
	b = append(b, h[:]...)
	b = append(b, r.topic...)
	start := len(b)
	if r.strip {
		b = append(b, body[:r.signedHead]...)
		b = append(b, body[r.signedHead+wire.SigBlockLen:]...)
	} else {
		b = append(b, body...)
	}
	out := b[start:]
	out[wire.PublishTTLOffset] = r.ttl
	out[wire.PublishHopsOffset] = r.hops
	return b
}

func (q *sendQueue) appendRelayLocked(r *relayFrame) {
	n := r.size()
	q.dataBytes += n
	q.notePeakLocked()
	if n > segCopyMax {
		q.data = append(q.data, dataSeg{b: r.appendTo(make([]byte, 0, n))})
		return
	}
	seg := q.tailLocked(n)
	*seg = r.appendTo(*seg)
}

// pushData queues a data frame, waiting for room while the lane is full.
// A frame larger than the whole bound is accepted when the lane is empty.
// With borrowed the caller keeps f and may reuse it once pushData returns.
func (q *sendQueue) pushData(ctx context.Context, done <-chan struct{}, f []byte, borrowed bool) error {
	if err := q.lockRoom(ctx, done, len(f)); err != nil {
		return err
	}
	q.appendLocked(f, borrowed)
	q.pushedLocked()
	return nil
}

// pushFileData queues a file chunk frame whose header (and fixed fields)
// is head and whose data are n bytes of f from off, waiting for room as
// pushData does. The queue keeps head; f must stay open until the frame is
// written.
func (q *sendQueue) pushFileData(ctx context.Context, done <-chan struct{}, head []byte, f *os.File, off int64, n int) error {
	size := len(head) + n
	if err := q.lockRoom(ctx, done, size); err != nil {
		return err
	}
	q.dataBytes += size
	q.notePeakLocked()
	q.data = append(q.data, dataSeg{b: head, file: f, fileOff: off, fileLen: n})
	q.pushedLocked()
	return nil
}

// lockRoom waits until the data lane has room for size more bytes (or is
// empty) and returns with q.mu held; on an error (ctx ended, the edge
// closed) q.mu is not held.
func (q *sendQueue) lockRoom(ctx context.Context, done <-chan struct{}, size int) error {
	for {
		q.mu.Lock()
		if q.dataBytes == 0 || q.dataBytes+size <= q.maxBytes {
			return nil
		}
		space := q.spaceLocked()
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

// pushedLocked ends a push that lockRoom began: it lets go of q.mu and
// wakes the writer for the frame just queued.
func (q *sendQueue) pushedLocked() {
	q.mu.Unlock()
	q.frames.Add(1)
	q.signal()
}

// spaceLocked returns the channel closed when the writer next releases
// bytes, registering the caller as waiting for it.
func (q *sendQueue) spaceLocked() <-chan struct{} {
	if !q.waiting {
		q.space = make(chan struct{})
		q.waiting = true
	}
	return q.space
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
//
// The patience is spent once per congestion episode, not once per frame:
// after one relay has waited it out, the lane stays in overfill until it
// drains below its bound, and relays meanwhile queue at once. Waiting per
// frame would slow a reader to twenty frames a second behind a full lane,
// and its peer's writer would then time out on a socket that is being read,
// only very slowly (a 90-second soak dropped stable edges that way).
func (q *sendQueue) pushRelay(ctx context.Context, done <-chan struct{}, r *relayFrame, patience time.Duration, hardMax int) error {
	n := r.size()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	expired := false
	for {
		q.mu.Lock()
		if expired {
			q.overfill = true
		}
		if q.dataBytes == 0 || q.dataBytes+n <= q.maxBytes || (q.overfill && q.dataBytes+n <= hardMax) {
			q.appendRelayLocked(r)
			q.mu.Unlock()
			q.frames.Add(1)
			q.signal()
			return nil
		}
		if q.overfill {
			q.mu.Unlock()
			return errQueueOverflow
		}
		space := q.spaceLocked()
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
// data segments up to budget bytes (at least one), so that control frames
// that arrive meanwhile are interleaved with a large backlog. The taken
// segments belong to the writer until it hands them back with done.
func (q *sendQueue) take(ctrl [][]byte, data []dataSeg, budget int) ([][]byte, []dataSeg) {
	q.mu.Lock()
	ctrl = append(ctrl, q.ctrl...)
	clear(q.ctrl)
	q.ctrl = q.ctrl[:0]
	taken := 0
	for q.dataHead < len(q.data) && (taken == 0 || taken+q.data[q.dataHead].size() <= budget) {
		s := q.data[q.dataHead]
		q.data[q.dataHead] = dataSeg{}
		q.dataHead++
		data = append(data, s)
		taken += s.size()
	}
	if q.dataHead == len(q.data) {
		q.data = q.data[:0]
		q.dataHead = 0
	} else if q.dataHead >= 1024 && 2*q.dataHead >= len(q.data) {
		// A producer that never lets the lane run dry would otherwise grow
		// the slice without bound (the taken head is never reused): move
		// the rest to the front, amortised O(1) per piece.
		k := copy(q.data, q.data[q.dataHead:])
		clear(q.data[k:])
		q.data = q.data[:k]
		q.dataHead = 0
	}
	q.mu.Unlock()
	return ctrl, data
}

// done returns written data segments: their bytes go back to the bound and
// pooled segments to the free list.
func (q *sendQueue) done(data []dataSeg) {
	n := 0
	for i := range data {
		n += data[i].size()
	}
	q.mu.Lock()
	for _, s := range data {
		if s.pooled && len(q.free) < maxFreeSegs {
			q.free = append(q.free, s.b[:0])
		}
	}
	if n > 0 {
		q.dataBytes -= n
		if q.dataBytes <= q.maxBytes {
			q.overfill = false // drained below the bound: the episode is over
		}
		if q.waiting {
			close(q.space)
			q.waiting = false
		}
	}
	q.mu.Unlock()
}

// trim lets the free list of a lane that ran dry shrink to idleFreeSegs.
func (q *sendQueue) trim() {
	q.mu.Lock()
	if len(q.free) > idleFreeSegs {
		clear(q.free[idleFreeSegs:])
		q.free = q.free[:idleFreeSegs]
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

package chaski

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// File transfer. See files_send.go for the sending side, files_recv.go for
// the receiving side and docs/PROTOCOL.md for the frame sequence.

// Limits and defaults of file transfers.
const (
	maxIncomingPerEdge = 8  // concurrent incoming transfers (pending included) per edge
	maxIncomingPerNode = 32 // and per node
	// maxIdleIncoming bounds the transfers that have not sent a byte yet
	// (offers waiting for the user, accepted ones waiting for data); at
	// that bound, or with every slot taken, a new offer takes the slot of
	// the one idle the longest once that one has had idleGrace to start.
	maxIdleIncoming = maxIncomingPerNode / 2
	idleGrace       = 2 * time.Second
	keepFinished    = 200 // finished transfers remembered by Transfers
	progressEvery   = 100 * time.Millisecond
	// recvBufferBytes bounds the chunk bytes queued between an edge's reader
	// and a transfer's writer goroutine (at least one chunk is always let
	// through).
	recvBufferBytes = 2 << 20
	recvQueueSlots  = 64
	// freeSpaceMargin is left free in the download directory.
	freeSpaceMargin = 64 << 20
	// unknownSizeReserve is the free space an offer of unknown size (-1)
	// needs beyond the margin (at most the maximum file size).
	unknownSizeReserve = 1 << 30
	maxFileNameLen     = 255
	maxMetaEntries     = 64
	maxMetaBytes       = 64 << 10
	partialPrefix      = ".chaski-partial-"
	partialMaxAge      = 7 * 24 * time.Hour

	defaultIdleTimeout   = 60 * time.Second // receiver: no chunk for this long fails the transfer
	defaultPromptTimeout = 2 * time.Minute  // receiver: an offer waiting for AcceptTransfer
	defaultOfferTimeout  = 3 * time.Minute  // sender: waiting for the answer to an offer
	defaultFinalTimeout  = 2 * time.Minute  // sender: waiting for the verdict after FileEnd
)

// Refusal reasons sent in FileAck.Reason (part of the protocol: senders may
// match them).
const (
	reasonInvalidName   = "invalid file name"
	reasonNotAccepted   = "files not accepted"
	reasonTooLarge      = "file too large"
	reasonNoSpace       = "not enough free space"
	reasonBusy          = "too many concurrent transfers"
	reasonNotSubscribed = "not subscribed to the topic"
	reasonDeclined      = "declined by the user"
	reasonNoAnswer      = "offer not answered in time"
	reasonCancelled     = "cancelled"
	reasonPartialBudget = "partial-file budget exceeded"
)

type xferID [16]byte

func (id xferID) String() string { return hex.EncodeToString(id[:]) }

func newXferID() xferID {
	var id xferID
	_, _ = rand.Read(id[:])
	return id
}

// fileState tracks file transfers in both directions.
type fileState struct {
	// accept overrides Config.AcceptFiles once SetAcceptFiles was called:
	// 0 = use the config, 1 = on, 2 = off.
	accept atomic.Int32

	// Timeouts (nanoseconds), atomics so that tests may shorten them while
	// the node runs.
	idleTimeout, promptTimeout, offerTimeout, finalTimeout atomic.Int64
	// writeHook, when set, is called before every write to a partial file;
	// an error is treated as a write error (tests simulate a full disk).
	writeHook atomic.Pointer[func(off int64, p []byte) error]

	budgetMu sync.Mutex // serialises partial-file budget checks (files_budget.go)

	mu       sync.Mutex
	out      map[xferID]*outLeg
	groups   map[string]*sendGroup
	dirs     map[string]context.CancelCauseFunc // directory sends started by SendFile
	in       map[xferID]*inXfer
	partials map[string]bool // partial files in use by an incoming transfer
	finished []TransferInfo  // ring of the last keepFinished finished transfers
	finHead  int
}

func (f *fileState) init() {
	f.out = make(map[xferID]*outLeg)
	f.groups = make(map[string]*sendGroup)
	f.dirs = make(map[string]context.CancelCauseFunc)
	f.in = make(map[xferID]*inXfer)
	f.partials = make(map[string]bool)
	f.idleTimeout.Store(int64(defaultIdleTimeout))
	f.promptTimeout.Store(int64(defaultPromptTimeout))
	f.offerTimeout.Store(int64(defaultOfferTimeout))
	f.finalTimeout.Store(int64(defaultFinalTimeout))
}

func loadDur(a *atomic.Int64) time.Duration { return time.Duration(a.Load()) }

// acceptsFilesNow reports whether incoming offers are accepted without asking.
func (n *Node) acceptsFilesNow() bool {
	on := n.cfg.AcceptFiles
	switch n.files.accept.Load() {
	case 1:
		on = true
	case 2:
		on = false
	}
	return on && n.cfg.DownloadDir != ""
}

// acceptsFiles is the hint sent in hello: offers may be accepted (directly
// or after asking the user).
func (n *Node) acceptsFiles() bool {
	return n.acceptsFilesNow() || (n.cfg.PromptFiles && n.cfg.DownloadDir != "")
}

// SetAcceptFiles turns the acceptance of incoming files on or off at run
// time (the original's activate/deactivate_file_transfer). The receiver decides
// at offer time, so the change applies to the next offer from any peer;
// peers that connect afterwards also see it in the hello hint. Files go to
// Config.DownloadDir (the working directory by default).
func (n *Node) SetAcceptFiles(on bool) {
	if on {
		n.files.accept.Store(1)
	} else {
		n.files.accept.Store(2)
	}
}

// validFileName reports whether name may be used as a file name in the
// download directory: a plain base name of valid UTF-8, 1–255 bytes, no
// path separator, NUL or control character, not "." or "..", and not one
// of Chaski's own partial-file names, nor misleading (misleadingFileName),
// nor hidden (a leading '.': a dotfile such as .bashrc in the download
// folder).
func validFileName(name string) bool {
	return validComponent(name) && name[0] != '.'
}

// validComponent is validFileName for a component inside a directory that
// is sent, where hidden names (.gitignore, .config/) are ordinary.
func validComponent(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > maxFileNameLen || !utf8.ValidString(name) {
		return false
	}
	if strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, partialPrefix) || misleadingFileName(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Limits of the relative paths of a directory send.
const (
	maxRelPathLen   = 1024
	maxRelPathDepth = 32
)

// validRelPath reports whether p may name a file under the download
// directory: one to 32 slash-separated components, each a valid file name
// (so no "", ".", "..", backslash, NUL or control character), at most
// 1024 bytes. A plain name is a path of one component; an absolute path
// has an empty first component and is refused.
func validRelPath(p string) bool {
	if len(p) > maxRelPathLen {
		return false
	}
	parts := strings.Split(p, "/")
	if len(parts) > maxRelPathDepth {
		return false
	}
	for i, c := range parts {
		if !validComponent(c) || (i == 0 && !validFileName(c)) {
			return false
		}
	}
	return true
}

func validMeta(m map[string]string) bool {
	if len(m) > maxMetaEntries {
		return false
	}
	total := 0
	for k, v := range m {
		total += len(k) + len(v)
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return total <= maxMetaBytes
}

// ---- common transfer bookkeeping ----

// xfer is the part of a transfer shared by both directions: the snapshot
// shown to users and the throttled progress events.
type xfer struct {
	n     *Node
	mu    sync.Mutex
	quiet bool // not shown (an offer probing a peer that announced no files)
	// retire, if set, runs under fileState.mu when the transfer finishes,
	// together with its move to the finished list, so that Transfers never
	// misses it and a retry is never refused as a duplicate of it.
	retire   func()
	info     TransferInfo
	lastEmit time.Time
	rateAt   time.Time
	rateDone int64
}

func (x *xfer) snapshot() TransferInfo {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.info
}

func (x *xfer) visible() (TransferInfo, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.info, !x.quiet
}

func (x *xfer) emitLocked() {
	x.lastEmit = time.Now()
	if x.quiet {
		return
	}
	x.n.emit(&TransferEvent{EventBase: EventBase{At: x.lastEmit}, Transfer: x.info})
}

// update changes the snapshot under the lock and emits an event.
func (x *xfer) update(f func(*TransferInfo)) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.info.State.Finished() {
		return
	}
	f(&x.info)
	x.emitLocked()
}

// progress records done bytes; it emits at most one event per
// progressEvery (the first and last are forced by state changes).
func (x *xfer) progress(done int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.info.Done = done
	t := time.Now()
	if dt := t.Sub(x.rateAt); dt >= progressEvery {
		if !x.rateAt.IsZero() {
			inst := float64(done-x.rateDone) / dt.Seconds()
			if x.info.Rate == 0 {
				x.info.Rate = inst
			} else {
				x.info.Rate = 0.7*x.info.Rate + 0.3*inst
			}
			if x.info.Rate > 0 && x.info.Size >= 0 && x.info.Size >= done {
				x.info.ETA = time.Duration(float64(x.info.Size-done) / x.info.Rate * float64(time.Second))
			}
		}
		x.rateAt, x.rateDone = t, done
	}
	if t.Sub(x.lastEmit) >= progressEvery && !x.info.State.Finished() {
		x.emitLocked()
	}
}

// startClock starts the rate measurement at done bytes.
func (x *xfer) startClock(done int64) {
	x.mu.Lock()
	x.rateAt, x.rateDone = time.Now(), done
	x.info.FirstByte = x.rateAt
	x.mu.Unlock()
}

// finish moves the transfer to a final state once; it reports whether this
// call did it.
func (x *xfer) finish(state TransferState, errText string) bool {
	x.mu.Lock()
	if x.info.State.Finished() {
		x.mu.Unlock()
		return false
	}
	x.info.State = state
	x.info.Err = errText
	x.info.Ended = time.Now()
	x.info.ETA = 0
	from := x.info.FirstByte
	if from.IsZero() {
		from = x.info.Started
	}
	if d := x.info.Ended.Sub(from).Seconds(); d > 0 && state == TransferDone {
		x.info.Rate = float64(x.info.Done-x.info.Resumed) / d
	}
	x.emitLocked()
	info, quiet := x.info, x.quiet
	x.mu.Unlock()
	f := &x.n.files
	f.mu.Lock()
	if !quiet {
		f.rememberLocked(info)
	}
	if x.retire != nil {
		x.retire()
	}
	f.mu.Unlock()
	return true
}

func (f *fileState) rememberLocked(info TransferInfo) {
	if len(f.finished) < keepFinished {
		f.finished = append(f.finished, info)
		return
	}
	f.finished[f.finHead] = info
	f.finHead = (f.finHead + 1) % keepFinished
}

// Transfers returns the transfers in progress and the last finished ones
// (at most 200), in both directions, oldest first.
func (n *Node) Transfers() []TransferInfo {
	f := &n.files
	f.mu.Lock()
	out := make([]TransferInfo, 0, len(f.finished)+len(f.out)+len(f.in))
	out = append(out, f.finished...)
	var live []*xfer
	for _, l := range f.out {
		live = append(live, &l.xfer)
	}
	for _, x := range f.in {
		live = append(live, &x.xfer)
	}
	f.mu.Unlock()
	seen := make(map[string]bool, len(out))
	for _, t := range out {
		seen[t.ID] = true
	}
	for _, x := range live {
		// A transfer that just finished may be in both lists.
		if t, ok := x.visible(); ok && !seen[t.ID] {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// CancelTransfer cancels a transfer in either direction; the other side is
// told with a FileAbort. For an outgoing file sent to several receivers,
// the id SendFile returned cancels every receiver, and a receiver's own id
// (from Transfers) cancels only that one. An incoming partial file is
// deleted.
func (n *Node) CancelTransfer(id string) error {
	f := &n.files
	var key xferID
	f.mu.Lock()
	g := f.groups[id]
	dir := f.dirs[id]
	var leg *outLeg
	var in *inXfer
	if b, err := hex.DecodeString(id); err == nil && len(b) == len(key) {
		copy(key[:], b)
		leg = f.out[key]
		in = f.in[key]
	}
	f.mu.Unlock()
	switch {
	case dir != nil:
		dir(errCancelledLocal)
	case g != nil:
		for _, l := range g.legs {
			l.cancel(errCancelledLocal)
		}
	case leg != nil:
		leg.cancel(errCancelledLocal)
	case in != nil:
		in.stop(stopCancelLocal, "cancelled by receiver")
	default:
		return fmt.Errorf("%w: transfer %s", ErrNotFound, id)
	}
	return nil
}

// AcceptTransfer answers an incoming offer that waits for the user
// (Config.PromptFiles): accept writes the file to Config.DownloadDir,
// otherwise the sender is told it was declined.
func (n *Node) AcceptTransfer(id string, accept bool) error {
	var key xferID
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != len(key) {
		return fmt.Errorf("%w: transfer %s", ErrNotFound, id)
	}
	copy(key[:], b)
	n.files.mu.Lock()
	x := n.files.in[key]
	n.files.mu.Unlock()
	if x == nil || x.decide == nil {
		return fmt.Errorf("%w: pending transfer %s", ErrNotFound, id)
	}
	if !x.answered.CompareAndSwap(false, true) {
		return fmt.Errorf("chaski: transfer %s was already answered", id)
	}
	x.decide <- accept // capacity 1, sent once
	return nil
}

var (
	errCancelledLocal = errors.New("cancelled by sender")
)

func init() {
	routeFrames((*Node).handleFileFrame, wire.KindFileOffer, wire.KindFileChunk, wire.KindFileEnd, wire.KindFileAck, wire.KindFileAbort, wire.KindFileTree)
}

// handleFileFrame dispatches the file frames of an edge (reader goroutine).
func (n *Node) handleFileFrame(e *edge, f wire.Frame) error {
	switch f.Kind {
	case wire.KindFileOffer:
		var o wire.FileOffer
		if err := wire.Unmarshal(f.Body, &o); err != nil {
			return err
		}
		n.handleOffer(e, f.Topic, &o)
	case wire.KindFileChunk:
		c, err := wire.ParseFileChunk(f.Body)
		if err != nil {
			return err
		}
		n.handleChunk(e, &c, f.Body)
	case wire.KindFileTree:
		t, err := wire.ParseFileTree(f.Body)
		if err != nil {
			return err
		}
		n.handleTree(e, &t)
	case wire.KindFileEnd:
		var end wire.FileEnd
		if err := wire.Unmarshal(f.Body, &end); err != nil {
			return err
		}
		n.handleEnd(e, &end)
	case wire.KindFileAck:
		var a wire.FileAck
		if err := wire.Unmarshal(f.Body, &a); err != nil {
			return err
		}
		n.handleAck(e, &a)
	case wire.KindFileAbort:
		var a wire.FileAbort
		if err := wire.Unmarshal(f.Body, &a); err != nil {
			return err
		}
		n.handleAbort(e, &a)
	}
	return nil
}

func toXferID(b []byte) (xferID, bool) {
	var id xferID
	if len(b) != len(id) {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

// incoming returns the incoming transfer with that id if it runs over e
// (a peer can only touch its own transfers), else nil.
func (f *fileState) incoming(e *edge, id xferID) *inXfer {
	f.mu.Lock()
	x := f.in[id]
	f.mu.Unlock()
	if x == nil || x.e != e {
		return nil
	}
	return x
}

// outgoing is incoming for the legs this node sends.
func (f *fileState) outgoing(e *edge, id xferID) *outLeg {
	f.mu.Lock()
	l := f.out[id]
	f.mu.Unlock()
	if l == nil || l.e != e {
		return nil
	}
	return l
}

// handleAbort: FileAbort cancels the transfer of that id on this edge, in
// whichever direction it runs.
func (n *Node) handleAbort(e *edge, a *wire.FileAbort) {
	id, ok := toXferID(a.Transfer)
	if !ok {
		return
	}
	reason := truncate(strings.ToValidUTF8(a.Reason, "?"), 200)
	if in := n.files.incoming(e, id); in != nil {
		in.stop(stopCancelRemote, "cancelled by sender: "+reason)
	}
	if leg := n.files.outgoing(e, id); leg != nil {
		leg.cancel(&remoteAbort{reason: reason})
	}
}

// edgeLost fails every transfer that ran over e (called once the edge has
// ended). Incoming partial files are kept so that a retry resumes.
func (f *fileState) edgeLost(n *Node, e *edge) {
	f.mu.Lock()
	var ins []*inXfer
	var legs []*outLeg
	for _, x := range f.in {
		if x.e == e {
			ins = append(ins, x)
		}
	}
	for _, l := range f.out {
		if l.e == e {
			legs = append(legs, l)
		}
	}
	f.mu.Unlock()
	for _, x := range ins {
		x.stop(stopLost, "")
	}
	for _, l := range legs {
		l.cancel(ErrEdgeLost)
	}
}

func (n *Node) sendFileCtrl(e *edge, kind wire.Kind, topic string, v any) bool {
	fr, err := wire.AppendControlFrame(nil, kind, topic, v)
	if err != nil {
		n.logf(slog.LevelWarn, "cannot encode file frame", "kind", kind.String(), "err", err.Error())
		return false
	}
	return e.sendCtrl(fr)
}

// bgHash hashes a stream of byte slices in its own goroutine, so that a
// transfer's SHA-256 (≈ 1.6 GB/s per core with SHA-NI) overlaps the file and
// socket I/O instead of adding to it. The slices handed to add must not be
// modified afterwards (they are only ever read, concurrently with the I/O).
type bgHash struct {
	h      hash.Hash
	ch     chan hashItem
	done   chan struct{}
	after  func(n int, owner []byte) // called after each slice is hashed (may be nil)
	closed bool                      // owned by the single producer
	added  uint64                    // slices queued (producer only)
	hashed atomic.Uint64
}

// startHash starts hashing into h; depth bounds the slices waiting.
func startHash(h hash.Hash, depth int, after func(n int, owner []byte)) *bgHash {
	b := &bgHash{h: h, ch: make(chan hashItem, depth), done: make(chan struct{}), after: after}
	go b.loop()
	return b
}

// hashItem is a slice to hash and the buffer it belongs to (handed to
// after once hashed).
type hashItem struct{ p, owner []byte }

func (b *bgHash) loop() {
	defer close(b.done)
	for it := range b.ch {
		b.h.Write(it.p)
		b.hashed.Add(1)
		if b.after != nil {
			b.after(len(it.p), it.owner)
		}
	}
}

// add queues p, waiting while depth slices are queued; p is no longer
// read once hashedUpTo(seq) reports true for the returned seq.
func (b *bgHash) add(p []byte) (seq uint64) { return b.addOwned(p, nil) }

// addOwned is add for a slice of owner, which after receives once p is hashed.
func (b *bgHash) addOwned(p, owner []byte) (seq uint64) {
	b.ch <- hashItem{p, owner}
	b.added++
	return b.added
}

// bodyRecycler keeps the bodies of received file chunks for the next
// chunks of the same size: a transfer then reads into warm memory instead
// of allocating (and faulting in, and collecting) 256 KiB per chunk. A body
// comes back only after it was written and hashed, when nothing refers to
// it any more.
type bodyRecycler struct {
	mu   sync.Mutex
	size int
	free [][]byte
}

const maxRecycledBodies = 16

func (b *bodyRecycler) get(n int) []byte {
	b.mu.Lock()
	if k := len(b.free); k > 0 && n == b.size {
		p := b.free[k-1]
		b.free[k-1] = nil
		b.free = b.free[:k-1]
		b.mu.Unlock()
		return p
	}
	b.mu.Unlock()
	return make([]byte, n)
}

func (b *bodyRecycler) put(p []byte) {
	if cap(p) <= 64<<10 {
		return // a small chunk lives in one of the reader's shared blocks
	}
	b.mu.Lock()
	if cap(p) != b.size {
		// Another chunk size: the latest transfer's wins.
		clear(b.free)
		b.free, b.size = b.free[:0], cap(p)
	}
	if len(b.free) < maxRecycledBodies {
		b.free = append(b.free, p[:cap(p)])
	}
	b.mu.Unlock()
}

// hashedUpTo reports whether the slice add numbered seq has been hashed.
func (b *bgHash) hashedUpTo(seq uint64) bool { return b.hashed.Load() >= seq }

// finish waits until everything queued is hashed and stops the goroutine;
// it may be called more than once (by the producer only).
func (b *bgHash) finish() {
	if !b.closed {
		b.closed = true
		close(b.ch)
	}
	<-b.done
}

// sum finishes and returns the digest.
func (b *bgHash) sum() []byte {
	b.finish()
	return b.h.Sum(nil)
}

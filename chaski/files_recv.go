package chaski

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski/internal/b3simd"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// inXfer is an incoming transfer. The edge's reader goroutine checks each
// chunk and hands it to the transfer's own goroutine (pending wait, then
// writer) through a queue bounded in bytes; all disk work happens there.
type inXfer struct {
	xfer
	id       xferID
	e        *edge
	topic    string
	name     string
	size     int64 // declared, -1 when unknown
	meta     map[string]string
	pkey     string    // partial-file key
	budgeted bool      // charged against the partial-file budget (under files.mu)
	charged  int64     // what it counts there (see files_budget.go)
	decide   chan bool // non-nil when the offer waits for AcceptTransfer
	answered atomic.Bool

	items    chan inItem
	buffered atomic.Int64
	space    chan struct{} // signalled when the writer consumed bytes
	active   atomic.Bool   // the accept answer was sent: chunks are legal
	flowing  atomic.Bool   // a chunk has arrived (see maxIdleIncoming)
	next     int64         // next expected offset (reader goroutine only)

	algo     string        // HashBLAKE3 or HashSHA256
	group    int64         // BLAKE3 group size (0 with SHA-256)
	root     []byte        // verified streaming: the offered BLAKE3 hash
	treeWant int64         // leaves the sender must send before data
	treeGot  int64         // leaves received (reader goroutine only)
	held     []byte        // leaves of the resumed prefix (transfer goroutine)
	tree     []byte        // leaves received so far (transfer goroutine)
	checker  *groupChecker // set once the tree matched the root
	b3       *b3Hasher     // BLAKE3 without a root: hashed as it comes

	done     chan struct{}
	stopOnce sync.Once
	stopKind stopKind
	stopWhy  string
}

type inItem struct {
	data []byte
	buf  []byte // the frame body data was cut from, recycled once written
	end  *wire.FileEnd
	tree []byte // leaves of a FileTree frame
}

type stopKind uint8

const (
	stopLost         stopKind = iota + 1 // edge lost or node closing: keep the partial file
	stopCancelLocal                      // CancelTransfer on this side
	stopCancelRemote                     // FileAbort from the sender
	stopFail                             // protocol violation, limit, timeout
	stopBadData                          // a chunk failed its check: the verified prefix is kept
)

// stop asks the transfer's goroutine to end (first reason wins).
func (x *inXfer) stop(kind stopKind, why string) {
	x.stopOnce.Do(func() {
		x.stopKind, x.stopWhy = kind, why
		close(x.done)
	})
}

func (n *Node) refuseOffer(e *edge, id []byte, name, reason string) {
	n.logf(slog.LevelInfo, "file offer refused", "peer", e.name(), "file", truncate(strings.ToValidUTF8(name, "?"), 80), "reason", reason)
	n.sendFileCtrl(e, wire.KindFileAck, "", &wire.FileAck{Transfer: id, Accept: false, Reason: reason})
}

// handleOffer validates an offer (reader goroutine) and starts the
// transfer's goroutine, or refuses.
func (n *Node) handleOffer(e *edge, topic string, o *wire.FileOffer) {
	id, ok := toXferID(o.Transfer)
	if !ok {
		return // cannot even be answered
	}
	switch {
	case !validRelPath(o.Name):
		n.refuseOffer(e, o.Transfer, o.Name, reasonInvalidName)
		return
	case o.Size < -1 || !validMeta(o.Meta) || !wire.ValidName(topic, wire.MaxTopicLen):
		n.refuseOffer(e, o.Transfer, o.Name, "invalid offer")
		return
	}
	n.mu.RLock()
	subscribed := n.subs[topic] || n.cfg.Root
	n.mu.RUnlock()
	if !subscribed {
		n.refuseOffer(e, o.Transfer, o.Name, reasonNotSubscribed)
		return
	}
	prompt := false
	if !n.acceptsFilesNow() {
		if !n.cfg.PromptFiles || n.cfg.DownloadDir == "" {
			n.refuseOffer(e, o.Transfer, o.Name, reasonNotAccepted)
			return
		}
		prompt = true
	}
	if o.Size > n.cfg.MaxFileSize {
		n.refuseOffer(e, o.Transfer, o.Name, fmt.Sprintf("%s: %d bytes, limit %d", reasonTooLarge, o.Size, n.cfg.MaxFileSize))
		return
	}
	x := &inXfer{id: id, e: e, topic: topic, name: o.Name, size: o.Size, meta: maps.Clone(o.Meta),
		items: make(chan inItem, recvQueueSlots), space: make(chan struct{}, 1), done: make(chan struct{})}
	if reason := x.negotiate(o); reason != "" {
		n.refuseOffer(e, o.Transfer, o.Name, reason)
		return
	}
	x.n = n
	x.retire = x.forgetLocked
	x.pkey = partialKey(e.resumeKey, o.Name, o.Size)
	info := e.info()
	x.info = TransferInfo{ID: id.String(), Name: o.Name, Topic: topic, Peer: info.Name, PeerID: info.PeerID,
		Size: o.Size, State: TransferOffered, Meta: x.meta, Started: time.Now(), HashAlgo: x.algo}
	if prompt {
		x.decide = make(chan bool, 1)
		x.info.State = TransferPending
	}
	f := &n.files
	f.mu.Lock()
	perEdge, idle := 0, 0
	var stalest *inXfer // the transfer idle the longest, past idleGrace
	for _, y := range f.in {
		if y.e == e {
			perEdge++
		}
		if !y.flowing.Load() {
			idle++
			if time.Since(y.info.Started) > idleGrace && (stalest == nil || y.info.Started.Before(stalest.info.Started)) {
				stalest = y
			}
		}
	}
	var refuse string
	var evict *inXfer
	switch {
	case f.in[id] != nil || f.out[id] != nil:
		refuse = "duplicate transfer id"
	case perEdge >= maxIncomingPerEdge:
		refuse = reasonBusy
	case len(f.in) >= maxIncomingPerNode || idle >= maxIdleIncoming:
		// Offers that never send data must not hold every slot: the one
		// idle the longest makes room, once it has had idleGrace to start.
		if stalest == nil {
			refuse = reasonBusy
		} else {
			evict = stalest
		}
	case f.partials[x.pkey]:
		refuse = "the same file is already being received from this peer"
	}
	if refuse == "" {
		f.in[id] = x
		f.partials[x.pkey] = true
	}
	f.mu.Unlock()
	if evict != nil {
		evict.stop(stopFail, "no data sent: the slot went to another offer")
	}
	if refuse != "" {
		n.refuseOffer(e, o.Transfer, o.Name, refuse)
		return
	}
	x.mu.Lock()
	x.emitLocked()
	x.mu.Unlock()
	n.logf(slog.LevelInfo, "file offered", "peer", info.Name, "file", o.Name, "size", o.Size, "topic", topic, "prompt", prompt)
	n.goSafe(x.run)
}

// handleChunk checks a chunk (reader goroutine) and queues it for the
// writer, waiting while the transfer's buffer is full; body, the frame body
// the chunk was cut from, is recycled once the chunk is written and hashed.
func (n *Node) handleChunk(e *edge, c *wire.FileChunk, body []byte) {
	x := n.files.incoming(e, xferID(c.Transfer))
	if x == nil {
		return // late chunks of an aborted transfer
	}
	if !x.active.Load() {
		x.stop(stopFail, "protocol error: data before the offer was accepted")
		return
	}
	if !x.flowing.Load() {
		x.flowing.Store(true)
	}
	if int64(c.Offset) != x.next || c.Offset > uint64(n.cfg.MaxFileSize) {
		x.stop(stopFail, fmt.Sprintf("protocol error: chunk at offset %d, expected %d", c.Offset, x.next))
		return
	}
	if x.group > 0 && x.next%x.group != 0 {
		x.stop(stopFail, "protocol error: chunk after the end of a partial group")
		return
	}
	if x.treeGot < x.treeWant {
		x.stop(stopFail, "protocol error: data before the hash tree")
		return
	}
	end := x.next + int64(len(c.Data))
	if end > n.cfg.MaxFileSize {
		x.stop(stopFail, fmt.Sprintf("%s: more than %d bytes", reasonTooLarge, n.cfg.MaxFileSize))
		return
	}
	if x.size >= 0 && end > x.size {
		x.stop(stopFail, fmt.Sprintf("more data than the declared %d bytes", x.size))
		return
	}
	x.next = end
	x.push(inItem{data: c.Data, buf: body})
}

// handleTree checks the place of a FileTree frame (reader goroutine) and
// queues its leaves; the transfer's goroutine checks them against the root.
func (n *Node) handleTree(e *edge, t *wire.FileTree) {
	x := n.files.incoming(e, xferID(t.Transfer))
	if x == nil {
		return
	}
	if !x.active.Load() {
		x.stop(stopFail, "protocol error: hash tree before the offer was accepted")
		return
	}
	if why := x.placeTree(t); why != "" {
		x.stop(stopFail, why)
		return
	}
	x.push(inItem{tree: t.Leaves})
}

// placeTree checks that t continues the leaves received so far and counts
// them (reader goroutine); it returns a protocol error or "".
func (x *inXfer) placeTree(t *wire.FileTree) string {
	k := int64(len(t.Leaves) / cvLen)
	switch {
	case x.root == nil:
		return "protocol error: hash tree for a transfer without a BLAKE3 root"
	case t.First != uint64(x.treeGot) || k > x.treeWant-x.treeGot || k == 0:
		return fmt.Sprintf("protocol error: hash tree leaves %d+%d, expected %d of %d", t.First, k, x.treeGot, x.treeWant)
	}
	x.treeGot += k
	return ""
}

func (n *Node) handleEnd(e *edge, end *wire.FileEnd) {
	id, ok := toXferID(end.Transfer)
	if !ok {
		return
	}
	x := n.files.incoming(e, id)
	if x == nil {
		return
	}
	if !x.active.Load() {
		x.stop(stopFail, "protocol error: end before the offer was accepted")
		return
	}
	x.push(inItem{end: end})
}

// push hands an item to the writer (reader goroutine). It waits while more
// than recvBufferBytes are queued: the edge's reader stops reading, and TCP
// slows the sender down.
func (x *inXfer) push(it inItem) {
	sz := int64(len(it.data))
	for {
		b := x.buffered.Load()
		if b == 0 || b+sz <= recvBufferBytes {
			break
		}
		select {
		case <-x.space:
		case <-x.done:
			return
		case <-x.e.done:
			return
		}
	}
	x.buffered.Add(sz)
	select {
	case x.items <- it:
	case <-x.done:
	case <-x.e.done:
	}
}

// run is the transfer's goroutine: it waits for the user when asked to,
// prepares the partial file, answers the offer and writes the data.
func (x *inXfer) run() {
	n := x.n
	defer x.forget()
	if x.decide != nil {
		timer := time.NewTimer(loadDur(&n.files.promptTimeout))
		defer timer.Stop()
		select {
		case ok := <-x.decide:
			if !ok {
				x.refuse(reasonDeclined)
				return
			}
			x.update(func(t *TransferInfo) { t.State = TransferOffered })
		case <-timer.C:
			x.refuse(reasonNoAnswer)
			return
		case <-x.done:
			x.ended(nil)
			return
		case <-x.e.done:
			x.stop(stopLost, "")
			x.ended(nil)
			return
		case <-n.ctx.Done():
			x.stop(stopLost, "")
			x.ended(nil)
			return
		}
	}
	w, reason := x.prepare()
	if w == nil {
		x.refuse(reason)
		return
	}
	defer w.close()
	x.next = w.off
	x.update(func(t *TransferInfo) {
		t.State, t.Resumed, t.Done = TransferActive, w.off, w.off
	})
	x.startClock(w.off)
	x.active.Store(true)
	if !n.sendFileCtrl(x.e, wire.KindFileAck, "", &wire.FileAck{Transfer: x.id[:], Accept: true, Offset: w.off}) {
		x.stop(stopLost, "")
	}
	x.write(w)
}

// forget removes the transfer from the node's tables (before its final
// state is published, so that a retry seen right after is not refused as
// a duplicate).
func (x *inXfer) forget() {
	x.n.files.mu.Lock()
	x.forgetLocked()
	x.n.files.mu.Unlock()
}

func (x *inXfer) forgetLocked() {
	f := &x.n.files
	if f.in[x.id] == x {
		delete(f.in, x.id)
		delete(f.partials, x.pkey)
	}
}

// refuse answers the offer negatively and forgets the transfer.
func (x *inXfer) refuse(reason string) {
	state := TransferFailed
	if reason == reasonDeclined {
		state = TransferCancelled
	}
	x.finish(state, "refused: "+reason)
	x.n.refuseOffer(x.e, x.id[:], x.name, reason)
}

// pwriter is the open partial file of an accepted transfer.
type pwriter struct {
	f       *os.File
	leaves  *os.File // BLAKE3: the leaves of the groups written (nil with SHA-256)
	path    string   // the partial file
	sidecar string
	dir     string    // absolute download directory
	off     int64     // bytes in the file
	h       hash.Hash // SHA-256 of the bytes so far (nil with BLAKE3)
}

// partialKey names the partial file of (sender, name, size).
func partialKey(sender, name string, size int64) string {
	s := sha256.Sum256([]byte(sender + "|" + name + "|" + strconv.FormatInt(size, 10)))
	return hex.EncodeToString(s[:])
}

type sidecar struct {
	Sender  string    `json:"sender"`
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	Updated time.Time `json:"updated"`
	Hash    string    `json:"hash,omitempty"`  // "blake3", or "sha256" when empty
	Group   int64     `json:"group,omitempty"` // BLAKE3 group size
	Root    string    `json:"root,omitempty"`  // hex BLAKE3 root, with verified streaming
}

// leavesSuffix names the file beside a partial that holds the BLAKE3 leaves
// of the groups written: 32 bytes per group, appended after the group's
// data, so that a resume (even after a crash) knows which groups were
// checked without hashing them again.
const leavesSuffix = ".b3"

// negotiate reads the hash fields of an offer; it returns a refusal reason
// or "".
func (x *inXfer) negotiate(o *wire.FileOffer) string {
	switch o.Hash {
	case "", HashSHA256:
		x.algo = HashSHA256
		return ""
	case HashBLAKE3:
	default:
		return "unsupported hash: " + truncate(strings.ToValidUTF8(o.Hash, "?"), 40)
	}
	x.algo = HashBLAKE3
	if !validGroup(o.Group) {
		return "invalid offer: BLAKE3 group size"
	}
	x.group = o.Group
	if len(o.Root) == 0 {
		return "" // hashed as it comes, checked at the end
	}
	if len(o.Root) != 32 || o.Size < 0 {
		return "invalid offer: BLAKE3 root"
	}
	x.root = bytes.Clone(o.Root)
	if g := groupCount(o.Size, o.Group); g > 1 {
		if g > maxTreeBytes/cvLen {
			return fmt.Sprintf("hash tree too large: %d groups of %d bytes (at most %d)", g, o.Group, maxTreeBytes/cvLen)
		}
		x.treeWant = g
	}
	return ""
}

// prepare checks the download directory and free space, and opens the
// partial file: an existing one of the same (sender, name, size) is
// resumed (see resume); otherwise a new one is created with O_EXCL and
// mode 0600.
func (x *inXfer) prepare() (*pwriter, string) {
	n := x.n
	dir, err := filepath.Abs(n.cfg.DownloadDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		n.logf(slog.LevelWarn, "download directory unavailable", "dir", n.cfg.DownloadDir, "err", err.Error())
		return nil, "download directory unavailable"
	}
	cleanStalePartials(dir)
	w := &pwriter{dir: dir, path: filepath.Join(dir, partialPrefix+x.pkey)}
	w.sidecar = w.path + ".json"
	if f, sc, ok := openPartial(w.path, w.sidecar, x.e.resumeKey, x.name, x.size); ok {
		if x.resume(w, f, sc) {
			x.chargeBudget(dir, true) // already held: never refused
			return w, ""
		}
		f.Close()
		x.held, x.b3 = nil, nil
		*w = pwriter{dir: w.dir, path: w.path, sidecar: w.sidecar}
	}
	_ = os.Remove(w.path)
	_ = os.Remove(w.sidecar)
	_ = os.Remove(w.path + leavesSuffix)
	if reason := x.chargeBudget(dir, false); reason != "" {
		return nil, reason
	}
	// A file of unknown size (-1) needs room too: it is charged what an
	// unknown size may take before its writes fail (unknownSizeReserve).
	if need := x.size; need != 0 {
		if need < 0 {
			need = min(unknownSizeReserve, n.cfg.MaxFileSize)
		}
		if free := diskFree(dir); free >= 0 && need > free-freeSpaceMargin {
			return nil, fmt.Sprintf("%s: %d bytes needed, %d available", reasonNoSpace, need, max(free-freeSpaceMargin, 0))
		}
	}
	f, err := createNew(w.path)
	if err != nil {
		n.logf(slog.LevelWarn, "cannot create partial file", "path", w.path, "err", err.Error())
		return nil, "cannot create the file"
	}
	w.f = f
	if x.algo == HashBLAKE3 {
		if w.leaves, err = createNew(w.path + leavesSuffix); err != nil {
			f.Close()
			_ = os.Remove(w.path)
			return nil, "cannot create the file"
		}
	} else {
		w.h = sha256.New()
	}
	sc := sidecar{Sender: x.e.resumeKey, Name: x.name, Size: x.size, Updated: time.Now(), Hash: x.algo, Group: x.group}
	if x.root != nil {
		sc.Root = hex.EncodeToString(x.root)
	}
	raw, _ := json.Marshal(sc)
	if err := writeNew(w.sidecar, raw); err != nil {
		w.close()
		_ = os.Remove(w.path)
		_ = os.Remove(w.path + leavesSuffix)
		return nil, "cannot create the file"
	}
	return w, ""
}

func createNew(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
}

func (w *pwriter) close() {
	w.f.Close()
	if w.leaves != nil {
		w.leaves.Close()
	}
}

// resume takes over the partial file f of this (sender, name, size).
//
// With SHA-256 the bytes held are hashed again (the hash must go on from
// them). With BLAKE3 nothing is hashed: the leaves file lists the groups
// written, each checked when it arrived; the file and the leaves are cut
// back to the whole groups both hold (a crash may have left a group
// written without its leaf). A partial of another hash, group size or
// root (the source changed) is not resumed, nor one of fewer than two
// groups (whose leaf cannot be combined into the root).
func (x *inXfer) resume(w *pwriter, f *os.File, sc *sidecar) bool {
	st, err := f.Stat()
	if err != nil || (x.size >= 0 && st.Size() > x.size) || st.Size() > x.n.cfg.MaxFileSize {
		return false
	}
	if x.algo == HashSHA256 {
		w.h = sha256.New()
		if _, err := io.CopyN(w.h, f, st.Size()); err != nil {
			return false
		}
		if _, err := f.Seek(st.Size(), io.SeekStart); err != nil {
			return false
		}
		w.f, w.off = f, st.Size()
		return true
	}
	if sc.Hash != HashBLAKE3 || sc.Group != x.group || (x.root != nil && sc.Root != "" && sc.Root != hex.EncodeToString(x.root)) {
		return false
	}
	lf, err := os.OpenFile(w.path+leavesSuffix, os.O_RDWR|oNoFollow, 0)
	if err != nil {
		return false
	}
	ok := false
	defer func() {
		if !ok {
			lf.Close()
		}
	}()
	lst, err := lf.Stat()
	if err != nil || !lst.Mode().IsRegular() {
		return false
	}
	g := x.group
	held := min(st.Size(), lst.Size()/cvLen*g)
	if held%g != 0 && (held != x.size || x.root == nil) {
		held -= held % g // only a verified file ends in a partial group
	}
	groups := (held + g - 1) / g
	if groups < 2 || groups*cvLen > maxTreeBytes {
		return false
	}
	leaves := make([]byte, groups*cvLen)
	if _, err := lf.ReadAt(leaves, 0); err != nil {
		return false
	}
	if f.Truncate(held) != nil || lf.Truncate(groups*cvLen) != nil {
		return false
	}
	if _, err := f.Seek(held, io.SeekStart); err != nil {
		return false
	}
	if _, err := lf.Seek(groups*cvLen, io.SeekStart); err != nil {
		return false
	}
	x.held = leaves
	if x.root == nil {
		x.b3 = newB3Hasher(int(g))
		x.b3.groups, x.b3.leaves = uint64(groups), leaves
	}
	w.f, w.leaves, w.off = f, lf, held
	ok = true
	return true
}

// openPartial opens an existing partial file whose sidecar matches.
func openPartial(path, scPath, sender, name string, size int64) (*os.File, *sidecar, bool) {
	scf, err := os.OpenFile(scPath, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(scf, 64<<10))
	scf.Close()
	if err != nil {
		return nil, nil, false
	}
	var sc sidecar
	if json.Unmarshal(raw, &sc) != nil || sc.Sender != sender || sc.Name != name || sc.Size != size {
		return nil, nil, false
	}
	f, err := os.OpenFile(path, os.O_RDWR|oNoFollow, 0)
	if err != nil {
		return nil, nil, false
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, false
	}
	return f, &sc, true
}

func writeNew(path string, data []byte) error {
	f, err := createNew(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cleanStalePartials removes partial files nobody resumed for a week.
func cleanStalePartials(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	limit := time.Now().Add(-partialMaxAge)
	anonLimit := time.Now().Add(-anonymousPartialAge)
	for _, de := range entries {
		if !strings.HasPrefix(de.Name(), partialPrefix) || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		if fi.ModTime().Before(limit) {
			_ = os.Remove(filepath.Join(dir, de.Name()))
			continue
		}
		// A sender without a resume id can never come back for its
		// partial: an hour, not a week.
		if base, ok := strings.CutSuffix(de.Name(), ".json"); ok && fi.ModTime().Before(anonLimit) {
			raw, err := os.ReadFile(filepath.Join(dir, de.Name()))
			var sc sidecar
			if err == nil && json.Unmarshal(raw, &sc) == nil && !strings.HasPrefix(sc.Sender, "r:") {
				for _, f := range []string{base, de.Name(), base + leavesSuffix} {
					_ = os.Remove(filepath.Join(dir, f))
				}
			}
		}
	}
}

// diskWriter writes checked chunks (and their leaves) to the partial file
// in a goroutine of its own, so that hashing the next chunk overlaps the
// file write of this one. A chunk's bytes count against recvBufferBytes
// until written.
type diskWriter struct {
	x       *inXfer
	w       *pwriter
	hook    *func(off int64, p []byte) error
	ch      chan diskItem
	done    chan struct{}
	bad     atomic.Bool
	stopped bool  // producer only
	written int64 // bytes in the file; read after stop
	err     error // the first write error; read after stop
}

type diskItem struct{ data, buf, leaves []byte }

func startDiskWriter(x *inXfer, w *pwriter) *diskWriter {
	d := &diskWriter{x: x, w: w, hook: x.n.files.writeHook.Load(), ch: make(chan diskItem, recvQueueSlots),
		done: make(chan struct{}), written: w.off}
	go d.loop()
	return d
}

func (d *diskWriter) loop() {
	defer close(d.done)
	for it := range d.ch {
		if d.err == nil {
			var err error
			if d.hook != nil {
				err = (*d.hook)(d.written, it.data)
			}
			if err == nil {
				_, err = d.w.f.Write(it.data)
			}
			if err == nil && d.w.leaves != nil && len(it.leaves) > 0 {
				_, err = d.w.leaves.Write(it.leaves)
			}
			if err != nil {
				d.err = err
				d.bad.Store(true)
			} else {
				d.written += int64(len(it.data))
			}
		}
		d.x.release(len(it.data), it.buf)
	}
}

// stop waits for the queued writes and ends the goroutine (idempotent,
// producer only); afterwards written and err may be read.
func (d *diskWriter) stop() {
	if !d.stopped {
		d.stopped = true
		close(d.ch)
	}
	<-d.done
	d.w.off = d.written
}

// write checks the queued chunks and hands them to the disk writer until
// the end frame, a stop or the idle timeout. With verified streaming a chunk
// that does not match its leaf is rejected before a byte of it is written.
func (x *inXfer) write(w *pwriter) {
	n := x.n
	idle := loadDur(&n.files.idleTimeout)
	timer := time.NewTimer(idle)
	defer timer.Stop()
	dw := startDiskWriter(x, w)
	defer dw.stop()
	if x.root != nil && x.treeWant == 0 {
		x.checker = &groupChecker{group: x.group, size: x.size, root: [32]byte(x.root), scratch: new(scratchPiece)}
	}
	if x.algo == HashBLAKE3 && x.root == nil && x.b3 == nil {
		x.b3 = newB3Hasher(int(x.group))
	}
	off := w.off // bytes checked and queued
	for {
		select {
		case it := <-x.items:
			if dw.bad.Load() {
				dw.stop()
				n.logf(slog.LevelWarn, "file write failed", "file", x.name, "err", dw.err.Error())
				x.stop(stopFail, "write failed on the receiver: "+describeWriteErr(dw.err))
				x.ended(w)
				return
			}
			switch {
			case it.tree != nil:
				if why := x.addTree(it.tree); why != "" {
					x.stop(stopFail, why)
					dw.stop()
					x.ended(w)
					return
				}
			case it.end != nil:
				dw.stop()
				if dw.err != nil {
					x.stop(stopFail, "write failed on the receiver: "+describeWriteErr(dw.err))
					x.ended(w)
					return
				}
				x.verify(w, it.end)
				return
			default:
				leaves, why := x.check(w, off, it.data)
				if why != "" {
					x.release(len(it.data), it.buf)
					x.stop(stopBadData, why)
					dw.stop()
					x.ended(w)
					return
				}
				dw.ch <- diskItem{data: it.data, buf: it.buf, leaves: leaves}
				off += int64(len(it.data))
				x.progress(off)
			}
			timer.Reset(idle)
		case <-timer.C:
			x.stop(stopFail, fmt.Sprintf("no data for %v", idle))
			dw.stop()
			x.ended(w)
			return
		case <-x.done:
			dw.stop()
			x.ended(w)
			return
		case <-x.e.done:
			x.stop(stopLost, "")
			dw.stop()
			x.ended(w)
			return
		case <-n.ctx.Done():
			x.stop(stopLost, "")
			dw.stop()
			x.ended(w)
			return
		}
	}
}

// scratchPiece is the working memory of groupNode, one per goroutine.
type scratchPiece struct {
	piece [16 * 1024]byte // a partial piece for guts.CompressBuffer
	simd  b3simd.Scratch  // chaining values for the AVX2 kernel
}

// addTree takes leaves of the hash tree; once all are in it checks them
// against the offered root and against the leaves of a resumed prefix. It
// returns a failure reason or "".
func (x *inXfer) addTree(leaves []byte) string {
	x.tree = append(x.tree, leaves...)
	if int64(len(x.tree)/cvLen) < x.treeWant {
		return ""
	}
	if treeRoot(x.tree) != [32]byte(x.root) {
		return "hash tree refused: its leaves do not combine into the offered BLAKE3 hash"
	}
	if !bytes.Equal(x.held, x.tree[:len(x.held)]) {
		return "the partial file held differs from the source; it is deleted"
	}
	x.checker = &groupChecker{group: x.group, size: x.size, root: [32]byte(x.root), leaves: x.tree, scratch: new(scratchPiece)}
	return ""
}

// check hashes a chunk at off; with verified streaming it compares each of
// its groups with its leaf. It returns the chunk's leaves (BLAKE3) or a
// reason to reject it.
func (x *inXfer) check(w *pwriter, off int64, data []byte) ([]byte, string) {
	switch {
	case x.algo == HashSHA256:
		w.h.Write(data)
		return nil, ""
	case x.root == nil:
		before := len(x.b3.leaves)
		x.b3.Write(data)
		return x.b3.leaves[before:], ""
	case x.checker == nil:
		return nil, "protocol error: data before the hash tree"
	}
	leaves, idx, err := x.checker.check(nil, off, data)
	if err != nil {
		from := idx * x.group
		to := min(from+x.group, off+int64(len(data))) - 1
		return nil, fmt.Sprintf("chunk %d (bytes %d-%d) rejected: it %v", idx, from, to, err)
	}
	return leaves, ""
}

// release returns n written bytes to the receive buffer and wakes a reader
// waiting for room.
func (x *inXfer) release(n int, buf []byte) {
	x.n.chunkBodies.put(buf)
	x.buffered.Add(-int64(n))
	select {
	case x.space <- struct{}{}:
	default:
	}
}

func describeWriteErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	s := err.Error()
	if strings.Contains(s, "no space") {
		return s + " (disk full)"
	}
	return s
}

// removePartial deletes a partial file and what lies beside it.
func (w *pwriter) removePartial() {
	_ = os.Remove(w.path)
	_ = os.Remove(w.sidecar)
	_ = os.Remove(w.path + leavesSuffix)
}

// ended finishes a stopped transfer: the partial file is kept when the edge
// was lost (a retry resumes) or a chunk failed its check (the checked prefix
// is kept), deleted otherwise, and the sender is told unless it is the one
// that stopped.
func (x *inXfer) ended(w *pwriter) {
	n := x.n
	done := int64(0)
	if w != nil {
		done = w.off
		w.close()
		if (x.stopKind != stopLost && x.stopKind != stopBadData) || w.off == 0 {
			// Nothing held is nothing to resume: an offer that never sent
			// data leaves no empty partial and sidecar behind.
			w.removePartial()
		} else {
			// Refresh the sidecar's time so that the partial counts as recent.
			now := time.Now()
			_ = os.Chtimes(w.sidecar, now, now)
			_ = os.Chtimes(w.path, now, now)
		}
	}
	switch x.stopKind {
	case stopLost:
		what := "peer lost"
		if n.ctx.Err() != nil {
			what = "node closing"
		}
		why := fmt.Sprintf("%s after %d bytes (partial file kept for resume)", what, done)
		if w == nil {
			why = what + " before the transfer started"
		}
		x.finish(TransferFailed, why)
	case stopCancelLocal:
		x.finish(TransferCancelled, x.stopWhy)
		n.sendFileCtrl(x.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: x.id[:], Reason: reasonCancelled + " by receiver"})
	case stopCancelRemote:
		x.finish(TransferCancelled, x.stopWhy)
	default:
		x.finish(TransferFailed, x.stopWhy)
		n.sendFileCtrl(x.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: x.id[:], Reason: x.stopWhy})
	}
	n.logf(slog.LevelInfo, "file transfer ended", "file", x.name, "peer", x.info.Peer, "bytes", done, "reason", x.snapshot().Err)
}

// verify checks size and hash at FileEnd, then fsyncs and moves the file
// into place under a name that overwrites nothing.
func (x *inXfer) verify(w *pwriter, end *wire.FileEnd) {
	n := x.n
	x.update(func(t *TransferInfo) { t.State, t.Done = TransferVerifying, w.off })
	var sum, claimed []byte
	what := "BLAKE3 hash"
	switch {
	case x.algo == HashSHA256:
		sum, claimed, what = w.h.Sum(nil), end.SHA256, "SHA-256"
	case x.root != nil:
		sum, claimed = x.root, end.Hash
	default:
		r := x.b3.root()
		sum, claimed = r[:], end.Hash
	}
	sumHex := hex.EncodeToString(sum)
	var reason string
	switch {
	case end.Size != w.off:
		reason = fmt.Sprintf("size mismatch: received %d bytes, sender says %d", w.off, end.Size)
	case x.size >= 0 && end.Size != x.size:
		reason = fmt.Sprintf("size mismatch: offered %d bytes, sent %d", x.size, end.Size)
	case x.root != nil && x.checker == nil:
		reason = "protocol error: end before the hash tree"
	case !bytes.Equal(sum, claimed):
		reason = what + " mismatch"
	}
	var final string
	if reason == "" {
		err := w.f.Sync()
		if err == nil {
			err = w.f.Chmod(0o644)
		}
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			final, err = placeFile(w.path, w.dir, x.name)
		}
		if err != nil {
			reason = "cannot store the file on the receiver: " + describeWriteErr(err)
		}
	} else {
		w.f.Close()
	}
	if w.leaves != nil {
		w.leaves.Close()
	}
	ack := &wire.FileAck{Transfer: x.id[:], Final: true}
	if x.algo == HashSHA256 {
		ack.SHA256 = sum
	} else {
		ack.Hash = sum
	}
	if reason != "" {
		w.removePartial()
		x.finish(TransferFailed, reason)
		ack.Reason = reason
		n.sendFileCtrl(x.e, wire.KindFileAck, "", ack)
		n.logf(slog.LevelWarn, "received file rejected", "file", x.name, "peer", x.info.Peer, "reason", reason)
		return
	}
	_ = os.Remove(w.sidecar)
	_ = os.Remove(w.path + leavesSuffix)
	hashStr := x.algo + ":" + sumHex
	shaHex := ""
	if x.algo == HashSHA256 {
		shaHex = sumHex
	}
	x.mu.Lock()
	x.info.SHA256, x.info.Hash, x.info.Path, x.info.Size = shaHex, hashStr, final, w.off
	x.mu.Unlock()
	x.finish(TransferDone, "")
	ack.OK, ack.Path = true, filepath.Base(final)
	if rel, err := filepath.Rel(w.dir, final); err == nil {
		ack.Path = filepath.ToSlash(rel) // the relative path, never the receiver's absolute one
	}
	n.sendFileCtrl(x.e, wire.KindFileAck, "", ack)
	n.logf(slog.LevelInfo, "file received", "file", x.name, "path", final, "size", w.off, "peer", x.info.Peer, "hash", hashStr)
	if h := n.cfg.FileHandler; h != nil {
		info := x.snapshot()
		fr := FileReceived{TransferID: info.ID, Topic: x.topic, Name: x.name, Path: final, Size: w.off,
			SHA256: shaHex, HashAlgo: x.algo, Hash: hashStr, From: info.Peer, FromID: info.PeerID, Meta: maps.Clone(x.meta)}
		func() {
			defer func() {
				if r := recover(); r != nil {
					n.logf(slog.LevelError, "file handler panicked", "file", x.name, "panic", fmt.Sprint(r))
				}
			}()
			h(fr)
		}()
	}
}

// placeFile moves the verified partial file (a name in dir) to dir/name,
// where name may be a relative path (a directory send: missing folders are
// created), or to "name (1).ext", "name (2).ext", … when that exists: a
// hard link fails instead of replacing an existing file, so nothing is ever
// overwritten. Everything goes through an os.Root of dir, so neither ".."
// nor a symbolic link planted in the download directory can lead outside
// it. On file systems without hard links it falls back to an existence
// check and a rename.
func placeFile(partial, dir, name string) (string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	pname := filepath.Base(partial)
	sub, base := path.Split(name)
	if sub != "" {
		if err := root.MkdirAll(sub, 0o755); err != nil {
			return "", err
		}
	}
	for i := 0; i < 10000; i++ {
		cand := sub + numbered(base, i)
		err := root.Link(pname, cand)
		if err == nil {
			_ = root.Remove(pname)
			return filepath.Join(dir, filepath.FromSlash(cand)), nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if _, serr := root.Lstat(cand); serr == nil {
			continue
		} else if !errors.Is(serr, fs.ErrNotExist) {
			return "", serr
		}
		if err := root.Rename(pname, cand); err != nil {
			return "", err
		}
		return filepath.Join(dir, filepath.FromSlash(cand)), nil
	}
	return "", errors.New("too many files with the same name")
}

// numbered returns name for i == 0, else "stem (i).ext", keeping the result
// within the file-name limit.
func numbered(name string, i int) string {
	if i == 0 {
		return name
	}
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if stem == "" { // ".bashrc"
		stem, ext = name, ""
	}
	suffix := fmt.Sprintf(" (%d)", i)
	for len(stem)+len(suffix)+len(ext) > maxFileNameLen && len(stem) > 0 {
		stem = stem[:len(stem)-1]
	}
	return strings.ToValidUTF8(stem, "") + suffix + ext
}

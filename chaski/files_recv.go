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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	decide   chan bool // non-nil when the offer waits for AcceptTransfer
	answered atomic.Bool

	items    chan inItem
	buffered atomic.Int64
	space    chan struct{} // signalled when the writer consumed bytes
	active   atomic.Bool   // the accept answer was sent: chunks are legal
	next     int64         // next expected offset (reader goroutine only)

	done     chan struct{}
	stopOnce sync.Once
	stopKind stopKind
	stopWhy  string
}

type inItem struct {
	data []byte
	buf  []byte // the frame body data was cut from, recycled once hashed
	end  *wire.FileEnd
}

type stopKind uint8

const (
	stopLost         stopKind = iota + 1 // edge lost or node closing: keep the partial file
	stopCancelLocal                      // CancelTransfer on this side
	stopCancelRemote                     // FileAbort from the sender
	stopFail                             // protocol violation, limit, timeout
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
	case !validFileName(o.Name):
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
	x.n = n
	x.retire = x.forgetLocked
	x.pkey = partialKey(e.peerStr, o.Name, o.Size)
	info := e.info()
	x.info = TransferInfo{ID: id.String(), Name: o.Name, Topic: topic, Peer: info.Name, PeerID: info.PeerID,
		Size: o.Size, State: TransferOffered, Meta: x.meta, Started: time.Now()}
	if prompt {
		x.decide = make(chan bool, 1)
		x.info.State = TransferPending
	}
	f := &n.files
	f.mu.Lock()
	perEdge := 0
	for _, y := range f.in {
		if y.e == e {
			perEdge++
		}
	}
	var refuse string
	switch {
	case f.in[id] != nil || f.out[id] != nil:
		refuse = "duplicate transfer id"
	case perEdge >= maxIncomingPerEdge || len(f.in) >= maxIncomingPerNode:
		refuse = reasonBusy
	case f.partials[x.pkey]:
		refuse = "the same file is already being received from this peer"
	}
	if refuse == "" {
		f.in[id] = x
		f.partials[x.pkey] = true
	}
	f.mu.Unlock()
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
	if int64(c.Offset) != x.next || c.Offset > uint64(n.cfg.MaxFileSize) {
		x.stop(stopFail, fmt.Sprintf("protocol error: chunk at offset %d, expected %d", c.Offset, x.next))
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
	defer w.f.Close()
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
	path    string // the partial file
	sidecar string
	dir     string // absolute download directory
	off     int64  // bytes in the file
	h       hash.Hash
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
}

// prepare checks the download directory and free space, and opens the
// partial file: an existing one of the same (sender, name, size) is
// resumed after hashing its content; otherwise a new one is created with
// O_EXCL and mode 0600.
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
	w := &pwriter{dir: dir, path: filepath.Join(dir, partialPrefix+x.pkey), h: sha256.New()}
	w.sidecar = w.path + ".json"
	if f, ok := openPartial(w.path, w.sidecar, x.e.peerStr, x.name, x.size); ok {
		w.f = f
		st, err := f.Stat()
		if err == nil && (x.size < 0 || st.Size() <= x.size) && st.Size() <= n.cfg.MaxFileSize {
			w.off = st.Size()
			_, err = io.CopyN(w.h, f, w.off)
			if err == nil {
				_, err = f.Seek(w.off, io.SeekStart)
			}
			if err == nil {
				return w, ""
			}
		}
		f.Close()
		w.h.Reset()
		w.off = 0
	}
	_ = os.Remove(w.path)
	_ = os.Remove(w.sidecar)
	if x.size > 0 {
		if free := freeSpace(dir); free >= 0 && x.size > free-freeSpaceMargin {
			return nil, fmt.Sprintf("%s: %d bytes needed, %d available", reasonNoSpace, x.size, max(free-freeSpaceMargin, 0))
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if err != nil {
		n.logf(slog.LevelWarn, "cannot create partial file", "path", w.path, "err", err.Error())
		return nil, "cannot create the file"
	}
	w.f = f
	sc, _ := json.Marshal(sidecar{Sender: x.e.peerStr, Name: x.name, Size: x.size, Updated: time.Now()})
	if err := writeNew(w.sidecar, sc); err != nil {
		f.Close()
		_ = os.Remove(w.path)
		return nil, "cannot create the file"
	}
	return w, ""
}

// openPartial opens an existing partial file whose sidecar matches.
func openPartial(path, scPath, sender, name string, size int64) (*os.File, bool) {
	scf, err := os.OpenFile(scPath, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(scf, 64<<10))
	scf.Close()
	if err != nil {
		return nil, false
	}
	var sc sidecar
	if json.Unmarshal(raw, &sc) != nil || sc.Sender != sender || sc.Name != name || sc.Size != size {
		return nil, false
	}
	f, err := os.OpenFile(path, os.O_RDWR|oNoFollow, 0)
	if err != nil {
		return nil, false
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, false
	}
	return f, true
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
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
	for _, de := range entries {
		if !strings.HasPrefix(de.Name(), partialPrefix) || !de.Type().IsRegular() {
			continue
		}
		if fi, err := de.Info(); err == nil && fi.ModTime().Before(limit) {
			_ = os.Remove(filepath.Join(dir, de.Name()))
		}
	}
}

// write consumes the queued chunks until the end frame, a stop or the idle
// timeout. SHA-256 runs in a goroutine of its own beside the file writes;
// a chunk's bytes count against recvBufferBytes until both are done with it.
func (x *inXfer) write(w *pwriter) {
	n := x.n
	idle := loadDur(&n.files.idleTimeout)
	timer := time.NewTimer(idle)
	defer timer.Stop()
	hook := n.files.writeHook.Load()
	hs := startHash(w.h, recvQueueSlots, x.release)
	defer hs.finish()
	for {
		select {
		case it := <-x.items:
			if it.end != nil {
				x.verify(w, it.end, hs.sum())
				return
			}
			var err error
			if hook != nil {
				err = (*hook)(w.off, it.data)
			}
			if err == nil {
				_, err = w.f.Write(it.data)
			}
			if err != nil {
				n.logf(slog.LevelWarn, "file write failed", "file", x.name, "err", err.Error())
				x.stop(stopFail, "write failed on the receiver: "+describeWriteErr(err))
				hs.finish()
				x.ended(w)
				return
			}
			hs.addOwned(it.data, it.buf) // released by the hasher
			w.off += int64(len(it.data))
			x.progress(w.off)
			timer.Reset(idle)
		case <-timer.C:
			x.stop(stopFail, fmt.Sprintf("no data for %v", idle))
			x.ended(w)
			return
		case <-x.done:
			x.ended(w)
			return
		case <-x.e.done:
			x.stop(stopLost, "")
			x.ended(w)
			return
		case <-n.ctx.Done():
			x.stop(stopLost, "")
			x.ended(w)
			return
		}
	}
}

// release returns n hashed and written bytes to the receive buffer and wakes
// a reader waiting for room.
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

// ended finishes a stopped transfer: the partial file is kept when the edge
// was lost (a retry resumes), deleted otherwise, and the sender is told
// unless it is the one that stopped.
func (x *inXfer) ended(w *pwriter) {
	n := x.n
	done := int64(0)
	if w != nil {
		done = w.off
		w.f.Close()
		if x.stopKind != stopLost {
			_ = os.Remove(w.path)
			_ = os.Remove(w.sidecar)
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

// verify checks size and SHA-256 at FileEnd, then fsyncs and moves the
// file into place under a name that overwrites nothing.
func (x *inXfer) verify(w *pwriter, end *wire.FileEnd, sum []byte) {
	n := x.n
	x.update(func(t *TransferInfo) { t.State, t.Done = TransferVerifying, w.off })
	sumHex := hex.EncodeToString(sum)
	var reason string
	switch {
	case end.Size != w.off:
		reason = fmt.Sprintf("size mismatch: received %d bytes, sender says %d", w.off, end.Size)
	case x.size >= 0 && end.Size != x.size:
		reason = fmt.Sprintf("size mismatch: offered %d bytes, sent %d", x.size, end.Size)
	case !bytes.Equal(sum, end.SHA256):
		reason = "SHA-256 mismatch"
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
	if reason != "" {
		_ = os.Remove(w.path)
		_ = os.Remove(w.sidecar)
		x.finish(TransferFailed, reason)
		n.sendFileCtrl(x.e, wire.KindFileAck, "", &wire.FileAck{Transfer: x.id[:], Final: true, OK: false, SHA256: sum, Reason: reason})
		n.logf(slog.LevelWarn, "received file rejected", "file", x.name, "peer", x.info.Peer, "reason", reason)
		return
	}
	_ = os.Remove(w.sidecar)
	x.mu.Lock()
	x.info.SHA256, x.info.Path, x.info.Size = sumHex, final, w.off
	x.mu.Unlock()
	x.finish(TransferDone, "")
	n.sendFileCtrl(x.e, wire.KindFileAck, "", &wire.FileAck{Transfer: x.id[:], Final: true, OK: true, SHA256: sum, Path: filepath.Base(final)})
	n.logf(slog.LevelInfo, "file received", "file", x.name, "path", final, "size", w.off, "peer", x.info.Peer, "sha256", sumHex)
	if h := n.cfg.FileHandler; h != nil {
		info := x.snapshot()
		fr := FileReceived{TransferID: info.ID, Topic: x.topic, Name: x.name, Path: final, Size: w.off,
			SHA256: sumHex, From: info.Peer, FromID: info.PeerID, Meta: maps.Clone(x.meta)}
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

// placeFile moves the verified partial file to dir/name, or to "name (1).ext",
// "name (2).ext", … when that exists: a hard link fails instead of
// replacing an existing file, so nothing is ever overwritten. On file
// systems without hard links it falls back to an existence check and a
// rename.
func placeFile(partial, dir, name string) (string, error) {
	for i := 0; i < 10000; i++ {
		cand := filepath.Join(dir, numbered(name, i))
		err := os.Link(partial, cand)
		if err == nil {
			_ = os.Remove(partial)
			return cand, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if _, serr := os.Lstat(cand); serr == nil {
			continue
		} else if !errors.Is(serr, fs.ErrNotExist) {
			return "", serr
		}
		if err := os.Rename(partial, cand); err != nil {
			return "", err
		}
		return cand, nil
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

package chaski

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// sendGroup is one PushFile: the same bytes to every receiver.
type sendGroup struct {
	id    string
	topic string
	name  string
	size  int64
	r     io.Reader
	legs  []*outLeg
	algo  string  // HashBLAKE3 or HashSHA256
	tree  *b3Tree // verified streaming: computed before the offer
	// cached is the tree cache entry tree came from: removed if the send
	// fails, in case the entry was what made it fail.
	cached string
	group  int // BLAKE3 group size (chunks carry one group each)
}

// outLeg is the transfer of a group to one receiver.
type outLeg struct {
	xfer
	id     xferID
	e      *edge
	probe  bool // the peer's hello said it accepts no files: a refusal is not an error
	ctx    context.Context
	cancel context.CancelCauseFunc
	acks   chan *wire.FileAck
	offset int64 // the receiver's resume offset
	sent   int64 // bytes queued so far (offset included)
	queued int64 // bytes of frames pump queued on e's data lane
	err    error // why the leg failed
	skip   bool  // a probe the receiver refused: not a receiver
}

// remoteAbort is the cause of a leg the receiver aborted.
type remoteAbort struct{ reason string }

func (r *remoteAbort) Error() string { return "receiver aborted: " + r.reason }

var (
	errCallerCancelled = errors.New("cancelled by the caller")
	errSourceSize      = errors.New("the source does not match its declared size")
)

// SendFile sends the file at path to every connected subscriber of topic
// that accepts files, in a node goroutine, and returns the transfer id at
// once (follow it with Transfers or TransferEvents; cancel it with
// CancelTransfer). ctx bounds only the set-up (for verified streaming it
// includes hashing the file once): the transfer itself lives until it ends,
// is cancelled or the node closes. With several receivers the id names the
// whole send; each receiver's transfer has its own id.
//
// A directory is sent as SendDir sends it, in the background: each of its
// files shows in Transfers under its relative path, and the id returned
// cancels the rest of the directory.
func (n *Node) SendFile(ctx context.Context, topic, path string, meta map[string]string) (string, error) {
	if n.closing.Load() {
		return "", ErrClosed
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return n.sendDirAsync(topic, path, meta)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("chaski: send file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return "", fmt.Errorf("chaski: send file: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return "", fmt.Errorf("chaski: send file: %s is not a regular file", path)
	}
	if err := ctx.Err(); err != nil {
		f.Close()
		return "", err
	}
	if err := n.checkSend(topic, filepath.Base(path), st.Size(), meta); err != nil {
		f.Close()
		return "", err
	}
	h, err := n.sendHash(ctx, f, st.Size())
	if err != nil {
		f.Close()
		return "", fmt.Errorf("chaski: send file: %w", err)
	}
	g, err := n.startSend(topic, f, filepath.Base(path), st.Size(), meta, h)
	if err != nil {
		f.Close()
		return "", err
	}
	n.goSafe(func() {
		defer f.Close()
		if _, err := n.runSend(n.ctx, g); err != nil {
			n.logf(slog.LevelInfo, "file not sent to every receiver", "file", g.name, "topic", topic, "err", err.Error())
		}
	})
	return g.id, nil
}

// PushFile sends size bytes read from r under the base name name to every
// connected peer that subscribes to topic and accepts files, and returns
// when every transfer has ended, with one TransferInfo per receiver. The
// error is nil only if every receiver confirmed size and SHA-256. r is read
// once, in chunks of Config.FileChunkSize, whatever the number of receivers
// (the slowest receiver sets the pace); size may be -1 when unknown. A peer
// whose hello said it accepts no files is offered the file too (it may have
// started accepting since) but counts as a receiver only if it accepts.
//
// With Config.FileHash BLAKE3 (the default) and an r that is an
// io.ReaderAt of known size (a file, a bytes.Reader), r is first hashed
// through ReadAt so that receivers check every chunk as it arrives; any
// other reader is hashed as it is sent and checked at the end.
func (n *Node) PushFile(ctx context.Context, topic string, r io.Reader, name string, size int64, meta map[string]string) ([]TransferInfo, error) {
	if err := n.checkSend(topic, name, size, meta); err != nil {
		return nil, err
	}
	h, err := n.sendHash(ctx, r, size)
	if err != nil {
		return nil, fmt.Errorf("chaski: send %q: %w", name, err)
	}
	g, err := n.startSend(topic, r, name, size, meta, h)
	if err != nil {
		return nil, err
	}
	return n.runSend(ctx, g)
}

// sendHashing is how a send is verified.
type sendHashing struct {
	algo   string
	tree   *b3Tree // nil unless verified streaming
	cached string  // the cache entry tree came from, if it did
}

// sendHash chooses the hash of a send and, for verified streaming, computes
// the tree of the source (read through ReadAt from its current position,
// which is left where it was).
func (n *Node) sendHash(ctx context.Context, r io.Reader, size int64) (sendHashing, error) {
	h := sendHashing{algo: n.cfg.FileHash}
	ra, ok := r.(io.ReaderAt)
	if h.algo != HashBLAKE3 || !ok || size < 0 {
		return h, nil
	}
	var pos int64
	if sk, ok := r.(io.Seeker); ok {
		p, err := sk.Seek(0, io.SeekCurrent)
		if err != nil {
			return h, err
		}
		pos = p
	}
	group := groupFor(n.cfg.FileChunkSize)
	// A whole file sent again unchanged: its tree from the cache.
	f, _ := r.(*os.File)
	if of, ok := r.(interface{ osFile() *os.File }); ok {
		f = of.osFile() // a file of a directory send
	}
	var key fileKey
	cacheable := false
	if dir := n.cfg.FileTreeCache; dir != "" && f != nil && pos == 0 {
		if k, err := fileKeyOf(f); err == nil && k.size == size {
			key, cacheable = k, true
			if t, path := loadTree(dir, k, group); t != nil {
				h.tree, h.cached = t, path
				n.logf(slog.LevelDebug, "file tree from the cache", "file", f.Name(), "entry", path)
				return h, nil
			}
		}
	}
	hashedAt := time.Now()
	tree, err := hashTreeAt(ctx, ra, pos, size, group, runtime.GOMAXPROCS(0))
	if err != nil {
		return h, err
	}
	h.tree = tree
	if cacheable {
		// Stored only if the file did not change while it was hashed.
		if k, err := fileKeyOf(f); err == nil && k == key {
			storeTree(n.cfg.FileTreeCache, key, tree, hashedAt)
		}
	}
	return h, nil
}

// ctxReader stops a long read (hashing a large file) when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// checkSend validates the arguments of a send.
func (n *Node) checkSend(topic, name string, size int64, meta map[string]string) error {
	if n.closing.Load() {
		return ErrClosed
	}
	if !wire.ValidName(topic, wire.MaxTopicLen) {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, topic)
	}
	if !validRelPath(name) {
		return fmt.Errorf("chaski: invalid file name %q", name)
	}
	if size < -1 {
		return fmt.Errorf("chaski: invalid file size %d", size)
	}
	if !validMeta(meta) {
		return fmt.Errorf("chaski: file metadata too large (at most %d entries, %d bytes)", maxMetaEntries, maxMetaBytes)
	}
	return nil
}

// startSend chooses the receivers and sends them offers.
func (n *Node) startSend(topic string, r io.Reader, name string, size int64, meta map[string]string, h sendHashing) (*sendGroup, error) {
	if err := n.checkSend(topic, name, size, meta); err != nil {
		return nil, err
	}
	meta = maps.Clone(meta)
	var targets []*edge
	for _, e := range n.liveEdges() {
		if _, ok := e.route.Load().subs[topic]; ok {
			targets = append(targets, e)
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNoSubscribers, topic)
	}
	g := &sendGroup{topic: topic, name: name, size: size, r: r, algo: h.algo, tree: h.tree, cached: h.cached}
	if g.algo == HashBLAKE3 {
		g.group = groupFor(n.cfg.FileChunkSize)
	}
	started := time.Now()
	for _, e := range targets {
		l := &outLeg{id: newXferID(), e: e, acks: make(chan *wire.FileAck, 4)}
		l.n = n
		l.ctx, l.cancel = context.WithCancelCause(n.ctx)
		info := e.info()
		l.probe = !info.AcceptsFiles
		l.quiet = l.probe
		l.info = TransferInfo{ID: l.id.String(), Name: name, Topic: topic, Peer: info.Name, PeerID: info.PeerID,
			Outgoing: true, Size: size, State: TransferOffered, Meta: meta, Started: started, HashAlgo: g.algo}
		g.legs = append(g.legs, l)
	}
	if len(g.legs) == 1 {
		g.id = g.legs[0].id.String()
	} else {
		g.id = newXferID().String()
	}
	f := &n.files
	f.mu.Lock()
	for _, l := range g.legs {
		f.out[l.id] = l
	}
	f.groups[g.id] = g
	f.mu.Unlock()
	for _, l := range g.legs {
		l.mu.Lock()
		l.emitLocked()
		l.mu.Unlock()
		offer := &wire.FileOffer{Transfer: l.id[:], Name: name, Size: size, Meta: meta, Hash: g.algo}
		if g.algo == HashBLAKE3 {
			offer.Group = int64(g.group)
		}
		if g.tree != nil {
			offer.Root = g.tree.root[:]
		}
		if !n.sendFileCtrl(l.e, wire.KindFileOffer, topic, offer) {
			l.cancel(ErrEdgeLost)
		}
	}
	n.logf(slog.LevelInfo, "offering file", "file", name, "size", size, "topic", topic, "receivers", len(g.legs))
	return g, nil
}

// runSend waits for the answers, streams the data and waits for the
// verdicts.
func (n *Node) runSend(ctx context.Context, g *sendGroup) ([]TransferInfo, error) {
	f := &n.files
	defer func() {
		f.mu.Lock()
		for _, l := range g.legs {
			delete(f.out, l.id)
		}
		delete(f.groups, g.id)
		f.mu.Unlock()
		for _, l := range g.legs {
			l.cancel(context.Canceled) // releases the context
		}
	}()
	stop := context.AfterFunc(ctx, func() {
		for _, l := range g.legs {
			l.cancel(fmt.Errorf("%w: %w", errCallerCancelled, ctx.Err()))
		}
	})
	defer stop()

	// 1. Answers to the offers.
	octx, ocancel := context.WithTimeout(context.Background(), loadDur(&f.offerTimeout))
	var active []*outLeg
	for _, l := range g.legs {
		if n.awaitAccept(g, l, octx) {
			active = append(active, l)
		}
	}
	ocancel()

	// 2. The data, read once and fanned out.
	var sum []byte
	if len(active) > 0 {
		sum = n.pump(g, active)
	}

	// 3. The verdicts.
	if sum != nil {
		fctx, fcancel := context.WithTimeout(context.Background(), loadDur(&f.finalTimeout))
		for _, l := range active {
			if l.ctx.Err() == nil {
				n.awaitVerdict(l, sum, fctx)
			}
		}
		fcancel()
	}
	for _, l := range active {
		if l.ctx.Err() != nil && l.err == nil {
			n.failLeg(l, context.Cause(l.ctx))
		}
	}

	var infos []TransferInfo
	var errs []string
	var first error
	for _, l := range g.legs {
		if l.skip {
			continue
		}
		info := l.snapshot()
		infos = append(infos, info)
		if info.State != TransferDone {
			err := l.err
			if err == nil {
				err = fmt.Errorf("chaski: transfer to %s ended %s", info.Peer, info.State)
			}
			if first == nil {
				first = err
			}
			errs = append(errs, err.Error())
		}
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("%w: no subscriber of %q accepts files", ErrRefused, g.topic)
	}
	if first != nil {
		if g.cached != "" {
			// A stale entry (a file changed without its mtime or ctime
			// changing) fails every send: the next one hashes again.
			_ = os.Remove(g.cached)
		}
		if len(errs) == 1 {
			return infos, fmt.Errorf("chaski: send %q: %w", g.name, first)
		}
		return infos, fmt.Errorf("chaski: send %q: %d of %d receivers failed: %w (all: %s)", g.name, len(errs), len(infos), first, strings.Join(errs, "; "))
	}
	n.logf(slog.LevelInfo, "file sent", "file", g.name, "receivers", len(infos))
	return infos, nil
}

// awaitAccept waits for the receiver's answer to the offer; it reports
// whether the leg goes on to the data phase.
func (n *Node) awaitAccept(g *sendGroup, l *outLeg, octx context.Context) bool {
	for {
		select {
		case a := <-l.acks:
			if a.Final {
				n.failLeg(l, fmt.Errorf("%w: %s sent a verdict before the data", ErrRemote, l.info.Peer))
				n.sendFileCtrl(l.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: l.id[:], Reason: "protocol error: verdict before data"})
				return false
			}
			if !a.Accept {
				reason := truncate(strings.ToValidUTF8(a.Reason, "?"), 200)
				if l.probe && reason == reasonNotAccepted {
					l.skip = true
					l.finish(TransferFailed, "refused: "+reason)
					return false
				}
				n.failLeg(l, fmt.Errorf("%w: %s: %s", ErrRefused, l.info.Peer, reason))
				return false
			}
			if a.Offset < 0 || (g.size >= 0 && a.Offset > g.size) || (g.group > 0 && a.Offset%int64(g.group) != 0 && a.Offset != g.size) {
				n.sendFileCtrl(l.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: l.id[:], Reason: "invalid resume offset"})
				n.failLeg(l, fmt.Errorf("%w: %s asked to resume at invalid offset %d", ErrRemote, l.info.Peer, a.Offset))
				return false
			}
			l.offset, l.sent = a.Offset, a.Offset
			l.mu.Lock()
			l.quiet = false
			l.mu.Unlock()
			l.update(func(t *TransferInfo) {
				t.State, t.Resumed, t.Done = TransferActive, a.Offset, a.Offset
			})
			l.startClock(a.Offset)
			return true
		case <-l.ctx.Done():
			n.failLeg(l, context.Cause(l.ctx))
			return false
		case <-l.e.done:
			l.cancel(ErrEdgeLost)
			n.failLeg(l, context.Cause(l.ctx))
			return false
		case <-octx.Done():
			n.sendFileCtrl(l.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: l.id[:], Reason: reasonNoAnswer})
			n.failLeg(l, fmt.Errorf("%w: %s did not answer the offer", ErrTimeout, l.info.Peer))
			return false
		}
	}
}

// pump reads the source once, hashes it and queues chunks on the data lane
// of every active leg; it returns the SHA-256 of the whole source, or nil
// when no leg is left.
//
// Each chunk is read straight into a frame buffer behind room for the frame
// header, so the first leg's frame is built in place without copying the
// data (other legs, and a leg resuming inside the chunk, get a copy). The
// buffer is only read once queued: by the edge's writer and, concurrently,
// by the hasher, whose SHA-256 runs in its own goroutine beside the reads
// and socket writes. Buffers are recycled (frameRing) once both are done
// with them, so a steady transfer allocates nothing per chunk.
func (n *Node) pump(g *sendGroup, legs []*outLeg) []byte {
	chunk := n.cfg.FileChunkSize
	if g.group > 0 {
		chunk = g.group // a chunk is one group: each is checked on arrival
	}
	const pre = wire.HeaderLen + wire.FileChunkFixedLen
	// The hasher may lag by up to ≈ 2 MiB of chunks (at least 2).
	depth := max(2, (2<<20)/chunk)
	var hs *bgHash
	switch {
	case g.tree != nil:
		// Verified streaming: the tree was computed before the offer, so
		// nothing is hashed here; the receivers check every chunk.
		for _, l := range legs {
			if err := sendTree(l, g.tree); err != nil {
				l.cancel(err)
			}
		}
	case g.algo == HashBLAKE3:
		hs = startHash(newB3Hasher(g.group), depth, nil)
	default:
		hs = startHash(sha256.New(), depth, nil)
	}
	if hs != nil {
		defer hs.finish()
	}
	// Enough buffers for a full data lane, the hasher's backlog, the chunk
	// being written and the one being read.
	ring := newFrameRing(pre+chunk, min(maxRingBuffers, n.cfg.SendQueueBytes/(pre+chunk)+depth+4), hs)
	var off int64
	if sk, ok := g.r.(io.Seeker); ok && g.tree != nil {
		// Verified streaming needs no hash of the prefix every receiver
		// already holds: skip it.
		skip := g.size
		for _, l := range legs {
			skip = min(skip, l.offset)
		}
		if skip > 0 {
			if _, err := sk.Seek(skip, io.SeekCurrent); err != nil {
				return failAllNow(legs, n, fmt.Errorf("chaski: reading %s: %w", g.name, err))
			}
			off = skip
		}
	}
	live := func() []*outLeg {
		out := legs[:0:0]
		for _, l := range legs {
			if l.ctx.Err() == nil {
				out = append(out, l)
			} else if l.err == nil {
				n.failLeg(l, context.Cause(l.ctx))
			}
		}
		return out
	}
	failAll := func(err error) []byte { return failAllNow(legs, n, err) }
	streamed := false
	if src := sendfileSource(g, legs); src != nil {
		streamed = true
		// Verified streaming from a file over plain TCP: the chunks' bodies
		// go from the file to the socket with sendfile(2) (queued as file
		// segments), neither read here nor copied into the socket.
		sk := g.r.(io.Seeker)
		pos, err := sk.Seek(0, io.SeekCurrent)
		if err != nil {
			return failAll(fmt.Errorf("chaski: reading %s: %w", g.name, err))
		}
		base := pos - off // the file offset of the stream's byte 0
		for off < g.size {
			if legs = live(); len(legs) == 0 {
				return nil
			}
			end := min(off+int64(chunk), g.size)
			for _, l := range legs {
				if end <= l.offset || l.ctx.Err() != nil {
					continue
				}
				start := max(off, l.offset)
				k := int(end - start)
				head := make([]byte, pre)
				putFileChunkHead(head, l.id, uint64(start), k)
				if err := l.e.sendFileData(l.ctx, head, src, base+start, k); err != nil {
					l.cancel(err)
					continue
				}
				l.queued += int64(pre + k)
				l.sent = end
				l.progress(end)
			}
			off = end
		}
		// Where reading the stream would have left the source.
		if _, err := sk.Seek(base+g.size, io.SeekStart); err != nil {
			return failAll(fmt.Errorf("chaski: reading %s: %w", g.name, err))
		}
	}
	for !streamed {
		if legs = live(); len(legs) == 0 {
			return nil
		}
		fb := ring.get()
		buf := fb.b
		k, rerr := io.ReadFull(g.r, buf[pre:])
		if k > 0 {
			if g.size >= 0 && off+int64(k) > g.size {
				return failAll(fmt.Errorf("%w: more than %d bytes", errSourceSize, g.size))
			}
			if hs != nil {
				fb.hashSeq = hs.add(buf[pre : pre+k])
			}
			end := off + int64(k)
			for _, l := range legs {
				if end <= l.offset || l.ctx.Err() != nil {
					continue
				}
				start := max(off, l.offset)
				var fr []byte
				var err error
				inPlace := start == off && fb.leg == nil
				if inPlace {
					fr = buf[:pre+k]
					putFileChunkHead(fr, l.id, uint64(off), k)
				} else {
					data := buf[pre+start-off : pre+k]
					fr, err = wire.AppendFileChunkFrame(make([]byte, 0, pre+len(data)),
						&wire.FileChunk{Transfer: l.id, Offset: uint64(start), Data: data})
				}
				if err == nil {
					err = l.e.sendData(l.ctx, fr)
				}
				if err != nil {
					if errors.Is(err, ErrEdgeLost) {
						l.cancel(ErrEdgeLost)
					} else {
						l.cancel(err)
					}
					continue
				}
				l.queued += int64(len(fr))
				if inPlace {
					fb.leg, fb.mark = l, l.queued
				}
				l.sent = end
				l.progress(end)
			}
			off = end
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return failAll(fmt.Errorf("chaski: reading %s: %w", g.name, rerr))
		}
	}
	if g.size >= 0 && off != g.size {
		return failAll(fmt.Errorf("%w: %d bytes instead of %d", errSourceSize, off, g.size))
	}
	var sum []byte
	if hs != nil {
		sum = hs.sum()
	} else {
		sum = g.tree.root[:]
	}
	sumHex := hex.EncodeToString(sum)
	for _, l := range live() {
		if l.offset > off {
			l.cancel(fmt.Errorf("%w: %s asked to resume at %d of %d bytes", ErrRemote, l.info.Peer, l.offset, off))
			continue
		}
		end := &wire.FileEnd{Transfer: l.id[:], Size: off}
		if g.algo == HashSHA256 {
			end.SHA256 = sum
		} else {
			end.Hash = sum
		}
		fr, err := wire.AppendControlFrame(nil, wire.KindFileEnd, "", end)
		if err == nil {
			// The data lane keeps FileEnd behind the last chunk.
			err = l.e.sendData(l.ctx, fr)
		}
		if err != nil {
			l.cancel(ErrEdgeLost)
			continue
		}
		l.update(func(t *TransferInfo) {
			t.State, t.Done, t.Hash = TransferVerifying, off, g.algo+":"+sumHex
			if g.algo == HashSHA256 {
				t.SHA256 = sumHex
			}
			if t.Size < 0 {
				t.Size = off
			}
		})
	}
	return sum
}

// failAllNow fails every leg with err.
func failAllNow(legs []*outLeg, n *Node, err error) []byte {
	for _, l := range legs {
		l.cancel(err)
		n.failLeg(l, err)
	}
	return nil
}

// maxRingBuffers bounds the chunk buffers a pump keeps for reuse.
const maxRingBuffers = 64

// frameBuf is a chunk buffer of the pump: header room, then data.
type frameBuf struct {
	b       []byte
	hashSeq uint64  // the hasher's number for its data (0: not handed over)
	leg     *outLeg // the leg whose data lane holds it as a frame, or nil
	mark    int64   // leg.queued right after that frame was queued
}

// frameRing hands out chunk buffers in rotation and recycles the oldest one
// when nobody reads it any more; otherwise that one is left to the garbage
// collector and a fresh buffer takes its place.
//
// The hasher reports the slices it is done with. A frame on an edge's data
// lane is done with once written: the lane is FIFO and the writer releases
// a frame's bytes (sendQueue.release) only after writing it, so the
// not-yet-released bytes (backlog) are always the newest frames queued. If
// the backlog is no larger than what this pump queued on the lane after our
// frame, our frame is not among them (other producers' frames queued
// meanwhile only make that test more conservative).
type frameRing struct {
	bufs []*frameBuf
	next int
	size int
	hs   *bgHash
}

func newFrameRing(size, n int, hs *bgHash) *frameRing {
	return &frameRing{bufs: make([]*frameBuf, max(n, 1)), size: size, hs: hs}
}

func (r *frameRing) get() *frameBuf {
	fb := r.bufs[r.next]
	if fb == nil || !r.free(fb) {
		fb = &frameBuf{b: make([]byte, r.size)}
		r.bufs[r.next] = fb
	}
	r.next = (r.next + 1) % len(r.bufs)
	fb.hashSeq, fb.leg, fb.mark = 0, nil, 0
	return fb
}

func (r *frameRing) free(fb *frameBuf) bool {
	if fb.hashSeq != 0 && !r.hs.hashedUpTo(fb.hashSeq) {
		return false
	}
	if l := fb.leg; l != nil && int64(l.e.q.backlog()) > l.queued-fb.mark {
		return false
	}
	return true
}

// putFileChunkHead writes the frame header and the fixed FileChunk fields
// in front of the k data bytes already at fr[HeaderLen+FileChunkFixedLen:]:
// the same bytes wire.AppendFileChunkFrame produces, without copying the
// data.
func putFileChunkHead(fr []byte, id xferID, off uint64, k int) {
	wire.PutHeader(fr, wire.KindFileChunk, 0, wire.FileChunkFixedLen+k)
	copy(fr[wire.HeaderLen:], id[:])
	binary.BigEndian.PutUint64(fr[wire.HeaderLen+16:], off)
}

// awaitVerdict waits for the receiver's final FileAck.
func (n *Node) awaitVerdict(l *outLeg, sum []byte, fctx context.Context) {
	for {
		select {
		case a := <-l.acks:
			if !a.Final {
				continue
			}
			if !a.OK {
				reason := truncate(strings.ToValidUTF8(a.Reason, "?"), 200)
				l.cancel(errors.New("rejected"))
				n.failLeg(l, fmt.Errorf("%w: %s rejected the file: %s", ErrRemote, l.info.Peer, reason))
				return
			}
			held, what := a.Hash, "BLAKE3 hash"
			if l.info.HashAlgo == HashSHA256 {
				held, what = a.SHA256, "SHA-256"
			}
			if !bytes.Equal(held, sum) {
				l.cancel(errors.New("rejected"))
				n.failLeg(l, fmt.Errorf("%w: %s confirmed a different %s", ErrRemote, l.info.Peer, what))
				return
			}
			l.finish(TransferDone, "")
			return
		case <-l.ctx.Done():
			n.failLeg(l, context.Cause(l.ctx))
			return
		case <-l.e.done:
			l.cancel(ErrEdgeLost)
			n.failLeg(l, context.Cause(l.ctx))
			return
		case <-fctx.Done():
			n.sendFileCtrl(l.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: l.id[:], Reason: "no verdict in time"})
			l.cancel(ErrTimeout)
			n.failLeg(l, fmt.Errorf("%w: %s did not confirm the file", ErrTimeout, l.info.Peer))
			return
		}
	}
}

// failLeg ends a leg for cause, tells the receiver when it should know, and
// records the error PushFile returns.
func (n *Node) failLeg(l *outLeg, cause error) {
	if l.err != nil {
		return
	}
	peer := l.info.Peer
	state := TransferFailed
	var text string
	var ra *remoteAbort
	switch {
	case errors.Is(cause, errCancelledLocal):
		state, text = TransferCancelled, "cancelled"
		l.err = fmt.Errorf("chaski: transfer to %s cancelled: %w", peer, context.Canceled)
		n.sendFileCtrl(l.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: l.id[:], Reason: reasonCancelled})
	case errors.Is(cause, errCallerCancelled):
		state, text = TransferCancelled, cause.Error()
		l.err = fmt.Errorf("chaski: transfer to %s: %w", peer, cause)
		n.sendFileCtrl(l.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: l.id[:], Reason: reasonCancelled})
	case errors.As(cause, &ra):
		text = cause.Error()
		if strings.HasPrefix(ra.reason, reasonCancelled) {
			state = TransferCancelled
		}
		l.err = fmt.Errorf("%w: %s aborted the transfer: %s", ErrRemote, peer, ra.reason)
	case errors.Is(cause, ErrEdgeLost):
		text = fmt.Sprintf("peer lost after %d bytes", l.sent)
		l.err = fmt.Errorf("%w: %s lost after %d bytes", ErrEdgeLost, peer, l.sent)
	case n.ctx.Err() != nil && errors.Is(cause, context.Canceled):
		text = "node closing"
		l.err = fmt.Errorf("%w: transfer to %s", ErrClosed, peer)
		n.sendFileCtrl(l.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: l.id[:], Reason: "sender closing"})
	default:
		text = cause.Error()
		l.err = cause
		var refused bool
		if errors.Is(cause, ErrRefused) {
			refused = true
		}
		if !refused && !errors.Is(cause, ErrRemote) && !errors.Is(cause, ErrTimeout) {
			n.sendFileCtrl(l.e, wire.KindFileAbort, "", &wire.FileAbort{Transfer: l.id[:], Reason: "sender failed: " + truncate(cause.Error(), 150)})
		}
	}
	l.finish(state, text)
}

// handleAck routes a FileAck to the outgoing leg it answers.
func (n *Node) handleAck(e *edge, a *wire.FileAck) {
	id, ok := toXferID(a.Transfer)
	if !ok {
		return
	}
	l := n.files.outgoing(e, id)
	if l == nil {
		return
	}
	select {
	case l.acks <- a:
	default: // a peer repeating itself; the leg reads at most two
	}
}

// treePiece is the number of leaves per FileTree frame (64 KiB).
const treePiece = 2048

// sendTree queues the leaves of the tree on l's data lane, ahead of the
// chunks (a file of one group has none).
func sendTree(l *outLeg, t *b3Tree) error {
	for i := 0; i < len(t.leaves); i += treePiece * cvLen {
		end := min(len(t.leaves), i+treePiece*cvLen)
		fr, err := wire.AppendFileTreeFrame(nil, &wire.FileTree{Transfer: l.id, First: uint64(i / cvLen), Leaves: t.leaves[i:end]})
		if err == nil {
			err = l.e.sendData(l.ctx, fr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sendfileSource returns the file a verified send can stream with
// sendfile(2): a regular file whose every receiver is on a plain TCP edge
// to another machine; nil otherwise (then chunks are read and written as
// bytes).
//
// Why not to a peer on this machine: sendfile puts the file's page-cache
// pages on the socket, so the receiver's copy out of the socket reads them
// cold from memory, on the edge's reader, which is what limits a transfer.
// Written as bytes, the sender's read of the file does that and the
// receiver copies from fresh socket buffers still in cache: less CPU on
// the reader for a little more on the sender, and faster transfers on
// loopback (docs/PERFORMANCE.md, "Files on an AMD guest"). To another
// machine the receiver copies from its own network buffers either way,
// and sendfile saves the sender its copy.
func sendfileSource(g *sendGroup, legs []*outLeg) *os.File {
	if !sendfileWrites || g.tree == nil || g.size < 0 {
		return nil
	}
	if _, ok := g.r.(io.Seeker); !ok {
		return nil
	}
	// A plain *os.File only: a directory send counts the bytes it reads
	// for its progress.
	f, _ := g.r.(*os.File)
	if f == nil {
		return nil
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	for _, l := range legs {
		if l.e.raw == nil || l.e.sameHost && !l.e.n.sendfileSameHost {
			return nil
		}
	}
	return f
}

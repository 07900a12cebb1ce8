package chaski

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/chaski-dev/chaski/chaski/wire"
)

const fileTopic = "files"

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fileReceiver starts a node that subscribes to fileTopic and, with cfg
// defaults, accepts files into a fresh directory.
func fileReceiver(t testing.TB, cfg Config) *Node {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "receiver"
	}
	cfg.Subscriptions = append(cfg.Subscriptions, fileTopic)
	return startNode(t, "127.0.0.1", cfg)
}

// fileSender starts a node and connects it to every receiver, waiting
// until it knows their subscriptions.
func fileSender(t testing.TB, cfg Config, receivers ...*Node) *Node {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "sender"
	}
	a := startNode(t, "127.0.0.1", cfg)
	for _, r := range receivers {
		linkFiles(t, a, r)
	}
	return a
}

func linkFiles(t testing.TB, a, r *Node) {
	t.Helper()
	connect(t, a, r)
	eventually(t, "receiver subscription known to sender", func() bool {
		e, ok := a.Edge(r.ID())
		return ok && e.Subscribes(fileTopic)
	})
}

func pushCtx(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*waitTimeout)
}

func push(t testing.TB, a *Node, name string, data []byte, meta map[string]string) ([]TransferInfo, error) {
	ctx, cancel := pushCtx(t)
	defer cancel()
	return a.PushFile(ctx, fileTopic, bytes.NewReader(data), name, int64(len(data)), meta)
}

// dirFiles lists the names in dir, sorted.
func dirFiles(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func partials(t testing.TB, dir string) []string {
	var out []string
	for _, f := range dirFiles(t, dir) {
		if strings.HasPrefix(f, partialPrefix) && !strings.HasSuffix(f, ".json") && !strings.HasSuffix(f, leavesSuffix) {
			out = append(out, f)
		}
	}
	return out
}

func findTransfer(n *Node, pred func(TransferInfo) bool) (TransferInfo, bool) {
	for _, t := range n.Transfers() {
		if pred(t) {
			return t, true
		}
	}
	return TransferInfo{}, false
}

type handlerLog struct {
	mu    sync.Mutex
	files []FileReceived
}

func (h *handlerLog) add(f FileReceived) {
	h.mu.Lock()
	h.files = append(h.files, f)
	h.mu.Unlock()
}

func (h *handlerLog) get() []FileReceived {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]FileReceived(nil), h.files...)
}

// Port of the original's file test, which could not fail: every size arrives
// byte-identical with a verified SHA-256 and the handler fires once per file.
// b3 is the hex BLAKE3 hash of b.
func b3(b []byte) string {
	s := blake3.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hashes returns what TransferInfo.SHA256 and .Hash hold after a transfer
// of data verified with algo.
func hashes(algo string, data []byte) (sha256Hex, hash string) {
	if algo == HashSHA256 {
		return sha(data), "sha256:" + sha(data)
	}
	return "", "blake3:" + b3(data)
}

// streamOnly hides a reader's ReaderAt: PushFile cannot hash it up front.
type streamOnly struct{ io.Reader }

// Every size arrives byte-identical, verified with each hash (BLAKE3 with
// the tree sent up front, BLAKE3 of a stream checked at the end, SHA-256),
// and the handler fires once per file.
func TestFileTransferSizes(t *testing.T) {
	for _, mode := range []struct {
		name, algo string
		stream     bool
	}{{"blake3", HashBLAKE3, false}, {"blake3-stream", HashBLAKE3, true}, {"sha256", HashSHA256, false}} {
		t.Run(mode.name, func(t *testing.T) { testFileTransferSizes(t, mode.algo, mode.stream) })
	}
}

func testFileTransferSizes(t *testing.T, algo string, stream bool) {
	dir := t.TempDir()
	var log handlerLog
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, FileHandler: log.add})
	a := fileSender(t, Config{FileHash: algo}, b)
	sizes := []int{0, 1 << 10, 10 << 10, 256<<10 + 1, 768 << 10, 1 << 20, 10 << 20}
	want := map[string][]byte{}
	for _, size := range sizes {
		name := fmt.Sprintf("file-%d.bin", size)
		data := randomBytes(t, size)
		want[name] = data
		meta := map[string]string{"size": fmt.Sprint(size), "kind": "test"}
		var r io.Reader = bytes.NewReader(data)
		if stream {
			r = streamOnly{r}
		}
		ctx, cancel := pushCtx(t)
		infos, err := a.PushFile(ctx, fileTopic, r, name, int64(len(data)), meta)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantSHA, wantHash := hashes(algo, data)
		if len(infos) != 1 || infos[0].State != TransferDone || infos[0].Done != int64(size) || infos[0].SHA256 != wantSHA ||
			infos[0].Hash != wantHash || infos[0].HashAlgo != algo || !infos[0].Outgoing {
			t.Fatalf("%s: sender info %+v", name, infos)
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: content differs", name)
		}
		st, _ := os.Stat(filepath.Join(dir, name))
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", name, st.Mode().Perm())
		}
	}
	eventually(t, "one handler call per file", func() bool { return len(log.get()) >= len(sizes) })
	// Give a duplicate call a chance to show up.
	time.Sleep(50 * time.Millisecond)
	calls := log.get()
	if len(calls) != len(sizes) {
		t.Fatalf("handler called %d times for %d files", len(calls), len(sizes))
	}
	for _, c := range calls {
		data, ok := want[c.Name]
		if !ok {
			t.Fatalf("handler got unknown file %q", c.Name)
		}
		delete(want, c.Name)
		wantSHA, wantHash := hashes(algo, data)
		if c.SHA256 != wantSHA || c.Hash != wantHash || c.HashAlgo != algo || c.Size != int64(len(data)) || c.Meta["size"] != fmt.Sprint(len(data)) || c.Meta["kind"] != "test" ||
			c.FromID != a.ID() || c.From != a.Name() || c.Topic != fileTopic || c.Path != filepath.Join(dir, c.Name) {
			t.Fatalf("handler call %+v", c)
		}
	}
	if ps := dirFiles(t, dir); len(ps) != len(sizes) {
		t.Fatalf("download dir holds %v", ps)
	}
	// Both sides list the transfers as done.
	for _, n := range []*Node{a, b} {
		done := 0
		for _, tr := range n.Transfers() {
			if tr.State == TransferDone {
				done++
			}
		}
		if done != len(sizes) {
			t.Fatalf("%s lists %d done transfers", n.Name(), done)
		}
	}
}

func TestFileRefusedWhenNotAccepting(t *testing.T) {
	dir := t.TempDir()
	var log handlerLog
	b := fileReceiver(t, Config{DownloadDir: dir, FileHandler: log.add})
	a := fileSender(t, Config{}, b)
	if e, _ := a.Edge(b.ID()); e.AcceptsFiles {
		t.Fatal("receiver announces files it does not accept")
	}
	infos, err := push(t, a, "x.txt", []byte("hello"), nil)
	if !errors.Is(err, ErrRefused) || len(infos) != 0 {
		t.Fatalf("got %v, %v; want ErrRefused", infos, err)
	}
	if fs := dirFiles(t, dir); len(fs) != 0 {
		t.Fatalf("files written: %v", fs)
	}

	// Turned on at run time: the next offer is accepted even though the
	// hello said otherwise.
	b.SetAcceptFiles(true)
	if _, err := push(t, a, "x.txt", []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	// And off again, on an edge whose hello said yes.
	c := fileReceiver(t, Config{Name: "c", AcceptFiles: true, DownloadDir: t.TempDir()})
	linkFiles(t, a, c)
	c.SetAcceptFiles(false)
	b.SetAcceptFiles(false)
	_, err = push(t, a, "y.txt", []byte("hello"), nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), reasonNotAccepted) {
		t.Fatalf("got %v, want a refusal: %s", err, reasonNotAccepted)
	}
	// The handler runs after the verdict is sent: wait for it.
	eventually(t, "the handler of the accepted file", func() bool { return len(log.get()) >= 1 })
	if got := len(log.get()); got != 1 {
		t.Fatalf("handler called %d times", got)
	}
	// No subscriber at all.
	if _, err := a.PushFile(context.Background(), "nobody", bytes.NewReader(nil), "z", 0, nil); !errors.Is(err, ErrNoSubscribers) {
		t.Fatalf("got %v, want ErrNoSubscribers", err)
	}
}

// ---- a raw peer speaking the wire protocol by hand ----

type fileRawPeer struct {
	t    testing.TB
	conn net.Conn
	fr   *wire.Reader
	id   wire.NodeID
	wmu  sync.Mutex
}

func dialFileRaw(t testing.TB, n *Node, subs ...string) *fileRawPeer {
	t.Helper()
	conn, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &fileRawPeer{t: t, conn: conn}
	_, _ = rand.Read(p.id[:])
	b := wire.AppendPreamble(nil)
	b, err = wire.AppendControlFrame(b, wire.KindHello, "", &wire.Hello{Version: wire.Version, ID: p.id[:], Name: "raw",
		Listen: "127.0.0.1:1", Subs: subs, AcceptFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var pre [wire.PreambleLen]byte
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		t.Fatal(err)
	}
	p.fr = wire.NewReader(br, wire.HardMaxBody)
	f, err := p.fr.ReadFrame()
	if err != nil || f.Kind != wire.KindHello {
		t.Fatalf("hello: %v %v", f.Kind, err)
	}
	eventually(t, "raw peer registered", func() bool { return n.ConnectedTo(idString(p.id)) })
	return p
}

func (p *fileRawPeer) write(b []byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := p.conn.Write(b); err != nil {
		p.t.Errorf("raw write: %v", err)
	}
}

func (p *fileRawPeer) send(kind wire.Kind, topic string, v any) {
	b, err := wire.AppendControlFrame(nil, kind, topic, v)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

func (p *fileRawPeer) chunk(id []byte, off int64, data []byte) {
	c := &wire.FileChunk{Offset: uint64(off), Data: data}
	copy(c.Transfer[:], id)
	b, err := wire.AppendFileChunkFrame(nil, c)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

// next reads frames until one of the given kinds, answering pings.
func (p *fileRawPeer) next(kinds ...wire.Kind) wire.Frame {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			p.t.Fatalf("raw read (waiting for %v): %v", kinds, err)
		}
		if f.Kind == wire.KindPing {
			pg, _ := wire.ParsePing(f.Body)
			p.write(wire.AppendPingFrame(nil, wire.KindPong, &wire.Ping{ID: pg.ID}))
			continue
		}
		for _, k := range kinds {
			if f.Kind == k {
				return f
			}
		}
	}
}

func (p *fileRawPeer) ack() wire.FileAck {
	p.t.Helper()
	var a wire.FileAck
	if err := wire.Unmarshal(p.next(wire.KindFileAck).Body, &a); err != nil {
		p.t.Fatal(err)
	}
	return a
}

// ackOrAbort returns the next FileAck or FileAbort (as an ack with Reason).
func (p *fileRawPeer) ackOrAbort() (wire.FileAck, bool) {
	p.t.Helper()
	f := p.next(wire.KindFileAck, wire.KindFileAbort)
	if f.Kind == wire.KindFileAbort {
		var a wire.FileAbort
		_ = wire.Unmarshal(f.Body, &a)
		return wire.FileAck{Transfer: a.Transfer, Reason: a.Reason}, true
	}
	var a wire.FileAck
	if err := wire.Unmarshal(f.Body, &a); err != nil {
		p.t.Fatal(err)
	}
	return a, false
}

func (p *fileRawPeer) offer(name string, size int64) []byte {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	p.send(wire.KindFileOffer, fileTopic, &wire.FileOffer{Transfer: id, Name: name, Size: size})
	return id
}

func TestFileHostileNames(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "dl")
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	p := dialFileRaw(t, b)
	names := map[string]string{
		"dotdot-x": "../x", "absolute": "/etc/passwd", "dotdot": "..", "dot": ".", "empty": "",
		"inner-dotdot": "a/../b", "trailing-dotdot": "a/..", "double-slash": "a//b", "trailing-slash": "a/",
		"inner-dot": "a/./b", "inner-partial": "a/" + partialPrefix + "x", "deep": strings.Repeat("d/", 32) + "f",
		"long-path": strings.Repeat(strings.Repeat("p", 200)+"/", 6) + "f", "backslash-dotdot": `a\..\b`,
		"nul": "x\x00y", "newline": "a\nb", "long": strings.Repeat("n", 300), "backslash": `a\b`,
		"escape": "a\x1b[31mb", "c1": "a\u0085b", "badutf8": "a\xffb", "partial": partialPrefix + "x",
	}
	for label, name := range names {
		id := p.offer(name, 5)
		a := p.ack()
		if !bytes.Equal(a.Transfer, id) || a.Accept || a.Reason != reasonInvalidName {
			t.Fatalf("%s (%q): ack %+v", label, name, a)
		}
	}
	if fs := dirFiles(t, root); len(fs) != 0 {
		t.Fatalf("written: %v", fs)
	}
	if len(b.Transfers()) != 0 {
		t.Fatalf("refused offers listed: %+v", b.Transfers())
	}
	// A 255-byte name is fine.
	long := strings.Repeat("l", 255)
	id := p.offer(long, 3)
	if a := p.ack(); !a.Accept || a.Offset != 0 {
		t.Fatalf("255-byte name refused: %+v", a)
	}
	p.chunk(id, 0, []byte("abc"))
	s := sha256.Sum256([]byte("abc"))
	p.send(wire.KindFileEnd, "", &wire.FileEnd{Transfer: id, Size: 3, SHA256: s[:]})
	if a := p.ack(); !a.Final || !a.OK || a.Path != long {
		t.Fatalf("final ack %+v", a)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, long)); string(got) != "abc" {
		t.Fatalf("got %q", got)
	}
	if fs := dirFiles(t, root); len(fs) != 1 || fs[0] != "dl" {
		t.Fatalf("root holds %v", fs)
	}
}

func TestFileOfferLimits(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, MaxFileSize: 1000})
	p := dialFileRaw(t, b)

	// Declared size above MaxFileSize.
	p.offer("big", 1001)
	if a := p.ack(); a.Accept || !strings.HasPrefix(a.Reason, reasonTooLarge) {
		t.Fatalf("ack %+v", a)
	}
	// More than the free space of the download directory.
	if free := freeSpace(dir); free >= 0 {
		c := fileReceiver(t, Config{Name: "c", AcceptFiles: true, DownloadDir: t.TempDir(), MaxFileSize: 1 << 62})
		q := dialFileRaw(t, c)
		q.offer("huge", free)
		if a := q.ack(); a.Accept || !strings.HasPrefix(a.Reason, reasonNoSpace) {
			t.Fatalf("ack %+v", a)
		}
	}
	// Topic the receiver does not subscribe to.
	p.send(wire.KindFileOffer, "other", &wire.FileOffer{Transfer: randomBytes(t, 16), Name: "x", Size: 1})
	if a := p.ack(); a.Accept || a.Reason != reasonNotSubscribed {
		t.Fatalf("ack %+v", a)
	}
	// Unknown size, but more actual bytes than MaxFileSize.
	id := p.offer("liar", -1)
	if a := p.ack(); !a.Accept {
		t.Fatalf("ack %+v", a)
	}
	p.chunk(id, 0, make([]byte, 600))
	p.chunk(id, 600, make([]byte, 600))
	if a, abort := p.ackOrAbort(); !abort || !strings.HasPrefix(a.Reason, reasonTooLarge) {
		t.Fatalf("got %+v (abort %v), want an abort", a, abort)
	}
	// Declared 100 bytes, sends 200.
	id = p.offer("liar2", 100)
	p.ack()
	p.chunk(id, 0, make([]byte, 200))
	if a, abort := p.ackOrAbort(); !abort || !strings.Contains(a.Reason, "more data than the declared") {
		t.Fatalf("got %+v (abort %v)", a, abort)
	}
	// Chunk at the wrong offset.
	id = p.offer("gap", 100)
	p.ack()
	p.chunk(id, 10, make([]byte, 10))
	if a, abort := p.ackOrAbort(); !abort || !strings.Contains(a.Reason, "offset") {
		t.Fatalf("got %+v (abort %v)", a, abort)
	}
	eventually(t, "partials deleted", func() bool { return len(dirFiles(t, dir)) == 0 })
	eventually(t, "failures listed", func() bool {
		failed := 0
		for _, tr := range b.Transfers() {
			if tr.State == TransferFailed && !tr.Outgoing {
				failed++
			}
		}
		return failed == 3
	})

	// Concurrency: at most maxIncomingPerEdge transfers from one edge.
	// (Each sends a first chunk: at most half the slots may wait for
	// data, see TestAttackIdleOffersLeaveRoom.)
	var first []byte
	for i := 0; i < maxIncomingPerEdge; i++ {
		id := p.offer(fmt.Sprintf("slot%d", i), 10)
		if i == 0 {
			first = id
		}
		if a := p.ack(); !a.Accept {
			t.Fatalf("offer %d: %+v", i, a)
		}
		p.chunk(id, 0, make([]byte, 5))
	}
	p.offer("one-too-many", 10)
	if a := p.ack(); a.Accept || a.Reason != reasonBusy {
		t.Fatalf("ack %+v", a)
	}
	// And at most maxIncomingPerNode in all.
	for k := 1; k < maxIncomingPerNode/maxIncomingPerEdge; k++ {
		q := dialFileRaw(t, b)
		for i := 0; i < maxIncomingPerEdge; i++ {
			id := q.offer(fmt.Sprintf("peer%d-slot%d", k, i), 10)
			if a := q.ack(); !a.Accept {
				t.Fatalf("peer %d offer %d: %+v", k, i, a)
			}
			q.chunk(id, 0, make([]byte, 5))
		}
	}
	q := dialFileRaw(t, b)
	q.offer("node-full", 10)
	if a := q.ack(); a.Accept || a.Reason != reasonBusy {
		t.Fatalf("ack %+v", a)
	}
	// A cancelled transfer frees its slot.
	p.send(wire.KindFileAbort, "", &wire.FileAbort{Transfer: first, Reason: "bye"})
	eventually(t, "slot freed", func() bool {
		tr, ok := incoming(b, "slot0")
		return ok && tr.State == TransferCancelled && tr.Err == "cancelled by sender: bye"
	})
	q.offer("node-has-room", 10)
	if a := q.ack(); !a.Accept {
		t.Fatalf("ack %+v", a)
	}
}

func TestFileHashMismatch(t *testing.T) {
	dir := t.TempDir()
	var log handlerLog
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, FileHandler: log.add})
	p := dialFileRaw(t, b)
	data := randomBytes(t, 3000)
	id := p.offer("lie.bin", 3000)
	if a := p.ack(); !a.Accept {
		t.Fatal(a)
	}
	p.chunk(id, 0, data[:1000])
	p.chunk(id, 1000, data[1000:])
	wrong := sha256.Sum256([]byte("something else"))
	p.send(wire.KindFileEnd, "", &wire.FileEnd{Transfer: id, Size: 3000, SHA256: wrong[:]})
	a := p.ack()
	if !a.Final || a.OK || a.Reason != "SHA-256 mismatch" || hex.EncodeToString(a.SHA256) != sha(data) {
		t.Fatalf("final ack %+v", a)
	}
	if fs := dirFiles(t, dir); len(fs) != 0 {
		t.Fatalf("files left: %v", fs)
	}
	if tr, ok := findTransfer(b, func(tr TransferInfo) bool { return tr.Name == "lie.bin" }); !ok || tr.State != TransferFailed {
		t.Fatalf("receiver lists %+v", tr)
	}
	// Size lie at the end.
	id = p.offer("short.bin", 3000)
	p.ack()
	p.chunk(id, 0, data[:2000])
	s := sha256.Sum256(data[:2000])
	p.send(wire.KindFileEnd, "", &wire.FileEnd{Transfer: id, Size: 2000, SHA256: s[:]})
	if a := p.ack(); !a.Final || a.OK || !strings.Contains(a.Reason, "size mismatch") {
		t.Fatalf("final ack %+v", a)
	}
	if fs := dirFiles(t, dir); len(fs) != 0 {
		t.Fatalf("files left: %v", fs)
	}
	if n := len(log.get()); n != 0 {
		t.Fatalf("handler called %d times", n)
	}
}

func TestFileIdleTimeout(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	b.files.idleTimeout.Store(int64(300 * time.Millisecond))
	p := dialFileRaw(t, b)
	id := p.offer("stall.bin", 1000)
	p.ack()
	p.chunk(id, 0, make([]byte, 100))
	a, abort := p.ackOrAbort()
	if !abort || !strings.Contains(a.Reason, "no data") {
		t.Fatalf("got %+v (abort %v)", a, abort)
	}
	eventually(t, "partial deleted", func() bool { return len(dirFiles(t, dir)) == 0 })
	if tr, ok := findTransfer(b, func(tr TransferInfo) bool { return tr.Name == "stall.bin" }); !ok || tr.State != TransferFailed {
		t.Fatalf("receiver lists %+v", tr)
	}
}

func TestFileNoOverwrite(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.txt", "a (1).txt", "rc"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("old "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log handlerLog
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, FileHandler: log.add})
	a := fileSender(t, Config{}, b)
	for _, name := range []string{"a.txt", "rc"} {
		if _, err := push(t, a, name, []byte("new"), nil); err != nil {
			t.Fatal(err)
		}
	}
	for f, want := range map[string]string{"a.txt": "old a.txt", "a (1).txt": "old a (1).txt", "a (2).txt": "new", "rc": "old rc", "rc (1)": "new"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || string(got) != want {
			t.Fatalf("%s: %q, %v; want %q", f, got, err, want)
		}
	}
	eventually(t, "handler", func() bool { return len(log.get()) == 2 })
	if p := log.get()[0].Path; p != filepath.Join(dir, "a (2).txt") {
		t.Fatalf("handler path %s", p)
	}
	if long := numbered(strings.Repeat("x", 250)+".txt", 12); len(long) > maxFileNameLen || !strings.HasSuffix(long, " (12).txt") {
		t.Fatalf("numbered long name: %q", long)
	}
}

func TestFileWriteError(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	hook := func(off int64, p []byte) error {
		if off >= 100<<10 {
			return &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
		}
		return nil
	}
	b.files.writeHook.Store(&hook)
	a := fileSender(t, Config{FileChunkSize: 16 << 10}, b)
	infos, err := push(t, a, "full.bin", randomBytes(t, 1<<20), nil)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want a disk-full error", err)
	}
	if len(infos) != 1 || infos[0].State != TransferFailed {
		t.Fatalf("infos %+v", infos)
	}
	eventually(t, "partial deleted", func() bool { return len(dirFiles(t, dir)) == 0 })
}

// gatedReader yields data up to gateAt, then blocks until gate is closed.
type gatedReader struct {
	data   []byte
	off    int
	gateAt int
	gate   chan struct{}
}

func newGated(data []byte, at int) *gatedReader {
	return &gatedReader{data: data, gateAt: at, gate: make(chan struct{})}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.off >= len(g.data) {
		return 0, io.EOF
	}
	if g.off >= g.gateAt {
		<-g.gate
	}
	end := min(len(g.data), g.off+len(p))
	if g.off < g.gateAt {
		end = min(end, g.gateAt)
	}
	k := copy(p, g.data[g.off:end])
	g.off += k
	return k, nil
}

type pushResult struct {
	infos []TransferInfo
	err   error
}

// pushAsync starts a PushFile from r and returns its result channel; the
// test waits for it before ending.
func pushAsync(t *testing.T, a *Node, name string, r io.Reader, size int) <-chan pushResult {
	ch := make(chan pushResult, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(wg.Wait)
	go func() {
		defer wg.Done()
		ctx, cancel := pushCtx(t)
		defer cancel()
		infos, err := a.PushFile(ctx, fileTopic, r, name, int64(size), nil)
		ch <- pushResult{infos, err}
	}()
	return ch
}

func waitPush(t *testing.T, ch <-chan pushResult) pushResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(2 * waitTimeout):
		t.Fatal("PushFile did not return")
		return pushResult{}
	}
}

func incoming(n *Node, name string) (TransferInfo, bool) {
	return findTransfer(n, func(tr TransferInfo) bool { return !tr.Outgoing && tr.Name == name })
}

// killEdges closes the connections of every edge of n abruptly, as a
// crashed process would.
// pushCutAfterFirstMiB starts pushing data as name from a to b, holds the
// stream once the first MiB is written at b, cuts a's edges and waits until
// b reports the transfer failed. Closing the returned reader's gate lets the
// sender's push end; res is its result.
func pushCutAfterFirstMiB(t *testing.T, a, b *Node, name string, data []byte) (*gatedReader, <-chan pushResult) {
	t.Helper()
	g := newGated(data, 1<<20)
	t.Cleanup(func() {
		select {
		case <-g.gate:
		default:
			close(g.gate)
		}
	})
	res := pushAsync(t, a, name, g, len(data))
	eventually(t, "first MiB written", func() bool {
		tr, ok := incoming(b, name)
		return ok && tr.Done >= 1<<20
	})
	killEdges(a)
	eventually(t, "receiver reports the transfer failed", func() bool {
		tr, ok := incoming(b, name)
		return ok && tr.State == TransferFailed
	})
	return g, res
}

func killEdges(n *Node) {
	for _, e := range n.liveEdges() {
		e.conn.Close()
	}
}

func TestFileSenderLostThenResume(t *testing.T) {
	dir := t.TempDir()
	var log handlerLog
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir, FileHandler: log.add})
	a := fileSender(t, Config{FileChunkSize: 64 << 10}, b)
	data := randomBytes(t, 4<<20)
	g, res := pushCutAfterFirstMiB(t, a, b, "resume.bin", data)
	if tr, _ := incoming(b, "resume.bin"); !strings.Contains(tr.Err, "peer lost") {
		t.Fatalf("receiver's reason: %q", tr.Err)
	}
	if ps := partials(t, dir); len(ps) != 1 {
		t.Fatalf("partials %v", ps)
	}
	close(g.gate)
	r := waitPush(t, res)
	if !errors.Is(r.err, ErrEdgeLost) || !strings.Contains(r.err.Error(), "lost after") {
		t.Fatalf("sender: %v", r.err)
	}
	if len(r.infos) != 1 || r.infos[0].State != TransferFailed {
		t.Fatalf("sender infos %+v", r.infos)
	}

	// Same file again from the same sender: resumes.
	waitEdges(t, map[*Node]int{a: 0, b: 0})
	linkFiles(t, a, b)
	infos, err := push(t, a, "resume.bin", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].Resumed < 1<<20 || infos[0].State != TransferDone {
		t.Fatalf("not resumed: %+v", infos[0])
	}
	got, err := os.ReadFile(filepath.Join(dir, "resume.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed file differs (%v)", err)
	}
	if fs := dirFiles(t, dir); len(fs) != 1 {
		t.Fatalf("dir holds %v", fs)
	}
	tr, _ := findTransfer(b, func(tr TransferInfo) bool { return !tr.Outgoing && tr.State == TransferDone })
	if tr.Resumed != infos[0].Resumed || tr.Hash != "blake3:"+b3(data) || tr.SHA256 != "" {
		t.Fatalf("receiver info %+v", tr)
	}
	eventually(t, "handler", func() bool { return len(log.get()) == 1 })
}

// A resumed prefix that differs from the source is caught by the final
// hash: the partial is deleted and the next attempt starts afresh.
func TestFileResumeWrongPrefix(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	a := fileSender(t, Config{FileHash: HashSHA256}, b)
	data := randomBytes(t, 200<<10)
	key := partialKey(a.ID(), "p.bin", int64(len(data)))
	path := filepath.Join(dir, partialPrefix+key)
	if err := os.WriteFile(path, make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := fmt.Sprintf(`{"sender":%q,"name":"p.bin","size":%d}`, a.ID(), len(data))
	if err := os.WriteFile(path+".json", []byte(sc), 0o600); err != nil {
		t.Fatal(err)
	}
	infos, err := push(t, a, "p.bin", data, nil)
	if err == nil || !strings.Contains(err.Error(), "SHA-256") || infos[0].Resumed != 1000 {
		t.Fatalf("got %+v, %v", infos, err)
	}
	if fs := dirFiles(t, dir); len(fs) != 0 {
		t.Fatalf("dir holds %v", fs)
	}
	infos, err = push(t, a, "p.bin", data, nil)
	if err != nil || infos[0].Resumed != 0 {
		t.Fatalf("retry: %+v, %v", infos, err)
	}
}

func TestFileReceiverLost(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	a := fileSender(t, Config{FileChunkSize: 64 << 10}, b)
	data := randomBytes(t, 2<<20)
	g := newGated(data, 512<<10)
	res := pushAsync(t, a, "gone.bin", g, len(data))
	eventually(t, "some bytes written", func() bool {
		tr, ok := incoming(b, "gone.bin")
		return ok && tr.Done > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(g.gate) // PushFile cannot interrupt a Read that blocks
	r := waitPush(t, res)
	if !errors.Is(r.err, ErrEdgeLost) {
		t.Fatalf("sender: %v", r.err)
	}
	if tr, _ := incoming(b, "gone.bin"); tr.State != TransferFailed {
		t.Fatalf("receiver %+v", tr)
	}
}

func TestFileCancel(t *testing.T) {
	for _, side := range []string{"sender", "receiver"} {
		t.Run(side, func(t *testing.T) {
			dir := t.TempDir()
			b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
			a := fileSender(t, Config{FileChunkSize: 64 << 10}, b)
			data := randomBytes(t, 2<<20)
			g := newGated(data, 512<<10)
			res := pushAsync(t, a, "c.bin", g, len(data))
			eventually(t, "some bytes written", func() bool {
				tr, ok := incoming(b, "c.bin")
				return ok && tr.Done > 0
			})
			if side == "sender" {
				tr, ok := findTransfer(a, func(tr TransferInfo) bool { return tr.Outgoing && !tr.State.Finished() })
				if !ok {
					t.Fatal("no outgoing transfer listed")
				}
				if err := a.CancelTransfer(tr.ID); err != nil {
					t.Fatal(err)
				}
			} else {
				tr, _ := incoming(b, "c.bin")
				if err := b.CancelTransfer(tr.ID); err != nil {
					t.Fatal(err)
				}
			}
			close(g.gate)
			r := waitPush(t, res)
			if r.err == nil || len(r.infos) != 1 || r.infos[0].State != TransferCancelled {
				t.Fatalf("sender: %+v, %v", r.infos, r.err)
			}
			eventually(t, "receiver cancelled", func() bool {
				tr, _ := incoming(b, "c.bin")
				return tr.State == TransferCancelled
			})
			eventually(t, "partial deleted", func() bool { return len(dirFiles(t, dir)) == 0 })
			if err := a.CancelTransfer("nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("cancel unknown: %v", err)
			}
			// The edge survives a cancelled transfer.
			if _, err := push(t, a, "after.bin", []byte("ok"), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFileConcurrent(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	c := fileReceiver(t, Config{Name: "c", AcceptFiles: true, DownloadDir: t.TempDir()})
	a := fileSender(t, Config{FileChunkSize: 32 << 10}, b, c)
	const n = 3
	datas := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range datas {
		datas[i] = randomBytes(t, (3<<20)+i*1000)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var infos []TransferInfo
			infos, errs[i] = push(t, a, fmt.Sprintf("c%d.bin", i), datas[i], nil)
			if errs[i] == nil && len(infos) != 2 {
				errs[i] = fmt.Errorf("%d receivers", len(infos))
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("transfer %d: %v", i, err)
		}
		for _, d := range []string{dir, c.Config().DownloadDir} {
			got, err := os.ReadFile(filepath.Join(d, fmt.Sprintf("c%d.bin", i)))
			if err != nil || !bytes.Equal(got, datas[i]) {
				t.Fatalf("file %d in %s differs (%v)", i, d, err)
			}
		}
	}
}

// waitPending returns the id of the next transfer among events that waits
// for an answer (named name, unless name is "").
func waitPending(t *testing.T, events <-chan Event, name string) string {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case ev := <-events:
			if te, ok := ev.(*TransferEvent); ok && te.Transfer.State == TransferPending && (name == "" || te.Transfer.Name == name) {
				return te.Transfer.ID
			}
		case <-deadline:
			t.Fatalf("no pending transfer %q", name)
			return ""
		}
	}
}

func TestFilePrompt(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{PromptFiles: true, DownloadDir: dir})
	a := fileSender(t, Config{}, b)
	if e, _ := a.Edge(b.ID()); !e.AcceptsFiles {
		t.Fatal("a prompting receiver should announce files")
	}
	events, stop := b.Watch(0)
	defer stop()
	for _, accept := range []bool{true, false} {
		res := pushAsync(t, a, fmt.Sprintf("ask-%v.txt", accept), bytes.NewReader([]byte("hi")), 2)
		id := waitPending(t, events, "")
		if err := b.AcceptTransfer(id, accept); err != nil {
			t.Fatal(err)
		}
		if err := b.AcceptTransfer(id, !accept); err == nil {
			t.Fatal("answered twice")
		}
		r := waitPush(t, res)
		if accept && r.err != nil {
			t.Fatal(r.err)
		}
		if !accept && (!errors.Is(r.err, ErrRefused) || !strings.Contains(r.err.Error(), reasonDeclined)) {
			t.Fatalf("declined: %v", r.err)
		}
	}
	if fs := dirFiles(t, dir); len(fs) != 1 || fs[0] != "ask-true.txt" {
		t.Fatalf("dir holds %v", fs)
	}
	// Unanswered offers time out.
	b.files.promptTimeout.Store(int64(200 * time.Millisecond))
	_, err := push(t, a, "late.txt", []byte("x"), nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), reasonNoAnswer) {
		t.Fatalf("got %v", err)
	}
}

func TestSendFileAndEvents(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	a := fileSender(t, Config{FileChunkSize: 64 << 10}, b)
	src := filepath.Join(t.TempDir(), "doc.pdf")
	data := randomBytes(t, 3<<20)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	aev, stopA := a.Watch(0)
	defer stopA()
	bev, stopB := b.Watch(0)
	defer stopB()
	id, err := a.SendFile(context.Background(), fileTopic, src, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "sent", func() bool {
		tr, ok := findTransfer(a, func(tr TransferInfo) bool { return tr.ID == id })
		return ok && tr.State == TransferDone
	})
	if got, _ := os.ReadFile(filepath.Join(dir, "doc.pdf")); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	for side, ch := range map[string]<-chan Event{"sender": aev, "receiver": bev} {
		states := map[TransferState]bool{}
		deadline := time.After(waitTimeout)
	loop:
		for {
			select {
			case ev := <-ch:
				te, ok := ev.(*TransferEvent)
				if !ok {
					continue
				}
				states[te.Transfer.State] = true
				if te.Transfer.Meta["k"] != "v" {
					t.Fatalf("%s: meta %v", side, te.Transfer.Meta)
				}
				if te.Transfer.State == TransferDone {
					if te.Transfer.Rate <= 0 || te.Transfer.Done != int64(len(data)) {
						t.Fatalf("%s: final event %+v", side, te.Transfer)
					}
					break loop
				}
			case <-deadline:
				t.Fatalf("%s: no done event (saw %v)", side, states)
			}
		}
		for _, s := range []TransferState{TransferOffered, TransferActive, TransferVerifying, TransferDone} {
			if !states[s] {
				t.Fatalf("%s: no %v event (saw %v)", side, s, states)
			}
		}
	}
	if _, err := a.SendFile(context.Background(), fileTopic, t.TempDir(), nil); err == nil {
		t.Fatal("sent a directory")
	}
	if _, err := a.SendFile(context.Background(), fileTopic, filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("sent a missing file")
	}
}

func TestValidFileName(t *testing.T) {
	for _, ok := range []string{"a", "a.txt", "résumé.pdf", "a b (1).txt", "a-b", "x.tar.gz", "עברית.txt", strings.Repeat("x", 255)} {
		if !validFileName(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "/x", "a/b", `a\b`, "a\x00", "a\tb", "\x7f", strings.Repeat("x", 256), "\xff",
		// misleading names (issue 20)
		".rc", ".bashrc", "-rf", "--help", " ", "   ", "a ", "a.", "evil\u202etxt.exe", "a\u2066b", "a\u200fb"} {
		if validFileName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	// Inside a directory that is sent, hidden names are ordinary; at its
	// top and anywhere else the rules hold.
	for p, want := range map[string]bool{"proj/.gitignore": true, "proj/.config/x": true, ".git/x": false,
		"proj/-rf": false, "proj/evil\u202etxt.exe": false} {
		if validRelPath(p) != want {
			t.Errorf("validRelPath(%q) = %v, want %v", p, !want, want)
		}
	}
}

func BenchmarkFileTransfer100MiB(b *testing.B) {
	dir := b.TempDir()
	r := fileReceiver(b, Config{AcceptFiles: true, DownloadDir: dir})
	a := fileSender(b, Config{}, r)
	data := randomBytes(b, 100<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := push(b, a, "bench.bin", data, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = os.Remove(filepath.Join(dir, "bench.bin"))
		b.StartTimer()
	}
}

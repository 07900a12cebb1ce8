package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
)

const (
	connectTimeout = 15 * time.Second
	pingTimeout    = 10 * time.Second
	publishTimeout = 10 * time.Second
	fetchTimeout   = 15 * time.Second
	defaultPad     = 64 << 10
	defaultTTL     = time.Hour
	dialFirstRetry = 2 * time.Second
	dialMaxRetry   = time.Minute
	dialAttempts   = 30
)

type (
	dialResultMsg struct {
		addr string
		gen  int
		info chaski.EdgeInfo
		err  error
	}
	dialRetryMsg struct {
		addr string
		gen  int
	}
	dropResultMsg struct {
		id    int
		path  string // the file sent, absolute
		dir   bool   // path is a directory the node now sends
		infos []chaski.TransferInfo
		err   error
	}
)

// call runs fn in the background; on failure the notice is "what: error",
// on success it is done.
func (m *model) call(what, done string, fn func() error) tea.Cmd {
	return func() tea.Msg {
		if err := fn(); err != nil {
			return resultMsg{notice: what, err: err, refresh: true}
		}
		return resultMsg{notice: done, refresh: true}
	}
}

func (m *model) denied(what string) bool {
	if m.sh.readOnly {
		m.sh.setNotice(true, "read-only: this dashboard cannot %s", what)
		return true
	}
	return false
}

// startDial connects to addr and, should that fail, keeps the address as a
// row in Edges with the reason and the time of the next attempt.
func (m *model) startDial(addr string) tea.Cmd {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil
	}
	sh := m.sh
	if norm, err := chaski.ParseAddr(addr); err == nil {
		addr = norm
	}
	d := sh.dialFor(addr)
	if d == nil {
		d = &dial{addr: addr}
		sh.dials = append(sh.dials, d)
	}
	d.gen++
	d.attempt = 0
	return m.dialNow(d)
}

func (m *model) dialNow(d *dial) tea.Cmd {
	d.attempt++
	d.state = "connecting"
	addr, gen, b, ctx := d.addr, d.gen, m.sh.b, m.ctx
	return func() tea.Msg {
		cctx, cancel := withTimeout(ctx, connectTimeout)
		defer cancel()
		info, err := b.Connect(cctx, addr)
		return dialResultMsg{addr: addr, gen: gen, info: info, err: err}
	}
}

func (m *model) onDialResult(r dialResultMsg) tea.Cmd {
	sh := m.sh
	d := sh.dialFor(r.addr)
	if d == nil || d.gen != r.gen {
		return nil // removed or restarted meanwhile
	}
	if r.err == nil {
		sh.dialDone(r.addr)
		if r.info.PeerID != "" {
			sh.upsertEdge(r.info)
		}
		sh.setNotice(false, "connected to %s (%s)", r.info.Name, r.addr)
		return nil
	}
	d.state, d.err = "failed", dialReason(r.err, r.addr)
	if d.attempt >= dialAttempts {
		d.next = time.Time{}
		sh.setNotice(true, "connect %s: %s — gave up after %d attempts", r.addr, d.err, d.attempt)
		return nil
	}
	wait := dialFirstRetry << min(d.attempt-1, 6)
	wait = min(wait, dialMaxRetry)
	d.next = sh.now().Add(wait)
	if d.attempt == 1 {
		sh.setNotice(true, "connect %s: %s — retrying (see Edges)", r.addr, d.err)
	}
	addr, gen := d.addr, d.gen
	return tea.Tick(wait, func(time.Time) tea.Msg { return dialRetryMsg{addr: addr, gen: gen} })
}

func (m *model) onDialRetry(r dialRetryMsg) tea.Cmd {
	d := m.sh.dialFor(r.addr)
	if d == nil || d.gen != r.gen {
		return nil
	}
	m.viewDirty = true
	m.stale(paneEdges)
	return m.dialNow(d)
}

// dialReason is the short reason of a failed connect ("connection refused").
func dialReason(err error, addr string) string {
	s := err.Error()
	for _, p := range []string{"chaski: ", "cannot connect to " + addr + ": ", "dial tcp " + addr + ": ", "connect: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	if errors.Is(err, chaski.ErrSelfConnect) {
		return "that is this node's own address"
	}
	return sanitize(s)
}

func (m *model) ping(e chaski.EdgeInfo, size int) tea.Cmd {
	b, ctx := m.sh.b, m.ctx
	id, name := e.PeerID, e.Name
	return func() tea.Msg {
		cctx, cancel := withTimeout(ctx, pingTimeout)
		defer cancel()
		rtt, err := b.Ping(cctx, id, size)
		what := "ping " + name
		if size > 0 {
			what += " (" + fmtBytes(int64(size)) + ")"
		}
		if err != nil {
			return resultMsg{notice: what, err: err}
		}
		return resultMsg{notice: what + ": " + fmtRTT(rtt)}
	}
}

func (m *model) discover(topics []string) tea.Cmd {
	b, ctx := m.sh.b, m.ctx
	ts := append([]string(nil), topics...)
	what := "discovery"
	if len(ts) > 0 {
		what += " " + strings.Join(ts, ", ")
	}
	m.sh.setNotice(false, "%s: running…", what)
	m.disc.running(ts)
	return func() tea.Msg {
		cctx, cancel := withTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := b.Discover(cctx, chaski.DiscoverOptions{Topics: ts}); err != nil {
			return resultMsg{notice: what, err: err}
		}
		return resultMsg{notice: what + ": finished"}
	}
}

func (m *model) storePut(k, v string, ttl time.Duration) tea.Cmd {
	if m.denied("write to the store") {
		return nil
	}
	b := m.sh.b
	exp := "never expires"
	if ttl > 0 {
		exp = "expires in " + ttl.String()
	}
	return m.call("store "+k, "stored "+k+" ("+exp+")", func() error { return b.StorePut(k, []byte(v), ttl) })
}

// fetchWither is a Backend that says which peer answered a fetch
// (*chaski.Node does).
type fetchWither interface {
	FetchWith(ctx context.Context, key string, opts chaski.FetchOptions) (chaski.FetchResult, error)
}

func (m *model) fetch(k string) tea.Cmd {
	if k == "" || m.denied("fetch into the store") {
		return nil
	}
	b, ctx := m.sh.b, m.ctx
	return func() tea.Msg {
		cctx, cancel := withTimeout(ctx, fetchTimeout)
		defer cancel()
		var r chaski.FetchResult
		var err error
		if fw, ok := b.(fetchWither); ok {
			r, err = fw.FetchWith(cctx, k, chaski.FetchOptions{})
		} else {
			r.Value, err = b.Fetch(cctx, k)
		}
		if err != nil {
			return resultMsg{notice: "fetch " + k, err: err}
		}
		from := ""
		switch {
		case r.Local:
			from = " — already in the local store"
		case r.From != "":
			from = " from " + r.From
		}
		title := k
		if r.From != "" {
			title = k + " · fetched from " + r.From
		}
		return resultMsg{notice: fmt.Sprintf("fetched %s (%s)%s", k, fmtBytes(int64(len(r.Value))), from),
			openTitle: title, openBody: r.Value, refresh: true}
	}
}

// dropFiles sends dropped (or /send) files to the chat's topic. Each file
// gets a row in Transfers at once; it gives way to the transfers' own rows
// when peers answer, or shows why nothing was sent.
func (m *model) dropFiles(files []string) tea.Cmd {
	if m.denied("send files") {
		return nil
	}
	topic := m.chat.sendTopic()
	if topic == "" {
		m.sh.setNotice(true, "no topic to send %d file(s) to: subscribe first (/sub TOPIC)", len(files))
		return nil
	}
	return m.dropFilesTo(topic, files)
}

// dropFilesTo is dropFiles to a given topic (a retry goes where the first
// attempt went).
func (m *model) dropFilesTo(topic string, files []string) tea.Cmd {
	if m.denied("send files") {
		return nil
	}
	sh := m.sh
	if sh.opts.NoLocalFiles {
		sh.setNotice(true, "files cannot be sent from this dashboard (a path would name a file on the server)")
		return nil
	}
	cmds := make([]tea.Cmd, 0, len(files))
	for _, f := range files {
		m.dropSeq++
		if abs, err := filepath.Abs(f); err == nil {
			f = abs
		}
		d := &drop{id: m.dropSeq, name: filepath.Base(f), topic: topic, at: sh.now(), state: "offering", path: f}
		sh.drops = append(sh.drops, d)
		path, id, b := f, d.id, sh.b
		// The transfer outlives this viewer's session: it is the node's.
		ctx := withoutCancel(m.ctx)
		cmds = append(cmds, func() tea.Msg {
			st, err := os.Stat(path)
			if err != nil {
				return dropResultMsg{id: id, err: pathProblem(path, err)}
			}
			if st.IsDir() {
				ds, ok := b.(dirSender)
				if !ok {
					return dropResultMsg{id: id, err: errDirectory}
				}
				// The node sends the tree in the background, where a send
				// nobody takes would fail unseen: say so here first.
				if !anyFileReceiver(b.Edges(), topic) {
					return dropResultMsg{id: id, err: fmt.Errorf("%w: %q", chaski.ErrNoSubscribers, topic)}
				}
				// Each file shows as a transfer under its path in the folder.
				if _, err := ds.SendFile(ctx, topic, path, nil); err != nil {
					return dropResultMsg{id: id, err: err}
				}
				return dropResultMsg{id: id, path: path, dir: true}
			}
			if !st.Mode().IsRegular() {
				return dropResultMsg{id: id, err: fmt.Errorf("%s is not a regular file", filepath.Base(path))}
			}
			fh, err := os.Open(path)
			if err != nil {
				return dropResultMsg{id: id, err: err}
			}
			defer fh.Close()
			infos, err := b.PushFile(ctx, topic, fh, filepath.Base(path), st.Size(), nil)
			return dropResultMsg{id: id, path: path, infos: infos, err: err}
		})
	}
	sh.setNotice(false, "offering %s to #%s", fileList(files), topic)
	return tea.Batch(cmds...)
}

// errDirectory is the answer to a dropped directory when the backend
// cannot send one.
var errDirectory = errors.New("directories are not supported by this node: drop the files inside it")

// anyFileReceiver reports whether a connected peer subscribes to topic
// (or is a root) and accepts files.
func anyFileReceiver(edges []chaski.EdgeInfo, topic string) bool {
	for _, e := range edges {
		if e.State != chaski.StateUp || !e.AcceptsFiles {
			continue
		}
		if e.Root || slices.Contains(e.Subscriptions, topic) {
			return true
		}
	}
	return false
}

// dirSender is a Backend that sends a whole directory (*chaski.Node's
// SendFile does, in the background, each file a transfer of its own).
type dirSender interface {
	SendFile(ctx context.Context, topic, path string, meta map[string]string) (string, error)
}

// pathProblem says plainly why a dropped path cannot be sent.
func pathProblem(path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s does not exist", path)
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%s cannot be read (permission denied)", path)
	}
	return err
}

func (m *model) onDropResult(r dropResultMsg) {
	sh := m.sh
	if r.dir && r.err == nil {
		sh.xhist.dirs = append(sh.xhist.dirs, r.path)
		sh.setNotice(false, "sending the folder %s to its receivers: each file shows as a transfer", filepath.Base(r.path))
	}
	for _, t := range r.infos {
		if r.path != "" {
			sh.xhist.sources[t.ID] = r.path
		}
		sh.upsertTransfer(t)
	}
	for i, d := range sh.drops {
		if d.id != r.id {
			continue
		}
		if r.err == nil || len(r.infos) > 0 {
			// Every receiver has its own row, with its own outcome.
			sh.drops = append(sh.drops[:i], sh.drops[i+1:]...)
			return
		}
		d.state, d.err = "failed", dropReason(r.err)
		sh.setNotice(true, "send %s: %s", d.name, d.err)
		return
	}
}

func dropReason(err error) string {
	switch {
	case errors.Is(err, chaski.ErrNoSubscribers):
		return "no connected peer subscribes to the topic"
	case errors.Is(err, chaski.ErrRefused):
		return "no peer accepts files on the topic (" + strings.TrimPrefix(err.Error(), "chaski: refused by peer: ") + ")"
	}
	return strings.TrimPrefix(sanitize(err.Error()), "chaski: ")
}

func fileList(files []string) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	return strings.Join(names, ", ")
}

// answerOffer accepts or declines the oldest incoming file offer.
func (m *model) answerOffer(accept bool) tea.Cmd {
	sh := m.sh
	t, ok := sh.offer()
	if !ok {
		return nil
	}
	if m.denied("accept files") {
		return nil
	}
	sh.dropOffer(t.ID)
	id, name, b := t.ID, t.Name, sh.b
	if accept {
		return m.call("accept "+name, "accepted "+name, func() error { return b.AcceptTransfer(id, true) })
	}
	return m.call("decline "+name, "declined "+name, func() error { return b.AcceptTransfer(id, false) })
}

func parseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return defaultTTL, nil
	case "0", "never":
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q (e.g. 30s, 1h, 0 = never)", s)
	}
	return d, nil
}

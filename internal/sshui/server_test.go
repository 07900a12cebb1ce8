package sshui

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"go.uber.org/goleak"
	gossh "golang.org/x/crypto/ssh"

	"github.com/chaski-dev/chaski/chaski"
)

// A bubbletea.Tick goroutine outlives its program until its timer fires
// (up to the dashboard's slowest refresh, seconds): tea.Tick cannot be
// cancelled. Everything else must be gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/charmbracelet/bubbletea.Tick.func1"))
}

// Generous: CI is a loaded 2-core machine.
const waitTimeout = 30 * time.Second

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startNode(t testing.TB, name string, subs ...string) *chaski.Node {
	t.Helper()
	n, err := chaski.Start(chaski.Config{Name: name, Listen: "127.0.0.1:0", Subscriptions: subs, ReconnectAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return n
}

func newKey(t testing.TB) (gossh.Signer, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return signer, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp)))
}

type fixture struct {
	node, peer *chaski.Node
	srv        *Server
	dir        string
	rw, ro     gossh.Signer
}

// setup runs a node "hub" (subscribed to chat) with a peer on loopback, and
// the SSH dashboard for a read-write and a read-only key.
func setup(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	f.node = startNode(t, "hub", "chat")
	f.peer = startNode(t, "peer", "chat")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := f.peer.Connect(ctx, f.node.Addr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "peer subscription", func() bool {
		e, ok := f.node.Edge(f.peer.ID())
		return ok && e.Subscribes("chat")
	})
	var rwLine, roLine string
	f.rw, rwLine = newKey(t)
	f.ro, roLine = newKey(t)
	keys := filepath.Join(f.dir, "authorized_keys")
	content := "# viewers\n" + rwLine + " admin@laptop\n" + ReadOnlyOption + " " + roLine + " ops@phone\n"
	if err := os.WriteFile(keys, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Node = f.node
	cfg.Addr = "127.0.0.1:0"
	cfg.AuthorizedKeys = keys
	cfg.HostKeyPath = filepath.Join(f.dir, "data", "ssh_host_ed25519_key")
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close ssh server: %v", err)
		}
	})
	return f
}

// term is an SSH client session with a PTY whose output is collected.
type term struct {
	t      testing.TB
	client *gossh.Client
	sess   *gossh.Session
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

func dial(t testing.TB, addr string, signer gossh.Signer, hostKey *gossh.PublicKey) (*gossh.Client, error) {
	return gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User: "viewer",
		Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
			if hostKey != nil {
				*hostKey = key
			}
			return nil
		},
		Timeout: 10 * time.Second,
	})
}

func open(t testing.TB, addr string, signer gossh.Signer, w, h int) *term {
	t.Helper()
	return openTerm(t, addr, signer, "xterm-256color", w, h)
}

func openTerm(t testing.TB, addr string, signer gossh.Signer, termName string, w, h int) *term {
	t.Helper()
	c, err := dial(t, addr, signer, nil)
	if err != nil {
		t.Fatalf("ssh dial: %v", err)
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty(termName, h, w, gossh.TerminalModes{gossh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, client: c, sess: s, done: make(chan struct{})}
	tm.stdin, err = s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.Stderr = stderrTo{tm}
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(tm.done)
		buf := make([]byte, 32<<10)
		for {
			n, err := stdout.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tm.close)
	return tm
}

// stderrTo puts the session's stderr (wish's refusals) into its output.
type stderrTo struct{ tm *term }

func (w stderrTo) Write(p []byte) (int, error) {
	w.tm.mu.Lock()
	defer w.tm.mu.Unlock()
	return w.tm.out.Write(p)
}

func (tm *term) close() {
	tm.sess.Close()
	tm.client.Close()
	<-tm.done
}

// text is everything the session printed, without escape sequences.
func (tm *term) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return ansi.Strip(tm.out.String())
}

// since returns the text printed after mark (a length of text()).
func (tm *term) since(mark int) string {
	s := tm.text()
	if mark > len(s) {
		return ""
	}
	return s[mark:]
}

func (tm *term) waitFor(what string, re *regexp.Regexp, mark int) {
	tm.t.Helper()
	eventually(tm.t, what, func() bool { return re.MatchString(tm.since(mark)) })
}

func (tm *term) typeKeys(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.stdin, s); err != nil {
		tm.t.Fatal(err)
	}
}

// widest returns the widest run of text printed after byte offset mark
// of the raw output: pieces between newlines and cursor movements (the
// renderer may move the cursor over unchanged lines instead of printing
// newlines), without escape sequences.
func (tm *term) widest(mark int) int {
	tm.mu.Lock()
	raw := tm.out.String()
	tm.mu.Unlock()
	if mark > len(raw) {
		return 0
	}
	w := 0
	for _, piece := range cursorMoves.Split(raw[mark:], -1) {
		w = max(w, ansi.StringWidth(ansi.Strip(piece)))
	}
	return w
}

// rawLen is the length of the raw output, a mark for widest.
func (tm *term) rawLen() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.Len()
}

var cursorMoves = regexp.MustCompile(`\r?\n|\r|\x1b\[[0-9;?]*[ABCDEFGHJKSTfhl]`)

func nextMessage(t *testing.T, n *chaski.Node, wait time.Duration) (*chaski.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return n.Next(ctx)
}

// A read-write viewer sees the node's dashboard with its peer, types a line
// that is published to the peer, and the screen follows a resize; the host
// key is created 0600 and reused by a second server.
func TestSSHDashboardKeysScreenResize(t *testing.T) {
	f := setup(t, Config{})
	var host gossh.PublicKey
	c, err := dial(t, f.srv.Addr(), f.rw, &host)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	st, err := os.Stat(f.srv.cfg.HostKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v", st.Mode().Perm())
	}

	tm := open(t, f.srv.Addr(), f.rw, 100, 30)
	// The header names the node and the edges pane lists the peer.
	tm.waitFor("dashboard with the peer", regexp.MustCompile(`hub[\s\S]*peer`), 0)
	if strings.Contains(tm.text(), "read-only") {
		t.Fatalf("a read-write viewer is shown read-only")
	}
	if w := tm.widest(0); w > 100 {
		t.Fatalf("a line of %d columns on a 100-column terminal", w)
	}
	eventually(t, "one viewer counted", func() bool { return f.srv.Sessions() == 1 })

	// A line and enter (the dashboard of a subscribed node starts typing in
	// its chat): the peer receives it.
	tm.typeKeys("hello from ssh\r")
	m, err := nextMessage(t, f.peer, waitTimeout)
	if err != nil {
		t.Fatalf("peer got no message: %v\nscreen:\n%s", err, tm.text())
	}
	if string(m.Data) != "hello from ssh" || m.Topic != "chat" || m.From != "hub" {
		t.Fatalf("peer got %q on %q from %q", m.Data, m.Topic, m.From)
	}

	// A message from the peer reaches the viewer's screen through the
	// event stream (the node's subscriber queue is not the viewer's).
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	mark := len(tm.text())
	if err := f.peer.Publish(ctx, "chat", []byte("answer from the peer")); err != nil {
		t.Fatal(err)
	}
	tm.waitFor("peer's message on screen", regexp.MustCompile(`answer from the peer`), mark)
	if _, err := nextMessage(t, f.node, waitTimeout); err != nil {
		t.Fatalf("the node's own subscriber queue lost the message: %v", err)
	}

	// Resize: the dashboard redraws at the new width.
	mark = tm.rawLen()
	if err := tm.sess.WindowChange(40, 140); err != nil {
		t.Fatal(err)
	}
	eventually(t, "redraw at 140 columns", func() bool { w := tm.widest(mark); return w > 100 && w <= 140 })

	// esc leaves the input line, q quits; the session ends with a goodbye.
	tm.typeKeys("\x1b")
	time.Sleep(200 * time.Millisecond)
	tm.typeKeys("q")
	eventually(t, "session end", func() bool {
		select {
		case <-tm.done:
			return true
		default:
			return false
		}
	})
	if !strings.Contains(tm.text(), "chaski: bye") {
		t.Fatalf("no goodbye: %q", tm.text())
	}

	// A second server on the same data dir reuses the host key.
	pem1, _ := os.ReadFile(f.srv.cfg.HostKeyPath)
	cfg2 := f.srv.cfg
	cfg2.Addr = "127.0.0.1:0"
	s2, err := Listen(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(context.Background())
	var host2 gossh.PublicKey
	c2, err := dial(t, s2.Addr(), f.rw, &host2)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	pem2, _ := os.ReadFile(f.srv.cfg.HostKeyPath)
	if !bytes.Equal(host.Marshal(), host2.Marshal()) || !bytes.Equal(pem1, pem2) {
		t.Fatalf("host key changed between servers")
	}
}

// A key that is not in the file is refused at authentication, and so is a
// client that offers no key (passwords are not offered).
func TestSSHWrongKeyRefused(t *testing.T) {
	f := setup(t, Config{})
	stranger, _ := newKey(t)
	_, err := dial(t, f.srv.Addr(), stranger, nil)
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("a stranger's key: %v", err)
	}
	_, err = gossh.Dial("tcp", f.srv.Addr(), &gossh.ClientConfig{User: "x", Auth: []gossh.AuthMethod{gossh.Password("hunter2")},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err == nil {
		t.Fatalf("password authentication accepted")
	}
	if f.srv.Sessions() != 0 {
		t.Fatalf("%d sessions", f.srv.Sessions())
	}
}

// A read-only key sees the dashboard marked read-only; the same keys that
// publish for a read-write viewer publish nothing, and the viewer is told.
func TestSSHReadOnlyCannotPublish(t *testing.T) {
	f := setup(t, Config{})
	tm := open(t, f.srv.Addr(), f.ro, 100, 30)
	tm.waitFor("read-only dashboard", regexp.MustCompile(`read-only`), 0)
	// The chat pane, i to type, a line, enter: refused, and said so.
	mark := len(tm.text())
	for _, k := range []string{"2", "i", "must not leave", "\r"} {
		tm.typeKeys(k)
		time.Sleep(150 * time.Millisecond) // separate reads, as a person types
	}
	tm.waitFor("refusal on screen", regexp.MustCompile(`read-only: this dashboard cannot publish`), mark)
	if m, err := nextMessage(t, f.peer, 2*time.Second); err == nil {
		t.Fatalf("the peer received %q from a read-only viewer", m.Data)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	// Closing an edge is refused too (pane 1, x on the selected edge).
	mark = len(tm.text())
	tm.typeKeys("\x1b")
	time.Sleep(150 * time.Millisecond)
	tm.typeKeys("1")
	time.Sleep(150 * time.Millisecond)
	tm.typeKeys("x")
	tm.waitFor("refusal on screen", regexp.MustCompile(`read-only: this dashboard cannot close edges`), mark)
	if !f.node.ConnectedTo(f.peer.ID()) {
		t.Fatalf("a read-only viewer closed an edge")
	}
	// And the backend itself refuses every change.
	v := viewer{Node: f.node, readOnly: true}
	ctx := context.Background()
	for name, err := range map[string]error{
		"publish":    v.Publish(ctx, "chat", []byte("x")),
		"close":      v.CloseEdge(f.peer.ID()),
		"delete":     v.StoreDelete("k"),
		"put":        v.StorePut("k", nil, 0),
		"subscribe":  v.Subscribe("other"),
		"save state": v.SaveState("chaski.tui.transfers", []byte("[]")),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := v.FetchWith(ctx, "k", chaski.FetchOptions{}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("fetch with: %v", err)
	}
	if _, err := (viewer{Node: f.node}).SendFile(ctx, "chat", "/etc", nil); !errors.Is(err, ErrNoFilesOverSSH) {
		t.Errorf("send file (a folder): %v", err)
	}
	if _, err := (viewer{Node: f.node}).PushFile(ctx, "chat", strings.NewReader("x"), "passwd", 1, nil); !errors.Is(err, ErrNoFilesOverSSH) {
		t.Errorf("push file: %v", err)
	}
}

// At most MaxSessions viewers; commands (ssh host cmd) are refused; Close
// ends every session with a notice.
func TestSSHLimitsAndClose(t *testing.T) {
	f := setup(t, Config{MaxSessions: 2})
	a := open(t, f.srv.Addr(), f.rw, 80, 24)
	b := open(t, f.srv.Addr(), f.ro, 80, 24)
	a.waitFor("first viewer", regexp.MustCompile(`hub`), 0)
	b.waitFor("second viewer", regexp.MustCompile(`hub`), 0)
	eventually(t, "two sessions", func() bool { return f.srv.Sessions() == 2 })
	c := open(t, f.srv.Addr(), f.rw, 80, 24)
	c.waitFor("third refused", regexp.MustCompile(`too many viewers`), 0)

	// A message from the peer reaches both viewers, and the node's own
	// consumer still gets it.
	ma, mb := len(a.text()), len(b.text())
	pctx, pcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer pcancel()
	if err := f.peer.Publish(pctx, "chat", []byte("to every viewer")); err != nil {
		t.Fatal(err)
	}
	a.waitFor("the message on the first viewer", regexp.MustCompile(`to every viewer`), ma)
	b.waitFor("the message on the second viewer", regexp.MustCompile(`to every viewer`), mb)
	if m, err := nextMessage(t, f.node, waitTimeout); err != nil || string(m.Data) != "to every viewer" {
		t.Fatalf("the node's consumer: %v %v", m, err)
	}

	// A command instead of a shell.
	cl, err := dial(t, f.srv.Addr(), f.rw, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput("cat /etc/passwd")
	if err == nil || strings.Contains(string(out), "root:") || !strings.Contains(string(out), "commands are not allowed") {
		t.Fatalf("command: %v %q", err, out)
	}
	// sftp is a subsystem: refused.
	s2, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.RequestSubsystem("sftp"); err == nil {
		t.Fatalf("sftp subsystem accepted")
	}
	// Port forwarding: refused.
	if conn, err := cl.Dial("tcp", f.node.Addr()); err == nil {
		conn.Close()
		t.Fatalf("direct-tcpip forwarding accepted")
	}
	cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tm := range []*term{a, b} {
		select {
		case <-tm.done:
		case <-time.After(waitTimeout):
			t.Fatalf("a session outlived Close")
		}
		if !strings.Contains(tm.text(), "the node stopped") {
			t.Errorf("no notice: %q", tm.text()[max(0, len(tm.text())-200):])
		}
	}
}

// A viewer that types nothing for the idle timeout is disconnected.
func TestSSHIdleTimeout(t *testing.T) {
	f := setup(t, Config{IdleTimeout: 700 * time.Millisecond})
	tm := open(t, f.srv.Addr(), f.rw, 80, 24)
	tm.waitFor("dashboard", regexp.MustCompile(`hub`), 0)
	select {
	case <-tm.done:
	case <-time.After(waitTimeout):
		t.Fatalf("idle session not closed")
	}
}

func TestAuthorizedKeysOptions(t *testing.T) {
	_, a := newKey(t)
	_, b := newKey(t)
	_, c := newKey(t)
	p := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(p, []byte(a+" plain\n"+ReadOnlyOption+" "+b+" ro\n"+`restrict,command="x" `+c+" restricted\n\n# comment\n"), 0o600)
	ks, err := loadAuthorizedKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{a: false, b: true, c: true}
	for line, ro := range want {
		k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		e, ok := ks.lookup(k)
		if !ok || e.readOnly != ro {
			t.Errorf("%s: found %v read-only %v, want %v", e.comment, ok, e.readOnly, ro)
		}
	}
	os.WriteFile(p, []byte("not a key\n"), 0o600)
	if _, err := loadAuthorizedKeys(p); err == nil {
		t.Fatalf("a broken file accepted")
	}
	// A host key others can read is refused.
	hk := filepath.Join(t.TempDir(), "hk")
	if _, err := loadOrCreateHostKey(hk); err != nil {
		t.Fatal(err)
	}
	os.Chmod(hk, 0o644)
	if _, err := loadOrCreateHostKey(hk); err == nil {
		t.Fatalf("a world-readable host key accepted")
	}
}

// Each session is drawn with its own renderer: a client on a dumb terminal
// gets no colour while another, at the same time, gets 256 colours.
func TestSSHColoursFollowTheClientTerminal(t *testing.T) {
	f := setup(t, Config{})
	dumb := openTerm(t, f.srv.Addr(), f.rw, "dumb", 80, 24)
	xterm := openTerm(t, f.srv.Addr(), f.ro, "xterm-256color", 80, 24)
	dumb.waitFor("dumb dashboard", regexp.MustCompile(`hub`), 0)
	xterm.waitFor("xterm dashboard", regexp.MustCompile(`hub`), 0)
	// SGR colour parameters: 30-37, 40-47, 90-97, 100-107, 38;5 / 48;5.
	colour := regexp.MustCompile(`\x1b\[[0-9;]*(3[0-8]|4[0-8]|9[0-7]|10[0-7])(;[0-9;]*)?m`)
	raw := func(tm *term) string {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		return tm.out.String()
	}
	eventually(t, "colour on the xterm", func() bool { return colour.MatchString(raw(xterm)) })
	if m := colour.FindString(raw(dumb)); m != "" {
		t.Fatalf("colour %q sent to a dumb terminal", m)
	}
}

// A viewer whose terminal stops reading (the session's writes block, as
// when its SSH window and socket are full) costs the node nothing: the
// node's consumer keeps receiving every message, the stuck viewer's events
// are dropped (and counted), and Close still returns.
func TestSSHStuckViewerNeverBlocksTheNode(t *testing.T) {
	stuck := make(chan struct{})
	var blocked atomic.Bool
	f := setup(t, Config{wrapOutput: func(ctx context.Context, w io.Writer) io.Writer {
		return writerFunc(func(p []byte) (int, error) {
			select {
			case <-stuck:
				blocked.Store(true)
				<-ctx.Done() // until the connection is closed
				return 0, io.ErrClosedPipe
			default:
				return w.Write(p)
			}
		})
	}})
	tm := open(t, f.srv.Addr(), f.rw, 100, 30)
	tm.waitFor("dashboard", regexp.MustCompile(`hub`), 0)
	time.Sleep(200 * time.Millisecond)
	close(stuck)

	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	var got atomic.Int64
	go func() {
		for range f.node.Messages() {
			got.Add(1)
		}
	}()
	const n = 50000
	start := time.Now()
	payload := bytes.Repeat([]byte("x"), 100)
	for i := 0; i < n; i++ {
		if err := f.peer.Publish(ctx, "chat", payload); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	eventually(t, "every message at the node's consumer", func() bool { return got.Load() == n })
	t.Logf("%d messages through the node in %v with a stuck viewer", n, time.Since(start))
	if !blocked.Load() {
		t.Fatalf("the viewer's output never blocked: the test proves nothing")
	}
	eventually(t, "the stuck viewer's messages dropped", func() bool { return f.srv.msgs.Dropped() > 0 })
	cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer ccancel()
	t0 := time.Now()
	if err := f.srv.Close(cctx); err != nil {
		t.Fatalf("Close with a stuck viewer: %v", err)
	}
	t.Logf("Close took %v", time.Since(t0))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// New sessions from one address are rate limited (wish's ratelimiter), and
// connections that never authenticate are capped.
func TestSSHRateAndConnectionLimits(t *testing.T) {
	f := setup(t, Config{Rate: 0.01, Burst: 2, MaxSessions: 1})
	for i := 0; i < 2; i++ {
		tm := open(t, f.srv.Addr(), f.rw, 80, 24)
		tm.waitFor("a session", regexp.MustCompile(`hub|too many viewers`), 0)
		tm.close()
		eventually(t, "session gone", func() bool { return f.srv.Sessions() == 0 })
	}
	tm := open(t, f.srv.Addr(), f.rw, 80, 24)
	tm.waitFor("the third refused", regexp.MustCompile(`rate limit exceeded`), 0)

	// MaxSessions 1: at most 4*1+4 = 8 connections, authenticated or not.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 8; i++ {
		c, err := net.Dial("tcp", f.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	eventually(t, "8 connections counted", func() bool { return f.srv.conns.Load() == 8 })
	conns[0].SetReadDeadline(time.Now().Add(waitTimeout))
	greet := make([]byte, 64)
	if n, err := conns[0].Read(greet); err != nil || !strings.HasPrefix(string(greet[:n]), "SSH-2.0-") {
		t.Fatalf("an admitted connection: %q %v", greet[:n], err)
	}
	c, err := net.Dial("tcp", f.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("a ninth idle connection got a server greeting")
	}
}

// A viewer's paths would name the server's files: /send is refused before
// any look at the path, and a pasted path of an existing server file is
// text, not a file to send.
func TestSSHViewerCannotReachServerFiles(t *testing.T) {
	f := setup(t, Config{})
	secret := filepath.Join(f.dir, "secret.txt")
	if err := os.WriteFile(secret, []byte("server-only"), 0o600); err != nil {
		t.Fatal(err)
	}
	tm := open(t, f.srv.Addr(), f.rw, 100, 30)
	tm.waitFor("dashboard", regexp.MustCompile(`hub`), 0)
	mark := len(tm.text())
	tm.typeKeys("/send " + secret + "\r")
	tm.waitFor("refusal", regexp.MustCompile(`files cannot be sent from this dashboard`), mark)
	// A bracketed paste of the path, then enter: a line of text (which,
	// starting with a slash, the chat takes for an unknown command).
	mark = len(tm.text())
	tm.typeKeys("\x1b[200~" + secret + "\x1b[201~")
	time.Sleep(150 * time.Millisecond)
	tm.typeKeys("\r")
	tm.waitFor("the paste taken as text", regexp.MustCompile(`unknown command`), mark)
	for _, tr := range f.node.Transfers() {
		t.Fatalf("a transfer started: %+v", tr)
	}
}

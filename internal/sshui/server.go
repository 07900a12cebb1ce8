// Package sshui serves the dashboard of a running node to SSH clients
// (`chaski node --ssh HOST:PORT --ssh-keys FILE`), with
// github.com/charmbracelet/wish (the Bubble Tea v1 line).
//
// Every session gets its own dashboard model, drawn with the session's own
// lipgloss renderer (so colours follow the client's terminal) and fed by its
// own bounded event watch on the node and its own bounded copy of the
// node's messages (see fanout): a viewer that stalls loses dashboard
// updates, the node never waits for it.
//
// What a client can reach: public-key authentication against an
// authorized_keys file, then the dashboard and nothing else: no shell, no
// command, no subsystem (sftp), no port or agent forwarding. Keys marked
// read-only watch but cannot change the node (the backend refuses, see
// viewer). Sessions are capped, idle sessions are closed, new sessions are
// rate limited per address, and Close ends every session.
package sshui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	charmlog "github.com/charmbracelet/log"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/charmbracelet/wish/activeterm"
	bm "github.com/charmbracelet/wish/bubbletea"
	"github.com/charmbracelet/wish/logging"
	"github.com/charmbracelet/wish/ratelimiter"
	"github.com/muesli/termenv"
	"golang.org/x/time/rate"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/tui"
)

// Defaults of Config.
const (
	DefaultMaxSessions = 8
	DefaultIdleTimeout = 15 * time.Minute
	// New sessions per client address: one a second on average, bursts
	// of five.
	DefaultRate  = rate.Limit(1)
	DefaultBurst = 5
)

// Config configures a Server.
type Config struct {
	Node *chaski.Node
	// Addr is the address to listen on, host:port.
	Addr string
	// AuthorizedKeys is the path of an OpenSSH authorized_keys file: the
	// keys allowed in. A line starting with the option chaski-read-only
	// (or OpenSSH's restrict) admits a read-only viewer.
	AuthorizedKeys string
	// HostKeyPath is where the server's ed25519 host key is kept; it is
	// created (mode 0600) when missing. Usually
	// <data-dir>/ssh_host_ed25519_key.
	HostKeyPath string
	MaxSessions int           // viewers at once (0: DefaultMaxSessions)
	IdleTimeout time.Duration // a session with no input this long is closed (0: DefaultIdleTimeout)
	Rate        rate.Limit    // new sessions per second per client address (0: DefaultRate)
	Burst       int           // (0: DefaultBurst)
	Theme       string        // dashboard theme
	Title       string        // dashboard title ("" = "chaski over ssh")
	Logger      *slog.Logger  // connections and refusals (nil: discarded)

	// wrapOutput, for tests, wraps each session's output (to simulate a
	// terminal that stops reading).
	wrapOutput func(ctx context.Context, w io.Writer) io.Writer
}

// Server serves the dashboard over SSH.
type Server struct {
	cfg  Config
	keys *keySet
	msgs *fanout
	srv  *ssh.Server
	ln   net.Listener
	log  *slog.Logger

	served chan struct{} // closed when Serve returned

	mu       sync.Mutex
	sessions map[*session]struct{}
	closed   bool
	handlers sync.WaitGroup
	active   atomic.Int32 // sessions admitted
	conns    atomic.Int32 // open TCP connections, authenticated or not
}

type session struct {
	prog *tea.Program
	last atomic.Int64 // unix nanos of the last input
}

// Listen starts serving. The caller must Close the server before the node.
func Listen(cfg Config) (*Server, error) {
	if cfg.Node == nil {
		return nil, errors.New("sshui: no node")
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Title == "" {
		cfg.Title = "chaski over ssh"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys, err := loadAuthorizedKeys(cfg.AuthorizedKeys)
	if err != nil {
		return nil, err
	}
	hostPEM, err := loadOrCreateHostKey(cfg.HostKeyPath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, keys: keys, log: log, msgs: newFanout(cfg.Node), sessions: map[*session]struct{}{}, served: make(chan struct{})}
	// wish's middleware logs through charmbracelet/log's default logger,
	// to stderr (for instance every viewer that drops its connection):
	// send that to the node's log instead, at debug level.
	charmlog.SetDefault(charmlog.NewWithOptions(lineLogger{log}, charmlog.Options{}))
	srv, err := wish.NewServer(
		wish.WithHostKeyPEM(hostPEM),
		wish.WithPublicKeyAuth(func(_ ssh.Context, key ssh.PublicKey) bool {
			_, ok := s.keys.lookup(key)
			if !ok {
				s.log.Info("ssh key refused", "fingerprint", fingerprint(key))
			}
			return ok
		}),
		// The transport's own timeout: it covers a client that stalls
		// in the handshake, and a viewer whose terminal stops reading
		// (writes then block until it).
		wish.WithIdleTimeout(cfg.IdleTimeout),
		wish.WithVersion("chaski"),
		wish.WithMiddleware(
			// Listed innermost first: a session goes through the rate
			// limiter, logging, the checks and activeterm, then the
			// dashboard.
			bm.MiddlewareWithProgramHandler(s.program, termenv.Ascii),
			activeterm.Middleware(),
			s.admit,
			logging.MiddlewareWithLogger(printfLogger{log}),
			ratelimiter.Middleware(ratelimiter.NewRateLimiter(cfg.Rate, cfg.Burst, 4096)),
		),
	)
	if err != nil {
		return nil, err
	}
	// No port forwarding (nil callbacks deny it), no subsystems, and only
	// the session channel.
	srv.LocalPortForwardingCallback = nil
	srv.ReversePortForwardingCallback = nil
	srv.SubsystemHandlers = map[string]ssh.SubsystemHandler{}
	srv.ChannelHandlers = map[string]ssh.ChannelHandler{"session": ssh.DefaultSessionHandler}
	srv.RequestHandlers = map[string]ssh.RequestHandler{}
	srv.ConnCallback = s.connCallback
	s.srv = srv
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s.ln = ln
	go func() {
		defer close(s.served)
		// Close closes the listener first, so an accept error then is
		// the normal end.
		if err := srv.Serve(ln); err != nil && !errors.Is(err, ssh.ErrServerClosed) && !s.isClosed() {
			s.log.Warn("ssh server stopped", "err", err.Error())
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Sessions returns the number of viewers connected.
func (s *Server) Sessions() int { return int(s.active.Load()) }

// connCallback bounds open connections, authenticated or not, so that a
// flood of idle TCP connections cannot grow the server without bound.
func (s *Server) connCallback(_ ssh.Context, c net.Conn) net.Conn {
	limit := int32(4*s.cfg.MaxSessions + 4)
	if s.conns.Add(1) > limit {
		s.conns.Add(-1)
		s.log.Info("ssh connection refused: too many connections", "remote", c.RemoteAddr().String())
		return nil
	}
	return &countedConn{Conn: c, n: &s.conns}
}

type countedConn struct {
	net.Conn
	n    *atomic.Int32
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.n.Add(-1) })
	return c.Conn.Close()
}

// admit refuses commands (ssh host cmd), enforces the session cap, and runs
// the dashboard; it also keeps the session table Close uses.
func (s *Server) admit(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if len(sess.Command()) > 0 || sess.Subsystem() != "" {
			wish.Fatalln(sess, "chaski: this server only shows the dashboard; commands are not allowed")
			return
		}
		ent, ok := s.keys.lookup(sess.PublicKey())
		if !ok {
			// Not reachable: authentication checked the key. Be safe.
			wish.Fatalln(sess, "chaski: key not authorized")
			return
		}
		s.mu.Lock()
		closed := s.closed
		if !closed {
			s.handlers.Add(1)
		}
		s.mu.Unlock()
		if closed {
			wish.Fatalln(sess, "chaski: the node is stopping")
			return
		}
		defer s.handlers.Done()
		if n := s.active.Add(1); int(n) > s.cfg.MaxSessions {
			s.active.Add(-1)
			s.log.Info("ssh session refused: too many viewers", "remote", sess.RemoteAddr().String(), "max", s.cfg.MaxSessions)
			wish.Fatalf(sess, "chaski: too many viewers (at most %d); try again later\r\n", s.cfg.MaxSessions)
			return
		}
		defer s.active.Add(-1)
		sess.Context().SetValue(entryKey{}, ent)
		s.log.Info("ssh viewer connected", "remote", sess.RemoteAddr().String(), "key", ent.comment, "read_only", ent.readOnly)
		next(sess)
		if m, ok := sess.Context().Value(modelKey{}).(interface{ Close() }); ok {
			m.Close()
		}
		if stop, ok := sess.Context().Value(msgsKey{}).(func()); ok {
			stop()
		}
		if se, ok := sess.Context().Value(sessionKey{}).(*session); ok {
			s.mu.Lock()
			delete(s.sessions, se)
			s.mu.Unlock()
		}
		msg := "chaski: bye\r\n"
		if s.isClosed() {
			msg = "chaski: the node stopped\r\n"
		}
		_, _ = io.WriteString(sess, msg)
		_ = sess.Exit(0)
	}
}

type entryKey struct{}
type modelKey struct{}
type sessionKey struct{}
type msgsKey struct{}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// program builds one viewer's dashboard: its own model, renderer and
// input, and the watch that closes it when idle.
func (s *Server) program(sess ssh.Session) *tea.Program {
	ent, _ := sess.Context().Value(entryKey{}).(keyEntry)
	themeName := s.cfg.Theme
	if noColor(sess) {
		themeName = "mono"
	}
	msgs, stopMsgs := s.msgs.subscribe()
	sess.Context().SetValue(msgsKey{}, stopMsgs)
	model := tui.NewModel(viewer{Node: s.cfg.Node, readOnly: ent.readOnly, msgs: msgs}, tui.Options{
		Theme:    themeName,
		Title:    s.cfg.Title,
		Renderer: sessionRenderer(sess),
		ReadOnly: ent.readOnly,
		// Paths a viewer types or pastes would name the server's files.
		NoLocalFiles: true,
	})
	se := &session{}
	se.last.Store(time.Now().UnixNano())
	in := &activityReader{r: sess, last: &se.last}
	var out io.Writer = sess
	if s.cfg.wrapOutput != nil {
		out = s.cfg.wrapOutput(sess.Context(), out)
	}
	se.prog = tea.NewProgram(model,
		tea.WithInput(in), tea.WithOutput(out),
		tea.WithAltScreen(),
		// The node owns the process's signals.
		tea.WithoutSignalHandler(),
		tea.WithContext(sess.Context()),
	)
	sess.Context().SetValue(modelKey{}, model)
	sess.Context().SetValue(sessionKey{}, se)
	s.mu.Lock()
	s.sessions[se] = struct{}{}
	if s.closed {
		// Close ran between admit and here: it did not see this one.
		se.prog.Quit()
	}
	s.mu.Unlock()
	go s.idleWatch(sess.Context(), se)
	return se.prog
}

// idleWatch quits a session's dashboard when the viewer has typed nothing
// for the idle timeout. (The transport's idle timeout cannot do this: the
// dashboard's repaints keep the connection busy.)
func (s *Server) idleWatch(ctx context.Context, se *session) {
	period := min(s.cfg.IdleTimeout/4, 10*time.Second)
	t := time.NewTicker(max(period, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if time.Since(time.Unix(0, se.last.Load())) >= s.cfg.IdleTimeout {
				s.log.Info("ssh viewer idle: closing", "idle", s.cfg.IdleTimeout.String())
				se.prog.Quit()
				return
			}
		}
	}
}

// activityReader notes the time of every read that returns bytes.
type activityReader struct {
	r    io.Reader
	last *atomic.Int64
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// Close ends every session (each viewer reads "the node stopped") and
// stops the server; it returns once every session handler has ended, or
// with ctx's error.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for se := range s.sessions {
		// Quit waits until the program takes the message, which a
		// viewer stuck in a write (a terminal that stopped reading)
		// never does: it ends when its connection is closed below.
		go se.prog.Quit()
	}
	s.mu.Unlock()
	// No new connections; sessions quit and say goodbye.
	_ = s.ln.Close()
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	case <-ctx.Done():
	}
	// Then drop every connection still open: handshakes in progress,
	// viewers that did not take their goodbye.
	_ = s.srv.Close()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	<-s.served
	return err
}

// closeGrace is how long Close lets sessions end by themselves.
const closeGrace = 2 * time.Second

type lineLogger struct{ l *slog.Logger }

func (w lineLogger) Write(p []byte) (int, error) {
	w.l.Debug("ssh: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

type printfLogger struct{ l *slog.Logger }

func (p printfLogger) Printf(format string, v ...any) {
	p.l.Info(fmt.Sprintf(format, v...))
}

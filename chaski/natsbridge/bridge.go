// Package natsbridge mirrors topics of a Chaski mesh to a NATS cluster and
// back: topic T is subject P.T (P is the prefix, "chaski" by default). A
// message published on the mesh appears on its subject, and a message
// published there by any NATS client reaches the mesh's subscribers, once.
//
// Loops and duplicates are prevented by message ids. Every message carries
// its Chaski id (origin node and sequence number) as NATS headers
// (Chaski-Id, Chaski-From, Chaski-Time; Nats-Msg-Id as well when a
// JetStream stream is used, so JetStream drops what two bridges both
// publish). A bridge injects what it receives from NATS into the mesh under
// that id, so the node's duplicate filter drops a message that was already
// there (its own echo, a copy from a second bridge in the same mesh) and the
// node's taps never see injected messages, so nothing goes back out. A
// message that a plain NATS client published has no Chaski id: the bridge
// gives it one, taken from the JetStream stream sequence when it came from
// the stream (the same id at every bridge), else from a counter of its own.
//
// With Config.Stream the topics are also kept in a JetStream stream and the
// bridge reads them through a durable consumer named after the node, so a
// node that was offline replays what it missed. With Config.KV the store can
// write through to a JetStream key-value bucket and fall back to it.
//
// See docs/ARCHITECTURE.md ("When one mesh is not enough") for the
// topologies and their guarantees.
package natsbridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/wire"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names. Chaski-Id is "<origin node id>/<sequence number>" (the
// origin as UUID text, the number in decimal); Chaski-Time is the
// publication time in Unix nanoseconds; Chaski-From the publisher's name.
const (
	HeaderID   = "Chaski-Id"
	HeaderFrom = "Chaski-From"
	HeaderTime = "Chaski-Time"
	// HeaderSig carries a signed message's proof of origin: the origin's
	// Ed25519 public key and signature (96 bytes, docs/PROTOCOL.md §5),
	// base64 (standard alphabet, no padding). A bridge that brings the
	// message into another mesh checks it and sends the message on signed.
	HeaderSig = "Chaski-Sig"
)

// Defaults and bounds.
const (
	DefaultPrefix = "chaski"
	// DefaultQueue is how many mesh messages may wait for the NATS writer;
	// a full queue holds the mesh back for QueuePatience, then drops (and
	// counts) what does not fit.
	DefaultQueue  = 8192
	QueuePatience = 500 * time.Millisecond
	// DefaultHold is how many messages the bridge holds while it is
	// disconnected from NATS (and, with a stream, until JetStream
	// acknowledges them); older ones are dropped and counted beyond it.
	DefaultHold = 65536
	// DefaultHoldBytes bounds the same buffer in payload bytes.
	DefaultHoldBytes = 16 << 20
	// Inbound subscriptions are limited to this many pending messages
	// (and InPendingBytes); NATS drops, and the bridge counts, the rest
	// when the mesh cannot keep up.
	InPendingMsgs  = 65536
	InPendingBytes = 16 << 20
	// asyncAckTimeout is how long a JetStream publication waits for its
	// acknowledgement before it is sent again (Nats-Msg-Id makes resending
	// harmless).
	asyncAckTimeout = 5 * time.Second
	maxAsyncPending = 4096
)

// BridgeMemoryLimit is the soft memory limit (runtime/debug.SetMemoryLimit)
// the chaski command sets for a bridging node when GOMEMLIMIT is not set.
// The command runs with GOGC=400 for throughput, which lets the heap grow to
// five times what is live; a bridge keeps more alive (NATS buffers, the
// hold buffer) and five times that passed 64 MiB in the benchmark. Below
// the limit nothing changes; near it the collector runs more often.
const BridgeMemoryLimit = 48 << 20

// Sentinel errors; the wrapped text is one sentence for the user.
var (
	ErrBadURL     = errors.New("natsbridge: bad NATS URL")
	ErrConnect    = errors.New("natsbridge: cannot connect to NATS")
	ErrAuth       = errors.New("natsbridge: NATS refused the credentials")
	ErrPermission = errors.New("natsbridge: NATS permission denied")
	ErrTopic      = errors.New("natsbridge: topic cannot be bridged")
	ErrJetStream  = errors.New("natsbridge: JetStream unavailable")
	ErrClosed     = errors.New("natsbridge: bridge closed")
	ErrNoKV       = errors.New("natsbridge: no key-value bucket configured")
)

// Config configures a bridge. Only URLs is required.
type Config struct {
	// URLs of the NATS servers (nats://host:port, tls://..., ws://...).
	URLs []string
	// Creds is a NATS credentials file (JWT and seed), optional.
	Creds string
	// Prefix of the subjects; default "chaski".
	Prefix string
	// Topics are mirrored both ways; default: the node's subscriptions at
	// Start. The node is subscribed to each of them.
	Topics []string
	// Stream names a JetStream stream that keeps the topics (created with
	// subjects "<prefix>.>" when missing); the bridge then reads through a
	// durable consumer (Durable) and replays what it missed.
	Stream string
	// Durable is the consumer's name; default "chaski_" + the node's name
	// (so give nodes stable names).
	Durable string
	// KV names a JetStream key-value bucket for Bridge.StorePut and
	// Bridge.Fetch (created when missing).
	KV string
	// Queue and Hold bound the outbound buffers (DefaultQueue,
	// DefaultHold, DefaultHoldBytes).
	Queue, Hold, HoldBytes int
	// BatchAnnouncements announces a burst of claimed plain NATS messages
	// to the other bridges in one message (Chaski-Batch, docs/PROTOCOL.md
	// §13) instead of one each, which makes NATS → mesh about half as fast
	// again (docs/PERFORMANCE.md). Every bridge on the cluster must know
	// batches (this version or later): one that does not ignores them, and
	// its mesh misses the messages they carry. Off by default, so that a
	// cluster can be upgraded one bridge at a time; turn it on once all are.
	// Batches are understood whether or not this is set.
	BatchAnnouncements bool
	// ConnectTimeout bounds the first connection; default 5s.
	ConnectTimeout time.Duration
	// Options are extra nats.go options (TLS: nats.Secure, nats.RootCAs,
	// nats.ClientCert; tokens, user and password...).
	Options []nats.Option
	Logger  *slog.Logger
}

// State of the bridge's connection.
type State string

// States.
const (
	StateConnecting   State = "connecting"
	StateUp           State = "up"
	StateReconnecting State = "reconnecting"
	StateClosed       State = "closed"
	// StateError: refused for good (credentials, permissions); see Fatal.
	StateError State = "error"
)

// Info is a snapshot of the bridge, for `chaski status` and the dashboard.
type Info struct {
	URLs    []string      `json:"urls"`
	Server  string        `json:"server"` // the server connected to, "" when none
	State   State         `json:"state"`
	Since   time.Time     `json:"since"` // of the state
	RTT     time.Duration `json:"rtt_ns"`
	Err     string        `json:"error,omitempty"` // the last error
	Prefix  string        `json:"prefix"`
	Topics  []string      `json:"topics"`
	Stream  string        `json:"stream,omitempty"`
	KV      string        `json:"kv,omitempty"`
	MsgsIn  uint64        `json:"msgs_in"`  // NATS -> mesh, injected
	MsgsOut uint64        `json:"msgs_out"` // mesh -> NATS, handed to NATS
	// Duplicates counts messages from NATS the mesh had already seen.
	Duplicates uint64 `json:"duplicates"`
	// Pending counts messages waiting to go to NATS: queued, held while
	// disconnected, or (with a stream) not yet acknowledged.
	Pending int `json:"pending"`
	// Dropped counts mesh messages that never reached NATS (buffers full);
	// InDropped counts NATS messages dropped because the mesh was slower.
	Dropped   uint64 `json:"dropped"`
	InDropped uint64 `json:"in_dropped"`
}

// StateEvent is emitted on the node's event stream (Node.Watch) when the
// bridge connects (Up) or loses its connection.
type StateEvent struct {
	chaski.EventBase
	Up     bool
	URL    string
	Reason string
}

// Bridge mirrors topics between a node and NATS. Create one with Start.
type Bridge struct {
	cfg    Config
	node   *chaski.Node
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	jsPub  jetstream.JetStream // with async publish options (stream mode)
	topics map[string]string   // topic -> subject
	subs   []*nats.Subscription
	anns   []*announcer // core NATS only: one per topic
	cons   jetstream.ConsumeContext
	kv     *KV

	// synthetic origin of messages from plain NATS clients, and the
	// stream's origin for messages read from the stream
	plainOrigin  wire.NodeID
	plainSeq     atomic.Uint64
	plainIDText  string // plainOrigin as text, with the '/'
	streamOrigin wire.NodeID

	out      chan *chaski.Message
	retry    chan *nats.Msg
	wake     chan struct{}
	removeFn func()
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	close1   sync.Once
	fatal    chan error
	fatal1   sync.Once

	held      []*nats.Msg // writer goroutine only
	scratch   nats.Msg    // writer goroutine only, with:
	scratchH  headerScratch
	lastTopic string // the topic of the last message written, and its subject
	lastSubj  string
	heldBytes int
	heldN     atomic.Int64

	mu       sync.Mutex
	state    State
	since    time.Time
	lastErr  string
	fatalErr string // what stopped the bridge for good
	server   string

	rtt        atomic.Int64
	msgsIn     atomic.Uint64
	msgsOut    atomic.Uint64
	dups       atomic.Uint64
	dropped    atomic.Uint64
	inDropped  atomic.Uint64
	unacked    atomic.Int64
	lastDrop   atomic.Int64 // unix nanos of the last drop by observe
	closedFlag atomic.Bool
}

// Start connects to NATS, subscribes the node to the bridged topics and
// starts mirroring. ctx bounds the connection and set-up. Errors wrap one of
// the sentinel errors with a sentence that names the server, file or
// subject involved.
func Start(ctx context.Context, node *chaski.Node, cfg Config) (*Bridge, error) {
	if err := cfg.defaults(node); err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, node: node, log: cfg.Logger, topics: make(map[string]string),
		out: make(chan *chaski.Message, cfg.Queue), retry: make(chan *nats.Msg, maxAsyncPending),
		wake: make(chan struct{}, 1), fatal: make(chan error, 1), state: StateConnecting, since: time.Now()}
	for _, t := range cfg.Topics {
		subj, err := Subject(cfg.Prefix, t)
		if err != nil {
			return nil, err
		}
		b.topics[t] = subj
	}
	b.plainOrigin = deriveID("chaski-nats-plain\x00" + node.ID())
	b.plainIDText = uuid.UUID(b.plainOrigin).String() + "/"
	b.streamOrigin = deriveID("chaski-nats-stream\x00" + cfg.Stream)

	nc, err := connect(ctx, cfg, b)
	if err != nil {
		return nil, err
	}
	b.nc = nc
	b.setState(StateUp, "")
	b.server = redact(nc.ConnectedUrl())
	b.ctx, b.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*Bridge, error) {
		b.cancel()
		nc.Close()
		return nil, err
	}
	if cfg.Stream != "" || cfg.KV != "" {
		js, err := jetstream.New(nc)
		if err != nil {
			return fail(fmt.Errorf("%w: %v", ErrJetStream, err))
		}
		b.js = js
	}
	if cfg.Stream != "" {
		if err := b.setupStream(ctx); err != nil {
			return fail(err)
		}
	} else {
		for t, subj := range b.topics {
			if err := b.subscribeCore(t, subj); err != nil {
				return fail(err)
			}
		}
		// A round trip makes the server answer the subscriptions: a
		// permission violation arrives before the pong.
		if err := nc.FlushWithContext(ctx); err != nil {
			return fail(fmt.Errorf("%w: %v", ErrConnect, err))
		}
		if err := nc.LastError(); err != nil {
			return fail(b.explain(err, ""))
		}
	}
	if cfg.KV != "" {
		kv, err := bindKV(ctx, b.js, cfg.KV)
		if err != nil {
			return fail(err)
		}
		b.kv = kv
	}
	if err := node.Subscribe(cfg.Topics...); err != nil {
		return fail(err)
	}
	b.removeFn = node.AddTap(&chaski.Tap{Wants: b.wants, Observe: b.observe})
	b.wg.Add(3)
	go b.writer()
	go b.monitor()
	go func() {
		defer b.wg.Done()
		select {
		case <-node.Done():
			go b.Close()
		case <-b.ctx.Done():
		}
	}()
	b.emit(true, "")
	b.log.Info("nats bridge up", "server", b.server, "topics", strings.Join(cfg.Topics, ","), "stream", cfg.Stream)
	return b, nil
}

func (c *Config) defaults(node *chaski.Node) error {
	if len(c.URLs) == 0 {
		return fmt.Errorf("%w: no URL given", ErrBadURL)
	}
	for _, u := range c.URLs {
		if err := checkURL(u); err != nil {
			return err
		}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !validToken(c.Prefix, true) {
		return fmt.Errorf("%w: prefix %q is not a NATS subject (no spaces, '*' or '>')", ErrTopic, c.Prefix)
	}
	if len(c.Topics) == 0 {
		c.Topics = node.Subscriptions()
	}
	if c.Durable == "" {
		c.Durable = "chaski_" + sanitizeName(node.Name())
	}
	if c.Queue <= 0 {
		c.Queue = DefaultQueue
	}
	if c.Hold <= 0 {
		c.Hold = DefaultHold
	}
	if c.HoldBytes <= 0 {
		c.HoldBytes = DefaultHoldBytes
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Creds != "" {
		if _, err := os.Stat(c.Creds); err != nil {
			return fmt.Errorf("%w: cannot read the credentials file %s: %v", ErrAuth, c.Creds, errors.Unwrap(err))
		}
	}
	return nil
}

// Subject returns the NATS subject of topic under prefix, or an error when
// the topic contains what a subject cannot (spaces, '*', '>', empty tokens).
func Subject(prefix, topic string) (string, error) {
	if !validToken(topic, false) {
		return "", fmt.Errorf("%w: %q is not a valid NATS subject token sequence (no spaces, '*', '>' or empty parts)", ErrTopic, topic)
	}
	return prefix + "." + topic, nil
}

func validToken(s string, prefix bool) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || part == "*" || part == ">" {
			return false
		}
		if strings.ContainsAny(part, " \t\r\n*>") {
			return false
		}
	}
	return true
}

func sanitizeName(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	return sb.String()
}

func checkURL(raw string) error {
	s := raw
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrBadURL, raw, errors.Unwrap(err))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%w %q: scheme %q (use nats://, tls://, ws:// or wss://)", ErrBadURL, raw, u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w %q: no host", ErrBadURL, raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("%w %q: bad port %q", ErrBadURL, raw, p)
		}
	}
	return nil
}

// redact hides a password in a URL shown to users.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}

// Redacted returns the URLs as one comma-separated string with passwords
// hidden, for showing them.
func Redacted(urls []string) string { return redactAll(urls) }

// redactAll is the URLs as one comma-separated string, passwords hidden.
func redactAll(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		out[i] = redact(u)
	}
	return strings.Join(out, ",")
}

func deriveID(s string) wire.NodeID {
	sum := sha256.Sum256([]byte(s))
	var id wire.NodeID
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x50 // shaped like a name-based UUID
	id[8] = id[8]&0x3f | 0x80
	return id
}

func connect(ctx context.Context, cfg Config, b *Bridge) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("chaski " + b.node.Name()),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// The bridge holds what it cannot send itself (counted, bounded);
		// nats.go's own reconnect buffer would drop silently.
		nats.ReconnectBufSize(-1),
		nats.NoEcho(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			reason := "connection lost"
			if err != nil {
				reason += ": " + strings.TrimPrefix(err.Error(), "nats: ")
			}
			b.setState(StateReconnecting, reason)
			b.emit(false, reason)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.mu.Lock()
			b.server = redact(nc.ConnectedUrl())
			b.mu.Unlock()
			b.setState(StateUp, "")
			b.emit(true, "reconnected")
			select {
			case b.wake <- struct{}{}:
			default:
			}
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if b.closedFlag.Load() {
				return
			}
			reason := "connection closed"
			if err := nc.LastError(); err != nil {
				reason = b.explain(err, "").Error()
			}
			b.setState(StateClosed, reason)
			b.emit(false, reason)
			b.fail(errors.New(reason))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				return // counted from the subscriptions' Dropped
			}
			e := b.explain(err, "")
			b.mu.Lock()
			b.lastErr = e.Error()
			b.mu.Unlock()
			b.log.Warn("nats", "error", e)
			if errors.Is(e, ErrPermission) || errors.Is(e, ErrAuth) {
				b.fail(e)
			}
		}),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	opts = append(opts, cfg.Options...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, connectErr(cfg, r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("%w: %s: %v", ErrConnect, redactAll(cfg.URLs), ctx.Err())
	}
}

func connectErr(cfg Config, err error) error {
	where := redactAll(cfg.URLs)
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		strings.Contains(strings.ToLower(err.Error()), "authorization"):
		what := "the credentials given"
		if cfg.Creds != "" {
			what = "the credentials in " + cfg.Creds
		}
		return fmt.Errorf("%w: the NATS server at %s refused %s (%v)", ErrAuth, where, what, err)
	case errors.Is(err, nats.ErrNoServers):
		var op *net.OpError
		if errors.As(err, &op) {
			return fmt.Errorf("%w: no NATS server answers at %s (%v)", ErrConnect, where, op.Err)
		}
		return fmt.Errorf("%w: no NATS server answers at %s", ErrConnect, where)
	case cfg.Creds != "" && !errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w: cannot use the credentials file %s or reach %s (%v)", ErrAuth, cfg.Creds, where, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrConnect, where, err)
}

// explain turns a nats.go error into a sentence wrapping a sentinel.
func (b *Bridge) explain(err error, subject string) error {
	switch {
	case errors.Is(err, nats.ErrPermissionViolation):
		msg := err.Error()
		if i := strings.Index(strings.ToLower(msg), "permissions violation"); i >= 0 {
			msg = msg[i:]
		}
		return fmt.Errorf("%w: the NATS server denies this user: %s", ErrPermission, msg)
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if subject != "" {
		return fmt.Errorf("%w: subject %s: %v", ErrConnect, subject, err)
	}
	return err
}

func (b *Bridge) fail(err error) {
	b.fatal1.Do(func() {
		b.mu.Lock()
		b.fatalErr = err.Error()
		b.mu.Unlock()
		b.fatal <- err
	})
}

// Fatal delivers the error that stopped the bridge for good, if one does:
// credentials refused or revoked, permission denied on a subject, the
// connection closed for good. Headless commands exit with it.
func (b *Bridge) Fatal() <-chan error { return b.fatal }

func (b *Bridge) setState(s State, reason string) {
	b.mu.Lock()
	if b.state != s {
		b.state, b.since = s, time.Now()
	}
	if reason != "" {
		b.lastErr = reason
	}
	b.mu.Unlock()
}

func (b *Bridge) emit(up bool, reason string) {
	b.mu.Lock()
	srv := b.server
	b.mu.Unlock()
	if srv == "" {
		srv = redactAll(b.cfg.URLs)
	}
	b.node.Emit(&StateEvent{EventBase: chaski.EventBase{At: time.Now()}, Up: up, URL: srv, Reason: reason})
}

// Info returns the bridge's state and counters.
func (b *Bridge) Info() Info {
	b.mu.Lock()
	in := Info{URLs: strings.Split(redactAll(b.cfg.URLs), ","), Server: b.server, State: b.state, Since: b.since,
		Err: b.lastErr, Prefix: b.cfg.Prefix, Stream: b.cfg.Stream, KV: b.cfg.KV}
	b.mu.Unlock()
	if in.State != StateUp {
		in.Server = ""
	}
	if b.fatalErr != "" {
		in.State, in.Err = StateError, b.fatalErr
	}
	in.Topics = append([]string(nil), b.cfg.Topics...)
	in.RTT = time.Duration(b.rtt.Load())
	in.MsgsIn, in.MsgsOut = b.msgsIn.Load(), b.msgsOut.Load()
	in.Duplicates = b.dups.Load()
	in.Pending = len(b.out) + int(b.heldN.Load()) + int(b.unacked.Load())
	in.Dropped = b.dropped.Load()
	in.InDropped = b.inDropped.Load()
	for _, s := range b.subs {
		if d, err := s.Dropped(); err == nil {
			in.InDropped += uint64(d)
		}
	}
	return in
}

func (b *Bridge) wants(topic string) bool {
	_, ok := b.topics[topic]
	return ok
}

// observe is the node's tap: it queues a mesh message for NATS. When the
// queue is full it waits up to QueuePatience (backpressure: the mesh slows
// to NATS's pace), then drops the message and counts it; for a second
// after a drop it does not wait again, so a NATS connection that makes no
// progress costs the mesh one patience, not one per message.
func (b *Bridge) observe(m *chaski.Message, _ bool) {
	if m.Bridged {
		return // came from NATS (or another system) through a bridge of this mesh
	}
	select {
	case b.out <- m:
		return
	default:
	}
	if last := b.lastDrop.Load(); last != 0 && time.Since(time.Unix(0, last)) < time.Second {
		b.dropped.Add(1)
		return
	}
	t := time.NewTimer(QueuePatience)
	defer t.Stop()
	select {
	case b.out <- m:
	case <-t.C:
		b.dropped.Add(1)
		b.lastDrop.Store(time.Now().UnixNano())
	case <-b.ctx.Done():
		b.dropped.Add(1)
	}
}

// toNATS builds the NATS message of a mesh message.
func (b *Bridge) toNATS(m *chaski.Message) *nats.Msg {
	id := m.FromID + "/" + strconv.FormatUint(m.Seq, 10)
	h := nats.Header{
		HeaderID:   []string{id},
		HeaderFrom: []string{m.From},
		HeaderTime: []string{strconv.FormatInt(m.Time.UnixNano(), 10)},
	}
	if b.cfg.Stream != "" {
		h[jetstream.MsgIDHeader] = []string{id}
	}
	if len(m.Signature) > 0 {
		h[HeaderSig] = []string{base64.RawStdEncoding.EncodeToString(m.Signature)}
	}
	return &nats.Msg{Subject: b.topics[m.Topic], Header: h, Data: m.Data}
}

// headerScratch is a reused header map whose values are written in place
// (through the slices kept here, without map look-ups) and whose id and
// time values are views of reused buffers (see transient).
type headerScratch struct {
	h                 nats.Header
	id, from, tm      []string // the map's value slices
	idBuf, timeBuf    []byte
	sig               []string // Chaski-Sig's value slice, in h while hasSig
	sigBuf            []byte
	hasSig            bool
	idPrefix          string // the id text up to and including '/', when fixed
	withFrom, started bool
}

func (s *headerScratch) init(withFrom bool) {
	s.id, s.tm = []string{""}, []string{""}
	s.h = nats.Header{HeaderID: s.id, HeaderTime: s.tm}
	if withFrom {
		s.from = []string{""}
		s.h[HeaderFrom] = s.from
	}
	s.withFrom, s.started = withFrom, true
}

// set fills the values: id "<origin>/<seq>" (origin "" means idPrefix),
// the time in Unix nanoseconds, and from when the map has it.
func (s *headerScratch) set(origin string, seq uint64, unixNano int64, from string) {
	if origin == "" {
		s.idBuf = append(s.idBuf[:0], s.idPrefix...)
	} else {
		s.idBuf = append(append(s.idBuf[:0], origin...), '/')
	}
	s.idBuf = strconv.AppendUint(s.idBuf, seq, 10)
	s.timeBuf = strconv.AppendInt(s.timeBuf[:0], unixNano, 10)
	s.id[0] = transient(s.idBuf)
	s.tm[0] = transient(s.timeBuf)
	if s.withFrom {
		s.from[0] = from
	}
}

// transient views b as a string without copying it. Only for header values
// of a reused nats.Msg: nats.go encodes the headers into its own buffer
// before PublishMsg returns and keeps nothing, and b is rewritten only
// after that, so nobody reads such a string once its bytes change. It saves
// the two string allocations per message that the id and the time cost.
func transient(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (b *Bridge) fillScratch(m *chaski.Message) {
	if !b.scratchH.started {
		b.scratchH.init(true)
		b.scratch.Header = b.scratchH.h
	}
	if m.Topic != b.lastTopic || b.lastSubj == "" {
		b.lastTopic, b.lastSubj = m.Topic, b.topics[m.Topic]
	}
	b.scratch.Subject = b.lastSubj
	b.scratch.Data = m.Data
	b.scratchH.set(m.FromID, m.Seq, m.Time.UnixNano(), m.From)
	b.scratchH.setSig(m.Signature)
}

// setSig puts a signed message's Chaski-Sig into the map, or takes the
// header out for an unsigned one (a map operation only when that changes).
func (s *headerScratch) setSig(block []byte) {
	if len(block) == 0 {
		if s.hasSig {
			delete(s.h, HeaderSig)
			s.hasSig = false
		}
		return
	}
	s.sigBuf = base64.RawStdEncoding.AppendEncode(s.sigBuf[:0], block)
	if s.sig == nil {
		s.sig = []string{""}
	}
	s.sig[0] = transient(s.sigBuf)
	if !s.hasSig {
		s.h[HeaderSig] = s.sig
		s.hasSig = true
	}
}

// writer sends queued mesh messages to NATS, holding them while
// disconnected.
func (b *Bridge) writer() {
	defer b.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m := <-b.out:
			b.writeOut(m)
			// Drain what is already queued with non-blocking receives:
			// a five-way select per message was a fifth of the bridging
			// node's CPU under load. Bounded so that retries, wakes and
			// Close are not starved.
		drain:
			for i := 0; i < writerBatch; i++ {
				select {
				case m = <-b.out:
					b.writeOut(m)
				default:
					break drain
				}
			}
		case nm := <-b.retry:
			b.unacked.Add(-1)
			b.send(nm)
		case <-b.wake:
			b.flushHeld()
		case <-tick.C:
			b.flushHeld()
		case <-b.ctx.Done():
			return
		}
	}
}

// writerBatch bounds the queued messages the writer takes between two
// looks at its other channels.
const writerBatch = 256

func (b *Bridge) writeOut(m *chaski.Message) {
	// The common case, connected without a stream, reuses one message and
	// header map: nats.go copies them into its buffer before PublishMsg
	// returns.
	if b.jsPub == nil && len(b.held) == 0 && b.connected() {
		b.fillScratch(m)
		if err := b.nc.PublishMsg(&b.scratch); err == nil {
			b.msgsOut.Add(1)
			return
		}
	}
	b.send(b.toNATS(m))
}

func (b *Bridge) connected() bool { return b.nc.Status() == nats.CONNECTED }

func (b *Bridge) send(nm *nats.Msg) {
	if len(b.held) > 0 || !b.connected() {
		b.hold(nm)
		if b.connected() {
			b.flushHeld()
		}
		return
	}
	if err := b.publish(nm); err != nil {
		b.hold(nm)
	}
}

func (b *Bridge) publish(nm *nats.Msg) error {
	if b.jsPub != nil {
		for {
			_, err := b.jsPub.PublishMsgAsync(nm, jetstream.WithStallWait(100*time.Millisecond))
			if err == nil {
				b.unacked.Add(1)
				b.msgsOut.Add(1)
				return nil
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || b.ctx.Err() != nil || !b.connected() {
				return err
			}
		}
	}
	if err := b.nc.PublishMsg(nm); err != nil {
		return err
	}
	b.msgsOut.Add(1)
	return nil
}

// hold keeps nm for later, dropping the oldest held message when the
// buffer is full.
func (b *Bridge) hold(nm *nats.Msg) {
	for len(b.held) > 0 && (len(b.held) >= b.cfg.Hold || b.heldBytes+len(nm.Data) > b.cfg.HoldBytes) {
		b.heldBytes -= len(b.held[0].Data)
		b.held[0] = nil
		b.held = b.held[1:]
		b.dropped.Add(1)
	}
	b.held = append(b.held, nm)
	b.heldBytes += len(nm.Data)
	b.heldN.Store(int64(len(b.held)))
}

func (b *Bridge) flushHeld() {
	for len(b.held) > 0 && b.connected() && b.ctx.Err() == nil {
		if err := b.publish(b.held[0]); err != nil {
			return
		}
		b.heldBytes -= len(b.held[0].Data)
		b.held[0] = nil
		b.held = b.held[1:]
		b.heldN.Store(int64(len(b.held)))
	}
	if len(b.held) == 0 && cap(b.held) > 1024 {
		b.held = nil // give a large buffer back after an outage
	}
}

// monitor measures the round trip to the server.
func (b *Bridge) monitor() {
	defer b.wg.Done()
	measure := func() {
		if !b.connected() {
			return
		}
		if rtt, err := b.nc.RTT(); err == nil {
			b.rtt.Store(int64(rtt))
		}
	}
	measure()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			measure()
		case <-b.ctx.Done():
			return
		}
	}
}

// ClaimGroup is the queue group in which bridges receive messages that
// plain NATS clients publish (without a Chaski-Id): exactly one bridge
// claims each, gives it an id, injects it into its mesh and announces it
// with that id on AnnounceSubject, where every other bridge (of any mesh)
// picks it up. Bridges of the same mesh then drop the announced copy as a
// duplicate, and every mesh gets the message once.
const ClaimGroup = "chaski_bridge"

// AnnounceSubject is where a claimed message is announced with its id.
func AnnounceSubject(subject string) string { return "_chaski.ids." + subject }

// subscribeCore subscribes to a topic's subject without JetStream: messages
// with an id (from other bridges, on the subject or announced) go to every
// bridge; messages without one are claimed by one bridge of the group.
func (b *Bridge) subscribeCore(topic, subj string) error {
	withID := func(m *nats.Msg) {
		if m.Header.Get(HeaderID) != "" {
			b.fromNATS(topic, m, 0)
		}
	}
	announced := func(m *nats.Msg) {
		if m.Header.Get(HeaderBatch) != "" {
			b.fromBatch(topic, m)
		} else {
			withID(m)
		}
	}
	// One announcer per topic: each claim subscription calls back on a
	// goroutine of its own. Announcements carry no Chaski-From: a
	// receiving bridge takes "nats" for a message without one, which is
	// what the claim gives it.
	ann := newAnnouncer(b, subj)
	b.anns = append(b.anns, ann)
	claim := func(m *nats.Msg) { // always on this subscription's goroutine
		// nats.go counts the message being handled as pending until its
		// callback returns, so more than one means more to come. (Were
		// that to change, batches would only end one message early.)
		more := false
		if sub := ann.sub.Load(); sub != nil && b.cfg.BatchAnnouncements {
			if p, _, err := sub.Pending(); err == nil && p > 1 {
				more = true
			}
		}
		if m.Header.Get(HeaderID) == "" {
			b.claim(topic, m, ann, more)
		} else if !more {
			ann.flush() // the burst ended with a message that was not ours to claim
		}
	}
	for _, s := range []struct {
		subj, queue string
		cb          nats.MsgHandler
	}{{subj, "", withID}, {subj, ClaimGroup, claim}, {AnnounceSubject(subj), "", announced}} {
		sub, err := b.nc.QueueSubscribe(s.subj, s.queue, s.cb)
		if err != nil {
			return b.explain(err, s.subj)
		}
		if s.queue != "" {
			ann.sub.Store(sub)
		}
		_ = sub.SetPendingLimits(InPendingMsgs, InPendingBytes)
		b.subs = append(b.subs, sub)
	}
	return nil
}

// claim handles a plain NATS message this bridge won in the claim group:
// it injects it under a new id and has it announced (more: the claim
// subscription has more messages waiting, so the announcement may wait
// for them and go out as one batch).
func (b *Bridge) claim(topic string, nm *nats.Msg, ann *announcer, more bool) {
	m := &chaski.Message{Topic: topic, Data: nm.Data, Via: "nats", From: "nats", Time: time.Now(),
		ID: wire.MessageID{Origin: b.plainOrigin, Seq: b.plainSeq.Add(1)}}
	b.inject(m)
	ann.add(m, more)
}

// fromNATS injects a message received from NATS into the mesh. streamSeq
// is its JetStream stream sequence (0 for core NATS).
func (b *Bridge) fromNATS(topic string, nm *nats.Msg, streamSeq uint64) {
	m := &chaski.Message{Topic: topic, Data: nm.Data, Via: "nats"}
	id, ok := parseID(nm.Header.Get(HeaderID))
	switch {
	case ok:
		m.ID = id
		m.From = nm.Header.Get(HeaderFrom)
		if ns, err := strconv.ParseInt(nm.Header.Get(HeaderTime), 10, 64); err == nil {
			m.Time = time.Unix(0, ns)
		}
	case streamSeq > 0:
		m.ID = wire.MessageID{Origin: b.streamOrigin, Seq: streamSeq}
	default:
		return // a malformed id: nothing to deduplicate it by
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	if m.From == "" {
		m.From = "nats"
	}
	if v := nm.Header.Get(HeaderSig); v != "" && ok {
		// Checked by Inject against what it injects; a block that does not
		// decode to the right length is no signature at all.
		if sig, err := base64.RawStdEncoding.DecodeString(v); err == nil && len(sig) == wire.SigBlockLen {
			m.Signature = sig
		}
	}
	b.inject(m)
}

func (b *Bridge) inject(m *chaski.Message) {
	fresh, err := b.node.Inject(b.ctx, m)
	switch {
	case errors.Is(err, chaski.ErrUnsigned):
		// The node requires signatures and this message has none: counted
		// by the node (Status().Unsigned), not logged once per message.
	case err != nil:
		if b.ctx.Err() == nil {
			b.log.Warn("nats message not injected", "topic", m.Topic, "error", err)
		}
	case fresh:
		b.msgsIn.Add(1)
	default:
		b.dups.Add(1)
	}
}

func parseID(s string) (wire.MessageID, bool) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return wire.MessageID{}, false
	}
	u, err := uuid.Parse(s[:i])
	if err != nil {
		return wire.MessageID{}, false
	}
	seq, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil || seq == 0 {
		return wire.MessageID{}, false
	}
	return wire.MessageID{Origin: wire.NodeID(u), Seq: seq}, true
}

// closeDrain bounds how long Close waits for queued messages to leave.
const closeDrain = 2 * time.Second

// Close stops mirroring: it removes the tap, sends what is still queued
// (for at most two seconds), closes the NATS connection and returns when
// every goroutine of the bridge has ended. The node stays up.
func (b *Bridge) Close() error {
	b.close1.Do(func() {
		b.removeFn()
		deadline := time.Now().Add(closeDrain)
		for (len(b.out) > 0 || b.heldN.Load() > 0 || b.unacked.Load() > 0) && b.connected() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if b.cons != nil {
			b.cons.Stop()
		}
		for _, s := range b.subs {
			_ = s.Unsubscribe()
		}
		for _, a := range b.anns {
			a.flush() // claims injected here must still reach the other meshes
		}
		b.closedFlag.Store(true)
		b.cancel()
		b.wg.Wait()
		_ = b.nc.FlushTimeout(time.Second)
		b.nc.Close()
		b.setState(StateClosed, "")
		b.emit(false, "closed")
	})
	return nil
}

// StatusFields renders Info as the node's extra status fields (for
// chaski.Config.StatusFields, served to `chaski status`): keys start with
// "nats_".
func (b *Bridge) StatusFields() map[string]string {
	in := b.Info()
	f := map[string]string{
		"nats_state":    string(in.State),
		"nats_server":   in.Server,
		"nats_rtt":      in.RTT.Round(time.Microsecond).String(),
		"nats_msgs_in":  strconv.FormatUint(in.MsgsIn, 10),
		"nats_msgs_out": strconv.FormatUint(in.MsgsOut, 10),
		"nats_pending":  strconv.Itoa(in.Pending),
		"nats_dropped":  strconv.FormatUint(in.Dropped+in.InDropped, 10),
		"nats_prefix":   in.Prefix,
		"nats_topics":   strings.Join(in.Topics, ","),
	}
	if in.Stream != "" {
		f["nats_stream"] = in.Stream
	}
	if in.KV != "" {
		f["nats_kv"] = in.KV
	}
	if in.Err != "" {
		f["nats_error"] = in.Err
	}
	return f
}

package cli

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/pki"
	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/chaski-dev/chaski/chaski/wire"
	"github.com/chaski-dev/chaski/internal/control"
	"github.com/chaski-dev/chaski/theme"
)

// nodeOpts are the node flags shared by every subcommand that runs a node.
type nodeOpts struct {
	cmd *command

	name            string
	listen          string
	connect         listFlag
	subs            listFlag
	root            bool
	discover        bool
	onPair          string
	discoverTimeout time.Duration
	dataDir         string
	acceptFiles     bool
	allowFetchMove  bool
	sign            bool
	requireSigned   bool
	downloadDir     string
	pingInterval    time.Duration
	json            bool
	tlsCert         string
	tlsKey          string
	tlsCA           string
	caAddr          string
	caToken         string
	logLevel        string
	logFile         string
	lanOpts         lanOpts

	full bool // all node flags (false: ping's subset)

	nats *natsOpts // --nats and companions (node, tui, store), or nil
}

// addNodeFlags registers the node flags on c. full=false registers only the
// flags that make sense for a node that just dials one peer (ping).
func addNodeFlags(c *command, full bool) *nodeOpts {
	o := &nodeOpts{cmd: c, full: full}
	fs := c.fs
	kind := c.name
	fs.StringVar(&o.name, "name", "", "the node's name (default <hostname>-<4 hex digits>)")
	c.placeholder("name", "NAME")
	listenHelp := "TCP and UDP listening address; [::1]:PORT for IPv6; port 0 = any free port"
	if kind == "tui" || kind == "node" {
		listenHelp += "; when not given, ports 8511-8516 are tried first"
	}
	if full {
		listenHelp += "; with --lan (and multicast) the default host is 0.0.0.0, so that nodes nearby can connect"
	}
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", listenHelp)
	c.placeholder("listen", "HOST:PORT")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "mutual TLS: this node's certificate (PEM); needs --tls-key and --tls-ca")
	fs.StringVar(&o.tlsKey, "tls-key", "", "mutual TLS: this node's private key (PEM)")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "mutual TLS: the CA certificate(s) peers must chain to (PEM)")
	c.placeholder("tls-cert", "FILE")
	c.placeholder("tls-key", "FILE")
	c.placeholder("tls-ca", "FILE")
	fs.StringVar(&o.caAddr, "ca", "", "obtain a certificate from the 'chaski ca serve' at ADDR at start, then use mutual TLS (needs --ca-token)")
	fs.StringVar(&o.caToken, "ca-token", "", "the join token of the CA given with --ca")
	c.placeholder("ca", "ADDR")
	c.placeholder("ca-token", "TOKEN")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	c.placeholder("log-level", "LEVEL")
	logHelp := "write the log to this file instead of stderr"
	if kind == "tui" {
		logHelp = "write the log to this file (default <data-dir>/chaski.log; the dashboard never logs to the terminal)"
	}
	fs.StringVar(&o.logFile, "log-file", "", logHelp)
	c.placeholder("log-file", "FILE")
	fs.BoolVar(&o.json, "json", false, "machine-readable output: one JSON object per line (NDJSON) on stdout")
	fs.StringVar(&o.dataDir, "data-dir", "", "where the store and received files live (default $XDG_DATA_HOME/chaski, else ~/.local/share/chaski)")
	c.placeholder("data-dir", "DIR")
	pi := 7 * time.Second
	if kind == "tui" {
		pi = time.Second
	}
	fs.DurationVar(&o.pingInterval, "ping-interval", pi, "how often each edge is pinged (keep-alive and latency)")
	c.placeholder("ping-interval", "DUR")
	fs.BoolVar(&o.sign, "sign", false, "sign every message this node publishes (Ed25519), so that receivers can check who published it (costs ~35 µs per message)")
	fs.BoolVar(&o.requireSigned, "require-signed", false, "deliver and relay only messages signed by their origin; implies --sign (costs ~90 µs per message received)")
	if !full {
		o.markNodeFlags()
		return o
	}
	fs.Var(&o.connect, "connect", "a peer to connect to at start (ip:port, [ipv6]:port or host:port); repeatable or comma-separated")
	c.placeholder("connect", "ADDR")
	fs.Var(&o.subs, "sub", "subscriptions, comma-separated; repeatable")
	c.placeholder("sub", "TOPICS")
	fs.BoolVar(&o.root, "root", false, "a root node: paired for everything, receives and relays every topic")
	fs.BoolVar(&o.discover, "discover", false, "after connecting, run discovery for every subscription not yet paired")
	fs.StringVar(&o.onPair, "on-pair", "none", "what discovery does after pairing: none or disconnect")
	c.placeholder("on-pair", "none|disconnect")
	fs.DurationVar(&o.discoverTimeout, "discover-timeout", 10*time.Second, "how long discovery waits for a peer per subscription before the node becomes the first of that topic")
	c.placeholder("discover-timeout", "DUR")
	fs.BoolVar(&o.acceptFiles, "accept-files", false, "accept incoming files")
	fs.StringVar(&o.downloadDir, "download-dir", "", "where accepted files are written (default <data-dir>/downloads)")
	c.placeholder("download-dir", "DIR")
	fs.BoolVar(&o.allowFetchMove, "allow-fetch-move", false, "let a peer's 'store fetch --move' take keys out of this node's store once it has stored them (the original's fetch always did)")
	addLANFlags(c, &o.lanOpts)
	o.markNodeFlags()
	return o
}

// markNodeFlags lists every flag registered so far under "Node flags".
func (o *nodeOpts) markNodeFlags() {
	o.cmd.fs.VisitAll(func(f *flag.Flag) { o.cmd.nodeFlag[f.Name] = true })
}

// defaultDataDir is $XDG_DATA_HOME/chaski, else ~/.local/share/chaski.
func defaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "chaski")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(os.TempDir(), "chaski")
	}
	return filepath.Join(home, ".local", "share", "chaski")
}

// resolvedDataDir returns --data-dir or the default.
func (o *nodeOpts) resolvedDataDir() string {
	if o.dataDir != "" {
		return o.dataDir
	}
	return defaultDataDir()
}

// valueCheck checks the value of one flag on its own (v as the flag's
// String renders it). validate runs these on the flags and the config file
// on its values, so both refuse the same values in the same words.
type valueCheck struct {
	flag  string
	check func(v string) error
}

var valueChecks = []valueCheck{
	{"name", func(v string) error {
		if v != "" && !wire.ValidName(v, wire.MaxNameLen) {
			return fmt.Errorf("%q is not a valid name (1-%d printable bytes)", v, wire.MaxNameLen)
		}
		return nil
	}},
	{"sub", func(v string) error {
		for _, t := range splitList(v) {
			if !wire.ValidName(t, wire.MaxTopicLen) {
				return fmt.Errorf("%q is not a valid topic (1-%d printable bytes)", t, wire.MaxTopicLen)
			}
		}
		return nil
	}},
	{"on-pair", func(v string) error {
		if v != "" && v != string(chaski.OnPairNone) && v != string(chaski.OnPairDisconnect) {
			return fmt.Errorf("want none or disconnect, not %q", v)
		}
		return nil
	}},
	{"log-level", func(v string) error {
		_, err := parseLevel(v)
		return err
	}},
	{"ping-interval", positiveDuration},
	{"discover-timeout", positiveDuration},
	{"connect", func(v string) error {
		for _, a := range splitList(v) {
			if _, err := chaski.ParseAddr(a); err != nil {
				return errors.New(cleanErr(err))
			}
		}
		return nil
	}},
	{"listen", func(v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("%q: want HOST:PORT ([::1]:PORT for IPv6)", v)
		}
		return nil
	}},
	{"theme", func(v string) error {
		if _, err := theme.Load(v); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "theme: "))
		}
		return nil
	}},
	{"ttl", func(v string) error {
		if d, err := time.ParseDuration(v); err == nil && d < 0 {
			return errors.New("must not be negative (0: never expires)")
		}
		return nil
	}},
}

func positiveDuration(v string) error {
	if d, err := time.ParseDuration(v); err == nil && d <= 0 {
		return errors.New("must be positive")
	}
	return nil
}

func splitList(v string) []string {
	var l listFlag
	_ = l.Set(v)
	return l
}

// checkValues runs the value checks of every flag c has.
func checkValues(c *command) error {
	for _, vc := range valueChecks {
		if f := c.fs.Lookup(vc.flag); f != nil {
			if err := vc.check(f.Value.String()); err != nil {
				return usageErrorf("%s: %s", dashed(vc.flag), err)
			}
		}
	}
	return nil
}

// validate checks the flags that can be checked without side effects.
func (o *nodeOpts) validate() error {
	if err := checkValues(o.cmd); err != nil {
		return err
	}
	if err := o.nats.validate(); err != nil {
		return err
	}
	n := 0
	for _, s := range []string{o.tlsCert, o.tlsKey, o.tlsCA} {
		if s != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return usageErrorf("--tls-cert, --tls-key and --tls-ca go together")
	}
	if n == 3 && o.caAddr != "" {
		return usageErrorf("use either --tls-cert/--tls-key/--tls-ca or --ca, not both")
	}
	if (o.caAddr == "") != (o.caToken == "") {
		return usageErrorf("--ca and --ca-token go together")
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("want debug, info, warn or error, not %q", s)
}

// logger opens the log destination. The dashboard logs to a file by
// default, everything else to stderr.
func (o *nodeOpts) logger(stderr io.Writer) (*slog.Logger, func(), error) {
	level, err := parseLevel(o.logLevel)
	if err != nil {
		return nil, nil, usageErrorf("--log-level: %s", err)
	}
	path := o.logFile
	if path == "" && o.cmd.name == "tui" {
		path = filepath.Join(o.resolvedDataDir(), "chaski.log")
	}
	w := stderr
	closer := func() {}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, fmt.Errorf("cannot create the log directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot open the log file: %w", err)
		}
		w = f
		closer = func() { f.Close() }
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(h), closer, nil
}

// defaultName is <hostname>-<4 hex digits>, as the library makes it.
func defaultName() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "chaski"
	}
	if len(h) > 40 {
		h = h[:40]
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%04x", h, binary.BigEndian.Uint16(b[:]))
}

// runningNode is a started node and what must be released with it.
type runningNode struct {
	*chaski.Node
	control *control.Server // nil when this process does not hold the store
	closers []func()
}

// close shuts the node down cleanly (bounded) and releases its resources.
func (r *runningNode) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r.control != nil {
		// First, so that no command changes the store while the node closes.
		r.control.Close()
		r.control = nil
	}
	err := r.Node.Close(ctx)
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.closers = nil
	if err != nil {
		return fmt.Errorf("node did not shut down cleanly: %w", err)
	}
	return nil
}

// nodeSetup tunes the configuration of a node before it starts.
type nodeSetup struct {
	deferLAN    bool     // the caller starts nearby discovery (StartLAN) after Watch
	subs        []string // extra subscriptions (sub's TOPICs)
	withStore   bool     // open <data-dir>/store.db; fail when locked
	tryStore    bool     // open it if free, else run without
	fileHandler func(chaski.FileReceived)
	deliverAll  bool
	promptFiles bool         // offers wait for the user (dashboard)
	fileHash    string       // the hash of the files sent (send --hash)
	warn        func(string) // where non-fatal warnings go
}

// start builds the configuration from the flags and starts the node.
func (o *nodeOpts) start(ctx context.Context, env *env, setup nodeSetup) (*runningNode, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	rn := &runningNode{}
	fail := func(err error) (*runningNode, error) {
		for i := len(rn.closers) - 1; i >= 0; i-- {
			rn.closers[i]()
		}
		return nil, err
	}
	log, closeLog, err := o.logger(env.stderr)
	if err != nil {
		return fail(err)
	}
	rn.closers = append(rn.closers, closeLog)
	cfg := chaski.Config{
		Name:              o.name,
		Listen:            o.listen,
		Subscriptions:     dedupe(append(append([]string(nil), o.subs...), setup.subs...)),
		Root:              o.root,
		DeliverAll:        setup.deliverAll,
		PingInterval:      o.pingInterval,
		DiscoverTimeout:   o.discoverTimeout,
		Logger:            log,
		FileHandler:       setup.fileHandler,
		PromptFiles:       setup.promptFiles,
		AllowFetchMove:    o.allowFetchMove,
		FileHash:          setup.fileHash,
		SignPublishes:     o.sign,
		RequireSignatures: o.requireSigned,
		// A file sent again unchanged is not hashed again (its tree is
		// kept here; receivers check every chunk either way).
		FileTreeCache: filepath.Join(o.resolvedDataDir(), "trees"),
	}
	if o.nats.enabled() {
		cfg.StatusFields = o.nats.statusFields
	}
	if cfg.Name == "" {
		cfg.Name = defaultName()
	}
	if c := o.cmd.name; c == "send" || c == "node" || c == "tui" {
		// A stable name for our outgoing files, so that a receiver
		// resumes them after we restart.
		cfg.ResumeID = loadResumeID(o.resolvedDataDir(), setup.warn)
	}
	if (o.cmd.name == "tui" || o.cmd.name == "node") && !o.cmd.given("listen") {
		cfg.PreferredPorts = chaski.FavoritePorts
	}
	if cfg.LAN = o.lanConfig(); cfg.LAN != nil && !cfg.LAN.NoMulticast && !o.cmd.given("listen") {
		// Found on the LAN means reachable from it: every interface.
		cfg.Listen = "0.0.0.0:0"
	}
	if cfg.LAN != nil {
		cfg.LAN.Manual = setup.deferLAN
	}
	if o.acceptFiles || setup.promptFiles {
		// The dashboard can accept offers one by one (and turn accepting
		// on), so it needs the download directory too.
		dir := o.downloadDir
		if dir == "" {
			dir = filepath.Join(o.resolvedDataDir(), "downloads")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fail(err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return fail(fmt.Errorf("cannot create the download directory: %w", err))
		}
		cfg.AcceptFiles = o.acceptFiles
		cfg.DownloadDir = abs
	}
	if setup.withStore || setup.tryStore {
		st, err := openStore(o.resolvedDataDir(), setup.tryStore)
		switch {
		case err == nil:
			cfg.Store = st
			rn.closers = append(rn.closers, func() { st.Close() })
			if o.cmd.name == "tui" {
				cfg.ChatHistory = 1000 // the dashboard's scrollback survives a restart
			}
		case setup.tryStore && errors.Is(err, store.ErrLocked):
			if setup.warn != nil {
				setup.warn(fmt.Sprintf("the store in %s is in use by another process; running without a store", o.resolvedDataDir()))
			}
		default:
			return fail(err)
		}
	}
	renew, err := o.setupTLS(ctx, &cfg, setup.warn)
	if err != nil {
		return fail(err)
	}
	n, err := chaski.Start(cfg)
	if err != nil {
		return fail(err)
	}
	rn.Node = n
	if cfg.Store != nil {
		// This process holds the store: other chaski commands reach it
		// through the control socket.
		srv, err := control.Listen(control.SocketPath(o.resolvedDataDir()), n)
		if err != nil {
			if setup.warn != nil {
				setup.warn(fmt.Sprintf("no control socket (store commands cannot reach this node): %s", cleanErr(err)))
			}
		} else {
			rn.control = srv
		}
	}
	if renew != nil {
		stop := renew.start(func(msg string) { log.Info(msg) })
		rn.closers = append(rn.closers, stop)
	}
	return rn, nil
}

// setupTLS loads or obtains the node's TLS identity. With --ca, the
// certificate is kept in <data-dir>/tls and reused while it is valid; a
// renewal loop (started by startRenewal once the node runs) replaces it
// before it expires, without a restart.
func (o *nodeOpts) setupTLS(ctx context.Context, cfg *chaski.Config, warn func(string)) (*tlsRenewal, error) {
	var id *pki.Identity
	var renew *tlsRenewal
	switch {
	case o.tlsCert != "":
		var err error
		id, err = pki.LoadIdentity(o.tlsCert, o.tlsKey, o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("cannot load the TLS identity: %s", strings.TrimPrefix(err.Error(), "pki: "))
		}
		if id.Leaf != nil && time.Now().After(id.Leaf.NotAfter) {
			return nil, fmt.Errorf("the TLS certificate %s expired on %s", o.tlsCert, id.Leaf.NotAfter.Format(time.RFC3339))
		}
	case o.caAddr != "":
		req := pki.CertRequest{Name: cfg.Name, Dir: filepath.Join(o.resolvedDataDir(), "tls")}
		if host, _, err := net.SplitHostPort(cfg.Listen); err == nil {
			if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
				req.IPs = []net.IP{ip}
			}
		}
		id = reuseIdentity(req, time.Now())
		if id == nil {
			// A CA busy with other joins answers "rate limited": wait
			// and ask again (the CA protocol's rule), for up to 2 minutes.
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			var err error
			id, err = pki.ObtainRetrying(cctx, o.caAddr, o.caToken, req, func(wait time.Duration, err error) {
				if warn != nil {
					warn(fmt.Sprintf("the CA at %s is rate limiting requests; asking again in %v", o.caAddr, wait.Round(100*time.Millisecond)))
				}
			})
			if err != nil {
				return nil, fmt.Errorf("cannot obtain a certificate from the CA at %s: %s", o.caAddr, strings.TrimPrefix(err.Error(), "pki: "))
			}
		}
		renew = &tlsRenewal{caAddr: o.caAddr, token: o.caToken, req: req}
	default:
		return nil, nil
	}
	live := pki.NewLiveIdentity(id)
	cfg.ServerTLS = live.ServerConfig()
	cfg.ClientTLS = live.ClientConfig()
	if renew != nil {
		renew.live = live
	}
	return renew, nil
}

// reuseIdentity loads the certificate kept by an earlier run when it was
// issued for the same name and does not need renewal yet.
func reuseIdentity(req pki.CertRequest, now time.Time) *pki.Identity {
	id, err := pki.LoadIdentity(filepath.Join(req.Dir, "node.crt"), filepath.Join(req.Dir, "node.key"), filepath.Join(req.Dir, "ca.crt"))
	if err != nil || id.Leaf == nil || id.Leaf.Subject.CommonName != req.Name || id.NeedsRenewal(now) {
		return nil
	}
	return id
}

// tlsRenewal renews a CA-issued certificate before it expires.
type tlsRenewal struct {
	caAddr, token string
	req           pki.CertRequest
	live          *pki.LiveIdentity
}

// start runs the renewal loop until the returned stop function is called.
// It checks every hour (sooner for short-lived certificates) and renews
// once less than a third of the lifetime remains; a failed renewal is
// retried at the next check while the current certificate stays in use.
func (t *tlsRenewal) start(log func(string)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			wait := time.Hour
			if leaf := t.live.Load().Leaf; leaf != nil {
				wait = min(wait, max(time.Second, leaf.NotAfter.Sub(leaf.NotBefore)/30))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			if !t.live.Load().NeedsRenewal(time.Now()) {
				continue
			}
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			id, err := t.live.Renew(rctx, t.caAddr, t.token, t.req)
			rcancel()
			if err != nil {
				log(fmt.Sprintf("certificate renewal failed (will retry): %v", err))
				continue
			}
			log(fmt.Sprintf("certificate renewed, valid until %s", id.Leaf.NotAfter.Format(time.RFC3339)))
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// connectAll connects to every --connect address in order.
func (r *runningNode) connectAll(ctx context.Context, addrs []string) ([]chaski.EdgeInfo, error) {
	var out []chaski.EdgeInfo
	for _, a := range addrs {
		e, err := r.Connect(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if errors.Is(err, chaski.ErrHandshake) && !r.TLS() && strings.Contains(err.Error(), "preamble") {
				err = fmt.Errorf("%w (does %s require TLS? see --tls-cert and --ca)", err, a)
			}
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// join connects to every --connect address and, with --discover, starts
// discovery in the background. Being interrupted while connecting is not
// an error: the caller sees ctx ended.
func (r *runningNode) join(ctx context.Context, o *nodeOpts, warn func(string)) error {
	if _, err := r.connectAll(ctx, o.connect); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if o.discover {
		r.discoverInBackground(ctx, o, warn)
	}
	return nil
}

// discoverInBackground starts discovery for the unpaired subscriptions.
func (r *runningNode) discoverInBackground(ctx context.Context, o *nodeOpts, warn func(string)) {
	go func() {
		err := r.Discover(ctx, chaski.DiscoverOptions{OnPair: chaski.OnPair(o.onPair), Timeout: o.discoverTimeout})
		if err != nil && ctx.Err() == nil && !errors.Is(err, chaski.ErrClosed) && warn != nil {
			warn("discovery failed: " + cleanErr(err))
		}
	}()
}

// openStore opens <dir>/store.db. try=true fails fast when it is locked.
func openStore(dir string, try bool) (*store.Store, error) {
	opts := store.Options{}
	if try {
		opts.LockTimeout = 200 * time.Millisecond
	}
	st, err := store.Open(filepath.Join(dir, "store.db"), opts)
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("the store %s is in use by another process (a running chaski node?): %w", filepath.Join(dir, "store.db"), store.ErrLocked)
		}
		return nil, fmt.Errorf("cannot open the store %s: %s", filepath.Join(dir, "store.db"), strings.TrimPrefix(err.Error(), "store: "))
	}
	return st, nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

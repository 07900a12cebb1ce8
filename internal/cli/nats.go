package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/natsbridge"
	"github.com/chaski-dev/chaski/chaski/store"
)

// natsOpts are the flags of the bridge to a NATS cluster (node, tui) and
// of the store's key-value bucket there (store).
type natsOpts struct {
	cmd    *command
	urls   listFlag
	creds  string
	prefix string
	topics listFlag
	stream string
	kv     string
	batch  bool
	bridge bool // node and tui: the whole bridge; store: only the bucket

	running atomic.Pointer[natsbridge.Bridge]
	failed  atomic.Pointer[string] // the dashboard's bridge that did not start
}

// addNATSFlags registers --nats and its companions on c.
func addNATSFlags(c *command, bridge bool) *natsOpts {
	o := &natsOpts{cmd: c, bridge: bridge}
	fs := c.fs
	fs.Var(&o.urls, "nats", "bridge to the NATS server(s) at URL (nats://host:4222, tls://...); comma-separated for a cluster")
	c.placeholder("nats", "URL")
	fs.StringVar(&o.creds, "nats-creds", "", "NATS credentials file (JWT and seed)")
	c.placeholder("nats-creds", "FILE")
	if bridge {
		fs.StringVar(&o.prefix, "nats-prefix", natsbridge.DefaultPrefix, "topic T is NATS subject PREFIX.T")
		c.placeholder("nats-prefix", "PREFIX")
		fs.Var(&o.topics, "nats-topics", "the topics mirrored to NATS (default: every subscription); comma-separated")
		c.placeholder("nats-topics", "TOPICS")
		fs.StringVar(&o.stream, "nats-stream", "", "also keep the topics in this JetStream stream and replay what this node missed (durable consumer named after --name)")
		c.placeholder("nats-stream", "NAME")
		fs.BoolVar(&o.batch, "nats-batch", false, "announce bursts of claimed NATS messages to the other bridges in one message (faster NATS -> mesh; every bridge on the cluster must be of this version or later)")
	}
	fs.StringVar(&o.kv, "nats-kv", "", "store put also writes this JetStream key-value bucket (with the TTL); store fetch falls back to it")
	c.placeholder("nats-kv", "BUCKET")
	return o
}

// enabled reports whether --nats was given (o may be nil: commands without
// the flags).
func (o *natsOpts) enabled() bool { return o != nil && len(o.urls) > 0 }

// validate refuses companions without --nats and topics that are no NATS
// subject.
func (o *natsOpts) validate() error {
	if o == nil {
		return nil
	}
	if !o.enabled() {
		for _, f := range []string{"nats-creds", "nats-prefix", "nats-topics", "nats-stream", "nats-kv", "nats-batch"} {
			if o.cmd.given(f) {
				return usageErrorf("--%s needs --nats URL", f)
			}
		}
		return nil
	}
	for _, t := range o.topics {
		if _, err := natsbridge.Subject(o.prefix, t); err != nil {
			return usageErrorf("--nats-topics: %s", strings.TrimPrefix(err.Error(), "natsbridge: "))
		}
	}
	return nil
}

func (o *natsOpts) config() natsbridge.Config {
	return natsbridge.Config{URLs: o.urls, Creds: o.creds, Prefix: o.prefix, Topics: o.topics,
		Stream: o.stream, KV: o.kv, BatchAnnouncements: o.batch}
}

// statusFields is the node's Config.StatusFields: the bridge's state once
// it runs.
func (o *natsOpts) statusFields() map[string]string {
	if o == nil {
		return nil
	}
	if b := o.running.Load(); b != nil {
		return b.StatusFields()
	}
	if e := o.failed.Load(); e != nil {
		return map[string]string{"nats_state": "error", "nats_error": *e, "nats_server": natsbridge.Redacted(o.urls),
			"nats_topics": o.topics.String()}
	}
	return nil
}

// startOrShow is start for the dashboard: a bridge that cannot start is an
// error row in Edges (through the status fields), not the end.
func (o *natsOpts) startOrShow(ctx context.Context, n *chaski.Node) {
	if _, err := o.start(ctx, n); err != nil {
		s := err.Error()
		o.failed.Store(&s)
		n.Config().Logger.Error("the NATS bridge did not start", "error", s)
	}
}

// start starts the bridge on n (nil, nil without --nats).
func (o *natsOpts) start(ctx context.Context, n *chaski.Node) (*natsbridge.Bridge, error) {
	if !o.enabled() {
		return nil, nil
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(natsbridge.BridgeMemoryLimit)
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, err := natsbridge.Start(sctx, n, o.config())
	if err != nil {
		return nil, natsErr(err)
	}
	o.running.Store(b)
	return b, nil
}

// stop closes the bridge (before the node).
func (o *natsOpts) stop() {
	if o == nil {
		return
	}
	if b := o.running.Swap(nil); b != nil {
		b.Close()
	}
}

// fatal delivers the error that stopped the bridge for good (never, without
// a bridge).
func (o *natsOpts) fatal() <-chan error {
	if o == nil {
		return nil
	}
	if b := o.running.Load(); b != nil {
		return b.Fatal()
	}
	return nil
}

// natsErr is one sentence without the package prefix.
func natsErr(err error) error {
	s := strings.TrimPrefix(err.Error(), "natsbridge: ")
	switch {
	case errors.Is(err, natsbridge.ErrBadURL), errors.Is(err, natsbridge.ErrTopic):
		return withCode(2, errors.New(s))
	}
	return errors.New(s)
}

// kvPut writes key to the bucket of --nats-kv (nothing without it).
func (o *natsOpts) kvPut(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if !o.enabled() || o.kv == "" {
		return nil
	}
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	kv, err := natsbridge.OpenKV(kctx, o.config())
	if err != nil {
		return natsErr(err)
	}
	defer kv.Close()
	if err := kv.Put(kctx, key, value, ttl); err != nil {
		return natsErr(err)
	}
	return nil
}

// kvGet reads key from the bucket of --nats-kv.
func (o *natsOpts) kvGet(ctx context.Context, key string) ([]byte, error) {
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	kv, err := natsbridge.OpenKV(kctx, o.config())
	if err != nil {
		return nil, natsErr(err)
	}
	defer kv.Close()
	v, err := kv.Get(kctx, key)
	if err != nil {
		if errors.Is(err, chaski.ErrNotFound) {
			return nil, err
		}
		return nil, natsErr(err)
	}
	return v, nil
}

// fetchFallback is 'store fetch' with --nats-kv: when the local store and
// the network do not have the key (ferr), the bucket is asked; a value
// found there is stored locally with the store's default TTL and printed.
func (o *natsOpts) fetchFallback(ctx context.Context, e *env, dir string, key string, asJSON, raw bool, ferr error) error {
	if ferr == nil || !o.enabled() || o.kv == "" {
		return ferr
	}
	v, err := o.kvGet(ctx, key)
	if err != nil {
		if errors.Is(err, chaski.ErrNotFound) {
			return fmt.Errorf("%s, and key %q is not in the NATS bucket %s either", cleanErr(ferr), key, o.kv)
		}
		return fmt.Errorf("%s; the NATS bucket %s could not be asked: %w", cleanErr(ferr), o.kv, err)
	}
	_ = withStore(ctx, dir, func(st storeAccess) error { return st.Set(key, v, store.UseDefaultTTL) })
	return printValue(e, asJSON, raw, key, v, time.Time{})
}

func natsEventJSON(e *natsbridge.StateEvent) obj {
	name := "bridge_down"
	if e.Up {
		name = "bridge_up"
	}
	return event(name).add("url", e.URL).add("reason", e.Reason)
}

func natsEventText(e *natsbridge.StateEvent) string {
	if e.Up {
		s := "NATS bridge up: " + e.URL
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		return s
	}
	return "NATS bridge down: " + e.URL + ": " + e.Reason
}

// natsStatusJSON gathers the bridge's status fields (nats_*) into the
// "nats" object of 'chaski status': server, state, rtt_ms, msgs_in,
// msgs_out, pending, dropped, prefix, topics, stream, kv, error. nil when
// the node has no bridge.
func natsStatusJSON(extra map[string]string) obj {
	if extra["nats_state"] == "" {
		return nil
	}
	o := obj{}.add("state", extra["nats_state"]).add("server", extra["nats_server"])
	if d, err := time.ParseDuration(extra["nats_rtt"]); err == nil {
		o = o.add("rtt_ms", float64(d.Microseconds())/1000)
	}
	for _, k := range []string{"msgs_in", "msgs_out", "pending", "dropped"} {
		var v uint64
		_, _ = fmt.Sscan(extra["nats_"+k], &v)
		o = o.add(k, v)
	}
	o = o.add("prefix", extra["nats_prefix"]).add("topics", nonNil(splitList(extra["nats_topics"])))
	for _, k := range []string{"stream", "kv", "error"} {
		if v := extra["nats_"+k]; v != "" {
			o = o.add(k, v)
		}
	}
	return o
}

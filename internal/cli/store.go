package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/chaski-dev/chaski/internal/control"
)

func newStoreCmd() (*command, runner) {
	c := newCommand("store", "[flags] put KEY [VALUE] | get KEY | del KEY | ls [PREFIX] | fetch KEY",
		"The persistent key-value store in <data-dir>/store.db.",
		`  put KEY VALUE   set KEY (VALUE omitted: read it from stdin); --ttl sets the expiry
  get KEY         print the value and exit 0; exit 1 when KEY is absent or expired
  del KEY         delete KEY; exit 1 when it is absent
  ls [PREFIX]     list the live keys with their size and expiry (--json: one
                  {"event":"entry","key":...,"size":...,"expires":...} per line)
  fetch KEY       print KEY from the local store if it is there; else run a node,
                  join the network through --connect, ask it for KEY, store the
                  answer locally and print it (without --connect, a running node
                  of the data dir asks its own network). The holder keeps its
                  copy; with --move it deletes it once this side has stored the
                  value (the original's fetch), if it runs with --allow-fetch-move
While a node runs with this data dir it holds the store file's lock; these
commands then ask that node through its control socket,
<data-dir>/control.sock (owner only), and see and change its live store.
The default --ttl of one hour is the original's (chaski-confluent); the
config file's store_ttl key changes it ('chaski help config').`)
	o := addNodeFlags(c, true)
	o.nats = addNATSFlags(c, false)
	ttl := c.fs.Duration("ttl", store.DefaultTTL, "put: expiry of the entry (0: never expires)")
	c.placeholder("ttl", "DUR")
	raw := c.fs.Bool("raw", false, "get, fetch: print the value exactly, without a trailing newline")
	timeout := c.fs.Duration("timeout", 10*time.Second, "fetch: how long to wait for the network's answer")
	move := c.fs.Bool("move", false, "fetch: ask the holder to delete its copy once this side has stored it (it must run with --allow-fetch-move; otherwise the fetch is a copy)")
	c.placeholder("timeout", "DUR")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) == 0 {
			return usageErrorf("store needs an action: put, get, del, ls or fetch (see 'chaski help store')")
		}
		action, args := pos[0], pos[1:]
		dir := o.resolvedDataDir()
		switch action {
		case "put", "set":
			if len(args) < 1 || len(args) > 2 {
				return usageErrorf("usage: chaski store put KEY [VALUE] [--ttl DUR]")
			}
			if *ttl < 0 {
				return usageErrorf("--ttl must not be negative (0: never expires)")
			}
			var value []byte
			if len(args) == 2 {
				value = []byte(args[1])
			} else {
				b, err := io.ReadAll(io.LimitReader(e.stdin, store.MaxValueLen+1))
				if err != nil {
					return fmt.Errorf("cannot read the value from stdin: %w", err)
				}
				value = b
			}
			if err := o.nats.validate(); err != nil {
				return err
			}
			if err := withStore(ctx, dir, func(st storeAccess) error {
				return storeErr(args[0], st.Set(args[0], value, *ttl))
			}); err != nil {
				return err
			}
			return o.nats.kvPut(ctx, args[0], value, *ttl)
		case "get":
			if len(args) != 1 {
				return usageErrorf("usage: chaski store get KEY")
			}
			return withStore(ctx, dir, func(st storeAccess) error {
				ent, err := st.Lookup(args[0])
				if err != nil {
					return storeErr(args[0], err)
				}
				return printValue(e, o.json, *raw, args[0], ent.Value, ent.Expires)
			})
		case "del", "delete", "rm":
			if len(args) != 1 {
				return usageErrorf("usage: chaski store del KEY")
			}
			return withStore(ctx, dir, func(st storeAccess) error {
				return storeErr(args[0], st.Delete(args[0]))
			})
		case "ls", "list":
			if len(args) > 1 {
				return usageErrorf("usage: chaski store ls [PREFIX]")
			}
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return withStore(ctx, dir, func(st storeAccess) error {
				ents, err := st.Entries(prefix)
				if err != nil {
					return err
				}
				return printEntries(e, o.json, ents)
			})
		case "fetch", "get-remote":
			if len(args) != 1 {
				return usageErrorf("usage: chaski store fetch KEY --connect ADDR")
			}
			if err := o.nats.validate(); err != nil {
				return err
			}
			return o.nats.fetchFallback(ctx, e, dir, args[0], o.json, *raw,
				runFetch(ctx, e, o, args[0], fetchFlags{raw: *raw, timeout: *timeout, move: *move}))
		}
		return unknownAction("store", action, []string{"put", "get", "del", "ls", "fetch"})
	}
}

// storeAccess is what the store commands need: *store.Store, or the
// control socket of the running node that holds the store.
type storeAccess interface {
	Lookup(key string) (store.Entry, error)
	Set(key string, value []byte, ttl time.Duration) error
	Delete(key string) error
	Entries(prefix string) ([]store.Entry, error)
}

// withStore runs f on the store of dir: the file itself when it is free,
// else the running node that holds it, through its control socket.
func withStore(ctx context.Context, dir string, f func(storeAccess) error) error {
	path := filepath.Join(dir, "store.db")
	st, err := store.Open(path, store.Options{PurgeInterval: -1, LockTimeout: -1})
	if errors.Is(err, store.ErrLocked) {
		if c, cerr := control.Dial(ctx, control.SocketPath(dir)); cerr == nil {
			return f(c)
		}
		// Another short command, most likely: wait for it a little.
		st, err = store.Open(path, store.Options{PurgeInterval: -1})
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("the store %s is in use by another process, and no running chaski node answers on %s", path, control.SocketPath(dir))
		}
	}
	if err != nil {
		return fmt.Errorf("cannot open the store %s: %s", path, cleanErr(err))
	}
	ferr := f(st)
	if cerr := st.Close(); cerr != nil && ferr == nil {
		ferr = fmt.Errorf("cannot close the store: %s", cleanErr(cerr))
	}
	return ferr
}

// storeErr turns the store's errors into sentences about key.
func storeErr(key string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("key %q not found", key)
	case errors.Is(err, store.ErrInvalidKey):
		return withCode(2, fmt.Errorf("invalid key %q: %s", key, cleanErr(err)))
	case errors.Is(err, store.ErrValueTooLarge):
		return withCode(2, fmt.Errorf("%s", cleanErr(err)))
	}
	return fmt.Errorf("%s", cleanErr(err))
}

func printValue(e *env, asJSON, raw bool, key string, value []byte, expires time.Time) error {
	if asJSON {
		o := event("entry").add("key", key).withData("value", value).add("size", len(value))
		newPrinter(e.stdout).json(o.add("expires", expiresJSON(expires)))
		return nil
	}
	if _, err := e.stdout.Write(value); err != nil {
		return err
	}
	if !raw {
		_, err := e.stdout.Write([]byte{'\n'})
		return err
	}
	return nil
}

// expiresJSON is the RFC 3339 deadline, or null for "never".
func expiresJSON(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func printEntries(e *env, asJSON bool, ents []store.Entry) error {
	now := time.Now()
	if asJSON {
		p := newPrinter(e.stdout)
		for _, ent := range ents {
			o := event("entry").add("key", ent.Key).add("size", ent.Size).add("expires", expiresJSON(ent.Expires))
			if !ent.Expires.IsZero() {
				o = o.add("ttl_seconds", ent.Expires.Sub(now).Seconds())
			}
			o = o.add("updated", ent.Updated.UTC().Format(time.RFC3339Nano))
			p.json(o)
		}
		return nil
	}
	if len(ents) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSIZE\tEXPIRES")
	for _, ent := range ents {
		exp := "never"
		if !ent.Expires.IsZero() {
			exp = fmt.Sprintf("%s (in %s)", ent.Expires.Local().Format("2006-01-02 15:04:05"),
				ent.Expires.Sub(now).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", strings.ReplaceAll(ent.Key, "\t", " "), ent.Size, exp)
	}
	return tw.Flush()
}

// fetchFlags are the flags of 'store fetch'.
type fetchFlags struct {
	raw     bool
	timeout time.Duration
	move    bool
}

func runFetch(ctx context.Context, e *env, o *nodeOpts, key string, ff fetchFlags) (err error) {
	if len(o.connect) == 0 {
		return fetchWithoutConnect(ctx, e, o, key, ff)
	}
	n, err := o.start(ctx, e, nodeSetup{withStore: true})
	if err != nil {
		return err
	}
	defer closeNode(n, &err)
	if _, err := n.connectAll(ctx, o.connect); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, ff.timeout)
	defer cancel()
	r, err := n.FetchWith(fctx, key, chaski.FetchOptions{Move: ff.move})
	if err != nil {
		if errors.Is(err, chaski.ErrNotFound) {
			return fmt.Errorf("no peer holds key %q", key)
		}
		if fctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("no answer for key %q within %v", key, ff.timeout)
		}
		return err
	}
	return printFetched(e, o, key, r.Value, time.Time{}, ff, r.Moved, r.Local)
}

// printFetched prints a fetched value; with --move it says whether the
// holder gave its copy up (JSON: a "moved" field).
func printFetched(e *env, o *nodeOpts, key string, value []byte, expires time.Time, ff fetchFlags, moved, local bool) error {
	if ff.move && o.json {
		ev := event("entry").add("key", key).withData("value", value).add("size", len(value))
		newPrinter(e.stdout).json(ev.add("expires", expiresJSON(expires)).add("moved", moved))
		return nil
	}
	if err := printValue(e, o.json, ff.raw, key, value, expires); err != nil {
		return err
	}
	switch {
	case !ff.move:
	case local:
		fmt.Fprintf(e.stderr, "key %q was already in the local store: nothing moved\n", key)
	case !moved:
		fmt.Fprintf(e.stderr, "the holder kept its copy of %q (it does not run with --allow-fetch-move)\n", key)
	}
	return nil
}

// fetchWithoutConnect serves 'store fetch KEY' without --connect: from the
// local store when the key is there, else through the running node of the
// data dir (which asks its own network).
func fetchWithoutConnect(ctx context.Context, e *env, o *nodeOpts, key string, ff fetchFlags) error {
	dir := o.resolvedDataDir()
	var ent store.Entry
	var lerr error
	running := false
	err := withStore(ctx, dir, func(st storeAccess) error {
		_, running = st.(*control.Client)
		ent, lerr = st.Lookup(key)
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case lerr == nil:
		return printFetched(e, o, key, ent.Value, ent.Expires, ff, false, true)
	case !errors.Is(lerr, store.ErrNotFound):
		return storeErr(key, lerr)
	case !running:
		return usageErrorf("key %q is not in the local store; to ask the network, give --connect ADDR (or run a node with this data dir)", key)
	}
	c, err := control.Dial(ctx, control.SocketPath(dir))
	if err != nil {
		return err
	}
	value, moved, err := c.FetchWith(ctx, key, ff.timeout, ff.move)
	switch {
	case err == nil:
		return printFetched(e, o, key, value, time.Time{}, ff, moved, false)
	case errors.Is(err, chaski.ErrNotFound):
		return fmt.Errorf("no peer of the running node holds key %q", key)
	case errors.Is(err, chaski.ErrTimeout):
		return fmt.Errorf("no answer for key %q within %v", key, ff.timeout)
	}
	return err
}

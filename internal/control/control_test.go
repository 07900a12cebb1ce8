package control

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startNode runs a node with a store in a fresh data directory and serves
// its control socket there.
func startNode(t *testing.T) (*chaski.Node, *Server, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store.db"), store.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	n, err := chaski.Start(chaski.Config{Name: "ctl", Listen: "127.0.0.1:0", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(SocketPath(dir), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
		st.Close()
	})
	return n, srv, dir
}

func TestStoreThroughTheSocket(t *testing.T) {
	n, srv, dir := startNode(t)
	fi, err := os.Stat(srv.Path())
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v %v, want a socket with mode 0600", srv.Path(), fi.Mode(), err)
	}
	ctx := context.Background()
	c, err := Dial(ctx, SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("k", []byte("v1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// The node's own store sees it: the socket changed the running node.
	if v, err := n.Store().Get("k"); err != nil || string(v) != "v1" {
		t.Fatalf("node store: %q %v", v, err)
	}
	e, err := c.Lookup("k")
	if err != nil || string(e.Value) != "v1" || e.Expires.IsZero() {
		t.Fatalf("Lookup: %+v %v", e, err)
	}
	big := bytes.Repeat([]byte{0xff, 0}, 1<<20)
	if err := c.Set("bin", big, 0); err != nil {
		t.Fatal(err)
	}
	if e, err := c.Lookup("bin"); err != nil || !bytes.Equal(e.Value, big) || !e.Expires.IsZero() {
		t.Fatalf("binary value did not round-trip: %v", err)
	}
	es, err := c.Entries("")
	if err != nil || len(es) != 2 || es[0].Key != "bin" || es[0].Size != len(big) || es[0].Value != nil {
		t.Fatalf("Entries: %+v %v", es, err)
	}
	if err := c.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup("k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup after Delete: %v, want store.ErrNotFound", err)
	}
	if err := c.Delete("k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete of an absent key: %v", err)
	}
	if err := c.Set("", []byte("x"), 0); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("empty key: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Name != "ctl" || st.Address != n.Addr() {
		t.Fatalf("Status: %+v %v", st, err)
	}
	v, err := c.Fetch(ctx, "bin", time.Second)
	if err != nil || !bytes.Equal(v, big) {
		t.Fatalf("Fetch of a local key: %v", err)
	}
	if _, err := c.Fetch(ctx, "absent", time.Second); !errors.Is(err, chaski.ErrNotFound) {
		t.Fatalf("Fetch of an absent key with no peers: %v, want chaski.ErrNotFound", err)
	}
}

func TestStaleSocketReplacedLiveOneKept(t *testing.T) {
	n, srv, dir := startNode(t)
	if _, err := Listen(SocketPath(dir), n); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen on a live socket: %v, want ErrInUse", err)
	}
	srv.Close()
	if _, err := os.Stat(SocketPath(dir)); !os.IsNotExist(err) {
		t.Fatalf("Close left the socket: %v", err)
	}
	if _, err := Dial(context.Background(), SocketPath(dir)); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Dial with no server: %v, want ErrNoNode", err)
	}
	// A socket file whose process is gone (a crash) is replaced.
	path := SocketPath(dir)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	srv2, err := Listen(path, n)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer srv2.Close()
	if _, err := Dial(context.Background(), path); err != nil {
		t.Fatal(err)
	}
}

// Hostile or broken clients: garbage, an oversized request, a client that
// sends nothing. Each costs the server one bounded connection.
func TestBadRequests(t *testing.T) {
	_, _, dir := startNode(t)
	path := SocketPath(dir)
	exchange := func(send []byte) string {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() { _, _ = c.Write(send) }()
		var b bytes.Buffer
		_, _ = b.ReadFrom(c)
		return b.String()
	}
	if got := exchange([]byte("not json\n")); !bytes.Contains([]byte(got), []byte("unreadable request")) {
		t.Errorf("garbage: %q", got)
	}
	if got := exchange([]byte(`{"op":"explode"}` + "\n")); !bytes.Contains([]byte(got), []byte("unknown operation")) {
		t.Errorf("unknown op: %q", got)
	}
	huge := append([]byte(`{"op":"put","key":"k","value":"`), bytes.Repeat([]byte("A"), maxRequest+10)...)
	if got := exchange(huge); !bytes.Contains([]byte(got), []byte("unreadable request")) {
		t.Errorf("oversized request: %q", got)
	}
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatalf("the server stopped answering after bad requests: %v", err)
	}
	if _, err := c.Lookup("k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the oversized put was stored: %v", err)
	}
}

package chaski

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// openStore opens a store in a fresh directory; it closes after the nodes
// that use it (cleanups run in reverse order).
func openStore(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	if opts.PurgeInterval == 0 {
		opts.PurgeInterval = -1
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// chain starts A–B–C, each with its own store.
func chain(t *testing.T) (a, b, c *Node) {
	a = startNode(t, "127.0.0.1", Config{Name: "A", Store: openStore(t, store.Options{}), RequestTimeout: 5 * time.Second})
	b = startNode(t, "127.0.0.1", Config{Name: "B", Store: openStore(t, store.Options{})})
	c = startNode(t, "127.0.0.1", Config{Name: "C", Store: openStore(t, store.Options{})})
	connect(t, a, b)
	connect(t, b, c)
	waitEdges(t, map[*Node]int{a: 1, b: 2, c: 1})
	return a, b, c
}

func TestFetchAcrossChain(t *testing.T) {
	a, b, c := chain(t)
	if err := c.StorePut("greeting", []byte("hello"), time.Hour); err != nil {
		t.Fatal(err)
	}
	held, _ := c.Store().Lookup("greeting")
	events, stop := a.Watch(0)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	v, err := a.Fetch(ctx, "greeting")
	if err != nil || string(v) != "hello" {
		t.Fatalf("fetch: %q, %v", v, err)
	}
	got, err := a.Store().Lookup("greeting")
	if err != nil || string(got.Value) != "hello" {
		t.Fatalf("not stored locally: %+v, %v", got, err)
	}
	if d := got.Expires.Sub(held.Expires); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("expiry %v, holder's %v", got.Expires, held.Expires)
	}
	if b.Store().Exists("greeting") {
		t.Fatal("the relay stored the value")
	}
	if !c.Store().Exists("greeting") {
		t.Fatal("the holder lost the value (fetch copies, it does not move)")
	}
	// C answered by dialing A.
	eventually(t, "C dialed A", func() bool { return connected(a, c) })
	deadline := time.After(waitTimeout)
	for fetched := false; !fetched; {
		select {
		case ev := <-events:
			if se, ok := ev.(*StoreEvent); ok && se.Kind == "fetched" && se.Key == "greeting" && se.Size == 5 {
				fetched = true
			}
		case <-deadline:
			t.Fatal("no fetched event")
		}
	}
	// Now a local hit, and a key without expiry travels as such.
	if err := c.StorePut("forever", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Fetch(ctx, "forever"); err != nil || string(v) != "x" {
		t.Fatalf("fetch: %q, %v", v, err)
	}
	if e, _ := a.Store().Lookup("forever"); !e.Expires.IsZero() {
		t.Fatalf("expiry %v, want none", e.Expires)
	}
	if v, err := a.Fetch(ctx, "greeting"); err != nil || string(v) != "hello" {
		t.Fatalf("local fetch: %q, %v", v, err)
	}
}

func TestFetchNotRelayedWhenPropagationOff(t *testing.T) {
	// The original's remove_propagation_command for fetches: B stops relaying
	// them, so A cannot reach C's key through B.
	a, b, c := chain(t)
	if err := c.StorePut("k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPropagated(CommandFetch, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := a.Fetch(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fetch through a node that does not relay fetches: %v", err)
	}
	if err := b.SetPropagated(CommandFetch, true); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel2()
	if v, err := a.Fetch(ctx2, "k"); err != nil || string(v) != "v" {
		t.Fatalf("fetch after propagation is back on: %q, %v", v, err)
	}
}

func TestFetchMissing(t *testing.T) {
	a, _, _ := chain(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Fetch(ctx, "nobody-has-it")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	// Default deadline: Config.RequestTimeout.
	d := startNode(t, "127.0.0.1", Config{Name: "D", Store: openStore(t, store.Options{}), RequestTimeout: 300 * time.Millisecond})
	connect(t, d, a)
	start = time.Now()
	if _, err := d.Fetch(context.Background(), "nobody-has-it-either"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 5*time.Second {
		t.Fatalf("default deadline took %v", el)
	}
	// Without a store.
	n := startNode(t, "127.0.0.1", Config{Name: "nostore"})
	if _, err := n.Fetch(ctx, "k"); !errors.Is(err, ErrNoStore) {
		t.Fatalf("got %v", err)
	}
	if err := n.StorePut("k", nil, 0); !errors.Is(err, ErrNoStore) {
		t.Fatalf("got %v", err)
	}
	if n.Store() != nil {
		t.Fatal("store")
	}
	// A lone node answers at once.
	lone := startNode(t, "127.0.0.1", Config{Name: "lone", Store: openStore(t, store.Options{})})
	if _, err := lone.Fetch(context.Background(), "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v", err)
	}
}

// Nothing a peer sends writes into the store, except the answer to a fetch
// in flight with the same request id and key.
func TestFetchUnsolicitedResponse(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "A", Store: openStore(t, store.Options{})})
	p := dialFileRaw(t, a)
	p.send(wire.KindStoreResp, "", &wire.StoreResponse{Request: make([]byte, 16), Key: "evil", Found: true, Value: []byte("x")})

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	type result struct {
		v   []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		v, err := a.Fetch(ctx, "wanted")
		res <- result{v, err}
	}()
	var req wire.StoreRequest
	if err := wire.Unmarshal(p.next(wire.KindStoreReq).Body, &req); err != nil {
		t.Fatal(err)
	}
	if req.Key != "wanted" || len(req.Visited) != 1 || req.OriginAddr != a.Addr() {
		t.Fatalf("request %+v", req)
	}
	// Right id, wrong key; then wrong id, right key: both ignored.
	p.send(wire.KindStoreResp, "", &wire.StoreResponse{Request: req.Request, Key: "evil", Found: true, Value: []byte("x")})
	p.send(wire.KindStoreResp, "", &wire.StoreResponse{Request: make([]byte, 16), Key: "wanted", Found: true, Value: []byte("forged")})
	p.send(wire.KindStoreResp, "", &wire.StoreResponse{Request: req.Request, Key: "wanted", Found: true, Value: []byte("real"),
		Expires: time.Now().Add(time.Minute).UnixNano()})
	r := <-res
	if r.err != nil || string(r.v) != "real" {
		t.Fatalf("fetch: %q, %v", r.v, r.err)
	}
	// A late duplicate of the answer is ignored too.
	p.send(wire.KindStoreResp, "", &wire.StoreResponse{Request: req.Request, Key: "wanted", Found: true, Value: []byte("again")})
	p.send(wire.KindStoreResp, "", &wire.StoreResponse{Request: make([]byte, 16), Key: "evil2", Found: true, Value: []byte("x")})
	// A round trip makes sure the frames above were handled.
	pingRaw(t, p)
	keys, _ := a.Store().Keys()
	if len(keys) != 1 || keys[0] != "wanted" {
		t.Fatalf("store holds %v", keys)
	}
	if v, _ := a.Store().Get("wanted"); string(v) != "real" {
		t.Fatalf("value %q", v)
	}
	if !a.ConnectedTo(idString(p.id)) {
		t.Fatal("edge dropped")
	}
}

// pingRaw sends a ping from the raw peer and waits for the pong: every frame
// sent before it has been handled.
func pingRaw(t *testing.T, p *fileRawPeer) {
	t.Helper()
	p.write(wire.AppendPingFrame(nil, wire.KindPing, &wire.Ping{ID: 4242}))
	for {
		f := p.next(wire.KindPong)
		if pg, _ := wire.ParsePing(f.Body); pg.ID == 4242 {
			return
		}
	}
}

// A holder answers over the existing edge, and requests are forwarded with
// TTL and visited set.
func TestFetchForwarding(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "A", Store: openStore(t, store.Options{}), TTL: 3})
	p := dialFileRaw(t, a)
	q := dialFileRaw(t, a)
	// A request from p is forwarded to q with one hop less.
	origin := make([]byte, 16)
	origin[0] = 1
	req := &wire.StoreRequest{Request: randomBytes(t, 16), Origin: origin, OriginAddr: "127.0.0.1:1", Key: "k", TTL: 5,
		Visited: [][]byte{origin, p.id[:]}}
	p.send(wire.KindStoreReq, "", req)
	var fwd wire.StoreRequest
	if err := wire.Unmarshal(q.next(wire.KindStoreReq).Body, &fwd); err != nil {
		t.Fatal(err)
	}
	if fwd.TTL != 4 || len(fwd.Visited) != 3 || string(fwd.Visited[2]) != string(a.id[:]) {
		t.Fatalf("forwarded %+v", fwd)
	}
	// The same request again is not forwarded twice; a held key is
	// answered to the origin over its edge (p itself is the origin here).
	p.send(wire.KindStoreReq, "", req)
	if err := a.StorePut("k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	req2 := &wire.StoreRequest{Request: randomBytes(t, 16), Origin: p.id[:], OriginAddr: "127.0.0.1:1", Key: "k", TTL: 5,
		Visited: [][]byte{p.id[:]}}
	p.send(wire.KindStoreReq, "", req2)
	var resp wire.StoreResponse
	if err := wire.Unmarshal(p.next(wire.KindStoreResp).Body, &resp); err != nil {
		t.Fatal(err)
	}
	if string(resp.Request) != string(req2.Request) || resp.Key != "k" || !resp.Found || string(resp.Value) != "v" || resp.Expires != 0 {
		t.Fatalf("response %+v", resp)
	}
	// q saw only the first request.
	pingRaw(t, q)
	// A malformed request closes the edge that sent it.
	p.send(wire.KindStoreReq, "", &wire.StoreRequest{Request: []byte{1}, Key: "k"})
	eventually(t, "edge closed", func() bool { return !a.ConnectedTo(idString(p.id)) })
}

func TestStoreAPIAndEvents(t *testing.T) {
	relay := NewStoreEventRelay()
	st := openStore(t, store.Options{OnEvent: relay.OnEvent})
	n := startNode(t, "127.0.0.1", Config{Name: "S", Store: st})
	events, stop := n.Watch(0)
	defer stop()
	expect := func(kind, key string) {
		t.Helper()
		deadline := time.After(waitTimeout)
		for {
			select {
			case ev := <-events:
				if se, ok := ev.(*StoreEvent); ok {
					if se.Kind != kind || se.Key != key {
						t.Fatalf("got %s %q, want %s %q", se.Kind, se.Key, kind, key)
					}
					return
				}
			case <-deadline:
				t.Fatalf("no %s event", kind)
			}
		}
	}
	// Without the relay attached, the node reports its own writes.
	if err := n.StorePut("a", []byte("1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	expect("put", "a")
	if err := n.StoreDelete("a"); err != nil {
		t.Fatal(err)
	}
	expect("delete", "a")
	if err := n.StoreDelete("a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	// With it, every change of the store, once.
	detach := relay.Attach(n)
	if err := n.StorePut("b", []byte("22"), 0); err != nil {
		t.Fatal(err)
	}
	expect("put", "b")
	if err := st.Set("c", []byte("3"), 0); err != nil {
		t.Fatal(err)
	}
	expect("put", "c")
	if err := st.Clear(); err != nil {
		t.Fatal(err)
	}
	expect("clear", "")
	detach()
	if err := n.StorePut("d", []byte("4"), time.Minute); err != nil {
		t.Fatal(err)
	}
	expect("put", "d")
	es, err := n.StoreEntries()
	if err != nil || len(es) != 1 || es[0].Key != "d" || string(es[0].Value) != "4" || es[0].Size != 1 || es[0].Expires.IsZero() {
		t.Fatalf("entries %+v, %v", es, err)
	}
	select {
	case ev := <-events:
		if se, ok := ev.(*StoreEvent); ok {
			t.Fatalf("extra event %+v", se)
		}
	default:
	}
}

package chaski

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/chaski-dev/chaski/chaski/wire"
)

// The original's API members that Chaski had left out or not honoured
// (docs/ORIGINAL.md has the whole table).

func TestSetPropagatedUnknownCommand(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "n"})
	if err := n.SetPropagated("publsh", false); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("unknown command: %v, want ErrUnknownCommand", err)
	}
	for _, c := range []Command{CommandPublish, CommandDiscover, CommandFetch} {
		if err := n.SetPropagated(c, false); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if n.Propagated(c) {
			t.Fatalf("%s still relayed", c)
		}
	}
}

func TestTerminateStreamEndsStream(t *testing.T) {
	p := startNode(t, "127.0.0.1", Config{Name: "p", Subscriptions: []string{"t"}})
	c := startNode(t, "127.0.0.1", Config{Name: "c", Subscriptions: []string{"t"}})
	connect(t, c, p)
	eventually(t, "subscription known", func() bool { e, ok := p.Edge(c.ID()); return ok && e.Subscribes("t") })
	publish(t, p, "t", "before")
	got := make(chan string, 4)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		// No deadline: only TerminateStream can end this loop.
		for m := range c.Stream(context.Background()) {
			got <- string(m.Data)
		}
	}()
	select {
	case s := <-got:
		if s != "before" {
			t.Fatalf("stream yielded %q", s)
		}
	case <-time.After(waitTimeout):
		t.Fatal("stream yielded nothing")
	}
	// The stream now waits for the next message; terminating must end it.
	c.TerminateStream()
	select {
	case <-ended:
	case <-time.After(waitTimeout):
		t.Fatal("Stream did not return after TerminateStream")
	}
	if _, err := c.Next(context.Background()); !errors.Is(err, ErrStreamTerminated) {
		t.Fatalf("Next after TerminateStream: %v", err)
	}
	// Routing goes on: the message is counted, not delivered.
	publish(t, p, "t", "after")
	eventually(t, "undelivered message counted", func() bool { return c.Undelivered() == 1 })
	c.TerminateStream() // twice is harmless
}

func TestPingAllAndOptions(t *testing.T) {
	// Keep-alive pings would add samples of their own meanwhile.
	quiet := Config{PingInterval: time.Hour}
	cfg := func(name string) Config { c := quiet; c.Name = name; return c }
	a := startNode(t, "127.0.0.1", cfg("a"))
	b := startNode(t, "127.0.0.1", cfg("b"))
	c := startNode(t, "[::1]", cfg("c"))
	connect(t, a, b)
	connect(t, a, c)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	res := a.PingAll(ctx, PingOptions{Size: 100})
	if len(res) != 2 {
		t.Fatalf("PingAll: %d results, want 2: %+v", len(res), res)
	}
	seen := map[string]bool{}
	for _, r := range res {
		if r.Err != nil || r.RTT <= 0 {
			t.Fatalf("PingAll result %+v", r)
		}
		seen[r.PeerID+"/"+r.Name] = true
	}
	if !seen[b.ID()+"/b"] || !seen[c.ID()+"/c"] {
		t.Fatalf("PingAll answered by %v", seen)
	}

	samples := func() int { e, _ := a.Edge(b.ID()); return e.Latency.Samples }
	before := samples()
	if _, err := a.PingWith(ctx, b.ID(), PingOptions{NoStats: true}); err != nil {
		t.Fatal(err)
	}
	if got := samples(); got != before {
		t.Fatalf("a NoStats ping fed the statistics: %d samples, was %d", got, before)
	}
	if _, err := a.Ping(ctx, b.ID(), 0); err != nil {
		t.Fatal(err)
	}
	if got := samples(); got != before+1 {
		t.Fatalf("a plain ping: %d samples, want %d", got, before+1)
	}

	const delay = 100 * time.Millisecond
	start := time.Now()
	rtt, err := a.PingWith(ctx, b.ID(), PingOptions{Delay: delay})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed < delay || rtt > elapsed-delay {
		t.Fatalf("delayed ping: rtt %v after %v; the delay (%v) must come first and not count", rtt, elapsed, delay)
	}
	if _, err := a.PingWith(ctx, "nobody", PingOptions{}); !errors.Is(err, ErrNoEdge) {
		t.Fatalf("ping to nobody: %v", err)
	}
}

func TestSubscribePairedAtRunTime(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "n"})
	if err := n.Subscribe("plain"); err != nil {
		t.Fatal(err)
	}
	if err := n.SubscribePaired("ready"); err != nil {
		t.Fatal(err)
	}
	if n.PairedFor("plain") || !n.PairedFor("ready") {
		t.Fatalf("paired: plain %v, ready %v", n.PairedFor("plain"), n.PairedFor("ready"))
	}
	// An existing subscription becomes paired.
	if err := n.SubscribePaired("plain"); err != nil {
		t.Fatal(err)
	}
	if !n.Paired() {
		t.Fatalf("not paired for everything: %+v", n.Pairings())
	}
	if err := n.SubscribePaired("bad\x00topic"); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("invalid topic: %v", err)
	}
}

func TestDiscoverVia(t *testing.T) {
	// r1 leads nowhere; r2 leads to p, paired for both topics.
	o := startNode(t, "127.0.0.1", Config{Name: "o", Subscriptions: []string{"T1", "T2"}})
	r1 := startNode(t, "127.0.0.1", Config{Name: "r1", Subscriptions: []string{"X"}})
	r2 := startNode(t, "127.0.0.1", Config{Name: "r2", Subscriptions: []string{"X"}})
	p := startNode(t, "127.0.0.1", Config{Name: "p", Subscriptions: []string{"T1", "T2"}, Paired: true})
	connect(t, o, r1)
	connect(t, o, r2)
	connect(t, r2, p)
	waitEdges(t, map[*Node]int{o: 2, r1: 1, r2: 2, p: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()

	if err := o.Discover(ctx, DiscoverOptions{Topics: []string{"T1"}, Via: "nobody"}); !errors.Is(err, ErrNoEdge) {
		t.Fatalf("discovery via an unknown edge: %v", err)
	}
	// Through r1 only, p never hears of it (through every edge it would,
	// by r2, and answer well within the wait).
	if err := o.Discover(ctx, DiscoverOptions{Topics: []string{"T1"}, Via: r1.ID(), Timeout: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if o.ConnectedTo(p.ID()) {
		t.Fatal("discovery through r1 reached p")
	}
	if pi := pairingOf(o, "T1"); !pi.First {
		t.Fatalf("T1 through r1: %+v, want first of topic", pi)
	}
	// Through r2 (by name), p answers.
	if err := o.Discover(ctx, DiscoverOptions{Topics: []string{"T2"}, Via: "r2", Timeout: answer}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "o–p connected", func() bool { return connected(o, p) })
	if pi := pairingOf(o, "T2"); !pi.Paired || pi.First {
		t.Fatalf("T2 through r2: %+v, want paired with p", pi)
	}
}

func pairingOf(n *Node, topic string) PairingInfo {
	for _, pi := range n.Pairings() {
		if pi.Topic == topic {
			return pi
		}
	}
	return PairingInfo{}
}

func TestStatusFieldsOverUDP(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "a", AcceptFiles: true, DownloadDir: t.TempDir(),
		StatusFields: func() map[string]string {
			return map[string]string{"role": "worker", "bad\x01name": "x", "esc": "a\x1b[2Jb"}
		}})
	b := startNode(t, "[::1]", Config{Name: "b"})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := QueryStatus(ctx, a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if !st.AcceptsFiles {
		t.Fatal("UDP status does not say that a accepts files")
	}
	want := map[string]string{"role": "worker", "esc": "a?[2Jb"}
	if len(st.Extra) != len(want) || st.Extra["role"] != want["role"] || st.Extra["esc"] != want["esc"] {
		t.Fatalf("extra fields %q, want %q", st.Extra, want)
	}
	if local := a.Status(); local.Extra["role"] != "worker" || !local.AcceptsFiles {
		t.Fatalf("local status: extra %q, accepts files %v", local.Extra, local.AcceptsFiles)
	}
	st, err = QueryStatus(ctx, b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if st.AcceptsFiles || st.Extra != nil {
		t.Fatalf("b's status: accepts files %v, extra %q", st.AcceptsFiles, st.Extra)
	}
}

func TestStatusFieldsBounded(t *testing.T) {
	many := map[string]string{}
	for i := 0; i < 100; i++ {
		many[string(rune('A'+i%26))+string(rune('a'+i/26))] = string(make([]byte, 1000))
	}
	a := startNode(t, "127.0.0.1", Config{Name: "a", StatusFields: func() map[string]string { return many }})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := QueryStatus(ctx, a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// 32 fields of 256 bytes do not fit a datagram with the rest: the
	// status is served without them rather than not at all.
	if st.Name != "a" || len(st.Extra) != 0 {
		t.Fatalf("status %q with %d extra fields", st.Name, len(st.Extra))
	}
	if got := len(a.Status().Extra); got != 32 {
		t.Fatalf("local status keeps %d fields, want 32", got)
	}
}

func TestAcceptFilesWithoutDownloadDir(t *testing.T) {
	// The original's destination_folder='.': the working directory.
	dir := t.TempDir()
	t.Chdir(dir)
	b := fileReceiver(t, Config{AcceptFiles: true})
	a := fileSender(t, Config{}, b)
	if e, _ := a.Edge(b.ID()); !e.AcceptsFiles {
		t.Fatal("receiver does not announce that it accepts files")
	}
	if _, err := push(t, a, "here.txt", []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "here.txt"))
	if err != nil || string(data) != "hello" {
		t.Fatalf("file in the working directory: %q, %v", data, err)
	}
}

func TestFetchMove(t *testing.T) {
	a := startNode(t, "127.0.0.1", Config{Name: "A", Store: openStore(t, store.Options{}), RequestTimeout: 5 * time.Second})
	b := startNode(t, "127.0.0.1", Config{Name: "B", Store: openStore(t, store.Options{})})
	// C gives values up on request; D does not.
	c := startNode(t, "127.0.0.1", Config{Name: "C", Store: openStore(t, store.Options{}), AllowFetchMove: true})
	d := startNode(t, "127.0.0.1", Config{Name: "D", Store: openStore(t, store.Options{})})
	connect(t, a, b)
	connect(t, b, c)
	connect(t, b, d)
	waitEdges(t, map[*Node]int{a: 1, b: 3, c: 1, d: 1})
	for _, kv := range [][2]string{{"copied", "1"}, {"moved", "2"}} {
		if err := c.StorePut(kv[0], []byte(kv[1]), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.StorePut("kept", []byte("3"), time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	// The default is a copy, even from a holder that allows moves.
	r, err := a.FetchWith(ctx, "copied", FetchOptions{})
	if err != nil || string(r.Value) != "1" || r.Moved || r.Local {
		t.Fatalf("copy: %+v, %v", r, err)
	}
	// A move: a has it, then c deletes its copy.
	r, err = a.FetchWith(ctx, "moved", FetchOptions{Move: true})
	if err != nil || string(r.Value) != "2" || !r.Moved {
		t.Fatalf("move: %+v, %v", r, err)
	}
	if v, err := a.Store().Get("moved"); err != nil || string(v) != "2" {
		t.Fatalf("moved value at the requester: %q, %v", v, err)
	}
	eventually(t, "moved value deleted at the holder", func() bool { return !c.Store().Exists("moved") })
	// A holder without AllowFetchMove answers with a copy.
	r, err = a.FetchWith(ctx, "kept", FetchOptions{Move: true})
	if err != nil || string(r.Value) != "3" || r.Moved {
		t.Fatalf("move refused: %+v, %v", r, err)
	}
	// Now local: nothing to move.
	if r, err := a.FetchWith(ctx, "kept", FetchOptions{Move: true}); err != nil || !r.Local || r.Moved {
		t.Fatalf("local fetch: %+v, %v", r, err)
	}
	// The copies stayed, and nothing else was taken away.
	if !c.Store().Exists("copied") || !d.Store().Exists("kept") {
		t.Fatalf("copied at C: %v, kept at D: %v", c.Store().Exists("copied"), d.Store().Exists("kept"))
	}
}

func TestFetchMoveNoticeOnlyFromTheRequester(t *testing.T) {
	// Only the requester the value was offered to can make the holder
	// delete it, and only for that request and key.
	c := startNode(t, "127.0.0.1", Config{Name: "C", Store: openStore(t, store.Options{}), AllowFetchMove: true})
	if err := c.StorePut("k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	asker, other := dialFileRaw(t, c), dialFileRaw(t, c)
	req := make([]byte, 16)
	req[0] = 1
	asker.send(wire.KindStoreReq, "", &wire.StoreRequest{Request: req, Origin: asker.id[:], OriginAddr: "127.0.0.1:1",
		Key: "k", TTL: 4, Visited: [][]byte{asker.id[:]}, Move: true})
	var resp wire.StoreResponse
	if err := wire.Unmarshal(asker.next(wire.KindStoreResp).Body, &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Found || !resp.Move || string(resp.Value) != "v" {
		t.Fatalf("answer %+v", resp)
	}
	other.send(wire.KindStoreTaken, "", &wire.StoreTaken{Request: req, Key: "k"})
	asker.send(wire.KindStoreTaken, "", &wire.StoreTaken{Request: req, Key: "other"})
	pingRaw(t, other)
	pingRaw(t, asker)
	if !c.Store().Exists("k") {
		t.Fatal("a StoreTaken from another peer, or for another key, deleted the key")
	}
	asker.send(wire.KindStoreTaken, "", &wire.StoreTaken{Request: req, Key: "k"})
	eventually(t, "key deleted after the requester's notice", func() bool { return !c.Store().Exists("k") })
}

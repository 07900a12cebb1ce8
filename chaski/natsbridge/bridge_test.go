package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A mesh message appears on chaski.<topic> with its id in headers; a plain
// NATS publication reaches every mesh subscriber once, and the bridging
// node's own publications go out too.
func TestMirrorBothWays(t *testing.T) {
	s := startServer(t, nil)
	pub := startNode(t, "pub", "chat")
	br := startNode(t, "bridge", "chat")
	link(t, pub, br)
	waitPeerSub(t, pub, br, "chat")
	b := startBridge(t, br, Config{URLs: []string{s.URL()}})

	obs := natsConn(t, s.URL())
	got := make(chan *nats.Msg, 1000)
	if _, err := obs.ChanSubscribe("chaski.chat", got); err != nil {
		t.Fatal(err)
	}
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}
	cPub, cBr := collect(pub), collect(br)

	before := time.Now().UnixNano()
	publishN(t, pub, "chat", "mesh", 100)
	for i := 0; i < 100; i++ {
		select {
		case m := <-got:
			if want := fmt.Sprintf("mesh-%d", i); string(m.Data) != want {
				t.Fatalf("NATS message %d: %q, want %q (order kept)", i, m.Data, want)
			}
			if id := m.Header.Get(HeaderID); id != fmt.Sprintf("%s/%d", pub.ID(), i+1) {
				t.Fatalf("Chaski-Id %q, want %s/%d", id, pub.ID(), i+1)
			}
			if from := m.Header.Get(HeaderFrom); from != "pub" {
				t.Fatalf("Chaski-From %q", from)
			}
			if m.Header.Get(HeaderTime) == "" || m.Header.Get(jetstream.MsgIDHeader) != "" {
				t.Fatalf("headers %v: want Chaski-Time and no Nats-Msg-Id without a stream", m.Header)
			}
			// The header values are written into reused buffers: each
			// message must carry its own time, not a later one's bytes.
			if ns, err := strconv.ParseInt(m.Header.Get(HeaderTime), 10, 64); err != nil || ns < before || ns > time.Now().UnixNano() {
				t.Fatalf("Chaski-Time %q: not a time since the test began (%v)", m.Header.Get(HeaderTime), err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("NATS got %d of 100 mesh messages", i)
		}
	}

	np := natsConn(t, s.URL())
	for i := 0; i < 50; i++ {
		if err := np.Publish("chaski.chat", []byte(fmt.Sprintf("nats-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := np.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "NATS messages in the mesh", func() bool { return cPub.n() == 50 && cBr.n() == 150 })
	for i := 0; i < 50; i++ { // the observer sees the plain publications too
		if m := <-got; m.Header.Get(HeaderID) != "" {
			t.Fatalf("plain message %q came back with an id: %v", m.Data, m.Header)
		}
	}

	if err := br.Publish(context.Background(), "chat", []byte("local")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Data) != "local" || !strings.HasPrefix(m.Header.Get(HeaderID), br.ID()+"/") {
			t.Fatalf("bridging node's own message on NATS: %q %v", m.Data, m.Header)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the bridging node's own publication did not reach NATS")
	}
	eventually(t, "local message at pub", func() bool { return cPub.n() == 51 })
	settle(cPub, cBr)
	cPub.exactlyOnce(t, "pub", append(keys("chat", "nats", 50), "chat:local"))
	cBr.exactlyOnce(t, "bridge", append(keys("chat", "mesh", 100), keys("chat", "nats", 50)...))
	select {
	case m := <-got:
		t.Fatalf("NATS got an extra message %q (a loop?)", m.Data)
	default:
	}

	eventually(t, "RTT measured", func() bool { return b.Info().RTT > 0 })
	in := b.Info()
	if in.State != StateUp || in.Server == "" || in.MsgsOut != 101 || in.MsgsIn != 50 || in.Dropped != 0 {
		t.Fatalf("info %+v", in)
	}
}

// Two bridges in one mesh (a ring P-A-S-B-P, A and B bridging): every mesh
// subscriber gets every message once, whichever way it came.
func TestTwoBridgesOneMesh(t *testing.T) {
	s := startServer(t, nil)
	p, a, sub, bn := startNode(t, "p", "chat"), startNode(t, "a", "chat"), startNode(t, "s", "chat"), startNode(t, "b", "chat")
	link(t, p, a)
	link(t, a, sub)
	link(t, sub, bn)
	link(t, bn, p)
	for _, pair := range [][2]*chaski.Node{{p, a}, {a, sub}, {sub, bn}, {bn, p}, {a, p}, {sub, a}, {bn, sub}, {p, bn}} {
		waitPeerSub(t, pair[0], pair[1], "chat")
	}
	ba := startBridge(t, a, Config{URLs: []string{s.URL()}})
	bb := startBridge(t, bn, Config{URLs: []string{s.URL()}})
	interest(t, []*natsServer{s}, "chaski.chat", 4)

	obs := natsConn(t, s.URL())
	got := make(chan *nats.Msg, 4096)
	if _, err := obs.ChanSubscribe("chaski.chat", got); err != nil {
		t.Fatal(err)
	}
	_ = obs.Flush()
	cs := []*collector{collect(p), collect(a), collect(sub), collect(bn)}

	const n = 200
	publishN(t, p, "chat", "mesh", n)
	np := natsConn(t, s.URL())
	for i := 0; i < n; i++ {
		_ = np.Publish("chaski.chat", []byte(fmt.Sprintf("nats-%d", i)))
	}
	_ = np.Flush()
	eventually(t, "deliveries", func() bool {
		return cs[0].n() >= n && cs[1].n() >= 2*n && cs[2].n() >= 2*n && cs[3].n() >= 2*n
	})
	settle(cs...)
	all := append(keys("chat", "mesh", n), keys("chat", "nats", n)...)
	cs[0].exactlyOnce(t, "p", keys("chat", "nats", n))
	for i, name := range []string{"a", "s", "b"} {
		cs[i+1].exactlyOnce(t, name, all)
	}
	// Plain NATS subscribers get one copy of a mesh message per bridge of
	// the mesh (documented); the copies carry the same Chaski-Id.
	ids := map[string]int{}
	for len(got) > 0 {
		m := <-got
		if id := m.Header.Get(HeaderID); id != "" {
			ids[id]++
		}
	}
	if len(ids) != n {
		t.Errorf("NATS saw %d distinct mesh ids, want %d", len(ids), n)
	}
	for id, c := range ids {
		if c > 2 {
			t.Errorf("id %s on NATS %d times (more than one per bridge)", id, c)
		}
	}
	if ia, ib := ba.Info(), bb.Info(); ia.MsgsIn+ib.MsgsIn == 0 || ia.Duplicates+ib.Duplicates == 0 {
		t.Errorf("bridges: a %+v b %+v (expected injections and dropped duplicates)", ia, ib)
	}
}

// Two meshes bridged through a three-server cluster, one with two bridges:
// every subscriber of either mesh gets every message once (its own
// publications excepted), including those of a plain NATS client.
func TestTwoMeshesThroughCluster(t *testing.T) {
	cl := startCluster(t)
	// Mesh 1: p1 - a1 - s1; a1 bridges through server 0.
	p1, a1, s1 := startNode(t, "p1", "chat"), startNode(t, "a1", "chat"), startNode(t, "s1", "chat")
	link(t, p1, a1)
	link(t, a1, s1)
	// Mesh 2: ring p2 - a2 - s2 - b2 - p2; a2 via server 1, b2 via server 2.
	p2, a2, s2, b2 := startNode(t, "p2", "chat"), startNode(t, "a2", "chat"), startNode(t, "s2", "chat"), startNode(t, "b2", "chat")
	link(t, p2, a2)
	link(t, a2, s2)
	link(t, s2, b2)
	link(t, b2, p2)
	for _, pair := range [][2]*chaski.Node{{p1, a1}, {a1, p1}, {a1, s1}, {s1, a1}, {p2, a2}, {a2, p2}, {a2, s2}, {s2, a2}, {s2, b2}, {b2, s2}, {b2, p2}, {p2, b2}} {
		waitPeerSub(t, pair[0], pair[1], "chat")
	}
	startBridge(t, a1, Config{URLs: []string{cl[0].URL()}})
	startBridge(t, a2, Config{URLs: []string{cl[1].URL()}})
	startBridge(t, b2, Config{URLs: []string{cl[2].URL()}})
	interest(t, cl, "chaski.chat", 6) // per bridge: one plain and one queue subscription
	interest(t, cl, AnnounceSubject("chaski.chat"), 3)

	nodes := []*chaski.Node{p1, a1, s1, p2, a2, s2, b2}
	cs := make([]*collector, len(nodes))
	for i, n := range nodes {
		cs[i] = collect(n)
	}
	const n = 100
	publishN(t, p1, "chat", "m1", n)
	publishN(t, p2, "chat", "m2", n)
	np := natsConn(t, cl[2].URL())
	for i := 0; i < n; i++ {
		_ = np.Publish("chaski.chat", []byte(fmt.Sprintf("nats-%d", i)))
	}
	_ = np.Flush()
	m1, m2, nn := keys("chat", "m1", n), keys("chat", "m2", n), keys("chat", "nats", n)
	want := func(n *chaski.Node) []string {
		switch n {
		case p1:
			return append(append([]string{}, m2...), nn...)
		case p2:
			return append(append([]string{}, m1...), nn...)
		}
		return append(append(append([]string{}, m1...), m2...), nn...)
	}
	eventually(t, "deliveries in both meshes", func() bool {
		for i, node := range nodes {
			if cs[i].n() < len(want(node)) {
				return false
			}
		}
		return true
	})
	settle(cs...)
	for i, node := range nodes {
		cs[i].exactlyOnce(t, node.Name(), want(node))
	}
}

// A plain NATS message claimed by one bridge reaches another mesh through
// the announcement with the same id and time, from "nats" (the
// announcement carries no Chaski-From), every one with its own values.
func TestAnnouncedIDAndTime(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) { testAnnouncedIDAndTime(t, batch) })
	}
}

func testAnnouncedIDAndTime(t *testing.T, batch bool) {
	s := startServer(t, nil)
	a, b := startNode(t, "a", "chat"), startNode(t, "b", "chat") // two meshes of one node
	startBridge(t, a, Config{URLs: []string{s.URL()}, BatchAnnouncements: batch})
	startBridge(t, b, Config{URLs: []string{s.URL()}, BatchAnnouncements: batch})
	interest(t, []*natsServer{s}, AnnounceSubject("chaski.chat"), 2)

	type seen struct {
		from, id string
		at       time.Time
	}
	record := func(n *chaski.Node, out map[string]seen, mu *sync.Mutex) {
		go func() {
			for m := range n.Messages() {
				mu.Lock()
				out[string(m.Data)] = seen{m.From, fmt.Sprintf("%s/%d", m.FromID, m.Seq), m.Time}
				mu.Unlock()
			}
		}()
	}
	var mu sync.Mutex
	atA, atB := map[string]seen{}, map[string]seen{}
	record(a, atA, &mu)
	record(b, atB, &mu)

	np := natsConn(t, s.URL())
	// A bridge without BatchAnnouncements sends none: the bridges of an
	// earlier version it may share the cluster with would ignore them.
	var batches atomic.Int64
	watch, err := np.Subscribe(AnnounceSubject("chaski.chat"), func(m *nats.Msg) {
		if m.Header.Get(HeaderBatch) != "" {
			batches.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Unsubscribe()
	if err := np.Flush(); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := 0; i < n; i++ {
		if err := np.Publish("chaski.chat", []byte(fmt.Sprintf("nats-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := np.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every message in both meshes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(atA) == n && len(atB) == n
	})
	// One message alone, after the burst: its announcement must not wait
	// for a batch to fill.
	if err := np.Publish("chaski.chat", []byte("nats-alone")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the lone message in both meshes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(atA) == n+1 && len(atB) == n+1
	})
	if !batch && batches.Load() != 0 {
		t.Errorf("%d batched announcements sent with BatchAnnouncements off", batches.Load())
	}
	t.Logf("batched announcements seen: %d", batches.Load())
	mu.Lock()
	defer mu.Unlock()
	ids := map[string]bool{}
	for i := 0; i <= n; i++ {
		k := fmt.Sprintf("nats-%d", i)
		if i == n {
			k = "nats-alone"
		}
		x, y := atA[k], atB[k]
		if x.from != "nats" || y.from != "nats" {
			t.Fatalf("%s: from %q and %q, want nats", k, x.from, y.from)
		}
		if x.id != y.id || !x.at.Equal(y.at) {
			t.Fatalf("%s: id %s at %v in one mesh, %s at %v in the other", k, x.id, x.at, y.id, y.at)
		}
		if ids[x.id] {
			t.Fatalf("%s: id %s given twice", k, x.id)
		}
		ids[x.id] = true
	}
}

func TestSubjectMapping(t *testing.T) {
	for _, c := range []struct {
		topic string
		ok    bool
	}{{"chat", true}, {"a.b", true}, {"a b", false}, {"a.*", false}, {">", false}, {"a..b", false}, {".a", false}} {
		_, err := Subject("chaski", c.topic)
		if (err == nil) != c.ok {
			t.Errorf("Subject(%q): %v", c.topic, err)
		}
		if err != nil && !errors.Is(err, ErrTopic) {
			t.Errorf("Subject(%q): %v is not ErrTopic", c.topic, err)
		}
	}
	if !matchSubject("chaski.>", "chaski.a.b") || matchSubject("chaski.*", "chaski.a.b") || !matchSubject("chaski.*", "chaski.a") {
		t.Error("matchSubject")
	}
	for _, k := range []string{"plain", "with space", "b64.x", "a..b", ".x", "ü"} {
		kk := KVKey(k)
		for i := 0; i < len(kk); i++ {
			c := kk[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_/=.", c) >= 0) {
				t.Errorf("KVKey(%q) = %q: invalid byte", k, kk)
			}
		}
		if k == "plain" && kk != k {
			t.Errorf("KVKey(plain) = %q", kk)
		}
	}
}

// The NATS server killed and restarted without a stream: the mesh keeps
// working, the bridge reconnects by itself, holds what the mesh published
// meanwhile up to its bound (dropping and counting the oldest beyond it)
// and sends it once the server is back. An observer stream on the server
// (not used by the bridge) records what arrived.
func TestServerRestartCore(t *testing.T) {
	s := startServer(t, withJetStream(t))
	p, a := startNode(t, "p", "chat"), startNode(t, "a", "chat")
	link(t, p, a)
	waitPeerSub(t, p, a, "chat")
	b := startBridge(t, a, Config{URLs: []string{s.URL()}, Hold: 20})
	js := observerStream(t, s.URL(), "OBS")
	cA := collect(a)

	publishN(t, p, "chat", "before", 10)
	waitStreamCount(t, js, "OBS", 10)

	s.stop()
	eventually(t, "bridge sees the server gone", func() bool { return b.Info().State == StateReconnecting })
	publishN(t, p, "chat", "during", 50)
	eventually(t, "the mesh works without NATS", func() bool { return cA.n() == 60 })
	eventually(t, "held and dropped", func() bool { in := b.Info(); return in.Pending == 20 && in.Dropped == 30 })

	s.restart()
	eventually(t, "bridge reconnected", func() bool { return b.Info().State == StateUp })
	js = observerStream(t, s.URL(), "OBS")
	waitStreamCount(t, js, "OBS", 30)
	// The newest 20 were kept: during-30 ... during-49.
	st, _ := js.Stream(context.Background(), "OBS")
	for seq, i := uint64(11), 30; i < 50; seq, i = seq+1, i+1 {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil || string(m.Data) != fmt.Sprintf("during-%d", i) {
			t.Fatalf("stream seq %d: %v %q, want during-%d", seq, err, m.Data, i)
		}
	}
	publishN(t, p, "chat", "after", 5)
	waitStreamCount(t, js, "OBS", 35)
	if in := b.Info(); in.Pending != 0 || in.Dropped != 30 {
		t.Fatalf("after the outage: %+v", in)
	}
}

// observerStream makes (or binds) a stream of chaski.> on the server, as a
// test's record of what reached NATS.
func observerStream(t *testing.T, url, name string) jetstream.JetStream {
	t.Helper()
	nc := natsConn(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"chaski.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	return js
}

func waitStreamCount(t *testing.T, js jetstream.JetStream, name string, n uint64) {
	t.Helper()
	var last uint64
	eventually(t, fmt.Sprintf("%d messages in stream %s", n, name), func() bool {
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			return false
		}
		info, err := st.Info(context.Background())
		if err != nil {
			return false
		}
		last = info.State.Msgs
		if last > n {
			t.Fatalf("stream %s has %d messages, want %d", name, last, n)
		}
		return last == n
	})
	// Nothing more may follow (a late duplicate).
	time.Sleep(300 * time.Millisecond)
	if st, err := js.Stream(context.Background(), name); err == nil {
		if info, err := st.Info(context.Background()); err == nil && info.State.Msgs != n {
			t.Fatalf("stream %s grew to %d messages, want %d", name, info.State.Msgs, n)
		}
	}
}

// With a stream, a subscriber that was offline replays what it missed
// (durable consumer named after the node), and what the mesh published
// while the server was down is stored once it is back: nothing lost,
// nothing twice.
func TestStreamReplayAndRestart(t *testing.T) {
	s := startServer(t, withJetStream(t))
	p, a := startNode(t, "p", "chat"), startNode(t, "a", "chat")
	link(t, p, a)
	waitPeerSub(t, p, a, "chat")
	cfg := Config{URLs: []string{s.URL()}, Stream: "CHAT"}
	b := startBridge(t, a, cfg)

	// The reader is a mesh of its own with one node; it goes offline.
	r1 := startNode(t, "reader", "chat")
	rb := startBridge(t, r1, cfg)
	c1 := collect(r1)
	publishN(t, p, "chat", "online", 10)
	eventually(t, "reader online", func() bool { return c1.n() == 10 })
	rb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-c1.done

	publishN(t, p, "chat", "missed", 20)
	s.stop()
	eventually(t, "bridge sees the server gone", func() bool { return b.Info().State == StateReconnecting })
	publishN(t, p, "chat", "outage", 30)
	s.restart()
	eventually(t, "bridge reconnected", func() bool { return b.Info().State == StateUp })

	r2 := startNode(t, "reader", "chat")
	startBridge(t, r2, cfg)
	c2 := collect(r2)
	want := append(keys("chat", "missed", 20), keys("chat", "outage", 30)...)
	eventually(t, "replay", func() bool { return c2.n() >= len(want) })
	publishN(t, p, "chat", "live", 5)
	want = append(want, keys("chat", "live", 5)...)
	eventually(t, "live after replay", func() bool { return c2.n() >= len(want) })
	settle(c2)
	c2.exactlyOnce(t, "restarted reader", want)
	eventually(t, "all acknowledged", func() bool { return b.Info().Pending == 0 })
	if in := b.Info(); in.Dropped != 0 {
		t.Fatalf("bridge dropped %d", in.Dropped)
	}
}

// Two bridges of one mesh with a stream: the stream keeps each mesh message
// once (Nats-Msg-Id), and a plain NATS publication reaches the mesh once
// (its stream sequence is its id at both bridges).
func TestStreamTwoBridgesDedup(t *testing.T) {
	s := startServer(t, withJetStream(t))
	p, a, bn := startNode(t, "p", "chat"), startNode(t, "a", "chat"), startNode(t, "b", "chat")
	link(t, p, a)
	link(t, p, bn)
	link(t, a, bn)
	for _, pair := range [][2]*chaski.Node{{p, a}, {p, bn}, {a, bn}, {bn, a}, {a, p}, {bn, p}} {
		waitPeerSub(t, pair[0], pair[1], "chat")
	}
	startBridge(t, a, Config{URLs: []string{s.URL()}, Stream: "CHAT"})
	startBridge(t, bn, Config{URLs: []string{s.URL()}, Stream: "CHAT"})
	cP := collect(p)
	publishN(t, p, "chat", "mesh", 50)
	nc := natsConn(t, s.URL())
	js, _ := jetstream.New(nc)
	for i := 0; i < 20; i++ {
		if _, err := js.Publish(context.Background(), "chaski.chat", []byte(fmt.Sprintf("nats-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitStreamCount(t, js, "CHAT", 70)
	eventually(t, "NATS messages at p", func() bool { return cP.n() >= 20 })
	settle(cP)
	cP.exactlyOnce(t, "p", keys("chat", "nats", 20))
}

// store put writes the bucket too (with the TTL); fetch falls back to it.
func TestKVWriteThroughAndFallback(t *testing.T) {
	s := startServer(t, withJetStream(t))
	st1, st2 := openStore(t), openStore(t)
	n1 := startNodeStore(t, "kv1", st1)
	n2 := startNodeStore(t, "kv2", st2)
	b1 := startBridge(t, n1, Config{URLs: []string{s.URL()}, KV: "store", Topics: []string{"x"}})
	b2 := startBridge(t, n2, Config{URLs: []string{s.URL()}, KV: "store", Topics: []string{"x"}})
	ctx := context.Background()
	if err := b1.StorePut(ctx, "greeting", []byte("hello"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b1.StorePut(ctx, "with space", []byte("odd key"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b1.StorePut(ctx, "short", []byte("soon gone"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// n2 has no peers: the mesh cannot answer, the bucket does.
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	v, err := b2.Fetch(fctx, "greeting")
	cancel()
	if err != nil || string(v) != "hello" {
		t.Fatalf("fetch through the bucket: %q %v", v, err)
	}
	if got, err := st2.Get("greeting"); err != nil || string(got) != "hello" {
		t.Fatalf("fetched value not stored locally: %q %v", got, err)
	}
	if v, err := b2.KV().Get(ctx, "with space"); err != nil || string(v) != "odd key" {
		t.Fatalf("odd key: %q %v", v, err)
	}
	eventually(t, "the bucket expires the short key", func() bool {
		_, err := b2.KV().Get(ctx, "short")
		return errors.Is(err, chaski.ErrNotFound)
	})
	fctx, cancel = context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := b2.Fetch(fctx, "absent"); !errors.Is(err, chaski.ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
}

func TestErrors(t *testing.T) {
	n := startNode(t, "e", "chat")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	try := func(cfg Config) error {
		b, err := Start(ctx, n, cfg)
		if err == nil {
			b.Close()
		}
		return err
	}
	for _, u := range []string{"http://127.0.0.1:4222", "nats://127.0.0.1:99999", "nats://"} {
		if err := try(Config{URLs: []string{u}}); !errors.Is(err, ErrBadURL) {
			t.Errorf("URL %q: %v, want ErrBadURL", u, err)
		}
	}
	// A port nobody listens on: a server that was shut down.
	dead := startServer(t, nil)
	url := dead.URL()
	dead.stop()
	if err := try(Config{URLs: []string{url}}); !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "no NATS server answers") {
		t.Errorf("dead server: %v", err)
	}
	if err := try(Config{URLs: []string{"nats://127.0.0.1:4222"}, Creds: t.TempDir() + "/none.creds"}); !errors.Is(err, ErrAuth) {
		t.Errorf("missing creds file: %v", err)
	}

	s := startServer(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "ok", Password: "pw"},
			{Username: "nosub", Password: "pw", Permissions: &server.Permissions{
				Subscribe: &server.SubjectPermission{Deny: []string{"chaski.chat"}}}},
			{Username: "nopub", Password: "pw", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Deny: []string{"chaski.chat"}}}},
		}
	})
	if err := try(Config{URLs: []string{s.URL()}, Options: []nats.Option{nats.UserInfo("ok", "wrong")}}); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong password: %v", err)
	}
	withPW := strings.Replace(s.URL(), "nats://", "nats://ok:pw@", 1)
	if err := try(Config{URLs: []string{strings.Replace(withPW, ":pw@", ":wrongpw@", 1)}}); !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrongpw") {
		t.Errorf("wrong password in the URL: %v (the password must not be shown)", err)
	}
	if b, err := Start(ctx, n, Config{URLs: []string{withPW}}); err != nil {
		t.Errorf("password in the URL: %v", err)
	} else {
		if in := b.Info(); strings.Contains(in.Server+strings.Join(in.URLs, ","), ":pw@") || in.Server == "" {
			t.Errorf("info shows the password or no server: %+v", in)
		}
		b.Close()
	}
	err := try(Config{URLs: []string{s.URL()}, Options: []nats.Option{nats.UserInfo("nosub", "pw")}})
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "chaski.chat") {
		t.Errorf("subscribe denied: %v", err)
	}
	b, err := Start(ctx, n, Config{URLs: []string{s.URL()}, Options: []nats.Option{nats.UserInfo("nopub", "pw")}})
	if err != nil {
		t.Fatalf("publish-denied user connects and subscribes: %v", err)
	}
	defer b.Close()
	if err := n.Publish(ctx, "chat", []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.Fatal():
		if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "chaski.chat") {
			t.Errorf("publish denied: %v", err)
		}
		if in := b.Info(); in.State != StateError || !strings.Contains(in.Err, "chaski.chat") {
			t.Errorf("info after a denied publication: %+v", in)
		}
	case <-time.After(waitTimeout):
		t.Error("no fatal error for a denied publication")
	}
}

// NATS slower than the mesh: the bridge's connection goes through a proxy
// that passes 1.6 MB/s towards the server, and the mesh publishes 32 MB (far
// more than the sockets' buffers hold). The mesh publisher is never held
// for long, what waits for NATS stays within the queue's bound, and every
// message is either handed to NATS (and arrives, once) or counted as
// dropped.
func TestSlowNATSBoundedAndCounted(t *testing.T) {
	s := startServer(t, nil)
	proxy := throttledProxy(t, s.opts.Port, 16<<10, 10*time.Millisecond)
	p, a := startNode(t, "p", "chat"), startNode(t, "a", "chat")
	link(t, p, a)
	waitPeerSub(t, p, a, "chat")
	const queue = 64
	b := startBridge(t, a, Config{URLs: []string{"nats://" + proxy}, Queue: queue})
	obs := natsConn(t, s.URL())
	var got atomic.Int64
	if _, err := obs.Subscribe("chaski.chat", func(*nats.Msg) { got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	_ = obs.Flush()
	interest(t, []*natsServer{s}, "chaski.chat", 3)

	const n = 2000
	stop := make(chan struct{})
	maxPending := make(chan int, 1)
	go func() {
		peak := 0
		for {
			select {
			case <-stop:
				maxPending <- peak
				return
			default:
			}
			peak = max(peak, b.Info().Pending)
			time.Sleep(time.Millisecond)
		}
	}()
	start := time.Now()
	payload := make([]byte, 16<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	for i := 0; i < n; i++ {
		if err := p.Publish(ctx, "chat", payload); err != nil {
			t.Fatalf("publish %d: %v (the mesh must not wait for NATS)", i, err)
		}
	}
	took := time.Since(start)
	close(stop)
	if peak := <-maxPending; peak > queue+1 {
		t.Errorf("pending reached %d, bound %d", peak, queue+1)
	}
	var in Info
	eventually(t, "every message sent or counted", func() bool {
		in = b.Info()
		return in.MsgsOut+in.Dropped == n && in.Pending == 0
	})
	if in.Dropped == 0 {
		t.Errorf("NATS at 1.6 MB/s took all %d messages of 16 KiB in %v: the proxy did not slow it", n, took)
	}
	eventually(t, "what was handed to NATS arrives", func() bool { return uint64(got.Load()) == in.MsgsOut })
	time.Sleep(200 * time.Millisecond)
	if uint64(got.Load()) != in.MsgsOut {
		t.Fatalf("NATS got %d, the bridge handed over %d", got.Load(), in.MsgsOut)
	}
	t.Logf("published %d in %v: %d to NATS, %d dropped", n, took, in.MsgsOut, in.Dropped)
}

// throttledProxy forwards 127.0.0.1 connections to port, passing at most
// chunk bytes per pause towards it (and everything back at once).
func throttledProxy(t *testing.T, port, chunk int, pause time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, up)
				c.Close()
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, chunk)
				for {
					k, err := c.Read(buf)
					if k > 0 {
						if _, werr := up.Write(buf[:k]); werr != nil {
							break
						}
						time.Sleep(pause)
					}
					if err != nil {
						break
					}
				}
				up.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

package natsbridge

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// waitTimeout is generous: CI runs on a loaded 2-core machine.
const waitTimeout = 30 * time.Second

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// natsServer is a real nats-server run in this process on 127.0.0.1.
type natsServer struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

func (s *natsServer) URL() string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.opts.Port))
}

// startServer runs a server; edit adjusts its options (JetStream, accounts,
// cluster). The port is chosen by the kernel and kept for restarts.
func startServer(t testing.TB, edit func(*server.Options)) *natsServer {
	t.Helper()
	o := server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, ServerName: fmt.Sprintf("s%d", time.Now().UnixNano()%1e6)}
	if edit != nil {
		edit(&o)
	}
	s := &natsServer{t: t, opts: o}
	s.start()
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	if s.opts.Cluster.Port == -1 {
		s.opts.Cluster.Port = s.srv.ClusterAddr().Port
	}
	t.Cleanup(s.stop)
	return s
}

func withJetStream(t testing.TB) func(*server.Options) {
	dir := t.TempDir()
	return func(o *server.Options) {
		o.JetStream = true
		o.StoreDir = dir
	}
}

func (s *natsServer) start() {
	s.t.Helper()
	o := s.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		s.t.Fatalf("nats server not ready")
	}
	s.srv = srv
}

// stop shuts the server down (a kill, for the clients: they see the
// connection drop).
func (s *natsServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// restart starts the server again on the same port (and store directory).
func (s *natsServer) restart() { s.start() }

// startCluster runs three servers routed to each other on loopback.
func startCluster(t testing.TB) []*natsServer {
	t.Helper()
	first := startServer(t, func(o *server.Options) {
		o.Cluster = server.ClusterOpts{Name: "c", Host: "127.0.0.1", Port: -1}
	})
	seed := server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", first.opts.Cluster.Port))
	out := []*natsServer{first}
	for i := 0; i < 2; i++ {
		out = append(out, startServer(t, func(o *server.Options) {
			o.Cluster = server.ClusterOpts{Name: "c", Host: "127.0.0.1", Port: -1}
			o.Routes = seed
		}))
	}
	eventually(t, "cluster routes", func() bool {
		for _, s := range out {
			if s.srv.NumRoutes() < 2 {
				return false
			}
		}
		return true
	})
	return out
}

// interest waits until every server sees at least n subscriptions on subj.
func interest(t testing.TB, servers []*natsServer, subj string, n int) {
	t.Helper()
	eventually(t, "subscription interest on "+subj, func() bool {
		for _, s := range servers {
			if s.srv.GlobalAccount().Interest(subj) < n {
				return false
			}
		}
		return true
	})
}

func startNode(t testing.TB, name string, subs ...string) *chaski.Node {
	t.Helper()
	return startNodeCfg(t, chaski.Config{Name: name, Subscriptions: subs})
}

// startNodeCfg starts a node with cfg on a free loopback port, without
// reconnection, and closes it when the test ends.
func startNodeCfg(t testing.TB, cfg chaski.Config) *chaski.Node {
	t.Helper()
	cfg.Listen, cfg.ReconnectAttempts = "127.0.0.1:0", -1
	n, err := chaski.Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close %s: %v", cfg.Name, err)
		}
	})
	return n
}

func link(t testing.TB, a, b *chaski.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, b.Addr()); err != nil {
		t.Fatalf("connect %s -> %s: %v", a.Name(), b.Name(), err)
	}
	eventually(t, "edge "+a.Name()+"-"+b.Name(), func() bool { return b.ConnectedTo(a.ID()) && a.ConnectedTo(b.ID()) })
}

// waitSubs waits until n sees peer's subscription to topic.
func waitPeerSub(t testing.TB, n, peer *chaski.Node, topic string) {
	t.Helper()
	eventually(t, n.Name()+" sees "+peer.Name()+" on "+topic, func() bool {
		e, ok := n.Edge(peer.ID())
		return ok && e.Subscribes(topic)
	})
}

func startBridge(t testing.TB, n *chaski.Node, cfg Config) *Bridge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := Start(ctx, n, cfg)
	if err != nil {
		t.Fatalf("bridge on %s: %v", n.Name(), err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func natsConn(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// collector counts what a node's subscriber queue delivers, per payload.
type collector struct {
	mu    sync.Mutex
	count map[string]int
	total int
	done  chan struct{}
}

func collect(n *chaski.Node) *collector {
	c := &collector{count: make(map[string]int), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for m := range n.Messages() {
			c.mu.Lock()
			c.count[m.Topic+":"+string(m.Data)]++
			c.total++
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collector) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// exactlyOnce fails unless every key was delivered exactly once and
// nothing else was delivered.
func (c *collector) exactlyOnce(t testing.TB, who string, keys []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
		if c.count[k] != 1 {
			t.Errorf("%s: %q delivered %d times, want 1", who, k, c.count[k])
		}
	}
	for k, v := range c.count {
		if !want[k] {
			t.Errorf("%s: unexpected %q (%d times)", who, k, v)
		}
	}
}

func keys(topic, prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s:%s-%d", topic, prefix, i)
	}
	return out
}

func publishN(t testing.TB, n *chaski.Node, topic, prefix string, count int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < count; i++ {
		if err := n.Publish(ctx, topic, []byte(fmt.Sprintf("%s-%d", prefix, i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// settle waits until nothing more arrives for a while (to catch late
// duplicates) after the expected count was reached.
func settle(cs ...*collector) {
	last := -1
	for stable := 0; stable < 4; {
		sum := 0
		for _, c := range cs {
			sum += c.n()
		}
		if sum == last {
			stable++
		} else {
			stable = 0
		}
		last = sum
		time.Sleep(100 * time.Millisecond)
	}
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir()+"/store.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func startNodeStore(t testing.TB, name string, st *store.Store) *chaski.Node {
	t.Helper()
	return startNodeCfg(t, chaski.Config{Name: name, Store: st})
}

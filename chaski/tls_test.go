package chaski

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/chaski-dev/chaski/chaski/pki"
)

// issuer runs a CA signing service on loopback for the test's lifetime and
// hands out identities the way `chaski node --ca ADDR --ca-token T` obtains
// them.
type issuer struct {
	addr, token string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	ca, err := pki.InitCA(filepath.Join(t.TempDir(), "ca"), pki.CAOptions{Name: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := pki.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pki.NewServer(ca, token, pki.ServerOptions{}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("CA server: %v", err)
		}
	})
	return &issuer{addr: ln.Addr().String(), token: token}
}

func (is *issuer) identity(t *testing.T, name string) *pki.Identity {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	id, err := pki.Obtain(ctx, is.addr, is.token, pki.CertRequest{Name: name, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("obtain certificate for %s: %v", name, err)
	}
	return id
}

func tlsNode(t *testing.T, name string, id *pki.Identity, subs ...string) *Node {
	return startNode(t, "127.0.0.1", Config{Name: name, Subscriptions: subs, ServerTLS: id.ServerConfig(), ClientTLS: id.ClientConfig()})
}

func TestMutualTLSEdges(t *testing.T) {
	is := newIssuer(t)
	a := tlsNode(t, "a", is.identity(t, "a"), "t")
	b := tlsNode(t, "b", is.identity(t, "b"), "t")
	connect(t, b, a)
	e, ok := a.Edge(b.ID())
	if !ok || !e.TLS {
		t.Fatalf("edge not over TLS: %+v", e)
	}
	if !a.Status().TLS {
		t.Fatal("status does not report TLS")
	}
	runTransmission(t, a, b, "t")
	// Over TLS pings never take the direct-write path (the record layer
	// owns the socket): they go through the writer, and still arrive.
	if a.findEdge(b.ID()).raw != nil {
		t.Fatal("a TLS edge may not write pings directly")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if rtts, err := a.PingSeries(ctx, b.ID(), 200, 32); err != nil || len(rtts) != 200 {
		t.Fatalf("ping series over TLS: %d round trips, %v", len(rtts), err)
	}
	if _, err := b.Ping(ctx, a.ID(), 0); err != nil {
		t.Fatalf("ping over TLS: %v", err)
	}
}

func TestTLSRefusesPlaintextAndForeignCA(t *testing.T) {
	is := newIssuer(t)
	secure := tlsNode(t, "secure", is.identity(t, "secure"))
	plain := startNode(t, "127.0.0.1", Config{Name: "plain"})
	foreign := tlsNode(t, "foreign", newIssuer(t).identity(t, "foreign"))

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// A plaintext peer cannot connect to a TLS node, nor the other way.
	if _, err := plain.Connect(ctx, secure.Addr()); err == nil {
		t.Fatal("plaintext peer connected to a TLS node")
	}
	if _, err := secure.Connect(ctx, plain.Addr()); !errors.Is(err, ErrHandshake) {
		t.Fatalf("TLS node connected to a plaintext peer: %v", err)
	}
	// A certificate from another CA is refused in both directions.
	if _, err := foreign.Connect(ctx, secure.Addr()); err == nil {
		t.Fatal("peer with a foreign certificate connected")
	}
	if _, err := secure.Connect(ctx, foreign.Addr()); !errors.Is(err, ErrHandshake) {
		t.Fatalf("connected to a peer with a foreign certificate: %v", err)
	}
	if secure.EdgeCount() != 0 || plain.EdgeCount() != 0 || foreign.EdgeCount() != 0 {
		t.Fatal("an edge came up despite the refusal")
	}
}

func TestTLSNodeRefusesUDPRequests(t *testing.T) {
	is := newIssuer(t)
	n := tlsNode(t, "secure", is.identity(t, "secure"))
	called := false
	n.Handle("echo", func(ctx context.Context, r Request) ([]byte, error) { called = true; return r.Data, nil })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := RequestUDP(ctx, n.Addr(), "echo", []byte("x")); !errors.Is(err, ErrRemote) || called {
		t.Fatalf("UDP request on a TLS node: %v (handler called: %v)", err, called)
	}
	// Status stays available: it only reveals public facts.
	if st, err := QueryStatus(ctx, n.Addr()); err != nil || !st.TLS {
		t.Fatalf("status: %+v %v", st, err)
	}
}

package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type handshakeResult struct {
	state tls.ConnectionState
	err   error
}

// handshake runs one TLS connection over loopback TCP. After a successful
// handshake the server sends "ok", so that a client whose certificate the
// server rejects (which in TLS 1.3 the client only learns after its own
// handshake returned) sees an error too.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (srv, cli handshakeResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx := testContext(t)
	srvc := make(chan handshakeResult, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			srvc <- handshakeResult{err: err}
			return
		}
		defer conn.Close()
		tc := tls.Server(conn, serverCfg)
		tc.SetDeadline(time.Now().Add(testTimeout))
		err = tc.HandshakeContext(ctx)
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		srvc <- handshakeResult{state: tc.ConnectionState(), err: err}
		if err == nil {
			io.Copy(io.Discard, tc) // until the client hangs up
		}
	}()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(conn, clientCfg)
	tc.SetDeadline(time.Now().Add(testTimeout))
	err = tc.HandshakeContext(ctx)
	if err == nil {
		buf := make([]byte, 2)
		if _, err = io.ReadFull(tc, buf); err == nil && string(buf) != "ok" {
			err = errors.New("unexpected server message")
		}
	}
	cli = handshakeResult{state: tc.ConnectionState(), err: err}
	tc.Close()
	select {
	case srv = <-srvc:
	case <-time.After(testTimeout):
		t.Fatal("server side hangs")
	}
	return srv, cli
}

func TestMutualTLS(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	a := issue(t, ca, "node-a")
	b := issue(t, ca, "node-b")
	clientCfg := b.ClientConfig()
	// We dial 127.0.0.1 and even claim a name that is in no certificate:
	// host names play no part in peer authentication.
	clientCfg.ServerName = "not-in-any-san.example"
	srv, cli := handshake(t, a.ServerConfig(), clientCfg)
	if srv.err != nil || cli.err != nil {
		t.Fatalf("handshake: server %v, client %v", srv.err, cli.err)
	}
	for _, st := range []tls.ConnectionState{srv.state, cli.state} {
		if st.Version != tls.VersionTLS13 {
			t.Errorf("version %x, want TLS 1.3", st.Version)
		}
	}
	if got := PeerName(srv.state); got != "node-b" {
		t.Errorf("server sees peer %q, want node-b", got)
	}
	if got := PeerName(cli.state); got != "node-a" {
		t.Errorf("client sees peer %q, want node-a", got)
	}
	if PeerName(tls.ConnectionState{}) != "" {
		t.Error("PeerName of an unfinished handshake is not empty")
	}
}

func TestMutualTLSForeignCA(t *testing.T) {
	// Same (default) CA name on purpose: only the key makes the difference.
	ours, _ := newTestCA(t, CAOptions{})
	theirs, _ := newTestCA(t, CAOptions{})
	node := issue(t, ours, "node")
	// The stranger holds a certificate of another CA but knows (and
	// trusts) our CA certificate, which is no secret. So the refusal
	// tested is the other side's.
	strangerID := issue(t, theirs, "stranger")
	stranger := &Identity{
		Certificate: strangerID.Certificate,
		Leaf:        strangerID.Leaf,
		CAPool:      node.CAPool,
		CACert:      node.CACert,
	}

	t.Run("client from another CA", func(t *testing.T) {
		srv, cli := handshake(t, node.ServerConfig(), stranger.ClientConfig())
		if !errors.Is(srv.err, ErrUntrustedPeer) {
			t.Fatalf("server: err = %v, want ErrUntrustedPeer", srv.err)
		}
		if !strings.Contains(srv.err.Error(), "peer certificate not issued by our CA") {
			t.Errorf("server error %q is not clear", srv.err)
		}
		if cli.err == nil {
			t.Error("client: the connection worked")
		}
	})
	t.Run("server from another CA", func(t *testing.T) {
		srv, cli := handshake(t, stranger.ServerConfig(), node.ClientConfig())
		if !errors.Is(cli.err, ErrUntrustedPeer) {
			t.Fatalf("client: err = %v, want ErrUntrustedPeer", cli.err)
		}
		if srv.err == nil {
			t.Error("server: the connection worked")
		}
	})
}

func TestClientWithoutCertificateRefused(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	node := issue(t, ca, "node")
	anon := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	srv, cli := handshake(t, node.ServerConfig(), anon)
	if !errors.Is(srv.err, ErrNoPeerCert) {
		t.Fatalf("server: err = %v, want ErrNoPeerCert", srv.err)
	}
	if !strings.Contains(srv.err.Error(), "peer sent no certificate") {
		t.Errorf("server error %q is not clear", srv.err)
	}
	if cli.err == nil {
		t.Error("client: the connection worked")
	}
}

func TestExpiredPeerRefused(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	node := issue(t, ca, "node")
	old := issueExpired(t, ca, "old")
	srv, cli := handshake(t, node.ServerConfig(), old.ClientConfig())
	if !errors.Is(srv.err, ErrPeerCertInvalid) {
		t.Fatalf("server: err = %v, want ErrPeerCertInvalid", srv.err)
	}
	if cli.err == nil {
		t.Error("client: the connection worked")
	}
}

func TestTLS12Refused(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	a, b := issue(t, ca, "a"), issue(t, ca, "b")
	cfg := b.ClientConfig()
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	srv, cli := handshake(t, a.ServerConfig(), cfg)
	if srv.err == nil || cli.err == nil {
		t.Fatalf("TLS 1.2 accepted: server %v, client %v", srv.err, cli.err)
	}
}

func TestLiveIdentitySwap(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	live := NewLiveIdentity(issue(t, ca, "server"))
	client := NewLiveIdentity(issue(t, ca, "client"))
	serverCfg, clientCfg := live.ServerConfig(), client.ClientConfig()

	serials := func() (server, client string) {
		srv, cli := handshake(t, serverCfg, clientCfg)
		if srv.err != nil || cli.err != nil {
			t.Fatalf("handshake: server %v, client %v", srv.err, cli.err)
		}
		return cli.state.PeerCertificates[0].SerialNumber.String(), srv.state.PeerCertificates[0].SerialNumber.String()
	}
	s1, c1 := serials()
	if s1 != live.Load().Leaf.SerialNumber.String() || c1 != client.Load().Leaf.SerialNumber.String() {
		t.Fatal("the handshake did not use the current certificates")
	}
	// Renewed certificates are used by the same configurations.
	if err := live.Store(issue(t, ca, "server")); err != nil {
		t.Fatal(err)
	}
	if err := client.Store(issue(t, ca, "client")); err != nil {
		t.Fatal(err)
	}
	s2, c2 := serials()
	if s2 == s1 || c2 == c1 {
		t.Fatal("the old certificates are still presented after Store")
	}
	if s2 != live.Load().Leaf.SerialNumber.String() || c2 != client.Load().Leaf.SerialNumber.String() {
		t.Fatal("the handshake did not use the stored certificates")
	}
	if err := live.Store(nil); err == nil {
		t.Error("Store(nil) accepted")
	}
}

func TestRenew(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	token := newToken(t)
	addr := startServer(t, ca, token, ServerOptions{})
	dir := filepath.Join(t.TempDir(), "node")
	req := CertRequest{Name: "node", Dir: dir}
	ctx := testContext(t)
	id, err := Obtain(ctx, addr, token, req)
	if err != nil {
		t.Fatal(err)
	}
	live := NewLiveIdentity(id)
	id2, err := live.Renew(ctx, addr, token, req)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if id2.Leaf.SerialNumber.Cmp(id.Leaf.SerialNumber) == 0 || live.Load() != id2 {
		t.Fatal("Renew did not install a new certificate")
	}
	load := func() *Identity {
		got, err := LoadIdentity(filepath.Join(dir, NodeCrtFile), filepath.Join(dir, NodeKeyFile), filepath.Join(dir, CACertFile))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if !load().Leaf.Equal(id2.Leaf) {
		t.Fatal("the files do not hold the renewed certificate")
	}

	// A signing service of another CA (say, the token leaked) cannot move
	// a running node to its CA.
	other, _ := newTestCA(t, CAOptions{})
	otherAddr := startServer(t, other, token, ServerOptions{})
	if _, err := live.Renew(ctx, otherAddr, token, req); !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("Renew from another CA: err = %v, want ErrBadAnswer", err)
	}
	if live.Load() != id2 || !load().Leaf.Equal(id2.Leaf) {
		t.Fatal("a certificate of another CA was installed")
	}
}

func TestNeedsRenewal(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	id := &Identity{Leaf: &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(30 * 24 * time.Hour)}}
	day := 24 * time.Hour
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{-day, false}, // not yet valid, but most of its life ahead
		{0, false},
		{19 * day, false},
		{20*day - time.Second, false}, // exactly a third left at 20 days
		{20*day + time.Second, true},
		{30 * day, true},
		{31 * day, true},
	} {
		if got := id.NeedsRenewal(t0.Add(tc.at)); got != tc.want {
			t.Errorf("NeedsRenewal at %v = %v, want %v", tc.at, got, tc.want)
		}
	}
	var none *Identity
	if !none.NeedsRenewal(t0) {
		t.Error("a nil identity does not need renewal")
	}
}

func TestLoadIdentityErrors(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	other, _ := newTestCA(t, CAOptions{})
	a, b := issue(t, ca, "a"), issue(t, ca, "b")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyPEM := func(id *Identity) []byte {
		k, err := encodePrivateKeyPEM(id.Certificate.PrivateKey.(crypto.Signer), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	aCrt, aKey, bKey := write("a.crt", pemCert(a.Leaf)), write("a.key", keyPEM(a)), write("b.key", keyPEM(b))
	caCrt, otherCrt := write("ca.crt", ca.CertPEM()), write("other.crt", other.CertPEM())

	if _, err := LoadIdentity(aCrt, aKey, caCrt); err != nil {
		t.Fatalf("valid files: %v", err)
	}
	if _, err := LoadIdentity(aCrt, bKey, caCrt); err == nil {
		t.Error("a key of another certificate was accepted")
	}
	if _, err := LoadIdentity(aCrt, aKey, otherCrt); err == nil {
		t.Error("a certificate of another CA was accepted")
	}
	if _, err := LoadIdentity(aCrt, aKey, aCrt); err == nil {
		t.Error("a node certificate was accepted as CA")
	}
	if _, err := LoadIdentity(filepath.Join(dir, "missing"), aKey, caCrt); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}

	// An expired certificate loads, and asks to be renewed.
	old := issueExpired(t, ca, "old")
	got, err := LoadIdentity(write("old.crt", pemCert(old.Leaf)), write("old.key", keyPEM(old)), caCrt)
	if err != nil {
		t.Fatalf("expired certificate: %v", err)
	}
	if !got.NeedsRenewal(time.Now()) {
		t.Error("an expired certificate does not need renewal")
	}
}

func TestObtainCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Nothing listens there; the canceled context wins anyway.
	if _, err := Obtain(ctx, "127.0.0.1:1", "t", CertRequest{Name: "n"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCACertificateAsPeerRefused(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	node := issue(t, ca, "node")
	// Even the CA key holder must use a node certificate to talk to nodes.
	caAsNode := &Identity{
		Certificate: tls.Certificate{Certificate: [][]byte{ca.Certificate().Raw}, PrivateKey: ca.key},
		Leaf:        ca.Certificate(),
		CAPool:      node.CAPool,
		CACert:      node.CACert,
	}
	srv, _ := handshake(t, node.ServerConfig(), caAsNode.ClientConfig())
	if !errors.Is(srv.err, ErrPeerCertInvalid) {
		t.Fatalf("server: err = %v, want ErrPeerCertInvalid", srv.err)
	}
}

// leafWithUsages signs, with the CA's key, a node certificate that carries
// exactly the given extended key usages (none at all when empty).
func leafWithUsages(t *testing.T, ca *CA, node *Identity, usages ...x509.ExtKeyUsage) *Identity {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "odd"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate(), &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Identity{Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Leaf: leaf, CAPool: node.CAPool, CACert: node.CACert}
}

// A leaf without an extended key usage is valid for any usage to
// crypto/x509; a node requires the usage of its role (clientAuth from a
// dialler, serverAuth from a listener).
func TestPeerWithoutExtKeyUsageRefused(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	node := issue(t, ca, "node")
	bare := leafWithUsages(t, ca, node)
	srv, _ := handshake(t, node.ServerConfig(), bare.ClientConfig())
	if !errors.Is(srv.err, ErrPeerCertInvalid) {
		t.Errorf("server accepted a client without extended key usage: %v", srv.err)
	}
	_, cli := handshake(t, bare.ServerConfig(), node.ClientConfig())
	if !errors.Is(cli.err, ErrPeerCertInvalid) {
		t.Errorf("client accepted a server without extended key usage: %v", cli.err)
	}
	serverOnly := leafWithUsages(t, ca, node, x509.ExtKeyUsageServerAuth)
	if srv, _ := handshake(t, node.ServerConfig(), serverOnly.ClientConfig()); !errors.Is(srv.err, ErrPeerCertInvalid) {
		t.Errorf("server accepted a client whose certificate is for servers only: %v", srv.err)
	}
	if srv, cli := handshake(t, serverOnly.ServerConfig(), node.ClientConfig()); srv.err != nil || cli.err != nil {
		t.Errorf("a server certificate for servers refused: %v / %v", srv.err, cli.err)
	}
}

package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testTimeout guards every blocking step; CI is a loaded 2-core machine.
const testTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newTestCA creates a CA in a fresh temporary directory.
func newTestCA(t *testing.T, opts CAOptions) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := InitCA(dir, opts)
	if err != nil {
		t.Fatalf("InitCA: %v", err)
	}
	return ca, dir
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newCSR makes a parsed CSR signed by key.
func newCSR(t *testing.T, key any, name string, dns []string, ips []net.IP) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: name},
		DNSNames:    dns,
		IPAddresses: ips,
	}, key)
	if err != nil {
		t.Fatalf("CreateCertificateRequest: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// issueAt makes an identity for name signed by ca as if at time at.
func issueAt(t *testing.T, ca *CA, name string, at time.Time, validity time.Duration) *Identity {
	t.Helper()
	key := newKey(t)
	_, certPEM, err := ca.signAt(newCSR(t, key, name, nil, nil), validity, at)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	keyPEM, err := encodePrivateKeyPEM(key, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewIdentity(certPEM, keyPEM, ca.CertPEM())
	if err != nil {
		t.Fatalf("NewIdentity: %v", err)
	}
	return id
}

// issueExpired makes an identity whose certificate expired minutes ago:
// signed at the very start of the CA's validity for one minute (so the
// chain itself was valid when the certificate was).
func issueExpired(t *testing.T, ca *CA, name string) *Identity {
	t.Helper()
	id := issueAt(t, ca, name, ca.Certificate().NotBefore, time.Minute)
	if !time.Now().After(id.Leaf.NotAfter) {
		t.Fatalf("certificate not expired: NotAfter %v", id.Leaf.NotAfter)
	}
	return id
}

func issue(t *testing.T, ca *CA, name string) *Identity {
	t.Helper()
	return issueAt(t, ca, name, time.Now(), 0)
}

// startServer runs a signing service on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, ca *CA, token string, opts ServerOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	srv := NewServer(ca, token, opts)
	go func() { errc <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(testTimeout):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return ln.Addr().String()
}

func newToken(t *testing.T) string {
	t.Helper()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fakeClock is a settable clock for rate limiting and validity tests.
type fakeClock struct {
	base   time.Time
	offset atomic.Int64
}

func newFakeClock() *fakeClock { return &fakeClock{base: time.Now()} }

func (c *fakeClock) Now() time.Time          { return c.base.Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// pemCert encodes one certificate.
func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemTypeCert, Bytes: c.Raw})
}

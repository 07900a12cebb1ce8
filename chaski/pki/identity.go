package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

// Identity is a node's TLS identity: its certificate and key, and the CA it
// trusts. An Identity is immutable once built; renewal makes a new one.
type Identity struct {
	// Certificate is the key pair presented to peers (leaf first).
	Certificate tls.Certificate
	// Leaf is the parsed node certificate.
	Leaf *x509.Certificate
	// CAPool holds the CA certificate(s) peers must chain to.
	CAPool *x509.CertPool
	// CACert is the (first) CA certificate.
	CACert *x509.Certificate
}

// LoadIdentity loads an identity from PEM files (the --tls-cert, --tls-key
// and --tls-ca flags). caFile may hold several CA certificates (during a CA
// rotation); all of them are trusted and CACert is the first. The
// certificate must be a node certificate issued by one of them, usable as
// TLS server and client. An expired certificate still loads, so that the
// caller can notice with NeedsRenewal and renew it.
func LoadIdentity(certFile, keyFile, caFile string) (*Identity, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return NewIdentity(certPEM, keyPEM, caPEM)
}

// NewIdentity is LoadIdentity from PEM contents.
func NewIdentity(certPEM, keyPEM, caPEM []byte) (*Identity, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate and key: %w", err)
	}
	chain := make([]*x509.Certificate, len(pair.Certificate))
	for i, der := range pair.Certificate {
		if chain[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("pki: certificate: %w", err)
		}
	}
	leaf := chain[0]
	pair.Leaf = leaf
	cas, err := parseCertsPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("pki: CA file holds %q, which is not a CA certificate", c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	// Check the chain at a moment inside the leaf's validity, so that an
	// expired leaf is still recognised as ours (and then renewed).
	t := time.Now()
	if t.Before(leaf.NotBefore) {
		t = leaf.NotBefore
	} else if t.After(leaf.NotAfter) {
		t = leaf.NotAfter
	}
	if err := verifyNodeCert(leaf, chain[1:], pool, t); err != nil {
		return nil, fmt.Errorf("pki: certificate %q: %w", leaf.Subject.CommonName, err)
	}
	return &Identity{Certificate: pair, Leaf: leaf, CAPool: pool, CACert: cas[0]}, nil
}

// NeedsRenewal reports whether less than a third of the certificate's
// lifetime remains at now (or it has expired, or there is none).
func (id *Identity) NeedsRenewal(now time.Time) bool {
	if id == nil || id.Leaf == nil {
		return true
	}
	lifetime := id.Leaf.NotAfter.Sub(id.Leaf.NotBefore)
	remaining := id.Leaf.NotAfter.Sub(now)
	return remaining < lifetime/3
}

// ServerConfig returns a TLS 1.3 server configuration presenting id and
// requiring a client certificate issued by id's CA. See LiveIdentity for
// the verification rules, and for swapping certificates at run time.
func (id *Identity) ServerConfig() *tls.Config { return NewLiveIdentity(id).ServerConfig() }

// ClientConfig returns a TLS 1.3 client configuration presenting id and
// requiring a server certificate issued by id's CA.
func (id *Identity) ClientConfig() *tls.Config { return NewLiveIdentity(id).ClientConfig() }

// LiveIdentity holds the current identity of a running node. TLS
// configurations made from it read the identity at every handshake, so
// Store (or Renew) swaps in a renewed certificate without restarting
// listeners or rebuilding configurations. It is safe for concurrent use.
type LiveIdentity struct {
	cur atomic.Pointer[Identity]
}

// NewLiveIdentity returns a LiveIdentity holding id.
func NewLiveIdentity(id *Identity) *LiveIdentity {
	l := &LiveIdentity{}
	l.cur.Store(id)
	return l
}

// Load returns the current identity.
func (l *LiveIdentity) Load() *Identity { return l.cur.Load() }

// Store makes id the current identity for all future handshakes.
func (l *LiveIdentity) Store(id *Identity) error {
	if id == nil || id.Leaf == nil || id.CAPool == nil {
		return errors.New("pki: incomplete identity")
	}
	l.cur.Store(id)
	return nil
}

// Renew obtains a new certificate (as Obtain does, writing req.Dir) and
// makes it current. The CA must not change: an answer carrying another CA
// than the current identity's is refused with ErrBadAnswer before anything
// is written.
func (l *LiveIdentity) Renew(ctx context.Context, caAddr, token string, req CertRequest) (*Identity, error) {
	res, err := obtain(ctx, caAddr, token, req)
	if err != nil {
		return nil, err
	}
	if cur := l.Load(); cur != nil && cur.CACert != nil && !bytes.Equal(cur.CACert.Raw, res.id.CACert.Raw) {
		return nil, fmt.Errorf("pki: %w: the CA server returned a different CA (%q) than the current one (%q)",
			ErrBadAnswer, res.id.CACert.Subject.CommonName, cur.CACert.Subject.CommonName)
	}
	if err := res.write(req.Dir); err != nil {
		return nil, err
	}
	l.cur.Store(res.id)
	return res.id, nil
}

func (l *LiveIdentity) certificate() (*tls.Certificate, error) {
	id := l.Load()
	if id == nil {
		return nil, errors.New("pki: no identity loaded")
	}
	return &id.Certificate, nil
}

// ServerConfig returns a TLS configuration for accepting peer connections:
// TLS 1.3 only, presenting the current certificate, and requiring a client
// certificate that verifyPeer accepts for client authentication.
//
// The client certificate is requested (tls.RequestClientCert) rather than
// required by crypto/tls so that the check, and its error message, is ours:
// VerifyConnection runs for every handshake, resumed ones included, and
// fails the handshake with ErrNoPeerCert or ErrUntrustedPeer.
func (l *LiveIdentity) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return l.certificate()
		},
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return l.verifyPeer(cs, x509.ExtKeyUsageClientAuth)
		},
	}
}

// ClientConfig returns a TLS configuration for dialing peers: TLS 1.3 only,
// presenting the current certificate when asked, and requiring a server
// certificate that verifyPeer accepts for server authentication.
//
// Nodes dial each other by whatever IP address or host name they learnt,
// which need not be among the peer's SANs, so host names are not checked:
// InsecureSkipVerify only switches off crypto/tls's built-in verification
// (chain plus host name), and VerifyConnection puts the chain verification
// back, against our CA only. The peer is authenticated as "a node of our
// CA"; which node it is comes from PeerName, and callers that expect a
// particular node must compare names themselves.
func (l *LiveIdentity) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection, see above
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return l.certificate()
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return l.verifyPeer(cs, x509.ExtKeyUsageServerAuth)
		},
	}
}

// verifyPeer accepts the peer of cs if it presented a certificate that
// chains to the current CA pool, is valid now, is not a CA certificate, and
// allows usage. Host names are deliberately not checked (see ClientConfig).
func (l *LiveIdentity) verifyPeer(cs tls.ConnectionState, usage x509.ExtKeyUsage) error {
	id := l.Load()
	if id == nil || id.CAPool == nil {
		return errors.New("pki: no identity loaded")
	}
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("pki: %w", ErrNoPeerCert)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         id.CAPool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case err == nil:
	case errors.As(err, &unknown):
		return fmt.Errorf("pki: %w (subject %q, issuer %q)", ErrUntrustedPeer, leaf.Subject.CommonName, leaf.Issuer.CommonName)
	case errors.As(err, &invalid) && invalid.Reason == x509.NotAuthorizedToSign:
		return fmt.Errorf("pki: %w (subject %q, issuer %q)", ErrUntrustedPeer, leaf.Subject.CommonName, leaf.Issuer.CommonName)
	default:
		return fmt.Errorf("pki: %w: %v", ErrPeerCertInvalid, err)
	}
	if leaf.IsCA {
		return fmt.Errorf("pki: %w: peer presented a CA certificate", ErrPeerCertInvalid)
	}
	// crypto/x509 takes a certificate without extended key usages as good
	// for any usage; ours always name theirs, so require the role's.
	if !slices.Contains(leaf.ExtKeyUsage, usage) {
		return fmt.Errorf("pki: %w: peer certificate %q lacks the %s extended key usage", ErrPeerCertInvalid, leaf.Subject.CommonName, usageName(usage))
	}
	return nil
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	}
	return fmt.Sprint(int(u))
}

// PeerName returns the CommonName (node name) of the peer's certificate on
// a connection whose handshake is complete, or "" if there is none. It is
// only meaningful for connections configured by this package (ServerConfig,
// ClientConfig), whose handshake fails unless that certificate has been
// verified against our CA.
func PeerName(cs tls.ConnectionState) string {
	if !cs.HandshakeComplete {
		return ""
	}
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
		return cs.VerifiedChains[0][0].Subject.CommonName
	}
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

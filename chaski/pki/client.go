package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// clientTimeout bounds one Obtain exchange (dial, request, answer) when the
// context has no earlier deadline.
const clientTimeout = 30 * time.Second

// CertRequest describes the certificate a node asks for.
type CertRequest struct {
	// Name is the node name, the certificate's CommonName. When it is also a
	// valid host name it is added to DNSNames.
	Name string
	// DNSNames and IPs are the subject alternative names: the names and
	// addresses the node is reachable at.
	DNSNames []string
	IPs      []net.IP
	// Dir receives node.key (0600), node.crt and ca.crt; it is created with
	// mode 0700 if needed. When empty, nothing is written.
	Dir string
}

// Obtain asks the signing service at caAddr for a certificate. It generates
// a fresh ECDSA P-256 key and a CSR, authenticates the request with token,
// and accepts the answer only if it carries a valid MAC under token and the
// returned certificate chains to the returned CA, is a node certificate for
// req.Name and holds our public key. Then it writes the files into req.Dir
// and returns the identity.
//
// Errors wrap ErrInvalidToken, ErrRateLimited, ErrRejected (the server's
// reason follows), ErrBadAnswer, ErrBadCSR (refused locally before
// contacting the server), or are network errors.
func Obtain(ctx context.Context, caAddr, token string, req CertRequest) (*Identity, error) {
	res, err := obtain(ctx, caAddr, token, req)
	if err != nil {
		return nil, err
	}
	if err := res.write(req.Dir); err != nil {
		return nil, err
	}
	return res.id, nil
}

// Back-off of ObtainRetrying: the first wait, its ceiling.
const (
	RetryFirst = time.Second
	RetryMax   = 16 * time.Second
)

// ObtainRetrying is Obtain that, while the signing service answers "rate
// limited", waits and asks again, as PROTOCOL.md tells clients to: the wait
// starts at RetryFirst and doubles up to RetryMax, each spread by ±25 %
// so that nodes started together do not ask together again. Any other error
// ends it at once, and so does ctx. onRetry (may be nil) hears of each wait.
func ObtainRetrying(ctx context.Context, caAddr, token string, req CertRequest, onRetry func(wait time.Duration, err error)) (*Identity, error) {
	wait := RetryFirst
	for {
		id, err := Obtain(ctx, caAddr, token, req)
		if err == nil || !errors.Is(err, ErrRateLimited) {
			return id, err
		}
		d := time.Duration(float64(wait) * (0.75 + 0.5*mrand.Float64()))
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return nil, err // no time left for another try
		}
		if onRetry != nil {
			onRetry(d, err)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
		wait = min(2*wait, RetryMax)
	}
}

type obtained struct {
	id                     *Identity
	keyPEM, certPEM, caPEM []byte
}

// write stores the files of an obtained identity in dir (if not empty).
// Each file is replaced atomically; the CA first, the key before the
// certificate.
func (o *obtained) write(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CACertFile, o.caPEM, 0o644},
		{NodeKeyFile, o.keyPEM, 0o600},
		{NodeCrtFile, o.certPEM, 0o644},
	} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("pki: write %s: %w", f.name, err)
		}
	}
	return nil
}

func obtain(ctx context.Context, caAddr, token string, req CertRequest) (*obtained, error) {
	if token == "" {
		return nil, errors.New("pki: empty join token")
	}
	dns := slices.Clone(req.DNSNames)
	if validDNSName(req.Name) && !slices.Contains(dns, req.Name) {
		dns = append(dns, req.Name)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: req.Name},
		DNSNames:    dns,
		IPAddresses: req.IPs,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CSR: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	// Fail early, with the precise reason, on what the server would refuse.
	if err := checkCSR(csr); err != nil {
		return nil, err
	}

	nonce := make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	tok := []byte(token)
	resp, err := exchange(ctx, caAddr, &request{
		V:     protocolVersion,
		Nonce: nonce,
		CSR:   csrDER,
		MAC:   requestMAC(tok, nonce, csrDER),
	})
	if err != nil {
		return nil, err
	}
	if !resp.OK {
		switch resp.Code {
		case codeInvalidToken:
			return nil, fmt.Errorf("pki: CA server %s: %w", caAddr, ErrInvalidToken)
		case codeRateLimited:
			return nil, fmt.Errorf("pki: CA server %s: %w", caAddr, ErrRateLimited)
		}
		msg := resp.Error
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return nil, fmt.Errorf("pki: CA server %s: %w: %q", caAddr, ErrRejected, msg)
	}
	// Authenticate the answer before looking at it.
	if !hmac.Equal(resp.MAC, answerMAC(tok, nonce, resp.Cert, resp.CA)) {
		return nil, fmt.Errorf("pki: CA server %s: %w: answer MAC does not verify (the server does not hold the join token)", caAddr, ErrBadAnswer)
	}
	id, err := checkAnswer(resp, key, req.Name)
	if err != nil {
		return nil, fmt.Errorf("pki: CA server %s: %w: %v", caAddr, ErrBadAnswer, err)
	}
	keyPEM, err := encodePrivateKeyPEM(key, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &obtained{id: id, keyPEM: keyPEM, certPEM: []byte(resp.Cert), caPEM: []byte(resp.CA)}, nil
}

// checkAnswer verifies that the returned certificate chains to the returned
// CA, is a node certificate for name, and holds key's public half.
func checkAnswer(resp *response, key *ecdsa.PrivateKey, name string) (*Identity, error) {
	caCert, err := parseOneCertPEM([]byte(resp.CA))
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %v", err)
	}
	if !caCert.IsCA || !caCert.BasicConstraintsValid {
		return nil, errors.New("returned CA certificate is not a CA")
	}
	chain, err := parseCertsPEM([]byte(resp.Cert))
	if err != nil {
		return nil, fmt.Errorf("node certificate: %v", err)
	}
	leaf := chain[0]
	if !publicKeysEqual(&key.PublicKey, leaf.PublicKey) {
		return nil, errors.New("certificate does not hold our public key")
	}
	if leaf.Subject.CommonName != name {
		return nil, fmt.Errorf("certificate is for %q, not %q", leaf.Subject.CommonName, name)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if err := verifyNodeCert(leaf, chain[1:], pool, time.Now()); err != nil {
		return nil, err
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return &Identity{
		Certificate: tls.Certificate{Certificate: raw, PrivateKey: key, Leaf: leaf},
		Leaf:        leaf,
		CAPool:      pool,
		CACert:      caCert,
	}, nil
}

// verifyNodeCert checks that leaf chains to roots at time t and may be used
// both as a TLS server and as a TLS client.
func verifyNodeCert(leaf *x509.Certificate, intermediates []*x509.Certificate, roots *x509.CertPool, t time.Time) error {
	if leaf.IsCA {
		return errors.New("certificate is a CA certificate, not a node certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: inter,
			CurrentTime:   t,
			KeyUsages:     []x509.ExtKeyUsage{usage},
		}); err != nil {
			return err
		}
	}
	return nil
}

// exchange sends one request to addr and reads the answer.
func exchange(ctx context.Context, addr string, req *request) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	// After a cancellation or timeout, report that rather than the I/O
	// error it caused.
	wrap := func(what string, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("pki: %s CA server %s: %w", what, addr, ctxErr)
		}
		return fmt.Errorf("pki: %s CA server %s: %w", what, addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, wrap("dial", err)
	}
	defer conn.Close()
	// Cancellation and the deadline interrupt blocked I/O. (Not a socket
	// deadline: it could fire before ctx reports DeadlineExceeded.)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if err := encodeJSONFrame(conn, req); err != nil {
		return nil, wrap("send request to", err)
	}
	body, err := readFrame(conn)
	if err != nil {
		return nil, wrap("read answer from", err)
	}
	var resp response
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("pki: %w: malformed answer: %v", ErrBadAnswer, err)
	}
	if resp.V != protocolVersion {
		return nil, fmt.Errorf("pki: %w: protocol version %d", ErrBadAnswer, resp.V)
	}
	return &resp, nil
}

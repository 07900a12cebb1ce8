package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// File names inside a CA directory and a node identity directory.
const (
	CAKeyFile   = "ca.key"
	CACertFile  = "ca.crt"
	NodeKeyFile = "node.key"
	NodeCrtFile = "node.crt"
)

const (
	// DefaultCAName is the CommonName of a CA created without a name.
	DefaultCAName = "Chaski CA"
	// DefaultCAValidity is the lifetime of a CA created without a validity.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultLeafValidity is the lifetime of a node certificate signed
	// without an explicit validity.
	DefaultLeafValidity = 30 * 24 * time.Hour
	// MaxSANs is the largest number of subject alternative names (DNS names,
	// IP addresses, e-mail addresses and URIs together) a CSR may request.
	MaxSANs = 16
	// MaxNameLen is the longest node name (certificate CommonName) accepted.
	MaxNameLen = 64

	// clockSkew backdates NotBefore so that peers whose clocks are slightly
	// behind the CA's accept a freshly issued certificate.
	clockSkew = 5 * time.Minute
)

// CAOptions configures InitCA.
type CAOptions struct {
	// Name is the CA certificate's CommonName; DefaultCAName if empty.
	Name string
	// Password, when not empty, encrypts ca.key (see PEMTypeEncryptedKey).
	Password []byte
	// Validity of the CA certificate; DefaultCAValidity (10 years) if zero.
	Validity time.Duration
	// KDFIterations is the PBKDF2 iteration count used when Password is set;
	// DefaultKDFIterations if zero, at least MinKDFIterations otherwise. It is
	// stored in the key file.
	KDFIterations int
}

// CA is a certificate authority loaded from disk. It is safe for concurrent
// use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// Certificate returns the CA certificate. Do not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the PEM encoding of the CA certificate.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// InitCA creates a new CA in dir: the directory (mode 0700, if it does not
// exist yet), an ECDSA P-256 key in ca.key (mode 0600, optionally encrypted)
// and a self-signed CA certificate in ca.crt. It never overwrites an existing
// CA: if either file exists it returns an error wrapping ErrCAExists.
func InitCA(dir string, opts CAOptions) (*CA, error) {
	if opts.Name == "" {
		opts.Name = DefaultCAName
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultCAValidity
	}
	if opts.Validity < 0 {
		return nil, errors.New("pki: negative CA validity")
	}
	if opts.KDFIterations == 0 {
		opts.KDFIterations = DefaultKDFIterations
	}
	if opts.KDFIterations < MinKDFIterations || opts.KDFIterations > maxKDFIterations {
		return nil, fmt.Errorf("pki: KDF iterations %d out of range [%d, %d]", opts.KDFIterations, MinKDFIterations, maxKDFIterations)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create CA directory: %w", err)
	}
	keyPath := filepath.Join(dir, CAKeyFile)
	certPath := filepath.Join(dir, CACertFile)
	for _, p := range []string{keyPath, certPath} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("pki: %w: %s", ErrCAExists, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.Name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(opts.Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true, // the CA signs leaves only
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := encodePrivateKeyPEM(key, opts.Password, opts.KDFIterations)
	if err != nil {
		return nil, fmt.Errorf("pki: encode CA key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: pemTypeCert, Bytes: der})

	// O_EXCL on both files: a concurrent InitCA in the same directory cannot
	// overwrite ours, and we undo our key if we lose the race for the cert.
	if err := writeNewFile(keyPath, keyPEM, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("pki: %w: %s", ErrCAExists, keyPath)
		}
		return nil, fmt.Errorf("pki: write CA key: %w", err)
	}
	if err := writeNewFile(certPath, certPEM, 0o644); err != nil {
		os.Remove(keyPath)
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("pki: %w: %s", ErrCAExists, certPath)
		}
		return nil, fmt.Errorf("pki: write CA certificate: %w", err)
	}
	return &CA{cert: cert, certPEM: certPEM, key: key}, nil
}

// LoadCA loads the CA created by InitCA in dir. password must be empty for
// an unencrypted key and the right password for an encrypted one; anything
// else returns an error wrapping ErrBadPassword. LoadCA refuses a key file
// readable or writable by group or others (on Unix), and a key that does not
// belong to the certificate.
func LoadCA(dir string, password []byte) (*CA, error) {
	keyPath := filepath.Join(dir, CAKeyFile)
	certPath := filepath.Join(dir, CACertFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate: %w", err)
	}
	cert, err := parseOneCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pki: %s is accessible by group or others (mode %v); run chmod 600", keyPath, st.Mode().Perm())
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	key, err := decodePrivateKeyPEM(keyPEM, password)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyPath, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s does not belong to %s", keyPath, certPath)
	}
	return &CA{cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: pemTypeCert, Bytes: cert.Raw}), key: key}, nil
}

// Sign issues a node certificate for csr, valid for validity
// (DefaultLeafValidity if zero, never beyond the CA's own expiry).
//
// The certificate has CommonName = the CSR's CommonName (the node name),
// subject alternative names = the CSR's DNS names and IP addresses,
// KeyUsage DigitalSignature, ExtKeyUsage ServerAuth and ClientAuth (every
// node is both), a random 128-bit serial number and the CA's key identifier
// as authority key identifier. Sign rejects (ErrBadCSR) a CSR whose
// signature does not verify, whose key is not ECDSA, Ed25519 or RSA of at
// least 2048 bits, that requests more than MaxSANs names, or whose names are
// malformed. It returns the certificate and its PEM encoding.
func (ca *CA) Sign(csr *x509.CertificateRequest, validity time.Duration) (*x509.Certificate, []byte, error) {
	return ca.signAt(csr, validity, time.Now())
}

func (ca *CA) signAt(csr *x509.CertificateRequest, validity time.Duration, now time.Time) (*x509.Certificate, []byte, error) {
	if err := checkCSR(csr); err != nil {
		return nil, nil, err
	}
	if validity == 0 {
		validity = DefaultLeafValidity
	}
	if validity < 0 {
		return nil, nil, errors.New("pki: negative validity")
	}
	if !now.Before(ca.cert.NotAfter) || now.Before(ca.cert.NotBefore) {
		return nil, nil, fmt.Errorf("pki: the CA certificate is not valid at %v (valid %v to %v)", now.UTC(), ca.cert.NotBefore.UTC(), ca.cert.NotAfter.UTC())
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	ski, err := subjectKeyID(csr.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: csr.Subject.CommonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		SubjectKeyId:          ski,
		AuthorityKeyId:        ca.cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: pemTypeCert, Bytes: der}), nil
}

// checkCSR validates everything Sign relies on.
func checkCSR(csr *x509.CertificateRequest) error {
	if csr == nil {
		return fmt.Errorf("pki: %w: nil CSR", ErrBadCSR)
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("pki: %w: signature: %v", ErrBadCSR, err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return fmt.Errorf("pki: %w: %v", ErrBadCSR, err)
	}
	if n := len(csr.DNSNames) + len(csr.IPAddresses) + len(csr.EmailAddresses) + len(csr.URIs); n > MaxSANs {
		return fmt.Errorf("pki: %w: %d subject alternative names, at most %d allowed", ErrBadCSR, n, MaxSANs)
	}
	if err := checkNodeName(csr.Subject.CommonName); err != nil {
		return fmt.Errorf("pki: %w: %v", ErrBadCSR, err)
	}
	for _, d := range csr.DNSNames {
		if !validDNSName(d) {
			return fmt.Errorf("pki: %w: invalid DNS name %q", ErrBadCSR, d)
		}
	}
	for _, ip := range csr.IPAddresses {
		if len(ip) != 4 && len(ip) != 16 {
			return fmt.Errorf("pki: %w: invalid IP address", ErrBadCSR)
		}
	}
	return nil
}

func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return errors.New("unsupported ECDSA curve")
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits, at least 2048 required", k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("unsupported public key type %T", pub)
}

// checkNodeName accepts 1..MaxNameLen bytes of printable, non-space-edged
// UTF-8 text.
func checkNodeName(name string) error {
	if name == "" {
		return errors.New("empty node name (CommonName)")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("node name longer than %d bytes", MaxNameLen)
	}
	for _, r := range name {
		if r == 0xFFFD || r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			return fmt.Errorf("node name %q contains invalid characters", name)
		}
	}
	if name[0] == ' ' || name[len(name)-1] == ' ' {
		return fmt.Errorf("node name %q starts or ends with a space", name)
	}
	return nil
}

// validDNSName accepts host names made of letters, digits, '-' and '_'
// labels separated by dots. Wildcards are refused: a node certificate names
// one node.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

func randomSerial() (*big.Int, error) {
	// 128 random bits; a zero serial is not allowed, retry (probability 2^-128).
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID derives a key identifier from the subjectPublicKey bits as in
// RFC 7093 section 2 method 1 (SHA-256, leftmost 160 bits).
func subjectKeyID(pub any) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(info.PublicKey.Bytes)
	return sum[:20], nil
}

type equaler interface{ Equal(crypto.PublicKey) bool }

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// parseOneCertPEM parses data holding exactly one CERTIFICATE block.
func parseOneCertPEM(data []byte) (*x509.Certificate, error) {
	certs, err := parseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("expected one certificate, found %d", len(certs))
	}
	return certs[0], nil
}

// parseCertsPEM parses every block of data, which must all be certificates.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != pemTypeCert {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(data)) != 0 {
		return nil, errors.New("trailing data after PEM certificates")
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate found")
	}
	return certs, nil
}

package pki

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestInitThenLoadCA(t *testing.T) {
	ca, dir := newTestCA(t, CAOptions{})
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("CA directory mode = %v, want 0700", got)
	}
	if got := fileMode(t, filepath.Join(dir, CAKeyFile)); got != 0o600 {
		t.Errorf("ca.key mode = %v, want 0600", got)
	}

	c := ca.Certificate()
	if c.Subject.CommonName != DefaultCAName {
		t.Errorf("CN = %q, want %q", c.Subject.CommonName, DefaultCAName)
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Error("CA certificate lacks BasicConstraints CA:true")
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v, want CertSign|CRLSign", c.KeyUsage)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("no SubjectKeyId")
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < DefaultCAValidity || life > DefaultCAValidity+time.Hour {
		t.Errorf("lifetime = %v, want about 10 years", life)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("ca.key is not an unencrypted PKCS#8 PEM")
	}

	loaded, err := LoadCA(dir, nil)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Certificate().Equal(c) {
		t.Fatal("LoadCA returned a different CA certificate")
	}
	if !bytes.Equal(loaded.CertPEM(), ca.CertPEM()) {
		t.Error("CertPEM differs after load")
	}
	// The loaded CA holds the key: what it signs verifies against the original.
	cert, _, err := loaded.Sign(newCSR(t, newKey(t), "node", nil, nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(c); err != nil {
		t.Errorf("certificate from loaded CA does not verify: %v", err)
	}
}

func TestInitCARefusesToOverwrite(t *testing.T) {
	_, dir := newTestCA(t, CAOptions{Name: "First"})
	before, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(dir, CAOptions{Name: "Second"}); !errors.Is(err, ErrCAExists) {
		t.Fatalf("second InitCA: err = %v, want ErrCAExists", err)
	}
	after, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("ca.crt was overwritten")
	}

	// A lone ca.crt is enough to refuse, and no key is left behind.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, CACertFile), before, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(dir2, CAOptions{}); !errors.Is(err, ErrCAExists) {
		t.Fatalf("InitCA over lone ca.crt: err = %v, want ErrCAExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir2, CAKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ca.key left behind: %v", err)
	}
}

func TestCAOptions(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{Name: "Ops Root", Validity: 48 * time.Hour})
	c := ca.Certificate()
	if c.Subject.CommonName != "Ops Root" {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < 48*time.Hour || life > 49*time.Hour {
		t.Errorf("lifetime = %v, want 48h", life)
	}
	if _, err := InitCA(t.TempDir(), CAOptions{Password: []byte("x"), KDFIterations: 10}); err == nil {
		t.Error("InitCA accepted 10 KDF iterations")
	}
}

func TestPasswordProtectedCA(t *testing.T) {
	pw := []byte("correct horse battery staple")
	ca, dir := newTestCA(t, CAOptions{Password: pw, KDFIterations: MinKDFIterations})
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(keyPEM)
	if block == nil || block.Type != PEMTypeEncryptedKey {
		t.Fatalf("ca.key block = %v, want %q", block, PEMTypeEncryptedKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Error("extra data after the encrypted key")
	}
	if got := block.Headers["Iterations"]; got != fmt.Sprint(MinKDFIterations) {
		t.Errorf("Iterations header = %q", got)
	}
	if block.Headers["Salt"] == "" || block.Headers["Nonce"] == "" || block.Headers["KDF"] != "PBKDF2-SHA256" || block.Headers["Cipher"] != "AES-256-GCM" {
		t.Errorf("headers = %v", block.Headers)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		t.Fatal("the key body parses as plain PKCS#8")
	}

	loaded, err := LoadCA(dir, pw)
	if err != nil {
		t.Fatalf("LoadCA with the right password: %v", err)
	}
	if !loaded.Certificate().Equal(ca.Certificate()) {
		t.Fatal("different CA after load")
	}
	if _, _, err := loaded.Sign(newCSR(t, newKey(t), "n1", nil, nil), 0); err != nil {
		t.Fatalf("Sign with the decrypted key: %v", err)
	}

	for _, tc := range []struct {
		name string
		pw   []byte
	}{
		{"wrong", []byte("Tr0ub4dor&3")},
		{"none", nil},
		{"prefix", pw[:len(pw)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadCA(dir, tc.pw); !errors.Is(err, ErrBadPassword) {
				t.Fatalf("err = %v, want ErrBadPassword", err)
			}
		})
	}

	// Lowering the stored iteration count does not help an attacker: the
	// parameters are authenticated, so decryption fails.
	block.Headers["Iterations"] = "1"
	tampered := filepath.Join(t.TempDir(), "ca")
	if err := os.MkdirAll(tampered, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tampered, CAKeyFile), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tampered, CACertFile), ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(tampered, pw); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("tampered iterations: err = %v, want ErrBadPassword", err)
	}
}

func TestPasswordProtectedCADefaultIterations(t *testing.T) {
	if testing.Short() {
		t.Skip("600k PBKDF2 iterations are slow under -race")
	}
	pw := []byte("pw")
	_, dir := newTestCA(t, CAOptions{Password: pw})
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Headers["Iterations"] != "600000" {
		t.Fatalf("default iterations not stored as 600000: %v", block)
	}
	if _, err := LoadCA(dir, pw); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCAErrors(t *testing.T) {
	t.Run("password for plain key", func(t *testing.T) {
		_, dir := newTestCA(t, CAOptions{})
		if _, err := LoadCA(dir, []byte("pw")); !errors.Is(err, ErrBadPassword) {
			t.Fatalf("err = %v, want ErrBadPassword", err)
		}
	})
	t.Run("key readable by others", func(t *testing.T) {
		_, dir := newTestCA(t, CAOptions{})
		if err := os.Chmod(filepath.Join(dir, CAKeyFile), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCA(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("err = %v, want a permission complaint", err)
		}
	})
	t.Run("key of another CA", func(t *testing.T) {
		_, dir := newTestCA(t, CAOptions{})
		_, other := newTestCA(t, CAOptions{})
		key, err := os.ReadFile(filepath.Join(other, CAKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, CAKeyFile), key, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCA(dir, nil); err == nil || !strings.Contains(err.Error(), "does not belong") {
			t.Fatalf("err = %v, want a key mismatch", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := LoadCA(t.TempDir(), nil); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want ErrNotExist", err)
		}
	})
}

func TestSign(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	key := newKey(t)
	dns := []string{"node-a", "node-a.example.net"}
	ips := []net.IP{net.ParseIP("127.0.0.1").To4(), net.ParseIP("::1")}
	before := time.Now()
	cert, certPEM, err := ca.Sign(newCSR(t, key, "node-a", dns, ips), 0)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("Verify for usage %v: %v", usage, err)
		}
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", cert.ExtKeyUsage)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v", cert.KeyUsage)
	}
	if cert.IsCA {
		t.Error("leaf is a CA")
	}
	if cert.Subject.CommonName != "node-a" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	if !slices.Equal(cert.DNSNames, dns) {
		t.Errorf("DNSNames = %v, want %v", cert.DNSNames, dns)
	}
	if len(cert.IPAddresses) != 2 || !cert.IPAddresses[0].Equal(ips[0]) || !cert.IPAddresses[1].Equal(ips[1]) {
		t.Errorf("IPAddresses = %v, want %v", cert.IPAddresses, ips)
	}
	if !bytes.Equal(cert.AuthorityKeyId, ca.Certificate().SubjectKeyId) {
		t.Error("AuthorityKeyId is not the CA's SubjectKeyId")
	}
	if !publicKeysEqual(&key.PublicKey, cert.PublicKey) {
		t.Error("certificate does not hold the CSR's key")
	}
	if n := cert.SerialNumber; n.Sign() <= 0 || n.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", n)
	}
	want := before.Add(DefaultLeafValidity)
	if d := cert.NotAfter.Sub(want); d < -time.Second || d > time.Minute {
		t.Errorf("NotAfter = %v, want about %v", cert.NotAfter, want)
	}
	if cert.NotBefore.After(before) {
		t.Errorf("NotBefore %v is after the signing time", cert.NotBefore)
	}
	if b, _ := pem.Decode(certPEM); b == nil || !bytes.Equal(b.Bytes, cert.Raw) {
		t.Error("PEM does not hold the certificate")
	}

	cert2, _, err := ca.Sign(newCSR(t, key, "node-a", nil, nil), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert2.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Error("two certificates with the same serial")
	}
	if life := cert2.NotAfter.Sub(cert2.NotBefore); life > time.Hour+clockSkew+time.Minute {
		t.Errorf("validity %v, want 1h", life)
	}
}

func TestSignClampsToCAExpiry(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{Validity: time.Hour})
	cert, _, err := ca.Sign(newCSR(t, newKey(t), "n", nil, nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("NotAfter = %v, want the CA's %v", cert.NotAfter, ca.Certificate().NotAfter)
	}
	if _, _, err := ca.signAt(newCSR(t, newKey(t), "n", nil, nil), 0, time.Now().Add(2*time.Hour)); err == nil {
		t.Error("an expired CA signed")
	}
}

func TestSignKeyTypes(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Sign(newCSR(t, edKey, "ed", nil, nil), 0); err != nil {
		t.Errorf("Ed25519 CSR refused: %v", err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Sign(newCSR(t, rsa1024, "weak", nil, nil), 0); !errors.Is(err, ErrBadCSR) {
		t.Errorf("RSA-1024 CSR: err = %v, want ErrBadCSR", err)
	}
	if testing.Short() {
		return
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Sign(newCSR(t, rsa2048, "rsa", nil, nil), 0); err != nil {
		t.Errorf("RSA-2048 CSR refused: %v", err)
	}
}

func TestSignRejects(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	key := newKey(t)
	many := make([]string, MaxSANs+1)
	for i := range many {
		many[i] = fmt.Sprintf("n%d.example", i)
	}
	ipsAndNames := []net.IP{net.IPv4(10, 0, 0, 1)}

	badSig := newCSR(t, key, "node", nil, nil)
	badSig.Signature = slices.Clone(badSig.Signature)
	badSig.Signature[len(badSig.Signature)-1] ^= 1

	for _, tc := range []struct {
		name string
		csr  *x509.CertificateRequest
	}{
		{"nil", nil},
		{"bad signature", badSig},
		{"too many SANs", newCSR(t, key, "node", many, nil)},
		{"too many SANs with IPs", newCSR(t, key, "node", many[:MaxSANs], ipsAndNames)},
		{"empty name", newCSR(t, key, "", nil, nil)},
		{"long name", newCSR(t, key, strings.Repeat("x", MaxNameLen+1), nil, nil)},
		{"control character in name", newCSR(t, key, "no\nde", nil, nil)},
		{"wildcard", newCSR(t, key, "node", []string{"*.example.net"}, nil)},
		{"empty label", newCSR(t, key, "node", []string{"a..b"}, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ca.Sign(tc.csr, 0); !errors.Is(err, ErrBadCSR) {
				t.Fatalf("err = %v, want ErrBadCSR", err)
			}
		})
	}
	// Exactly MaxSANs is fine.
	if _, _, err := ca.Sign(newCSR(t, key, "node", many[:MaxSANs], nil), 0); err != nil {
		t.Errorf("%d SANs refused: %v", MaxSANs, err)
	}
}

package pki

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// PEM block types for private keys.
const (
	pemTypePrivateKey = "PRIVATE KEY" // unencrypted PKCS#8
	pemTypeCert       = "CERTIFICATE"
	pemTypeCSR        = "CERTIFICATE REQUEST"

	// PEMTypeEncryptedKey is the PEM block type of a password protected key:
	// the PKCS#8 DER sealed with AES-256-GCM under a PBKDF2-HMAC-SHA256 key.
	// The headers carry everything needed to decrypt except the password:
	//
	//	Cipher: AES-256-GCM
	//	KDF: PBKDF2-SHA256
	//	Iterations: <decimal>
	//	Salt: <base64, 16 bytes>
	//	Nonce: <base64, 12 bytes>
	//
	// The body is ciphertext||tag. The additional authenticated data binds
	// the parameters: "chaski-key-v1|AES-256-GCM|PBKDF2-SHA256|<iterations>|"
	// followed by the raw salt.
	PEMTypeEncryptedKey = "CHASKI ENCRYPTED PRIVATE KEY"
)

const (
	// DefaultKDFIterations is the PBKDF2-HMAC-SHA256 iteration count used to
	// protect a CA key when CAOptions.KDFIterations is zero. It follows the
	// OWASP 2023 recommendation for PBKDF2-HMAC-SHA256 (600,000). The count
	// is stored in the key file, so it can be raised in a later release
	// without breaking existing files.
	DefaultKDFIterations = 600_000

	// MinKDFIterations is the lowest iteration count InitCA accepts. It is
	// far below the default and only exists so tests and throw-away
	// deployments can opt into a cheaper derivation explicitly.
	MinKDFIterations = 10_000

	// maxKDFIterations bounds the count read back from a file, so that a
	// corrupted header cannot make LoadCA spin for hours.
	maxKDFIterations = 100_000_000

	kdfSaltLen = 16
	keyLen     = 32 // AES-256
	cipherName = "AES-256-GCM"
	kdfName    = "PBKDF2-SHA256"
)

func keyAAD(iter int, salt []byte) []byte {
	aad := []byte("chaski-key-v1|" + cipherName + "|" + kdfName + "|" + strconv.Itoa(iter) + "|")
	return append(aad, salt...)
}

func newGCM(password []byte, salt []byte, iter int) (cipher.AEAD, error) {
	k, err := pbkdf2.Key(sha256.New, string(password), salt, iter, keyLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// encodePrivateKeyPEM returns the PEM form of key: plain PKCS#8 when
// password is empty, otherwise a PEMTypeEncryptedKey block.
func encodePrivateKeyPEM(key crypto.Signer, password []byte, iter int) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if len(password) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der}), nil
	}
	salt := make([]byte, kdfSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	aead, err := newGCM(password, salt, iter)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sealed := aead.Seal(nil, nonce, der, keyAAD(iter, salt))
	return pem.EncodeToMemory(&pem.Block{
		Type: PEMTypeEncryptedKey,
		Headers: map[string]string{
			"Cipher":     cipherName,
			"KDF":        kdfName,
			"Iterations": strconv.Itoa(iter),
			"Salt":       base64.StdEncoding.EncodeToString(salt),
			"Nonce":      base64.StdEncoding.EncodeToString(nonce),
		},
		Bytes: sealed,
	}), nil
}

// decodePrivateKeyPEM parses a key written by encodePrivateKeyPEM.
func decodePrivateKeyPEM(data, password []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var der []byte
	switch block.Type {
	case pemTypePrivateKey:
		if len(password) != 0 {
			return nil, fmt.Errorf("%w: the key is not encrypted but a password was given", ErrBadPassword)
		}
		der = block.Bytes
	case PEMTypeEncryptedKey:
		if len(password) == 0 {
			return nil, fmt.Errorf("%w: the key is encrypted and no password was given", ErrBadPassword)
		}
		h := block.Headers
		if h["Cipher"] != cipherName || h["KDF"] != kdfName {
			return nil, fmt.Errorf("unsupported key encryption %q/%q", h["Cipher"], h["KDF"])
		}
		iter, err := strconv.Atoi(h["Iterations"])
		if err != nil || iter < 1 || iter > maxKDFIterations {
			return nil, fmt.Errorf("bad Iterations header %q", h["Iterations"])
		}
		salt, err := base64.StdEncoding.DecodeString(h["Salt"])
		if err != nil || len(salt) < 8 {
			return nil, errors.New("bad Salt header")
		}
		nonce, err := base64.StdEncoding.DecodeString(h["Nonce"])
		if err != nil {
			return nil, errors.New("bad Nonce header")
		}
		aead, err := newGCM(password, salt, iter)
		if err != nil {
			return nil, err
		}
		if len(nonce) != aead.NonceSize() {
			return nil, errors.New("bad Nonce header")
		}
		der, err = aead.Open(nil, nonce, block.Bytes, keyAAD(iter, salt))
		if err != nil {
			return nil, fmt.Errorf("%w: wrong password or corrupted key file", ErrBadPassword)
		}
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return signer, nil
}

// writeNewFile creates path with the given mode and contents, failing if the
// file already exists (O_EXCL). A partially written file is removed.
func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	// The umask can only clear bits, but a pre-set ACL or an odd umask must
	// not leave a key more open than asked for.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory and a rename, so readers never see a half written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

package sshui

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// ReadOnlyOption is the authorized_keys option that admits a key as a
// read-only viewer. OpenSSH's "restrict" means the same here.
const ReadOnlyOption = "chaski-read-only"

// maxKeysFile bounds the authorized_keys file read.
const maxKeysFile = 1 << 20

type keyEntry struct {
	readOnly bool
	comment  string
}

// keySet is the parsed authorized_keys file, by the key's wire form.
type keySet struct{ keys map[string]keyEntry }

func (k *keySet) lookup(key ssh.PublicKey) (keyEntry, bool) {
	if key == nil {
		return keyEntry{}, false
	}
	e, ok := k.keys[string(key.Marshal())]
	return e, ok
}

// loadAuthorizedKeys reads an OpenSSH authorized_keys file. A line that
// does not parse, or holds a certificate, is an error naming the line:
// a typo must not silently lock a key out (or in).
func loadAuthorizedKeys(path string) (*keySet, error) {
	if path == "" {
		return nil, errors.New("sshui: an authorized_keys file is required (--ssh-keys)")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sshui: authorized keys: %w", err)
	}
	if st.Size() > maxKeysFile {
		return nil, fmt.Errorf("sshui: authorized keys %s: larger than %d bytes", path, maxKeysFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sshui: authorized keys: %w", err)
	}
	ks := &keySet{keys: map[string]keyEntry{}}
	line := 0
	for _, raw := range bytes.Split(data, []byte("\n")) {
		line++
		l := bytes.TrimSpace(raw)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		key, comment, opts, _, err := gossh.ParseAuthorizedKey(l)
		if err != nil {
			return nil, fmt.Errorf("sshui: %s:%d: %v", path, line, err)
		}
		if _, isCert := key.(*gossh.Certificate); isCert {
			return nil, fmt.Errorf("sshui: %s:%d: certificates are not supported", path, line)
		}
		e := keyEntry{comment: comment}
		for _, o := range opts {
			switch strings.ToLower(strings.TrimSpace(o)) {
			case ReadOnlyOption, "restrict":
				e.readOnly = true
			}
		}
		// The same key twice: the more restrictive line wins.
		if old, dup := ks.keys[string(key.Marshal())]; dup && old.readOnly {
			e.readOnly = true
		}
		ks.keys[string(key.Marshal())] = e
	}
	if len(ks.keys) == 0 {
		return nil, fmt.Errorf("sshui: %s holds no key", path)
	}
	return ks, nil
}

// loadOrCreateHostKey returns the PEM of the host key at path, creating an
// ed25519 key (mode 0600) when the file does not exist. An existing key
// readable by group or others is refused, as sshd does.
func loadOrCreateHostKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("sshui: no host key path")
	}
	data, err := os.ReadFile(path)
	if err == nil {
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("sshui: host key %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
		}
		if _, err := gossh.ParsePrivateKey(data); err != nil {
			return nil, fmt.Errorf("sshui: host key %s: %w", path, err)
		}
		return data, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "chaski ssh host key")
	if err != nil {
		return nil, err
	}
	data = pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return data, nil
}

func fingerprint(k ssh.PublicKey) string {
	if k == nil {
		return ""
	}
	return gossh.FingerprintSHA256(k)
}

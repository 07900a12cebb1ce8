package cli

import (
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// resumeIDFile holds, in the data directory, the 16 bytes that name this
// machine's outgoing files across runs (chaski.Config.ResumeID), so that a
// receiver resumes a transfer that a crash or a ^C interrupted: the node id
// changes every run.
const resumeIDFile = "resume.id"

// loadResumeID reads the resume id kept in dir, creating it on first use.
// Any failure leaves the node without one (it still sends; a receiver
// just cannot resume across runs) and is reported through warn.
func loadResumeID(dir string, warn func(string)) []byte {
	path := filepath.Join(dir, resumeIDFile)
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 16 {
		return b
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if warn != nil {
			warn("cannot read " + path + ": " + cleanErr(err) + " (interrupted sends will not resume)")
		}
		return nil
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, id, 0o600); err == nil {
			err = os.Rename(tmp, path)
		}
		if err == nil {
			return id
		}
	}
	if warn != nil {
		warn("cannot keep a resume id in " + dir + " (interrupted sends will not resume)")
	}
	return id // good for this run at least
}

// Package control is the local control socket of a running node: a unix
// socket in the node's data directory, mode 0600 and answering only its
// owner, through which the chaski command on the same machine reads and
// changes the store of a node that holds it (bbolt's file lock keeps every
// other process out of store.db) and asks for the node's status without UDP.
//
// One connection carries one request and one answer, each a JSON object on
// one line. Requests are bounded in size and time, and at most maxConns are
// served at once; the server uses only exported methods of *chaski.Node.
package control

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
)

// SocketName is the socket's file name in the data directory.
const SocketName = "control.sock"

// SocketPath is the control socket of the node whose data directory is dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

const (
	// maxRequest bounds a request: a store value (base64) with its key.
	maxRequest = store.MaxValueLen/3*4 + 1<<20 // base64 in JSON
	// maxAnswer bounds what a client reads: a listing of a large store.
	maxAnswer = 256 << 20
	// connTimeout bounds one exchange on the server's side; a fetch gets
	// its own timeout on top.
	connTimeout = 10 * time.Second
	maxConns    = 16
	// maxFetchTimeout bounds the network fetch a client may ask for.
	maxFetchTimeout = 5 * time.Minute
)

// Operations.
const (
	opGet    = "get"
	opPut    = "put"
	opDel    = "del"
	opList   = "ls"
	opFetch  = "fetch"
	opStatus = "status"
)

type request struct {
	Op      string        `json:"op"`
	Key     string        `json:"key,omitempty"`
	Value   []byte        `json:"value,omitempty"`
	TTL     time.Duration `json:"ttl,omitempty"` // put: nanoseconds; store.UseDefaultTTL for the default
	Prefix  string        `json:"prefix,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"` // fetch
	Move    bool          `json:"move,omitempty"`    // fetch: chaski.FetchOptions.Move
}

type answer struct {
	Error   string         `json:"error,omitempty"`
	Code    string         `json:"code,omitempty"`
	Entry   *store.Entry   `json:"entry,omitempty"`
	Entries []store.Entry  `json:"entries,omitempty"`
	Value   []byte         `json:"value,omitempty"` // fetch
	Moved   bool           `json:"moved,omitempty"` // fetch: the holder gave its copy up
	Status  *chaski.Status `json:"status,omitempty"`
}

// codes name the errors a client can tell apart with errors.Is.
var codes = []struct {
	code string
	err  error
}{
	{"not_found", store.ErrNotFound},
	{"invalid_key", store.ErrInvalidKey},
	{"value_too_large", store.ErrValueTooLarge},
	{"invalid_ttl", store.ErrInvalidTTL},
	{"no_store", chaski.ErrNoStore},
	{"net_not_found", chaski.ErrNotFound},
	{"closed", chaski.ErrClosed},
	{"timeout", chaski.ErrTimeout},
}

func codeOf(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// remoteError is an error the node answered with; it unwraps to the
// sentinel its code names.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func (a *answer) err() error {
	if a.Error == "" {
		return nil
	}
	re := &remoteError{msg: a.Error}
	for _, c := range codes {
		if c.code == a.Code {
			re.sentinel = c.err
		}
	}
	return re
}

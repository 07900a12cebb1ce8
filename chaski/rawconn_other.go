//go:build !unix

package chaski

import (
	"io"
	"syscall"
)

// Without unix sockets there are no direct writes and no raw reader: every
// frame goes through the writer and reads use the connection itself.
const directWrites = false

func (e *edge) writeNowLocked(f []byte) bool { return false }

func newRawReader(rc syscall.RawConn) io.Reader { return nil }

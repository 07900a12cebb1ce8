//go:build !unix

package chaski

import (
	"io"
	"syscall"
)

const directWrites = false

func (e *edge) writeNowLocked(f []byte) bool { return false }

func newRawReader(rc syscall.RawConn) io.Reader { return nil }

//go:build unix

package chaski

import (
	"errors"
	"syscall"
)

const directWrites = true

// writeNowLocked tries to put f on the socket from the calling goroutine,
// without ever waiting: one non-blocking write(2). What the kernel does not
// take becomes e.carry, which the writer sends before anything else. It
// reports false when nothing was written (the caller queues f instead).
// wmu is held.
func (e *edge) writeNowLocked(f []byte) bool {
	if e.nowStep == nil {
		e.nowStep = e.writeStep
	}
	e.now, e.nowN, e.nowErr = f, 0, nil
	err := e.raw.Write(e.nowStep)
	n := e.nowN
	e.now = nil
	if err != nil || n <= 0 {
		return false
	}
	if n < len(f) {
		e.carry = append(e.carry[:0], f[n:]...)
		e.q.signal()
	}
	return true
}

// writeStep is the body of writeNowLocked's write, a method value made
// once per edge so that no closure is allocated per frame.
func (e *edge) writeStep(fd uintptr) bool {
	buf := e.now
	if k := e.writeCap; k > 0 && k < len(buf) {
		buf = buf[:k]
	}
	for {
		e.nowN, e.nowErr = rawWrite(int(fd), buf)
		if !errors.Is(e.nowErr, syscall.EINTR) {
			return true // never wait for the socket to become writable
		}
	}
}

//go:build unix

package chaski

import (
	"errors"
	"io"
	"os"
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
	if k := e.shortWritesForTest; k > 0 && k < len(buf) {
		buf = buf[:k]
	}
	for {
		e.nowN, e.nowErr = rawWrite(int(fd), buf)
		if !errors.Is(e.nowErr, syscall.EINTR) {
			return true // never wait for the socket to become writable
		}
	}
}

// rawReader reads a plain TCP socket through syscall.RawConn with rawRead:
// the poller still waits for data and honours deadlines and Close, but a
// read that finds data costs no runtime system-call bookkeeping (see
// rawsys_linux.go). Only the edge's reader uses it.
type rawReader struct {
	rc   syscall.RawConn
	p    []byte
	n    int
	err  error
	step func(fd uintptr) bool // r.readStep, made once so a read allocates nothing
}

func newRawReader(rc syscall.RawConn) io.Reader {
	r := &rawReader{rc: rc}
	r.step = r.readStep
	return r
}

// maxRawRead bounds one raw read: the runtime cannot preempt a goroutine
// inside RawSyscall, and copying a large chunk body (megabytes may be
// queued on the socket) would hold its P for a millisecond or more.
const maxRawRead = 256 << 10

func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > maxRawRead {
		p = p[:maxRawRead]
	}
	r.p, r.n, r.err = p, 0, nil
	err := r.rc.Read(r.step)
	n, rerr := r.n, r.err
	r.p = nil
	switch {
	case err != nil: // deadline, or the connection closed
		return 0, err
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readStep reports false (wait for the socket to become readable) only on
// EAGAIN.
func (r *rawReader) readStep(fd uintptr) bool {
	for {
		n, err := rawRead(int(fd), r.p)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return false
		}
		r.n, r.err = n, err
		return true
	}
}

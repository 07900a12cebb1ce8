//go:build unix

package chaski

import (
	"errors"
	"io"
	"os"
	"syscall"
)

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

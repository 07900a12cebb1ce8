package chaski

import (
	"syscall"
	"unsafe"
)

// rawRead and rawWrite are read(2) and write(2) without the runtime's
// system-call bookkeeping, for non-blocking sockets only (they return EAGAIN
// instead of sleeping, so they end in microseconds).
//
// Why: entering a system call the ordinary way wakes the runtime's monitor
// thread whenever it has gone to sleep because every P was idle — which is
// the state of a process waiting for a pong. In a ping-pong that is one
// futex wake-up of a second thread per round trip on each side; the extra
// runnable thread makes the kernel spread the pair over two CPUs, and on a
// virtual machine a wake-up across CPUs costs tens of microseconds
// (docs/PERFORMANCE.md, "Ping"). The runtime needs the bookkeeping only to
// hand the P to another thread while a call blocks, and these never block.
func rawRead(fd int, p []byte) (int, error)  { return rawIO(syscall.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawIO(syscall.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2) (trap) on fd with the buffer p.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

//go:build unix && !linux

package chaski

import "syscall"

// Elsewhere the ordinary calls are used (see rawsys_linux.go for why Linux
// differs).
func rawRead(fd int, p []byte) (int, error)  { return syscall.Read(fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }

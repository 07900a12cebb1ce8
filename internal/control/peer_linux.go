package control

import (
	"net"
	"os"
	"syscall"
)

// peerIsOwner reports whether the process at the other end of c runs as
// this process's user (SO_PEERCRED); root may ask too.
func peerIsOwner(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return int(cred.Uid) == os.Getuid() || cred.Uid == 0
}

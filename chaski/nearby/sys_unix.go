//go:build unix

package nearby

import (
	"fmt"
	"os"
	"syscall"
)

// checkPrivateDir refuses a rendezvous directory that another user could
// write to or that is not ours: its files are dialed.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("nearby: rendezvous directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("nearby: rendezvous directory %s must be a directory of uid %d with mode 0700", dir, os.Getuid())
	}
	return nil
}

// processAlive reports whether the process with this pid exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// reuseAddr lets several processes of one machine bind the mDNS port.
func reuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

//go:build linux || darwin

package chaski

import "syscall"

const oNoFollow = syscall.O_NOFOLLOW

// freeSpace returns the bytes available to this user in dir, or -1.
func freeSpace(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize))
}

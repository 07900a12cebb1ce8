package chaski

import (
	"os"
	"syscall"
)

// fileKeyOf returns the cache key of the open file f (fstat: the file
// being sent, whatever its path names now).
func fileKeyOf(f *os.File) (fileKey, error) {
	var st syscall.Stat_t
	// Through SyscallConn: Fd would switch f to blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return fileKey{}, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil {
		return fileKey{}, err
	}
	if serr != nil {
		return fileKey{}, serr
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fileKey{}, errNoFileKey
	}
	return fileKey{dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, nil
}

package chaski

import (
	"os"
	"syscall"
)

// sendfileWrites: verified file sends over plain TCP put chunk bodies on
// the socket with sendfile(2) (files_send.go, sendfileSource).
const sendfileWrites = true

// sendfileLocked sends n bytes of f from off on the edge's socket with
// sendfile(2) (the writer, wmu held) and returns how many it sent: fewer,
// with a nil error, when f has fewer or cannot be sent this way, and the
// caller writes the rest itself. The write deadline and stalls are handled
// as for writev.
func (e *edge) sendfileLocked(f *os.File, off int64, n int, st *writeStall) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, nil
	}
	done := 0
	var werr error
	// Control keeps f's descriptor from being closed (and its number
	// reused by another file) while it is in use here.
	cerr := rc.Control(func(src uintptr) {
		for done < n {
			var serr error
			stop, progressed := false, false
			err := e.raw.Write(func(dst uintptr) bool {
				for done < n {
					o := off + int64(done)
					k, err := syscall.Sendfile(int(dst), int(src), &o, n-done)
					if k > 0 {
						done += k
						progressed = true
					}
					switch {
					case err == syscall.EAGAIN:
						return false // wait until the socket takes more
					case err == syscall.EINTR:
					case err != nil:
						serr, stop = err, true
						return true
					case k == 0:
						stop = true // the file is shorter now
						return true
					}
				}
				return true
			})
			if serr != nil || stop {
				return
			}
			if err = st.check(e, progressed, err); err != errKeepWriting {
				werr = err
				return
			}
		}
	})
	if cerr != nil {
		return done, nil
	}
	return done, werr
}

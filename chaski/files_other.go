//go:build !linux && !darwin

package chaski

const oNoFollow = 0

// freeSpace is unknown on this platform: the check is skipped and a full
// disk is caught as a write error.
func freeSpace(dir string) int64 { return -1 }

//go:build !linux

package chaski

import "os"

// fileKeyOf: the tree cache is used on Linux only (elsewhere every send
// hashes its file).
func fileKeyOf(f *os.File) (fileKey, error) { return fileKey{}, errNoFileKey }

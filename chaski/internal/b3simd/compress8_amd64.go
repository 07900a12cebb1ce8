//go:build amd64 && !purego

package b3simd

import "golang.org/x/sys/cpu"

var haveAVX2 = cpu.X86.HasAVX2

// compress8 runs eight BLAKE3 compressions, one per lane: cv holds the
// eight chaining values word-major (cv[8*w+lane]) and receives the results;
// lane j's 64-byte block is at msg + j*stride; ctr holds the counters' low
// words, then their high words.
//
//go:noescape
func compress8(cv *[64]uint32, msg *byte, stride uintptr, ctr *[16]uint32, blockLen, flags uint32)

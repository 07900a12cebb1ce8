// Package b3simd hashes BLAKE3 chunk groups eight chunks at a time with a
// gather-free AVX2 kernel of its own (see gen.go for why), for the verified
// streaming of file transfers: the sender's tree pass and the receiver's
// check of every group are the CPU cost of a transfer.
//
// It computes only what those need: the chaining value of a complete
// subtree of 2^k chunks (k >= 3) starting at any chunk counter, with the
// default key. Everything else (partial groups, roots) stays with
// lukechampine.com/blake3/guts, whose results this package's tests compare
// against.
package b3simd

//go:generate go run gen.go

import (
	"unsafe"
)

const (
	chunkLen   = 1024
	blockLen   = 64
	chunkStart = 1 << 0
	chunkEnd   = 1 << 1
	parent     = 1 << 2

	// MinSubtree is the smallest subtree Subtree hashes: eight chunks.
	MinSubtree = 8 * chunkLen
	// cvsPerScratch is how many chaining values a Scratch holds.
	cvsPerScratch = 512
	// maxDirect is the largest subtree hashed without splitting it.
	maxDirect = cvsPerScratch * chunkLen
)

var iv = [8]uint32{0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19}

// Scratch is the working memory of Subtree: the chaining values of up to
// 512 chunks. One per goroutine.
type Scratch struct {
	cvs [cvsPerScratch * 8]uint32
}

// Available reports whether this machine runs the kernel (amd64 with AVX2).
func Available() bool { return haveAVX2 }

// Subtree returns the two children of the subtree that is p (a power of
// two of at least MinSubtree bytes) whose first chunk has counter counter:
// the chaining values a BLAKE3 parent node would combine. The caller makes
// the parent node itself, which is a root or not as it needs. It panics
// when the kernel is not Available or p is not such a size.
func Subtree(p []byte, counter uint64, s *Scratch) (left, right [8]uint32) {
	n := len(p)
	if !haveAVX2 || n < MinSubtree || n&(n-1) != 0 {
		panic("b3simd: Subtree needs AVX2 and a power-of-two size of at least 8 KiB")
	}
	if n > maxDirect {
		h := n / 2
		l, r := Subtree(p[:h], counter, s)
		left = parentCV(l, r)
		l, r = Subtree(p[h:], counter+uint64(h/chunkLen), s)
		return left, parentCV(l, r)
	}
	chunks := n / chunkLen
	cvs := s.cvs[:chunks*8]
	for i := 0; i < chunks; i += 8 {
		chunks8((*[64]uint32)(cvs[i*8:]), unsafe.Pointer(&p[i*chunkLen]), counter+uint64(i))
	}
	// Merge level by level, eight parents per call, in place: the kernel
	// reads all eight blocks before it writes, and parent k's output lies
	// at or before its own inputs.
	for ; chunks > 8; chunks /= 2 {
		for k := 0; k < chunks/2; k += 8 {
			parents8((*[64]uint32)(cvs[k*8:]), unsafe.Pointer(&cvs[2*k*8]))
		}
	}
	// Eight chaining values left: three levels more, the last left to the
	// caller.
	var l4 [4][8]uint32
	for k := range l4 {
		l4[k] = parentCV([8]uint32(cvs[16*k:]), [8]uint32(cvs[16*k+8:]))
	}
	return parentCV(l4[0], l4[1]), parentCV(l4[2], l4[3])
}

// chunks8 writes the chaining values of the eight chunks at data (8 KiB,
// counters counter..counter+7) into out, one after another.
func chunks8(out *[64]uint32, data unsafe.Pointer, counter uint64) {
	var cv [64]uint32 // word-major: cv[8*w+lane]
	for w := 0; w < 8; w++ {
		for j := 0; j < 8; j++ {
			cv[8*w+j] = iv[w]
		}
	}
	var ctr [16]uint32
	for j := 0; j < 8; j++ {
		c := counter + uint64(j)
		ctr[j], ctr[8+j] = uint32(c), uint32(c>>32)
	}
	for b := 0; b < chunkLen/blockLen; b++ {
		var flags uint32
		if b == 0 {
			flags |= chunkStart
		}
		if b == chunkLen/blockLen-1 {
			flags |= chunkEnd
		}
		compress8(&cv, (*byte)(unsafe.Add(data, b*blockLen)), chunkLen, &ctr, blockLen, flags)
	}
	untranspose(out, &cv)
}

// parents8 writes the chaining values of the eight parents whose blocks
// (two chaining values each, 64 bytes) lie one after another at blocks
// into out.
func parents8(out *[64]uint32, blocks unsafe.Pointer) {
	var cv [64]uint32
	for w := 0; w < 8; w++ {
		for j := 0; j < 8; j++ {
			cv[8*w+j] = iv[w]
		}
	}
	var ctr [16]uint32
	compress8(&cv, (*byte)(blocks), blockLen, &ctr, blockLen, parent)
	untranspose(out, &cv)
}

func untranspose(out, cv *[64]uint32) {
	for j := 0; j < 8; j++ {
		for w := 0; w < 8; w++ {
			out[8*j+w] = cv[8*w+j]
		}
	}
}

// parentCV is the chaining value of the (non-root) parent of l and r, one
// compression in plain Go: only the top levels of a subtree use it.
func parentCV(l, r [8]uint32) [8]uint32 {
	var m [16]uint32
	copy(m[:8], l[:])
	copy(m[8:], r[:])
	return compress(&iv, &m, 0, blockLen, parent)
}

func g(v *[16]uint32, a, b, c, d int, x, y uint32) {
	v[a] += v[b] + x
	v[d] = rotr(v[d]^v[a], 16)
	v[c] += v[d]
	v[b] = rotr(v[b]^v[c], 12)
	v[a] += v[b] + y
	v[d] = rotr(v[d]^v[a], 8)
	v[c] += v[d]
	v[b] = rotr(v[b]^v[c], 7)
}

func rotr(x uint32, n int) uint32 { return x>>n | x<<(32-n) }

var msgPermutation = [16]int{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8}

// compress is BLAKE3's compression function, returning the chaining value.
func compress(cv *[8]uint32, m *[16]uint32, counter uint64, blen, flags uint32) [8]uint32 {
	v := [16]uint32{cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
		iv[0], iv[1], iv[2], iv[3], uint32(counter), uint32(counter >> 32), blen, flags}
	s := *m
	for r := 0; r < 7; r++ {
		g(&v, 0, 4, 8, 12, s[0], s[1])
		g(&v, 1, 5, 9, 13, s[2], s[3])
		g(&v, 2, 6, 10, 14, s[4], s[5])
		g(&v, 3, 7, 11, 15, s[6], s[7])
		g(&v, 0, 5, 10, 15, s[8], s[9])
		g(&v, 1, 6, 11, 12, s[10], s[11])
		g(&v, 2, 7, 8, 13, s[12], s[13])
		g(&v, 3, 4, 9, 14, s[14], s[15])
		var t [16]uint32
		for i := range t {
			t[i] = s[msgPermutation[i]]
		}
		s = t
	}
	var out [8]uint32
	for i := range out {
		out[i] = v[i] ^ v[i+8]
	}
	return out
}

package chaski

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"os"

	"lukechampine.com/blake3/guts"

	"github.com/chaski-dev/chaski/chaski/internal/b3simd"
)

// Hash algorithms of FileHash and of file transfers (Config.FileHash).
const (
	HashBLAKE3 = "blake3" // the default transfer hash: verified streaming
	HashSHA256 = "sha256" // the transfer hash before BLAKE3; still negotiable
	HashSHA1   = "sha1"   // FileHash only (the original's get_hash offered it)
	HashMD5    = "md5"    // FileHash only
)

// ErrUnknownHash is returned for a hash algorithm Chaski does not know.
var ErrUnknownHash = errors.New("chaski: unknown hash algorithm")

// FileHash returns the hex digest of the file at path (the original's
// get_hash). algo is HashBLAKE3 (the default when empty; the same digest
// as b3sum), HashSHA256, HashSHA1 or HashMD5.
func FileHash(path, algo string) (string, error) {
	h, err := newFileHasher(algo)
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// Reads of whole BLAKE3 groups let the hasher work in place.
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(onlyWriter{h}, onlyReader{f}, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// onlyReader and onlyWriter hide ReadFrom/WriteTo so that io.CopyBuffer uses
// the buffer it is given.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

func newFileHasher(algo string) (hash.Hash, error) {
	switch algo {
	case "", HashBLAKE3:
		return newB3Hasher(defaultGroup), nil
	case HashSHA256:
		return sha256.New(), nil
	case HashSHA1:
		return sha1.New(), nil
	case HashMD5:
		return md5.New(), nil
	}
	return nil, fmt.Errorf("%w: %q (want blake3, sha256, sha1 or md5)", ErrUnknownHash, algo)
}

// ---- BLAKE3 chunk groups ----
//
// Verified streaming cuts a file into groups of 2^k BLAKE3 chunks (1 KiB
// each; 256 KiB per group by default). The chaining value of every group is
// a leaf of the hash tree; BLAKE3 itself combines the leaves into the root,
// which is the file's ordinary BLAKE3 hash. A receiver that knows the root
// and the leaves (checked against the root before any data) can check each
// group on arrival. See docs/PROTOCOL.md §9.

const (
	defaultGroup = 256 << 10
	minGroup     = guts.ChunkSize
	maxGroup     = 16 << 20
	cvLen        = 32
	// maxTreeBytes bounds the leaves a receiver holds for one transfer
	// (16 GiB at 256 KiB groups).
	maxTreeBytes = 2 << 20
)

// validGroup reports whether g is a usable group size.
func validGroup(g int64) bool {
	return g >= minGroup && g <= maxGroup && bits.OnesCount64(uint64(g)) == 1
}

// groupFor returns the group size a sender uses with chunks of at most
// chunk bytes: the largest power of two that fits, at least 1 KiB.
func groupFor(chunk int) int {
	g := 1 << (bits.Len(uint(chunk)) - 1)
	return min(max(g, minGroup), maxGroup)
}

// groupCount is the number of groups of a file of size bytes (an empty file
// has one, empty, group).
func groupCount(size, group int64) int64 {
	if size <= 0 {
		return 1
	}
	return (size + group - 1) / group
}

// groupNode compresses p, the group that starts at BLAKE3 chunk counter
// counter, and returns the group's top node: its chaining value makes the
// group's leaf, or, with guts.FlagRoot added, the hash of a file that is
// this one group. It merges 16-chunk subtrees exactly as BLAKE3 does.
func groupNode(p []byte, counter uint64, scratch *scratchPiece) guts.Node {
	// Whole groups (every group of a file but perhaps its last) take the
	// gather-free AVX2 kernel where there is one (docs/PERFORMANCE.md,
	// "The BLAKE3 kernel").
	if n := len(p); b3simd.Available() && n >= b3simd.MinSubtree && n&(n-1) == 0 {
		l, r := b3simd.Subtree(p, counter, &scratch.simd)
		return guts.ParentNode(l, r, &guts.IV, 0)
	}
	return groupNodeGuts(p, counter, scratch)
}

// groupNodeGuts is groupNode with lukechampine's guts alone: for partial
// groups, small groups and machines without AVX2.
func groupNodeGuts(p []byte, counter uint64, scratch *scratchPiece) guts.Node {
	const piece = guts.MaxSIMD * guts.ChunkSize
	var stack [54][8]uint32
	var sc uint64
	for len(p) > piece {
		cv := guts.ChainingValue(guts.CompressBuffer((*[piece]byte)(p[:piece]), piece, &guts.IV, counter+sc*guts.MaxSIMD, 0))
		i := 0
		for ; sc&(1<<i) != 0; i++ {
			cv = guts.ChainingValue(guts.ParentNode(stack[i], cv, &guts.IV, 0))
		}
		stack[i] = cv
		sc++
		p = p[piece:]
	}
	var last *[piece]byte
	if len(p) == piece {
		last = (*[piece]byte)(p)
	} else {
		copy(scratch.piece[:], p)
		last = &scratch.piece
	}
	n := guts.CompressBuffer(last, len(p), &guts.IV, counter+sc*guts.MaxSIMD, 0)
	for i := bits.TrailingZeros64(sc); i < bits.Len64(sc); i++ {
		if sc&(1<<i) != 0 {
			n = guts.ParentNode(stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	return n
}

func rootOfNode(n guts.Node) [32]byte {
	n.Flags |= guts.FlagRoot
	return cvBytes(guts.ChainingValue(n))
}

func cvBytes(cv [8]uint32) (b [32]byte) {
	for i, w := range cv {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

func bytesCV(b []byte) (cv [8]uint32) {
	_ = b[31]
	for i := range cv {
		cv[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return cv
}

// treeRoot combines the leaves (32 bytes each, at least two) into the
// BLAKE3 root: the left subtree always holds the largest power of two of
// groups smaller than the whole.
func treeRoot(leaves []byte) [32]byte {
	return cvBytes(mergeLeaves(leaves, guts.FlagRoot))
}

func mergeLeaves(leaves []byte, flags uint32) [8]uint32 {
	n := len(leaves) / cvLen
	if n == 1 {
		return bytesCV(leaves)
	}
	mid := 1 << (bits.Len(uint(n-1)) - 1)
	l := mergeLeaves(leaves[:mid*cvLen], 0)
	r := mergeLeaves(leaves[mid*cvLen:], 0)
	return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, flags))
}

// b3Hasher is BLAKE3 as a hash.Hash that also keeps the leaf of every
// group: the sender of a stream, the receiver and FileHash use it. Writes
// of whole groups are hashed in place.
type b3Hasher struct {
	group   int
	pend    []byte // start of a group not yet complete
	groups  uint64 // complete groups
	leaves  []byte // their chaining values
	last    guts.Node
	scratch *scratchPiece
}

func newB3Hasher(group int) *b3Hasher {
	return &b3Hasher{group: group, scratch: new(scratchPiece)}
}

func (h *b3Hasher) Write(p []byte) (int, error) {
	n := len(p)
	if len(h.pend) > 0 {
		k := min(h.group-len(h.pend), len(p))
		h.pend = append(h.pend, p[:k]...)
		p = p[k:]
		if len(h.pend) == h.group {
			h.addGroup(h.pend)
			h.pend = h.pend[:0]
		}
	}
	for len(p) >= h.group {
		h.addGroup(p[:h.group])
		p = p[h.group:]
	}
	if len(p) > 0 {
		if h.pend == nil {
			h.pend = make([]byte, 0, h.group)
		}
		h.pend = append(h.pend, p...)
	}
	return n, nil
}

func (h *b3Hasher) addGroup(g []byte) {
	h.last = groupNode(g, h.groups*uint64(h.group/guts.ChunkSize), h.scratch)
	cv := cvBytes(guts.ChainingValue(h.last))
	h.leaves = append(h.leaves, cv[:]...)
	h.groups++
}

// Sum appends the BLAKE3 root of everything written.
func (h *b3Hasher) Sum(b []byte) []byte {
	r := h.root()
	return append(b, r[:]...)
}

func (h *b3Hasher) root() [32]byte {
	switch {
	case h.groups == 0:
		return rootOfNode(groupNode(h.pend, 0, h.scratch))
	case h.groups == 1 && len(h.pend) == 0:
		return rootOfNode(h.last)
	case len(h.pend) == 0:
		return treeRoot(h.leaves)
	}
	cv := cvBytes(guts.ChainingValue(groupNode(h.pend, h.groups*uint64(h.group/guts.ChunkSize), h.scratch)))
	return treeRoot(append(h.leaves[:len(h.leaves):len(h.leaves)], cv[:]...))
}

func (h *b3Hasher) Reset() {
	h.pend, h.groups, h.leaves = h.pend[:0], 0, h.leaves[:0]
}

func (h *b3Hasher) Size() int      { return 32 }
func (h *b3Hasher) BlockSize() int { return guts.ChunkSize }

// b3Tree is what a sender of a seekable file computes before offering it:
// the leaves and the root.
type b3Tree struct {
	group  int
	size   int64
	leaves []byte // empty when the file is one group
	root   [32]byte
}

// hashTree reads size bytes from r and returns their tree.
func hashTree(r io.Reader, size int64, group int) (*b3Tree, error) {
	h := newB3Hasher(group)
	buf := make([]byte, max(group, 1<<20)/group*group)
	var done int64
	for done < size {
		k := int(min(int64(len(buf)), size-done))
		if _, err := io.ReadFull(r, buf[:k]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: %d bytes instead of %d", errSourceSize, done, size)
			}
			return nil, err
		}
		h.Write(buf[:k])
		done += int64(k)
	}
	t := &b3Tree{group: group, size: size, root: h.root()}
	if groupCount(size, int64(group)) > 1 {
		t.leaves = h.leaves
		if len(h.pend) > 0 {
			cv := cvBytes(guts.ChainingValue(groupNode(h.pend, h.groups*uint64(group/guts.ChunkSize), h.scratch)))
			t.leaves = append(t.leaves, cv[:]...)
		}
	}
	return t, nil
}

// hashTreeAt is hashTree for size bytes of ra from base, split over up to
// workers goroutines: leaves carry their own chunk counter, so contiguous
// ranges of groups hash independently. A sender does this before its offer,
// while the receiver waits, so spreading it over the cores shortens the
// transfer without taking CPU from anything else.
func hashTreeAt(ctx context.Context, ra io.ReaderAt, base, size int64, group, workers int) (*b3Tree, error) {
	// At least 16 MiB per worker: below that the goroutines cost more than
	// they save.
	workers = int(min(int64(workers), max(1, size/(16<<20))))
	return hashTreeAtSplit(ctx, ra, base, size, group, workers)
}

// hashTreeAtSplit is hashTreeAt with exactly workers goroutines (tests
// force small splits with it).
func hashTreeAtSplit(ctx context.Context, ra io.ReaderAt, base, size int64, group, workers int) (*b3Tree, error) {
	g := int64(group)
	groups := groupCount(size, g)
	if workers <= 1 || groups < 2 {
		return hashTree(ctxReader{ctx, io.NewSectionReader(ra, base, size)}, size, group)
	}
	workers = int(min(int64(workers), groups))
	leaves := make([]byte, groups*cvLen)
	per := (groups + int64(workers) - 1) / int64(workers)
	errs := make(chan error, workers)
	for w := int64(0); w < int64(workers); w++ {
		first, last := min(w*per, groups), min((w+1)*per, groups)
		go func() {
			errs <- hashLeaves(ctx, ra, base, size, g, first, last, leaves[first*cvLen:last*cvLen])
		}()
	}
	var err error
	for range workers {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return nil, err
	}
	return &b3Tree{group: group, size: size, leaves: leaves, root: treeRoot(leaves)}, nil
}

// hashLeaves writes the leaves of groups [first, last) into dst.
func hashLeaves(ctx context.Context, ra io.ReaderAt, base, size, group, first, last int64, dst []byte) error {
	scratch := new(scratchPiece)
	buf := make([]byte, max(group, 1<<20)/group*group)
	for i := first; i < last; {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := i * group
		k := min(int64(len(buf)), (last-i)*group, size-off)
		if n, err := ra.ReadAt(buf[:k], base+off); int64(n) < k {
			if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: %d bytes instead of %d", errSourceSize, off+int64(n), size)
			}
			return err
		}
		for p := buf[:k]; len(p) > 0; i++ {
			n := min(int64(len(p)), group)
			cv := cvBytes(guts.ChainingValue(groupNode(p[:n], uint64(i*group/guts.ChunkSize), scratch)))
			copy(dst[(i-first)*cvLen:], cv[:])
			p = p[n:]
		}
	}
	return nil
}

// groupChecker verifies the groups of incoming chunks against the leaves
// of a tree whose root was checked (or against the root itself when the
// file is one group). It also records the leaves it saw, which the
// receiver keeps beside the partial file so that a resume need not hash
// anything again.
type groupChecker struct {
	group   int64
	size    int64
	root    [32]byte
	leaves  []byte // expected leaves (nil when one group)
	scratch *scratchPiece
}

// errGroupMismatch is a group whose bytes do not hash to its leaf.
var errGroupMismatch = errors.New("does not match the hash tree")

// check verifies data at off (a group boundary) and returns the leaves of
// its groups (32 bytes each, appended to dst).
func (c *groupChecker) check(dst []byte, off int64, data []byte) ([]byte, int64, error) {
	for len(data) > 0 {
		k := int(min(c.group, int64(len(data))))
		idx := off / c.group
		n := groupNode(data[:k], uint64(off/guts.ChunkSize), c.scratch)
		cv := cvBytes(guts.ChainingValue(n))
		if c.leaves == nil {
			if rootOfNode(n) != c.root {
				return dst, idx, errGroupMismatch
			}
		} else if string(cv[:]) != string(c.leaves[idx*cvLen:(idx+1)*cvLen]) {
			return dst, idx, errGroupMismatch
		}
		dst = append(dst, cv[:]...)
		off += int64(k)
		data = data[k:]
	}
	return dst, 0, nil
}

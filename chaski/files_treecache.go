package chaski

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"lukechampine.com/blake3"
)

// ---- the tree cache (Config.FileTreeCache) ----
//
// Verified streaming hashes a file once before its offer, while the
// receiver waits (≈ 0.45 s per GiB on two cores here). A file sent again
// unchanged would give the same tree, so the sender keeps it in a cache
// directory, keyed by the file's identity (device, inode) and checked
// against what the inode says about its contents (size, mtime, ctime).
//
// The cache cannot make a receiver accept wrong data: the receiver checks
// every chunk against the leaves, and the leaves against the root, as it
// does for a tree just computed. A stale or forged entry therefore makes a
// send fail (the first group that differs is named), never succeed with
// other bytes. To keep that failure rare: an entry is written only for a
// file whose mtime and ctime are older than treeCacheRacy (a file written
// again within the same timestamp tick would keep both), only when the
// file's identity did not change while it was hashed, and it is removed
// when a send that used it fails.

// treeCacheRacy: a file changed more recently than this before its tree
// pass is not cached (tests set it to 0).
var treeCacheRacy = 2 * time.Second

const (
	treeCacheMagic = "CHASKIT1"
	// treeCacheMax bounds the entries kept (the oldest go first); an entry
	// is 32 bytes per group (128 KiB per GiB at 256 KiB groups).
	treeCacheMax  = 256
	treeCacheHead = len(treeCacheMagic) + 5*8 + 4 + 32
)

// fileKey is what identifies a file and its contents for the cache.
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns since the epoch
}

// treeEntryPath is the cache file of the file with key k hashed in
// groups of group bytes: one entry per file and group size, replaced when
// the file changes.
func treeEntryPath(dir string, k fileKey, group int) string {
	var b [20]byte
	binary.LittleEndian.PutUint64(b[0:], k.dev)
	binary.LittleEndian.PutUint64(b[8:], k.ino)
	binary.LittleEndian.PutUint32(b[16:], uint32(group))
	s := blake3.Sum256(b[:])
	return filepath.Join(dir, hex.EncodeToString(s[:16])+".tree")
}

func encodeTreeEntry(k fileKey, t *b3Tree) []byte {
	b := make([]byte, 0, treeCacheHead+len(t.leaves)+32)
	b = append(b, treeCacheMagic...)
	b = binary.LittleEndian.AppendUint64(b, k.dev)
	b = binary.LittleEndian.AppendUint64(b, k.ino)
	b = binary.LittleEndian.AppendUint64(b, uint64(k.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(k.mtime))
	b = binary.LittleEndian.AppendUint64(b, uint64(k.ctime))
	b = binary.LittleEndian.AppendUint32(b, uint32(t.group))
	b = append(b, t.root[:]...)
	b = append(b, t.leaves...)
	// A checksum of the whole, so that a torn or damaged entry is not
	// used (it would only make the send fail, but needlessly).
	sum := blake3.Sum256(b)
	return append(b, sum[:]...)
}

// decodeTreeEntry returns the tree in b if b is a whole entry for k and
// group whose leaves give its root.
func decodeTreeEntry(b []byte, k fileKey, group int) (*b3Tree, bool) {
	groups := groupCount(k.size, int64(group))
	nleaves := int64(0)
	if groups > 1 {
		nleaves = groups * cvLen
	}
	if int64(len(b)) != int64(treeCacheHead)+nleaves+32 || string(b[:len(treeCacheMagic)]) != treeCacheMagic {
		return nil, false
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if s := blake3.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, false
	}
	p := body[len(treeCacheMagic):]
	u64 := func() uint64 { v := binary.LittleEndian.Uint64(p); p = p[8:]; return v }
	got := fileKey{dev: u64(), ino: u64(), size: int64(u64()), mtime: int64(u64()), ctime: int64(u64())}
	if got != k || int(binary.LittleEndian.Uint32(p)) != group {
		return nil, false
	}
	p = p[4:]
	t := &b3Tree{group: group, size: k.size, root: [32]byte(p[:32])}
	if groups > 1 {
		t.leaves = bytes.Clone(p[32:])
		// Leaves that do not give the root are no tree at all.
		if treeRoot(t.leaves) != t.root {
			return nil, false
		}
	}
	return t, true
}

// loadTree returns the cached tree of f (whose key is k), if any.
func loadTree(dir string, k fileKey, group int) (*b3Tree, string) {
	path := treeEntryPath(dir, k, group)
	ef, err := os.Open(path)
	if err != nil {
		return nil, ""
	}
	defer ef.Close()
	// An entry is never larger than the leaves a receiver would take.
	b, err := io.ReadAll(io.LimitReader(ef, int64(treeCacheHead)+maxTreeBytes+33))
	if err != nil {
		return nil, ""
	}
	t, ok := decodeTreeEntry(b, k, group)
	if !ok {
		return nil, ""
	}
	return t, path
}

// storeTree writes t as the entry of the file with key k, unless the file
// changed too recently to be trusted (see treeCacheRacy). Errors are
// ignored: the cache only saves time.
func storeTree(dir string, k fileKey, t *b3Tree, hashedAt time.Time) {
	if int64(len(t.leaves)) > maxTreeBytes {
		return // a receiver would refuse this tree anyway
	}
	limit := hashedAt.Add(-treeCacheRacy).UnixNano()
	if k.mtime >= limit || k.ctime >= limit {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".tree-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(encodeTreeEntry(k, t))
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return
	}
	// Rename: a concurrent reader sees the old entry or the new, whole.
	if err := os.Rename(tmp.Name(), treeEntryPath(dir, k, t.group)); err != nil {
		os.Remove(tmp.Name())
		return
	}
	pruneTreeCache(dir)
}

// pruneTreeCache removes the oldest entries beyond treeCacheMax.
func pruneTreeCache(dir string) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type ent struct {
		name string
		mod  time.Time
	}
	var trees []ent
	for _, e := range es {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".tree") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			trees = append(trees, ent{e.Name(), fi.ModTime()})
		}
	}
	if len(trees) <= treeCacheMax {
		return
	}
	slices.SortFunc(trees, func(a, b ent) int { return a.mod.Compare(b.mod) })
	for _, e := range trees[:len(trees)-treeCacheMax] {
		os.Remove(filepath.Join(dir, e.name))
	}
}

// errNoFileKey: the platform or the file gives no identity to cache by.
var errNoFileKey = errors.New("no file identity")

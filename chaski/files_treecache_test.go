//go:build linux

package chaski

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"
)

// setTreeCacheRacy sets treeCacheRacy for one test.
func setTreeCacheRacy(t *testing.T, d time.Duration) {
	old := treeCacheRacy
	treeCacheRacy = d
	t.Cleanup(func() { treeCacheRacy = old })
}

func treeEntries(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.tree"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pushOpen sends the file at path through PushFile from an open *os.File
// (the way SendFile does).
func pushOpen(t *testing.T, a *Node, path string) ([]TransferInfo, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := pushCtx(t)
	defer cancel()
	return a.PushFile(ctx, fileTopic, f, filepath.Base(path), st.Size(), nil)
}

// A file sent once leaves its tree in the cache (the same tree hashing
// gives); a second send of the unchanged file takes the tree from there:
// an entry forged for the file (consistent, but the tree of other bytes)
// makes that send fail at the receiver, which checks the first chunk
// against the forged leaf, and the failed send removes the entry, so the
// next one hashes again and succeeds.
func TestTreeCacheReuseAndForgedEntry(t *testing.T) {
	setTreeCacheRacy(t, 0)
	cache := t.TempDir()
	r := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: t.TempDir()})
	a := fileSender(t, Config{FileTreeCache: cache}, r)
	data := randomBytes(t, 3<<20+5) // 13 groups of 256 KiB, the last short
	path := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	want := blake3.Sum256(data)
	wantHash := HashBLAKE3 + ":" + hex.EncodeToString(want[:])

	infos, err := pushOpen(t, a, path)
	if err != nil || infos[0].Hash != wantHash {
		t.Fatalf("first send: %v, %+v", err, infos)
	}
	es := treeEntries(t, cache)
	if len(es) != 1 {
		t.Fatalf("entries after one send: %v", es)
	}
	f, _ := os.Open(path)
	key, err := fileKeyOf(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	group := groupFor(256 << 10)
	got, p := loadTree(cache, key, group)
	serial, _ := hashTree(bytes.NewReader(data), int64(len(data)), group)
	if got == nil || p != es[0] || got.root != serial.root || !bytes.Equal(got.leaves, serial.leaves) {
		t.Fatalf("cached tree differs from the computed one (%s)", p)
	}

	// The genuine entry: the second send succeeds.
	if infos, err := pushOpen(t, a, path); err != nil || infos[0].Hash != wantHash {
		t.Fatalf("second send: %v, %+v", err, infos)
	}

	// A forged entry, under the file's key: the tree of other bytes.
	other := bytes.Clone(data)
	other[100] ^= 1
	forged, _ := hashTree(bytes.NewReader(other), int64(len(other)), group)
	if err := os.WriteFile(es[0], encodeTreeEntry(key, forged), 0o600); err != nil {
		t.Fatal(err)
	}
	if t2, _ := loadTree(cache, key, group); t2 == nil || t2.root != forged.root {
		t.Fatal("the forged entry is not what the cache returns: the test proves nothing")
	}
	_, err = pushOpen(t, a, path)
	if err == nil || !strings.Contains(err.Error(), "chunk 0 ") {
		t.Fatalf("send with a forged tree: %v, want chunk 0 rejected", err)
	}
	if len(treeEntries(t, cache)) != 0 {
		t.Fatal("the entry of a failed send was kept")
	}
	if infos, err := pushOpen(t, a, path); err != nil || infos[0].Hash != wantHash {
		t.Fatalf("send after the failure: %v, %+v", err, infos)
	}
	if t3, _ := loadTree(cache, key, group); t3 == nil || t3.root != want {
		t.Fatal("no fresh entry after the successful send")
	}
}

// A file rewritten with other bytes of the same size (a new mtime) is hashed
// again, not sent with the old tree; a file changed too recently is not
// cached at all.
func TestTreeCacheChangedAndRecentFiles(t *testing.T) {
	setTreeCacheRacy(t, 0)
	cache := t.TempDir()
	r := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: t.TempDir()})
	a := fileSender(t, Config{FileTreeCache: cache}, r)
	path := filepath.Join(t.TempDir(), "g.bin")
	data := randomBytes(t, 1<<20)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pushOpen(t, a, path); err != nil {
		t.Fatal(err)
	}
	data2 := randomBytes(t, 1<<20)
	if err := os.WriteFile(path, data2, 0o600); err != nil {
		t.Fatal(err)
	}
	// Whatever the clock's tick, the mtime differs from the cached one.
	st, _ := os.Stat(path)
	if err := os.Chtimes(path, st.ModTime(), st.ModTime().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := blake3.Sum256(data2)
	if infos, err := pushOpen(t, a, path); err != nil || infos[0].Hash != HashBLAKE3+":"+hex.EncodeToString(want[:]) {
		t.Fatalf("send of the rewritten file: %v, %+v", err, infos)
	}

	// Changed within the racy window: no entry.
	setTreeCacheRacy(t, time.Hour)
	cache2 := t.TempDir()
	a2 := fileSender(t, Config{Name: "sender2", FileTreeCache: cache2}, r)
	if _, err := pushOpen(t, a2, path); err != nil {
		t.Fatal(err)
	}
	if es := treeEntries(t, cache2); len(es) != 0 {
		t.Fatalf("a file changed within treeCacheRacy was cached: %v", es)
	}
}

// An entry is used only whole, for its own file and group size, and only if
// its leaves give its root; sizes of one group (no leaves) and empty files
// round-trip too.
func TestTreeCacheEntryChecks(t *testing.T) {
	const group = 4 << 10
	for _, n := range []int{0, 1, group - 1, group, group + 1, 7*group + 3} {
		data := randomBytes(t, n)
		tr, err := hashTree(bytes.NewReader(data), int64(n), group)
		if err != nil {
			t.Fatal(err)
		}
		k := fileKey{dev: 7, ino: 42, size: int64(n), mtime: 1e18, ctime: 1e18 + 5}
		b := encodeTreeEntry(k, tr)
		got, ok := decodeTreeEntry(b, k, group)
		if !ok || got.root != tr.root || !bytes.Equal(got.leaves, tr.leaves) || got.size != int64(n) {
			t.Fatalf("%d bytes: round trip failed", n)
		}
		for name, k2 := range map[string]fileKey{
			"other inode": {dev: 7, ino: 43, size: k.size, mtime: k.mtime, ctime: k.ctime},
			"other mtime": {dev: 7, ino: 42, size: k.size, mtime: k.mtime + 1, ctime: k.ctime},
			"other ctime": {dev: 7, ino: 42, size: k.size, mtime: k.mtime, ctime: k.ctime + 1},
		} {
			if _, ok := decodeTreeEntry(b, k2, group); ok {
				t.Fatalf("%d bytes: accepted for %s", n, name)
			}
		}
		if _, ok := decodeTreeEntry(b, k, 2*group); ok {
			t.Fatalf("%d bytes: accepted for another group size", n)
		}
		for _, i := range []int{0, len(treeCacheMagic) + 3, len(b) / 2, len(b) - 1} {
			bad := bytes.Clone(b)
			bad[i] ^= 0x10
			if _, ok := decodeTreeEntry(bad, k, group); ok {
				t.Fatalf("%d bytes: accepted with byte %d flipped", n, i)
			}
		}
		if _, ok := decodeTreeEntry(b[:len(b)-1], k, group); ok {
			t.Fatalf("%d bytes: accepted truncated", n)
		}
		if len(tr.leaves) > 0 {
			// A valid checksum over leaves that do not give the root.
			wrong := *tr
			wrong.leaves = bytes.Clone(tr.leaves)
			wrong.leaves[0] ^= 1
			if _, ok := decodeTreeEntry(encodeTreeEntry(k, &wrong), k, group); ok {
				t.Fatalf("%d bytes: accepted leaves that do not give the root", n)
			}
		}
	}
}

// The cache keeps at most treeCacheMax entries, dropping the oldest.
func TestTreeCachePrune(t *testing.T) {
	setTreeCacheRacy(t, 0)
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for i := range treeCacheMax + 3 {
		p := filepath.Join(dir, hex.EncodeToString([]byte{byte(i >> 8), byte(i)})+".tree")
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	tr, _ := hashTree(bytes.NewReader(nil), 0, 1024)
	k := fileKey{dev: 1, ino: 2, mtime: 1, ctime: 1}
	storeTree(dir, k, tr, time.Now())
	es := treeEntries(t, dir)
	if len(es) != treeCacheMax {
		t.Fatalf("%d entries, want %d", len(es), treeCacheMax)
	}
	for i := range 4 { // the four oldest went
		p := filepath.Join(dir, hex.EncodeToString([]byte{byte(i >> 8), byte(i)})+".tree")
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("entry %d (among the oldest) kept", i)
		}
	}
	if got, _ := loadTree(dir, k, 1024); got == nil {
		t.Fatal("the new entry was pruned")
	}
}

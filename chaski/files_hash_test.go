package chaski

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"lukechampine.com/blake3"

	"github.com/chaski-dev/chaski/chaski/internal/b3simd"
)

// The group tree gives the ordinary BLAKE3 hash (checked against the
// library's own hasher) for every size around group and chunk boundaries,
// whatever the group size and however the input is cut into writes.
func TestB3HasherMatchesBLAKE3(t *testing.T) {
	data := randomBytes(t, 3<<20+777)
	sizes := []int{0, 1, 1023, 1024, 1025, 16 << 10, 16<<10 + 1, 64 << 10, 256<<10 - 1, 256 << 10, 256<<10 + 1,
		512 << 10, 768<<10 + 5, 1 << 20, 3<<20 + 777}
	for _, group := range []int{1 << 10, 4 << 10, 64 << 10, 256 << 10} {
		for _, n := range sizes {
			want := blake3.Sum256(data[:n])
			h := newB3Hasher(group)
			// Uneven writes exercise the pending-group path.
			for p, step := data[:n], 1; len(p) > 0; step = step*3 + 1 {
				k := min(step, len(p))
				h.Write(p[:k])
				p = p[k:]
			}
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Fatalf("group %d, %d bytes: %x, want %x", group, n, got, want)
			}
			tr, err := hashTree(bytes.NewReader(data[:n]), int64(n), group)
			if err != nil || tr.root != want {
				t.Fatalf("tree: group %d, %d bytes: %x (%v)", group, n, tr.root, err)
			}
			// Split over workers (the 16 MiB floor forced down by a large count).
			for _, workers := range []int{2, 3, 4, 7} {
				pt, err := hashTreeAtSplit(context.Background(), bytes.NewReader(data), 5, int64(n)-5, group, workers)
				if n >= 5 {
					pw, _ := hashTree(bytes.NewReader(data[5:n]), int64(n)-5, group)
					if err != nil || pt.root != pw.root || !bytes.Equal(pt.leaves, pw.leaves) {
						t.Fatalf("split tree: group %d, %d bytes, %d workers: %v", group, n, workers, err)
					}
				}
			}
			if g := groupCount(int64(n), int64(group)); (g == 1) != (tr.leaves == nil) || (g > 1 && int64(len(tr.leaves)) != g*cvLen) {
				t.Fatalf("group %d, %d bytes: %d leaf bytes for %d groups", group, n, len(tr.leaves), g)
			}
			// Every group checks against its leaf; a flipped byte is named.
			c := &groupChecker{group: int64(group), size: int64(n), root: tr.root, leaves: tr.leaves, scratch: h.scratch}
			if _, _, err := c.check(nil, 0, data[:n]); err != nil {
				t.Fatalf("check: group %d, %d bytes: %v", group, n, err)
			}
			if n > 0 {
				bad := bytes.Clone(data[:n])
				bad[n-1] ^= 1
				if _, idx, err := c.check(nil, 0, bad); !errors.Is(err, errGroupMismatch) || idx != int64((n-1)/group) {
					t.Fatalf("flipped last byte: group %d, %d bytes: idx %d, %v", group, n, idx, err)
				}
			}
		}
	}
}

func TestFileHash(t *testing.T) {
	data := randomBytes(t, 3<<20+5)
	path := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b3 := blake3.Sum256(data)
	s256 := sha256.Sum256(data)
	s1 := sha1.Sum(data)
	m5 := md5.Sum(data)
	for algo, want := range map[string][]byte{"": b3[:], HashBLAKE3: b3[:], HashSHA256: s256[:], HashSHA1: s1[:], HashMD5: m5[:]} {
		got, err := FileHash(path, algo)
		if err != nil || got != hex.EncodeToString(want) {
			t.Fatalf("%q: %s, %v", algo, got, err)
		}
	}
	if _, err := FileHash(path, "crc32"); !errors.Is(err, ErrUnknownHash) {
		t.Fatalf("unknown algorithm: %v", err)
	}
	if _, err := FileHash(filepath.Join(t.TempDir(), "none"), HashBLAKE3); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// The test vector of docs/PROTOCOL.md §9.
func TestTreeVector(t *testing.T) {
	data := make([]byte, 3072)
	for i := range data {
		data[i] = byte(i % 251)
	}
	tr, err := hashTree(bytes.NewReader(data), int64(len(data)), 1024)
	if err != nil {
		t.Fatal(err)
	}
	want := "5c9e654411e393d1f4bec710ccd5bc5669ab177d610a0eb691fcfee92fb4e8b1" +
		"5b1f23b8390368a2c15095910389d1b716eb52a6dfd34d0aa66a22a21b761ca7" +
		"31af34be96abc0f78f175c2b7af34754a2011916b9d343582c74d06f07153ca8"
	if got := hex.EncodeToString(tr.leaves); got != want {
		t.Fatalf("leaves %s", got)
	}
	if got := hex.EncodeToString(tr.root[:]); got != "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2" {
		t.Fatalf("root %s", got)
	}
}

// The tree split over workers is the tree of the whole: its root is the
// library's BLAKE3 of the bytes and its leaves those of the serial pass,
// for sizes around group boundaries, leaf counts that are not powers of
// two (so that workers' ranges end inside the tree's left subtrees) and
// more workers than groups, from offset 0 or not.
func TestHashTreeAtSplitAwkwardSizes(t *testing.T) {
	data := randomBytes(t, 70<<12+64)
	for _, group := range []int{1 << 10, 4 << 10} {
		g := group
		for _, n := range []int{0, 1, g - 1, g, g + 1, 2 * g, 3*g + 1, 5 * g, 7*g - 1, 13 * g, 64*g + 3, 70 * g} {
			for _, base := range []int{0, 7} {
				if base+n > len(data) {
					continue
				}
				src := data[base : base+n]
				want := blake3.Sum256(src)
				serial, err := hashTree(bytes.NewReader(src), int64(n), group)
				if err != nil {
					t.Fatal(err)
				}
				for _, workers := range []int{1, 2, 3, 5, 8, 100} {
					got, err := hashTreeAtSplit(context.Background(), bytes.NewReader(data), int64(base), int64(n), group, workers)
					if err != nil {
						t.Fatalf("group %d, %d bytes at %d, %d workers: %v", group, n, base, workers, err)
					}
					if got.root != want {
						t.Fatalf("group %d, %d bytes at %d, %d workers: root %x, want %x", group, n, base, workers, got.root, want)
					}
					if !bytes.Equal(got.leaves, serial.leaves) {
						t.Fatalf("group %d, %d bytes at %d, %d workers: leaves differ from the serial pass", group, n, base, workers)
					}
				}
			}
		}
	}
}

// Whole groups take the AVX2 kernel of internal/b3simd where the machine
// has one; its node must be the one guts makes, at every group size it
// takes, at counters past 2^32 too (a file's groups start anywhere).
func TestGroupNodeKernelMatchesGuts(t *testing.T) {
	if !b3simd.Available() {
		t.Skip("no AVX2 here: groupNode is groupNodeGuts")
	}
	data := randomBytes(t, 2<<20)
	s1, s2 := new(scratchPiece), new(scratchPiece)
	for _, group := range []int{8 << 10, 64 << 10, 256 << 10, 1 << 20, 2 << 20} {
		for _, counter := range []uint64{0, uint64(group / 1024), 1<<32 - 8, 1 << 33} {
			if got, want := groupNode(data[:group], counter, s1), groupNodeGuts(data[:group], counter, s2); got != want {
				t.Fatalf("group %d at counter %d: the kernel's node differs from guts'", group, counter)
			}
		}
	}
}

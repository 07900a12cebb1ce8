package b3simd

import (
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// refSubtree computes the same two children with lukechampine's guts, one
// chunk at a time.
func refSubtree(p []byte, counter uint64) (left, right [8]uint32) {
	var level [][8]uint32
	for i := 0; i < len(p); i += chunkLen {
		level = append(level, guts.ChainingValue(guts.CompressChunk(p[i:i+chunkLen], &guts.IV, counter+uint64(i/chunkLen), 0)))
	}
	for len(level) > 2 {
		var next [][8]uint32
		for i := 0; i < len(level); i += 2 {
			next = append(next, guts.ChainingValue(guts.ParentNode(level[i], level[i+1], &guts.IV, 0)))
		}
		level = next
	}
	return level[0], level[1]
}

func TestSubtreeMatchesReference(t *testing.T) {
	if !Available() {
		t.Skip("no AVX2 on this machine")
	}
	var s Scratch
	counters := []uint64{0, 8, 1 << 20, 1<<32 - 3, 1<<32 + 5, 1<<40 - 1}
	for _, size := range []int{8 << 10, 16 << 10, 64 << 10, 256 << 10, 512 << 10, 1 << 20, 4 << 20} {
		for ci, c := range counters {
			p := randomBytes(uint64(size)+uint64(ci), size)
			l, r := Subtree(p, c, &s)
			wl, wr := refSubtree(p, c)
			if l != wl || r != wr {
				t.Fatalf("size %d counter %d: children differ from the reference", size, c)
			}
		}
	}
}

// A subtree at counter 0 hashed as a root is the file's ordinary BLAKE3
// hash: the end-to-end check against the public API.
func TestSubtreeRootIsBLAKE3(t *testing.T) {
	if !Available() {
		t.Skip("no AVX2 on this machine")
	}
	var s Scratch
	for _, size := range []int{8 << 10, 32 << 10, 256 << 10, 2 << 20} {
		p := randomBytes(uint64(size), size)
		l, r := Subtree(p, 0, &s)
		got := guts.WordsToBytes(guts.CompressNode(guts.ParentNode(l, r, &guts.IV, guts.FlagRoot)))
		want := blake3.Sum256(p)
		if [32]byte(got[:32]) != want {
			t.Fatalf("size %d: root %x, BLAKE3 %x", size, got[:32], want)
		}
	}
}

// Every lane is its own: one changed byte in any chunk changes only the
// result that depends on it, and a change in each lane is seen.
func TestSubtreeEveryByteCounts(t *testing.T) {
	if !Available() {
		t.Skip("no AVX2 on this machine")
	}
	var s Scratch
	p := randomBytes(7, 16<<10)
	l0, r0 := Subtree(p, 0, &s)
	for _, off := range []int{0, 63, 64, 1023, 1024, 3000, 7*1024 + 1000, 8 << 10, 16<<10 - 1} {
		p[off] ^= 0x80
		l, r := Subtree(p, 0, &s)
		p[off] ^= 0x80
		if off < 8<<10 && (l == l0 || r != r0) || off >= 8<<10 && (l != l0 || r == r0) {
			t.Fatalf("flipping byte %d: left changed %v, right changed %v", off, l != l0, r != r0)
		}
	}
}

func TestCompressMatchesGuts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		var cv [8]uint32
		var m [16]uint32
		for i := range cv {
			cv[i] = r.Uint32()
		}
		for i := range m {
			m[i] = r.Uint32()
		}
		ctr, blen, flags := r.Uint64(), uint32(r.IntN(65)), uint32(r.IntN(16))
		got := compress(&cv, &m, ctr, blen, flags)
		want := guts.ChainingValue(guts.Node{CV: cv, Block: m, Counter: ctr, BlockLen: blen, Flags: flags})
		if got != want {
			t.Fatal("compress differs from guts")
		}
	}
}

func TestSubtreeRefusesBadSizes(t *testing.T) {
	if !Available() {
		t.Skip("no AVX2 on this machine")
	}
	for _, n := range []int{0, 4 << 10, 24 << 10} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("size %d: no panic", n)
				}
			}()
			Subtree(make([]byte, n), 0, new(Scratch))
		}()
	}
}

func BenchmarkSubtree256KiB(b *testing.B) {
	if !Available() {
		b.Skip("no AVX2 on this machine")
	}
	var s Scratch
	p := randomBytes(1, 256<<10)
	b.SetBytes(int64(len(p)))
	for i := 0; i < b.N; i++ {
		Subtree(p, uint64(i)*256, &s)
	}
}

func BenchmarkGuts256KiB(b *testing.B) {
	p := randomBytes(1, 256<<10)
	var buf [guts.MaxSIMD * guts.ChunkSize]byte
	b.SetBytes(int64(len(p)))
	for i := 0; i < b.N; i++ {
		for o := 0; o < len(p); o += len(buf) {
			copy(buf[:], p[o:])
			guts.CompressBuffer(&buf, len(buf), &guts.IV, uint64(o/1024), 0)
		}
	}
}

package chaski

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user + system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFileTransferCPU sends 256 MiB from memory to a receiver writing
// into /dev/shm when there is one (so the node, not the disk, is measured)
// and reports, besides MB/s, the CPU both nodes spent per GiB (the figure
// that bounds the rate on a 2-core machine, and is less disturbed by other
// load than the rate).
func BenchmarkFileTransferCPU(b *testing.B) {
	for _, algo := range []string{HashBLAKE3, HashSHA256} {
		for _, chunk := range []int{256 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("hash=%s/chunk=%dKiB", algo, chunk>>10), func(b *testing.B) { benchFileCPU(b, algo, chunk) })
		}
	}
}

func benchFileCPU(b *testing.B, algo string, chunk int) {
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "chaski-bench-")
		if err == nil {
			dir = d
			b.Cleanup(func() { _ = os.RemoveAll(d) })
		}
	}
	r := fileReceiver(b, Config{AcceptFiles: true, DownloadDir: dir})
	a := fileSender(b, Config{FileChunkSize: chunk, FileHash: algo}, r)
	data := randomBytes(b, 256<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		c0 := cpuTime()
		ctx, cancel := pushCtx(b)
		_, err := a.PushFile(ctx, fileTopic, bytes.NewReader(data), "bench.bin", int64(len(data)), nil)
		cancel()
		cpu += cpuTime() - c0
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = os.Remove(filepath.Join(dir, "bench.bin"))
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N)*float64(1<<30)/float64(len(data)), "cpu-s/GiB")
}

// BenchmarkGroupCheckWorkingSet hashes 256 KiB groups (the receiver's check
// of one chunk) in turn over a set of distinct buffers: with one to four
// (at most 1 MiB, a vCPU's L2 on the guest of docs/PERFORMANCE.md) the
// bytes come from the cache, with more from memory. It shows what a check
// costs when it reads a chunk long after the socket read wrote it.
func BenchmarkGroupCheckWorkingSet(b *testing.B) {
	const group = 256 << 10
	for _, set := range []int{1, 4, 8, 16, 32, 64, 1024} {
		b.Run(fmt.Sprintf("set=%dKiB", set*group>>10), func(b *testing.B) {
			buf := make([]byte, set*group)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			scratch := new(scratchPiece)
			b.SetBytes(group)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o := (i % set) * group
				groupNode(buf[o:o+group], uint64(o/1024), scratch)
			}
		})
	}
}

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

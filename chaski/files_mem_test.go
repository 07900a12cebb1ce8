package chaski

import (
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

type zeroish struct{ n byte }

func (z *zeroish) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = z.n
		z.n++
	}
	return len(p), nil
}

// TestFileMemory1GiB moves 1 GiB from a streaming source and checks that
// the heap stays bounded (it writes 1 GiB to disk, hence opt-in).
func TestFileMemory1GiB(t *testing.T) {
	if os.Getenv("CHASKI_BIG") == "" {
		t.Skip("set CHASKI_BIG=1")
	}
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	a := fileSender(t, Config{}, b)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	ctx, cancel := pushCtx(t)
	defer cancel()
	start := time.Now()
	_, err := a.PushFile(ctx, fileTopic, io.LimitReader(&zeroish{}, 1<<30), "big.bin", 1<<30, nil)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1 GiB in %v, peak heap in use %d MiB", time.Since(start), peak.Load()>>20)
	if peak.Load() > 256<<20 {
		t.Fatalf("peak heap %d MiB: buffers are not bounded", peak.Load()>>20)
	}
}

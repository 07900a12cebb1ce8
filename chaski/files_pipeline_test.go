package chaski

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// The pump builds the first leg's frame in place, around data already read
// into the buffer: it must be byte for byte what AppendFileChunkFrame makes.
func TestFileChunkHeadInPlace(t *testing.T) {
	const pre = wire.HeaderLen + wire.FileChunkFixedLen
	id := newXferID()
	for _, k := range []int{0, 1, 1000, 256 << 10} {
		data := randomBytes(t, k)
		want, err := wire.AppendFileChunkFrame(nil, &wire.FileChunk{Transfer: id, Offset: 123456789, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, pre+k)
		for i := range buf[:pre] {
			buf[i] = 0xAA // stale bytes of a recycled buffer
		}
		copy(buf[pre:], data)
		putFileChunkHead(buf, id, 123456789, k)
		if !bytes.Equal(buf, want) {
			t.Fatalf("k=%d: in-place frame differs from AppendFileChunkFrame", k)
		}
		c, err := wire.ParseFileChunk(buf[wire.HeaderLen:])
		if err != nil || c.Transfer != id || c.Offset != 123456789 || !bytes.Equal(c.Data, data) {
			t.Fatalf("k=%d: parsed %+v, %v", k, c, err)
		}
	}
}

// Chunk buffers are recycled once the edge's writer released their frame;
// with a tiny data lane, several transfers and messages interleaved on the
// same edge, any buffer reused too early would corrupt the stream (and the
// receiver's SHA-256 check or the race detector would say so).
func TestFileBufferReuseWithTraffic(t *testing.T) {
	dir := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	a := fileSender(t, Config{FileChunkSize: 16 << 10, SendQueueBytes: 64 << 10}, b)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // other producers on the same data lane
		defer wg.Done()
		msg := randomBytes(t, 3000)
		for i := 0; ctx.Err() == nil; i++ {
			_ = a.Publish(ctx, fileTopic, msg)
			if i%16 == 15 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	files := map[string][]byte{}
	for i := range 3 {
		files[fmt.Sprintf("f%d.bin", i)] = randomBytes(t, 3<<20+i*7919)
	}
	errs := make(chan error, len(files))
	var pw sync.WaitGroup
	for name, data := range files {
		pw.Add(1)
		go func() {
			defer pw.Done()
			_, err := push(t, a, name, data, nil)
			errs <- err
		}()
	}
	pw.Wait()
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: content differs", name)
		}
	}
}

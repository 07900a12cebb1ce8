//go:build linux

package chaski

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A verified send from a file over plain TCP writes the chunk bodies with
// sendfile(2), so the sender never reads them: a file that shrinks after
// its tree pass is not noticed by the sender but by the receiver, which
// rejects the first chunk that differs (the missing bytes go as zeros, so
// every frame stays whole). The edge survives, and a send after it works.
// (Read through the ordinary path the same shrink is the sender's own
// errSourceSize, so this also shows which path was taken.)
func TestFileSendfileShrunkSource(t *testing.T) {
	b := fileReceiver(t, Config{PromptFiles: true, DownloadDir: t.TempDir()})
	a := fileSender(t, Config{}, b)
	const chunk = 256 << 10
	data := randomBytes(t, 4*chunk+5)
	path := filepath.Join(t.TempDir(), "shrink.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, stop := b.Watch(0)
	defer stop()
	before, _ := a.Edge(b.ID())
	res := pushAsync(t, a, "shrink.bin", f, len(data))
	var id string
	deadline := time.After(waitTimeout)
	for id == "" {
		select {
		case ev := <-events:
			if te, ok := ev.(*TransferEvent); ok && te.Transfer.State == TransferPending {
				id = te.Transfer.ID
			}
		case <-deadline:
			t.Fatal("no pending transfer")
		}
	}
	// The tree is computed (it came with the offer): shrink the file into
	// its second chunk before any data goes.
	if err := os.Truncate(path, chunk+1000); err != nil {
		t.Fatal(err)
	}
	if err := b.AcceptTransfer(id, true); err != nil {
		t.Fatal(err)
	}
	r := waitPush(t, res)
	if r.err == nil || !strings.Contains(r.err.Error(), "chunk 1 ") {
		t.Fatalf("send of a shrunk file: %v, want chunk 1 rejected by the receiver", r.err)
	}
	after, ok := a.Edge(b.ID())
	if !ok || !after.Since.Equal(before.Since) {
		t.Fatalf("the edge did not survive (before %v, after %v, %v)", before.Since, after.Since, ok)
	}
	// The stream is still in step: another file goes through.
	small := randomBytes(t, 3*chunk+7)
	res = pushAsync(t, a, "after.bin", bytes.NewReader(small), len(small))
	id = ""
	for id == "" {
		select {
		case ev := <-events:
			if te, ok := ev.(*TransferEvent); ok && te.Transfer.State == TransferPending && te.Transfer.Name == "after.bin" {
				id = te.Transfer.ID
			}
		case <-time.After(waitTimeout):
			t.Fatal("no pending transfer for the second file")
		}
	}
	if err := b.AcceptTransfer(id, true); err != nil {
		t.Fatal(err)
	}
	if r := waitPush(t, res); r.err != nil {
		t.Fatalf("send after the shrunk one: %v", r.err)
	}
}

package chaski

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/chaski-dev/chaski/chaski/wire"
)

func writeTree(t *testing.T, root string, files map[string][]byte) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// SendDir rebuilds the tree on the receiver with a verdict per file and
// one progress for the whole; a link inside the tree is sent as its file,
// a link out of the tree is not sent (and named); sending it again resumes
// nothing but finds every file already there (numbered copies, nothing
// overwritten).
func TestSendDir(t *testing.T) {
	dl := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dl})
	a := fileSender(t, Config{}, b)
	src := filepath.Join(t.TempDir(), "photos")
	files := map[string][]byte{
		"a.txt":             []byte("alpha"),
		"2024/b.bin":        randomBytes(t, 600<<10),
		"2024/deep/c.bin":   randomBytes(t, 10),
		"2025/empty.txt":    {},
		"2025/x/y/z/w.data": randomBytes(t, 300<<10),
	}
	writeTree(t, src, files)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(src, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(src, "a.txt"), filepath.Join(src, "2024", "alias.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "nothing"), 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var progress []DirProgress
	ctx, cancel := pushCtx(t)
	defer cancel()
	res, err := a.SendDir(ctx, fileTopic, src, DirOptions{Progress: func(p DirProgress) {
		mu.Lock()
		progress = append(progress, p)
		mu.Unlock()
	}})
	if err == nil || !strings.Contains(err.Error(), "1 of 7 files failed") || !strings.Contains(err.Error(), "link out of the tree") {
		t.Fatalf("SendDir: %v", err)
	}
	verdicts := map[string]error{}
	for _, f := range res {
		verdicts[f.Path] = f.Err
		if f.Err == nil && (len(f.Transfers) != 1 || f.Transfers[0].State != TransferDone) {
			t.Fatalf("%s: %+v", f.Path, f.Transfers)
		}
	}
	if len(verdicts) != 7 || verdicts["photos/leak.txt"] == nil || verdicts["photos/2024/alias.txt"] != nil {
		t.Fatalf("verdicts %v", verdicts)
	}
	files["2024/alias.txt"] = files["a.txt"]
	var total int64
	for rel, data := range files {
		total += int64(len(data))
		got, err := os.ReadFile(filepath.Join(dl, "photos", filepath.FromSlash(rel)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %v", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dl, "photos", "leak.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link out of the tree arrived: %v", err)
	}
	mu.Lock()
	last := progress[len(progress)-1]
	mu.Unlock()
	if last.Files != 6 || last.FilesDone != 6 || last.Failed != 0 || last.Bytes != total || last.Done != total || last.Current != "" {
		t.Fatalf("last progress %+v (total %d)", last, total)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Done < progress[i-1].Done {
			t.Fatalf("progress went back: %+v then %+v", progress[i-1], progress[i])
		}
	}

	// Again: every file lands beside the first copy, numbered.
	os.Remove(filepath.Join(src, "leak.txt"))
	if _, err := a.SendDir(ctx, fileTopic, src, DirOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dl, "photos", "2024", "deep", "c (1).bin")); !bytes.Equal(got, files["2024/deep/c.bin"]) {
		t.Fatal("second copy of c.bin missing")
	}
	var names []string
	_ = filepath.WalkDir(dl, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(dl, p)
			names = append(names, filepath.ToSlash(r))
		}
		return nil
	})
	sort.Strings(names)
	if len(names) != 12 {
		t.Fatalf("download dir holds %v", names)
	}
}

// A relative path cannot leave the download directory through a link
// planted in it: the file is refused at placement, nothing is written
// outside, and the partial is removed.
func TestFileDirLinkInDownloadDir(t *testing.T) {
	dl := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dl, "evil")); err != nil {
		t.Fatal(err)
	}
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dl})
	p := dialFileRaw(t, b)
	data := []byte("payload")
	id, tr := p.verifiedOffer("evil/x.txt", data, 1024)
	if a := p.ack(); !a.Accept {
		t.Fatalf("ack %+v", a)
	}
	p.chunk(id, 0, data)
	p.send(wire.KindFileEnd, "", &wire.FileEnd{Transfer: id, Size: int64(len(data)), Hash: tr.root[:]})
	a := p.ack()
	if a.OK || !strings.Contains(a.Reason, "cannot store the file") {
		t.Fatalf("final ack %+v", a)
	}
	if fs := dirFiles(t, outside); len(fs) != 0 {
		t.Fatalf("written outside the download dir: %v", fs)
	}
	if fs := dirFiles(t, dl); len(fs) != 1 || fs[0] != "evil" {
		t.Fatalf("download dir holds %v", fs)
	}
	// The same path without the link is fine.
	if err := os.Remove(filepath.Join(dl, "evil")); err != nil {
		t.Fatal(err)
	}
	id, tr = p.verifiedOffer("evil/x.txt", data, 1024)
	p.ack()
	p.chunk(id, 0, data)
	p.send(wire.KindFileEnd, "", &wire.FileEnd{Transfer: id, Size: int64(len(data)), Hash: tr.root[:]})
	if a := p.ack(); !a.OK || a.Path != "evil/x.txt" {
		t.Fatalf("final ack %+v", a)
	}
}

// SendFile of a directory (what a folder dropped on the dashboard does)
// sends the tree in the background; its id is known to CancelTransfer while
// it runs and forgotten once it ended.
func TestSendFileDirectory(t *testing.T) {
	dl := t.TempDir()
	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dl})
	a := fileSender(t, Config{}, b)
	src := filepath.Join(t.TempDir(), "drop")
	files := map[string][]byte{"x.txt": []byte("x"), "in/y.bin": randomBytes(t, 70<<10)}
	writeTree(t, src, files)
	ctx, cancel := pushCtx(t)
	defer cancel()
	id, err := a.SendFile(ctx, fileTopic, src, nil)
	if err != nil || id == "" {
		t.Fatalf("SendFile(dir): %q, %v", id, err)
	}
	for rel, data := range files {
		p := filepath.Join(dl, "drop", filepath.FromSlash(rel))
		eventually(t, "drop/"+rel+" received", func() bool {
			got, err := os.ReadFile(p)
			return err == nil && bytes.Equal(got, data)
		})
	}
	eventually(t, "the directory send forgotten", func() bool { return errors.Is(a.CancelTransfer(id), ErrNotFound) })
	if _, err := a.SendFile(ctx, fileTopic, filepath.Join(t.TempDir(), "none"), nil); err == nil {
		t.Fatal("SendFile of a missing path succeeded")
	}
}

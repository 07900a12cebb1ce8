package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski"
)

// TestDemoPeersAcceptFiles: a file dropped in the demo (sent by the main
// node to the demo topic) is accepted and verified by the demo peers, and
// their copies land in the demo's temporary directory.
func TestDemoPeersAcceptFiles(t *testing.T) {
	main, err := chaski.Start(chaski.Config{Name: "main", Listen: "127.0.0.1:0", Subscriptions: []string{demoTopic, demoMetrics}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = main.Close(ctx)
	})
	go func() {
		for range main.Messages() {
		}
	}()
	stop, err := startDemo(context.Background(), main, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	deadline := time.Now().Add(30 * time.Second)
	for main.EdgeCount() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("demo peers did not connect: %d edges", main.EdgeCount())
		}
		time.Sleep(20 * time.Millisecond)
	}
	path := filepath.Join(t.TempDir(), "dropped.txt")
	if err := os.WriteFile(path, []byte("a file dropped in the demo"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	infos, err := main.PushFile(ctx, demoTopic, f, "dropped.txt", 26, nil)
	if err != nil {
		t.Fatalf("demo peers did not take the file: %v (%+v)", err, infos)
	}
	if len(infos) != 3 {
		t.Fatalf("receivers: %+v", infos)
	}
	for _, in := range infos {
		if in.State != chaski.TransferDone {
			t.Fatalf("transfer to %s: %v %s", in.Peer, in.State, in.Err)
		}
	}
}

func TestDemoDataDirIsTemporary(t *testing.T) {
	d, err := demoDataDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(d)
	if rel, err := filepath.Rel(os.TempDir(), d); err != nil || rel == ".." || filepath.IsAbs(rel) || rel[:2] == ".." {
		t.Fatalf("demo data dir %s is not under %s", d, os.TempDir())
	}
}

//go:build linux

package chaski

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	a.useSendfileOnLoopback()
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
	id := waitPending(t, events, "")
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
	id = waitPending(t, events, "after.bin")
	if err := b.AcceptTransfer(id, true); err != nil {
		t.Fatal(err)
	}
	if r := waitPush(t, res); r.err != nil {
		t.Fatalf("send after the shrunk one: %v", r.err)
	}
}

// Resume and fan-out on the sendfile path: two receivers that hold
// partials of a file (cut after its first MiB) resume from a file source,
// each from its own offset, and both end with the whole file.
func TestFileSendfileResumeAndFanout(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	b1 := fileReceiver(t, Config{Name: "r1", AcceptFiles: true, DownloadDir: d1})
	b2 := fileReceiver(t, Config{Name: "r2", AcceptFiles: true, DownloadDir: d2})
	a := fileSender(t, Config{FileChunkSize: 64 << 10}, b1, b2)
	a.useSendfileOnLoopback()
	data := randomBytes(t, 4<<20+333)
	g, res := pushCutAfterFirstMiB(t, a, b1, "fan.bin", data)
	close(g.gate)
	waitPush(t, res)
	waitEdges(t, map[*Node]int{a: 0, b1: 0, b2: 0})
	linkFiles(t, a, b1)
	linkFiles(t, a, b2)

	path := filepath.Join(t.TempDir(), "fan.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	infos, err := pushOpen(t, a, path)
	if err != nil || len(infos) != 2 {
		t.Fatalf("resume from a file: %v, %+v", err, infos)
	}
	resumed := 0
	for _, in := range infos {
		if in.State != TransferDone {
			t.Fatalf("%+v", in)
		}
		if in.Resumed > 0 {
			resumed++
		}
	}
	if resumed == 0 {
		t.Fatalf("no receiver resumed: %+v", infos)
	}
	for _, d := range []string{d1, d2} {
		got, err := os.ReadFile(filepath.Join(d, "fan.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: the received file differs (%v)", d, err)
		}
	}
}

// To a peer on the same machine a verified send writes the bodies as bytes
// it read itself (sendfileSource says why), so the same shrink is seen by
// the sender, as its own errSourceSize, and no chunk is rejected.
func TestFileLoopbackSendsBytes(t *testing.T) {
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
	res := pushAsync(t, a, "shrink.bin", f, len(data))
	id := waitPending(t, events, "")
	if err := os.Truncate(path, chunk+1000); err != nil {
		t.Fatal(err)
	}
	if err := b.AcceptTransfer(id, true); err != nil {
		t.Fatal(err)
	}
	if r := waitPush(t, res); !errors.Is(r.err, errSourceSize) {
		t.Fatalf("send of a shrunk file on loopback: %v, want the sender's errSourceSize", r.err)
	}
}

func TestSameHost(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 1} }
	for _, c := range []struct {
		local, remote string
		want          bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", true},
		{"::1", "::1", true},
		{"10.0.0.1", "10.0.0.1", true}, // our own address
		{"10.0.0.1", "10.0.0.2", false},
		{"fd00::1", "fd00::2", false},
	} {
		if got := sameHost(tcp(c.local), tcp(c.remote)); got != c.want {
			t.Errorf("sameHost(%s, %s) = %v, want %v", c.local, c.remote, got, c.want)
		}
	}
	if sameHost(&net.UDPAddr{}, tcp("127.0.0.1")) {
		t.Error("a non-TCP address counted as the same host")
	}
}

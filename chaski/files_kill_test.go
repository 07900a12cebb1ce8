package chaski

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gatedAt is a gatedReader that is also an io.ReaderAt, so that PushFile
// hashes it up front (verified streaming) and then streams it through Read,
// which blocks at the gate.
type gatedAt struct{ *gatedReader }

func (g gatedAt) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(g.data).ReadAt(p, off)
}

const killChildEnv = "CHASKI_TEST_KILL9_DIR"

// A receiver killed with SIGKILL half way through a file (a child process:
// nothing of it runs after the signal) leaves a partial file and its leaves;
// a new receiver on the same directory resumes from them, so that at most
// 55% of the bytes are sent again, and the file arrives whole.
func TestFileResumeAfterKill9(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileResumeAfterKill9$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	})
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrCh <- a
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(2 * waitTimeout):
		t.Fatal("the child receiver did not start")
	}

	a := fileSender(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := a.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	subscribed := func() bool {
		for _, e := range a.liveEdges() {
			if _, ok := e.route.Load().subs[fileTopic]; ok {
				return true
			}
		}
		return false
	}
	eventually(t, "the child's subscription known", subscribed)

	const size = 8 << 20
	data := randomBytes(t, size)
	g := newGated(data, size/2)
	t.Cleanup(func() {
		select {
		case <-g.gate:
		default:
			close(g.gate)
		}
	})
	res := pushAsync(t, a, "kill.bin", gatedAt{g}, size)
	// Half the file and its leaves are on the child's disk: kill it there.
	eventually(t, "half the file written by the child", func() bool {
		ps := partials(t, dir)
		if len(ps) != 1 {
			return false
		}
		st, err := os.Stat(filepath.Join(dir, ps[0]))
		lst, lerr := os.Stat(filepath.Join(dir, ps[0]+leavesSuffix))
		return err == nil && lerr == nil && st.Size() == size/2 && lst.Size() == size/2/defaultGroup*cvLen
	})
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	close(g.gate)
	if r := waitPush(t, res); !errors.Is(r.err, ErrEdgeLost) {
		t.Fatalf("first push: %v", r.err)
	}

	b := fileReceiver(t, Config{AcceptFiles: true, DownloadDir: dir})
	linkFiles(t, a, b)
	infos, err := push(t, a, "kill.bin", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	again := infos[0].Done - infos[0].Resumed
	if infos[0].Resumed != size/2 || again > size*55/100 {
		t.Fatalf("resumed at %d, %d bytes (%.0f%%) sent again", infos[0].Resumed, again, 100*float64(again)/size)
	}
	got, err := os.ReadFile(filepath.Join(dir, "kill.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file differs after the resume (%v)", err)
	}
	if fs := dirFiles(t, dir); len(fs) != 1 {
		t.Fatalf("dir holds %v", fs)
	}
}

// killChild is the receiver process of TestFileResumeAfterKill9: it prints
// its address and serves until killed.
func killChild(dir string) {
	n, err := Start(Config{Name: "child", Listen: "127.0.0.1:0", AcceptFiles: true, DownloadDir: dir,
		Subscriptions: []string{fileTopic}, ReconnectAttempts: -1})
	if err != nil {
		os.Stderr.WriteString("child: " + err.Error() + "\n")
		os.Exit(2)
	}
	os.Stdout.WriteString("ADDR " + n.Addr() + "\n")
	for {
		time.Sleep(time.Hour)
	}
}

package sshui

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// BenchmarkSSHViewers measures what SSH viewers cost a node that receives
// SSH_BENCH_RATE (default 10,000) messages a second: the process's CPU over
// a window without viewers, then over a window with SSH_BENCH_VIEWERS
// (default 10) viewers on the topics pane, and each viewer's frame lag
// (from a message's publication to the first output that shows it). The
// viewers run in a child process (this test binary again), so their own
// decoding is not counted against the node; the publisher runs in this
// process in both windows. Run it alone, once:
//
//	go test -run '^$' -bench SSHViewers -benchtime=1x ./internal/sshui/
func BenchmarkSSHViewers(b *testing.B) {
	viewers := envInt("SSH_BENCH_VIEWERS", 10)
	rate := envInt("SSH_BENCH_RATE", 10000)
	window := time.Duration(envInt("SSH_BENCH_SECONDS", 5)) * time.Second

	dir := b.TempDir()
	hub := startNode(b, "hub", "load")
	pub := startNode(b, "pub")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := pub.Connect(ctx, hub.Addr()); err != nil {
		b.Fatal(err)
	}
	eventually(b, "subscription", func() bool { e, ok := pub.Edge(hub.ID()); return ok && e.Subscribes("load") })
	// The node's own consumer, as `chaski node` has.
	var received atomic.Int64
	go func() {
		for range hub.Messages() {
			received.Add(1)
		}
	}()

	keyPEM, line := newKeyPEM(b)
	keys := filepath.Join(dir, "authorized_keys")
	idFile := filepath.Join(dir, "id")
	if err := os.WriteFile(keys, []byte(line+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(idFile, keyPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	srv, err := Listen(Config{Node: hub, Addr: "127.0.0.1:0", AuthorizedKeys: keys,
		HostKeyPath: filepath.Join(dir, "hk"), MaxSessions: viewers, Burst: viewers})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(context.Background())

	// The publisher: rate messages a second in 1 ms steps, each carrying
	// its publication time.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		start := time.Now()
		var n int64
		for ctx.Err() == nil {
			<-t.C
			due := int64(time.Since(start).Seconds() * float64(rate))
			for ; n < due && ctx.Err() == nil; n++ {
				msg := "m" + strconv.FormatInt(time.Now().UnixNano(), 10) + " load"
				if err := pub.Publish(ctx, "load", []byte(msg)); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	time.Sleep(time.Second) // settle
	r0 := received.Load()
	base := cpuOver(window)
	baseRate := float64(received.Load()-r0) / window.Seconds()

	child := exec.Command(os.Args[0], "-test.run=^TestViewerProcess$", "-test.v")
	child.Env = append(os.Environ(), "SSH_VIEWER_ADDR="+srv.Addr(), "SSH_VIEWER_KEY="+idFile,
		"SSH_VIEWER_N="+strconv.Itoa(viewers), "SSH_VIEWER_SECONDS="+strconv.Itoa(int(window.Seconds())+2))
	out, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "VIEWERS READY") {
			ready = true
			break
		}
	}
	if !ready {
		child.Wait()
		b.Fatalf("viewers did not start")
	}
	time.Sleep(500 * time.Millisecond)
	r1 := received.Load()
	with := cpuOver(window)
	withRate := float64(received.Load()-r1) / window.Seconds()
	var res viewerResult
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VIEWERS RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := child.Wait(); err != nil {
		b.Fatalf("viewer process: %v", err)
	}
	st := hub.Status()
	b.ReportMetric(base, "cpu-base-cores")
	b.ReportMetric(with, "cpu-viewers-cores")
	b.ReportMetric(with-base, "extra-cpu-cores")
	b.ReportMetric(baseRate, "msgs/s-base")
	b.ReportMetric(withRate, "msgs/s-viewers")
	b.ReportMetric(res.P50, "lag-p50-ms")
	b.ReportMetric(res.P99, "lag-p99-ms")
	b.ReportMetric(res.Max, "lag-max-ms")
	b.ReportMetric(float64(res.Frames), "frames")
	b.ReportMetric(float64(st.Dropped), "events-dropped")
	b.ReportMetric(float64(srv.msgs.Dropped()), "viewer-msgs-dropped")
	b.Logf("%d viewers, %d msgs/s asked: CPU %.3f → %.3f cores (extra %.3f), lag p50 %.1f ms p99 %.1f ms max %.1f ms over %d frames; %d events and %d viewer messages dropped",
		viewers, rate, base, with, with-base, res.P50, res.P99, res.Max, res.Frames, st.Dropped, srv.msgs.Dropped())
}

type viewerResult struct {
	Frames        int
	P50, P99, Max float64 // ms
}

// TestViewerProcess is the benchmark's child: SSH_VIEWER_N viewers that
// switch to the topics pane and note, for every read of output, the lag of
// the newest message it shows. It does nothing unless the benchmark ran it.
func TestViewerProcess(t *testing.T) {
	addr := os.Getenv("SSH_VIEWER_ADDR")
	if addr == "" {
		t.Skip("run by BenchmarkSSHViewers")
	}
	keyPEM, err := os.ReadFile(os.Getenv("SSH_VIEWER_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	n := envInt("SSH_VIEWER_N", 10)
	secs := envInt("SSH_VIEWER_SECONDS", 7)
	marker := regexp.MustCompile(`m(\d{19}) load`)
	var mu sync.Mutex
	var lags []float64
	var measuring atomic.Bool
	var wg sync.WaitGroup
	terms := make([]*term, n)
	for i := range terms {
		terms[i] = open(t, addr, signer, 120, 40)
	}
	for _, tm := range terms {
		tm.waitFor("dashboard", regexp.MustCompile(`hub`), 0)
	}
	for _, tm := range terms {
		tm.waitFor("messages on screen", marker, 0)
	}
	// From here each viewer's reader notes lags (the open helper's
	// reader keeps collecting; this one samples what arrives).
	for _, tm := range terms {
		wg.Add(1)
		go func(tm *term) {
			defer wg.Done()
			seen := 0
			for {
				select {
				case <-tm.done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				tm.mu.Lock()
				chunk := tm.out.Bytes()[seen:]
				now := time.Now().UnixNano()
				var newest int64
				for _, m := range marker.FindAllSubmatch(chunk, -1) {
					if v, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil && v > newest {
						newest = v
					}
				}
				seen = tm.out.Len()
				tm.mu.Unlock()
				if newest > 0 && measuring.Load() {
					mu.Lock()
					lags = append(lags, float64(now-newest)/1e6)
					mu.Unlock()
				}
			}
		}(tm)
	}
	measuring.Store(true)
	fmt.Println("VIEWERS READY")
	time.Sleep(time.Duration(secs) * time.Second)
	measuring.Store(false)
	for _, tm := range terms {
		tm.close()
	}
	wg.Wait()
	slices.Sort(lags)
	res := viewerResult{Frames: len(lags)}
	if len(lags) > 0 {
		res.P50 = lags[len(lags)/2]
		res.P99 = lags[len(lags)*99/100]
		res.Max = lags[len(lags)-1]
	}
	js, _ := json.Marshal(res)
	fmt.Println("VIEWERS RESULT " + string(js))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuOver returns the process's CPU use over d, in cores.
func cpuOver(d time.Duration) float64 {
	var a, z syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &a)
	t0 := time.Now()
	time.Sleep(d)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &z)
	used := time.Duration(z.Utime.Nano()-a.Utime.Nano()) + time.Duration(z.Stime.Nano()-a.Stime.Nano())
	return used.Seconds() / time.Since(t0).Seconds()
}

func newKeyPEM(t testing.TB) ([]byte, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp)))
}

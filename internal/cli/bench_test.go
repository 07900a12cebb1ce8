package cli

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runBenchJSON runs chaski bench with --json and decodes its one result.
func runBenchJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chaskiBin, append([]string{"bench", "--json", "--quiet"}, args...)...)
	cmd.Env = testEnv(t)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("chaski bench %v: %v\n%s", args, err, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("bench output %q: %v", out, err)
	}
	return res
}

func benchField(t *testing.T, res map[string]any, path ...string) float64 {
	t.Helper()
	var v any = res
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in %v", path, res)
		}
		v = m[k]
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%v is %v (%T), not a number, in %v", path, v, v, res)
	}
	return f
}

func TestBenchMessagesSeparateProcesses(t *testing.T) {
	res := runBenchJSON(t, "--count", "2000")
	if res["mode"] != "messages" || res["processes"] != "separate" || res["topology"] != "direct" {
		t.Fatalf("result %v", res)
	}
	if got := benchField(t, res, "received"); got != 2000 {
		t.Fatalf("received %v of 2000", got)
	}
	if benchField(t, res, "count") != 2000 || benchField(t, res, "size") != 100 {
		t.Fatalf("count/size %v", res)
	}
	for _, p := range [][]string{{"msgs_per_sec"}, {"mb_per_sec"}, {"seconds"}, {"rss_mib", "publisher"}, {"rss_mib", "subscriber"}} {
		if benchField(t, res, p...) <= 0 {
			t.Fatalf("%v not positive in %v", p, res)
		}
	}
	for _, q := range []string{"p50", "p90", "p99"} {
		benchField(t, res, "latency_us", q)
	}
}

func TestBenchMessagesViaRootInProcess(t *testing.T) {
	res := runBenchJSON(t, "--count", "1000", "--via-root", "--inprocess")
	if res["topology"] != "via-root" || res["processes"] != "inprocess" || benchField(t, res, "received") != 1000 {
		t.Fatalf("result %v", res)
	}
	benchField(t, res, "rss_mib", "root")
}

func TestBenchPing(t *testing.T) {
	res := runBenchJSON(t, "--mode", "ping", "--count", "200")
	if res["mode"] != "ping" || benchField(t, res, "count") != 200 || benchField(t, res, "size") != 64 {
		t.Fatalf("result %v", res)
	}
	p50, p99 := benchField(t, res, "rtt_us", "p50"), benchField(t, res, "rtt_us", "p99")
	if p50 <= 0 || p99 < p50 {
		t.Fatalf("rtt p50 %v p99 %v", p50, p99)
	}
	benchField(t, res, "rss_mib", "pinger")
	benchField(t, res, "rss_mib", "ponger")
}

func TestBenchFilesSmall(t *testing.T) {
	res := runBenchJSON(t, "--mode", "files", "--file-size", "2MiB", "--dir", t.TempDir())
	if res["mode"] != "files" || benchField(t, res, "bytes") != 2<<20 || res["verified"] != true {
		t.Fatalf("result %v", res)
	}
	if s, _ := res["hash"].(string); len(s) != 71 || !strings.HasPrefix(s, "blake3:") {
		t.Fatalf("hash %q", s)
	}
	benchField(t, res, "rss_mib", "sender")
	benchField(t, res, "rss_mib", "receiver")
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--mode", "nope"}, {"--mode", "ping", "--via-root"}, {"--file-size", "lots"}, {"extra"}} {
		cmd := exec.Command(chaskiBin, append([]string{"bench"}, args...)...)
		cmd.Env = testEnv(t)
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("bench %v: %v, want exit status 2", args, err)
		}
	}
}

// Command report reads the JSON results that bench/compare.sh collected
// (NAME.RUN.json in one directory) and prints one Markdown table: Chaski,
// NATS and raw TCP side by side, the median of every figure over the runs,
// and the ratios against the targets of the performance issue.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The original (Python) implementation, upstream.md section 10.
const (
	origMsgs = 32_000
	origMBs  = 100
)

func main() {
	dir := flag.String("dir", ".", "directory with the results")
	flag.Parse()
	r := &reader{dir: *dir}
	med := func(name, path string) float64 { return r.median(path, name) }

	natsMsgs := med("nats", "msgs_per_sec")
	direct := med("direct", "msgs_per_sec")
	root := med("root", "msgs_per_sec")
	// Raw ping-pongs come from the full raw runs and from the extra
	// ping-only runs (rawping) that alternate with Chaski's extra pings.
	rawPing := func(path string) float64 { return r.median(path, "raw", "rawping") }
	rawP50, rawP90, rawP99 := rawPing("ping.rtt_us.p50"), rawPing("ping.rtt_us.p90"), rawPing("ping.rtt_us.p99")
	p50, p90, p99 := med("ping", "rtt_us.p50"), med("ping", "rtt_us.p90"), med("ping", "rtt_us.p99")
	bulk := med("raw", "bulk.mb_per_sec")
	files := med("files", "mb_per_sec")

	fmt.Printf("Chaski vs NATS vs raw TCP — %s, %d CPUs, %s, median of %d run(s) (%s)\n\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), r.runs("direct"), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Println("| figure | Chaski | NATS | raw TCP | ratio | target | verdict |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | --- | --- |")
	row := func(fig, c, n, raw, ratio, target string, ok bool) {
		v := "met"
		if !ok {
			v = "**missed**"
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", fig, c, n, raw, ratio, target, v)
	}
	row("messages/s, 100 B, pub → sub (direct edge)", cnt(direct), cnt(natsMsgs), "", x(direct/natsMsgs), "≥ 1.0× NATS (goal 2×)", direct >= natsMsgs)
	row("messages/s, 100 B, pub → root → sub", cnt(root), cnt(natsMsgs), "", x(root/natsMsgs), "≥ 1.0× NATS", root >= natsMsgs)
	row("messages/s vs the original (32 k/s)", cnt(direct), "", "", x(direct/origMsgs), "≥ 30×", direct >= 30*origMsgs)
	row("ping RTT p50, 64 B", us(p50), "", us(rawP50), x(p50/rawP50), "≤ 1.5× raw", p50 <= 1.5*rawP50)
	row("ping RTT p90, 64 B", us(p90), "", us(rawP90), x(p90/rawP90), "(report)", true)
	row("ping RTT p99, 64 B", us(p99), "", us(rawP99), x(p99/rawP99), "≤ 2× raw", p99 <= 2*rawP99)
	if r.runs("ping1cpu") > 0 && r.runs("raw1cpu") > 0 {
		q50, q99 := med("ping1cpu", "rtt_us.p50"), med("ping1cpu", "rtt_us.p99")
		raw50, raw99 := med("raw1cpu", "ping.rtt_us.p50"), med("raw1cpu", "ping.rtt_us.p99")
		row("ping RTT p50, both processes on one CPU", us(q50), "", us(raw50), x(q50/raw50), "(report)", true)
		row("ping RTT p99, both processes on one CPU", us(q99), "", us(raw99), x(q99/raw99), "(report)", true)
	}
	row("file 1 GiB, SHA-256 both sides, MB/s", mbs(files), "", mbs(bulk), pct(files/bulk), "≥ 50% of raw bulk", files >= 0.5*bulk)
	row("file MB/s vs the original (100 MB/s)", mbs(files), "", "", x(files/origMBs), "≥ 10×", files >= 10*origMBs)
	subRSS := med("direct", "rss_mib.subscriber")
	row("peak RSS, subscriber of 1 M messages", mib(subRSS), mib(med("nats", "rss_mib.subscriber")), "", "", "≤ 64 MiB", subRSS <= 64)
	pubRSS := med("direct", "rss_mib.publisher")
	row("peak RSS, publisher of 1 M messages", mib(pubRSS), mib(med("nats", "rss_mib.publisher")), "", "", "(report)", true)
	rootRSS := med("root", "rss_mib.root")
	row("peak RSS, root relaying 1 M messages", mib(rootRSS), "", "", "", "(report)", true)
	snd, rcv := med("files", "rss_mib.sender"), med("files", "rss_mib.receiver")
	row("peak RSS, file sender / receiver (1 GiB)", mib(snd)+" / "+mib(rcv), "", "", "", "≤ 64 MiB each", snd <= 64 && rcv <= 64)
	idle := med("idle", "rss_mib")
	row("RSS, idle node (`chaski node`)", mib(idle), "", "", "", "≤ 20 MiB", idle <= 20)
	fmt.Println()
	fmt.Printf("NATS is nats-server with one nats.go publisher and one subscriber process; raw TCP is bench/rawtcp (bulk: %s in 256 KiB writes).\n",
		"4 GiB")
	fmt.Printf("Ping rows (not pinned): medians over %d Chaski and %d raw ping-pong runs, alternating.\n",
		r.runs("ping"), r.runs("raw")+r.runs("rawping"))
	if lost := r.median("count", "nats") - r.median("received", "nats"); lost > 0 {
		fmt.Printf("NATS dropped %.0f messages (median) as a slow consumer; its rate counts what arrived.\n", lost)
	}
	if r.missing != nil {
		fmt.Printf("missing results: %s\n", strings.Join(r.missing, ", "))
		os.Exit(1)
	}
}

type reader struct {
	dir     string
	missing []string
}

func (r *reader) runs(name string) int {
	m, _ := filepath.Glob(filepath.Join(r.dir, name+".*.json"))
	return len(m)
}

// median of one field (dotted path) over every run of the named results.
func (r *reader) median(path string, names ...string) float64 {
	var files []string
	for _, name := range names {
		m, _ := filepath.Glob(filepath.Join(r.dir, name+".*.json"))
		files = append(files, m...)
	}
	var vals []float64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			continue
		}
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if x, ok := v.(float64); ok {
			vals = append(vals, x)
		}
	}
	if len(vals) == 0 {
		r.missing = append(r.missing, strings.Join(names, "+")+":"+path)
		return 0
	}
	slices.Sort(vals)
	if len(vals)%2 == 1 {
		return vals[len(vals)/2]
	}
	return (vals[len(vals)/2-1] + vals[len(vals)/2]) / 2
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func cnt(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func x(v float64) string   { return fmt.Sprintf("%.2f×", v) }
func pct(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
func us(v float64) string  { return fmt.Sprintf("%.1f µs", v) }
func mbs(v float64) string { return fmt.Sprintf("%.0f MB/s", v) }
func mib(v float64) string { return fmt.Sprintf("%.1f MiB", v) }

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
	pings := flag.String("pings", "", "instead: read the JSON lines of `chaski ping --json` from this file and print their RTT percentiles as JSON")
	skip := flag.Int("skip", 0, "with -pings: leave out the first N replies (warm-up)")
	flag.Parse()
	if *pings != "" {
		if err := pingPercentiles(*pings, *skip); err != nil {
			fmt.Fprintln(os.Stderr, "bench-report:", err)
			os.Exit(1)
		}
		return
	}
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
	row("messages/s, 100 B, pub → sub (direct edge)", cnt(direct), cnt(natsMsgs), "", x(direct/natsMsgs), "≥ 2.0× NATS", direct >= 2*natsMsgs)
	row("messages/s, 100 B, pub → root → sub", cnt(root), cnt(natsMsgs), "", x(root/natsMsgs), "≥ 1.5× NATS", root >= 1.5*natsMsgs)
	if r.runs("natscmd") > 0 {
		nc := med("natscmd", "msgs_per_sec")
		cd, cr := med("cmddirect", "msgs_per_sec"), med("cmdroot", "msgs_per_sec")
		row("commands: `chaski pub`/`sub` direct vs `nats bench pub`/`sub`, msgs/s (start-up included)", cnt(cd), cnt(nc), "", x(cd/nc), "≥ 1.2× NATS", cd >= 1.2*nc)
		row("commands: `chaski pub`/`sub` via `chaski node --root`", cnt(cr), cnt(nc), "", x(cr/nc), "≥ 1.2× NATS", cr >= 1.2*nc)
	}
	row("messages/s vs the original (32 k/s)", cnt(direct), "", "", x(direct/origMsgs), "≥ 30×", direct >= 30*origMsgs)
	row("ping RTT p50, 64 B", us(p50), "", us(rawP50), x(p50/rawP50), "≤ 1.2× raw", p50 <= 1.2*rawP50)
	row("ping RTT p90, 64 B", us(p90), "", us(rawP90), x(p90/rawP90), "≤ 1.5× raw", p90 <= 1.5*rawP90)
	row("ping RTT p99, 64 B", us(p99), "", us(rawP99), x(p99/rawP99), "≤ 1.5× raw", p99 <= 1.5*rawP99)
	if r.runs("pingcmd") > 0 {
		c50, c90 := med("pingcmd", "rtt_us.p50"), med("pingcmd", "rtt_us.p90")
		i50, i90 := med("rawint", "ping.rtt_us.p50"), med("rawint", "ping.rtt_us.p90")
		row("`chaski ping -i 5ms` p50 vs a raw TCP client at 5 ms", us(c50), "", us(i50), x(c50/i50), "≤ 1.2× raw", c50 <= 1.2*i50)
		row("`chaski ping -i 5ms` p90 vs a raw TCP client at 5 ms", us(c90), "", us(i90), x(c90/i90), "(report)", true)
	}
	if r.runs("ping1cpu") > 0 && r.runs("raw1cpu") > 0 {
		q50, q99 := med("ping1cpu", "rtt_us.p50"), med("ping1cpu", "rtt_us.p99")
		raw50, raw99 := med("raw1cpu", "ping.rtt_us.p50"), med("raw1cpu", "ping.rtt_us.p99")
		row("ping RTT p50, both processes on one CPU", us(q50), "", us(raw50), x(q50/raw50), "(report)", true)
		row("ping RTT p99, both processes on one CPU", us(q99), "", us(raw99), x(q99/raw99), "(report)", true)
	}
	row("file 1 GiB in /dev/shm, BLAKE3 verified streaming, MB/s", mbs(files), "", mbs(bulk), pct(files/bulk), "≥ 1,000 MB/s and ≥ 35% of raw bulk", files >= 1000 && files >= 0.35*bulk)
	if r.runs("copy") > 0 {
		// The same file moved with nothing but the copies (bench/rawtcp
		// -copy): this machine's ceiling for any file transfer, which the
		// raw bulk figure (one hot buffer on each side) is not.
		cp := med("copy", "file_copy.mb_per_sec")
		row("file 1 GiB in /dev/shm vs a raw TCP file copy there (sendfile, read, write; no hash)", mbs(files), "", mbs(cp)+" (copy)", pct(files/cp), "(report: the machine's ceiling)", true)
	}
	if r.runs("filesdisk") > 0 {
		fd, dd := med("filesdisk", "mb_per_sec"), med("dd", "mb_per_sec")
		row("file 1 GiB into a disk directory vs `dd` there (both fsync)", mbs(fd), "", mbs(dd)+" (dd)", pct(fd/dd), "≥ 80% of dd", fd >= 0.8*dd)
		if r.runs("copydisk") > 0 {
			cp := med("copydisk", "file_copy.mb_per_sec")
			row("file 1 GiB into a disk directory vs a raw TCP file copy there", mbs(fd), "", mbs(cp)+" (copy)", pct(fd/cp), "(report)", true)
		}
	}
	row("file MB/s vs the original (100 MB/s)", mbs(files), "", "", x(files/origMBs), "≥ 10×", files >= 10*origMBs)
	subRSS := med("direct", "rss_mib.subscriber")
	row("peak RSS, subscriber of 1 M messages", mib(subRSS), mib(med("nats", "rss_mib.subscriber")), "", "", "≤ 64 MiB", subRSS <= 64)
	pubRSS := med("direct", "rss_mib.publisher")
	row("peak RSS, publisher of 1 M messages", mib(pubRSS), mib(med("nats", "rss_mib.publisher")), "", "", "(report)", true)
	rootRSS := med("root", "rss_mib.root")
	row("peak RSS, root relaying 1 M messages", mib(rootRSS), "", "", "", "(report)", true)
	snd, rcv := med("files", "rss_mib.sender"), med("files", "rss_mib.receiver")
	if r.runs("filesdisk") > 0 {
		snd, rcv = max(snd, med("filesdisk", "rss_mib.sender")), max(rcv, med("filesdisk", "rss_mib.receiver"))
	}
	row("peak RSS, file sender / receiver (1 GiB)", mib(snd)+" / "+mib(rcv), "", "", "", "≤ 64 MiB each", snd <= 64 && rcv <= 64)
	idle := med("idle", "rss_mib")
	row("RSS, idle node (`chaski node`)", mib(idle), "", "", "", "≤ 20 MiB", idle <= 20)
	fmt.Println()
	fmt.Printf("NATS is nats-server with one nats.go publisher and one subscriber process; raw TCP is bench/rawtcp (bulk: %s in 256 KiB writes).\n",
		"4 GiB")
	fmt.Printf("Ping rows (not pinned): medians over %d Chaski and %d raw ping-pong runs, alternating.\n",
		r.runs("ping"), r.runs("raw")+r.runs("rawping"))
	if r.runs("natscmd") > 0 {
		fmt.Println("Command rows: wall clock from starting the subscriber command to its exit after the last message, the publisher started once the subscriber listens; the subscriber prints to /dev/null.")
	}
	fmt.Printf("Load while this ran (1-minute load average at the end): %s\n", loadAvg())
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

// pingPercentiles prints {"rtt_us": {"p50", "p90", "p99", "count"}} of the
// ping_reply lines of `chaski ping --json` in path.
func pingPercentiles(path string, skip int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rtts []float64
	for _, l := range strings.Split(string(b), "\n") {
		var ev struct {
			Event  string  `json:"event"`
			TimeMs float64 `json:"time_ms"`
		}
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Event == "ping_reply" {
			rtts = append(rtts, ev.TimeMs*1000)
		}
	}
	if len(rtts) <= skip {
		return fmt.Errorf("%s: %d replies", path, len(rtts))
	}
	rtts = rtts[skip:]
	slices.Sort(rtts)
	q := func(p float64) float64 { return rtts[min(len(rtts)-1, int(p*float64(len(rtts))))] }
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"rtt_us": map[string]float64{
		"p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "count": float64(len(rtts))}})
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

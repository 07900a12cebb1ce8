package bench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/chaski-dev/chaski/internal/bench/stats"
)

// The results 'chaski bench --json' prints, one object per run. The field
// order is the order of the JSON; bench/report and docs/PERFORMANCE.md read
// these names.

// MessagesResult is the result of --mode messages.
type MessagesResult struct {
	Mode           string            `json:"mode"`
	Processes      string            `json:"processes"` // separate or inprocess
	Topology       string            `json:"topology"`  // direct or via-root
	Count          int               `json:"count"`
	Size           int               `json:"size"`
	Received       int64             `json:"received"`
	Seconds        float64           `json:"seconds"` // first to last message, at the subscriber
	MsgsPerSec     float64           `json:"msgs_per_sec"`
	MBPerSec       float64           `json:"mb_per_sec"`
	PublishSeconds float64           `json:"publish_seconds"`
	LatencyUS      stats.Percentiles `json:"latency_us"` // publish → delivery, sampled
	RSSMiB         RSS               `json:"rss_mib"`
	IdleRSSMiB     float64           `json:"idle_rss_mib"` // the subscriber once connected
}

// PingResult is the result of --mode ping.
type PingResult struct {
	Mode       string            `json:"mode"`
	Processes  string            `json:"processes"`
	Topology   string            `json:"topology"`
	Count      int64             `json:"count"`
	Size       int               `json:"size"`
	RTTUS      stats.Percentiles `json:"rtt_us"`
	RSSMiB     RSS               `json:"rss_mib"`
	IdleRSSMiB float64           `json:"idle_rss_mib"`
}

// FilesResult is the result of --mode files.
type FilesResult struct {
	Mode      string  `json:"mode"`
	Processes string  `json:"processes"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	MBPerSec  float64 `json:"mb_per_sec"`
	Hash      string  `json:"hash"` // "blake3:HEX" or "sha256:HEX"
	Verified  bool    `json:"verified"`
	RSSMiB    RSS     `json:"rss_mib"`
}

// RSS is the peak resident memory (VmHWM, MiB) of each process of a run;
// the roles a mode does not have are left out.
type RSS struct {
	Publisher  *float64 `json:"publisher,omitempty"`
	Subscriber *float64 `json:"subscriber,omitempty"`
	Root       *float64 `json:"root,omitempty"`
	Pinger     *float64 `json:"pinger,omitempty"`
	Ponger     *float64 `json:"ponger,omitempty"`
	Sender     *float64 `json:"sender,omitempty"`
	Receiver   *float64 `json:"receiver,omitempty"`
}

func round1(f float64) float64 {
	return float64(int64(f*10+0.5)) / 10
}

// fmtCount renders 1234567 as 1,234,567.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtUS renders microseconds with a readable unit.
func fmtUS(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e4:
		return fmt.Sprintf("%.1f ms", us/1e3)
	case us >= 1e3:
		return fmt.Sprintf("%.2f ms", us/1e3)
	default:
		return fmt.Sprintf("%.1f µs", us)
	}
}

// Package bench is the harness behind 'chaski bench': a publisher and a
// subscriber (or a pinger and its peer, or a file sender and receiver),
// by default in separate processes. The parent (Run) re-executes its own
// binary once per role as "chaski bench --role ROLE ..." with ChildEnv set;
// the command line then calls Child. Children talk to the parent in JSON
// lines on their stdout (ready, progress, result, error) and stop when their
// stdin closes. Every node listens on 127.0.0.1:0.
package bench

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/internal/bench/stats"
)

const (
	// ChildEnv is set in the environment of a child process; the command
	// line offers the hidden --role and --peer flags only then.
	ChildEnv = "CHASKI_BENCH_CHILD"
	// ProfileEnv names a directory: each child process writes CPU and
	// allocation profiles of its role there.
	ProfileEnv = "CHASKI_BENCH_PROFILE"

	topic         = "bench"
	fileTopic     = "bench-files"
	stallAfter    = 30 * time.Second // no progress for this long fails the run
	progressHz    = 5
	passiveGrace  = 10 * time.Second
	connectBudget = 10 * time.Second
)

// PingOverhead is the frame header plus the fixed ping fields: a ping of
// Size bytes carries Size-PingOverhead bytes of padding.
const PingOverhead = 8 + 9

// Modes are the values Options.Mode accepts.
var Modes = []string{"messages", "ping", "files"}

// Options are one run's settings (the flags of 'chaski bench').
type Options struct {
	Mode      string // messages, ping or files
	Count     int    // messages or pings; 0 = the mode's default
	Size      int    // bytes per message or ping frame; 0 = the mode's default
	FileSize  int64  // bytes of the file in files mode
	InProcess bool   // every node in this process
	ViaRoot   bool   // messages through a root relay
	JSON      bool   // the result as one JSON object on stdout
	Quiet     bool   // no progress on stderr
	Dir       string // where files mode writes its files
	Hash      string // files mode: the transfer hash, blake3 (default) or sha256

	// Role and Peer are set in child processes only.
	Role string
	Peer string
}

// ErrUsage marks an Options error: the command line shows it as a usage error.
var ErrUsage = errors.New("bench usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// Check fills in the defaults of the mode and rejects contradictory options.
func (o *Options) Check() error {
	defCount := map[string]int{"messages": 1_000_000, "ping": 20_000, "files": 1}
	defSize := map[string]int{"messages": 100, "ping": 64, "files": 0}
	if _, ok := defCount[o.Mode]; !ok {
		return usagef("--mode must be messages, ping or files, not %q", o.Mode)
	}
	if o.FileSize <= 0 {
		return usagef("--file-size must be positive")
	}
	switch o.Hash {
	case "":
		o.Hash = "blake3"
	case "blake3", "sha256":
	default:
		return usagef("--hash must be blake3 or sha256, not %q", o.Hash)
	}
	if o.Count == 0 {
		o.Count = defCount[o.Mode]
	}
	if o.Size == 0 {
		o.Size = defSize[o.Mode]
	}
	if o.Count < 0 || o.Size < 0 {
		return usagef("--count and --size must not be negative")
	}
	if o.Mode == "ping" && o.Size < PingOverhead {
		return usagef("--size of a ping is at least %d bytes (the frame header and ping fields)", PingOverhead)
	}
	if o.Mode != "messages" && o.ViaRoot {
		return usagef("--via-root applies to messages only (pings and files travel over one edge)")
	}
	return nil
}

// ParseByteSize reads "1GiB", "512MiB", "100KiB", "1048576", "1G", "10M".
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, err
	}
	return v * mult, nil
}

// IO are the streams of a run. StderrTTY redraws progress in place.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	StderrTTY      bool
}

// ---- the messages between the parent and its children ----

type message struct {
	T    string `json:"t"` // ready, progress, result, error
	Addr string `json:"addr,omitempty"`
	N    int64  `json:"n,omitempty"`
	Err  string `json:"err,omitempty"`
	Res  *side  `json:"res,omitempty"`
}

// side is one process's result.
type side struct {
	Count   int64              `json:"count"`
	Bytes   int64              `json:"bytes,omitempty"`
	Seconds float64            `json:"seconds"`
	Lat     *stats.Percentiles `json:"lat,omitempty"`
	Hash    string             `json:"hash,omitempty"` // "blake3:HEX" or "sha256:HEX"
	RSS     float64            `json:"rss_mib"`        // peak (VmHWM)
	IdleRSS float64            `json:"idle_rss_mib"`   // VmRSS once connected, before any traffic
}

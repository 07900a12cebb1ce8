// Package stats holds the small helpers the reference programs share:
// percentiles of a sample and the peak resident set size of the process.
package stats

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Percentiles of a set of durations, in microseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Of sorts d in place and returns its percentiles (nearest rank).
func Of(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	us := func(x time.Duration) float64 { return float64(x) / float64(time.Microsecond) }
	at := func(q float64) float64 {
		i := int(q*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return us(d[i])
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Min: us(d[0]), Max: us(d[len(d)-1]),
		Mean: us(sum) / float64(len(d))}
}

// PeakRSS returns VmHWM of this process in MiB (0 when unknown).
func PeakRSS() float64 { return procStatusMiB("VmHWM:") }

// RSS returns VmRSS of this process in MiB (0 when unknown).
func RSS() float64 { return procStatusMiB("VmRSS:") }

func procStatusMiB(key string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key) {
			continue
		}
		fields := strings.Fields(line[len(key):])
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0
		}
		return kb / 1024
	}
	return 0
}

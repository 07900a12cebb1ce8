// Package stats holds what every benchmark of Chaski reports in the same
// shape: latency percentiles (exact, or from a histogram that keeps no
// per-sample state) and the resident memory of the process. It is shared by
// 'chaski bench' (internal/bench) and the reference programs of the bench/
// module, so that their JSON results compare field by field.
package stats

import (
	"bufio"
	"math/bits"
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

func us(ns float64) float64 { return ns / float64(time.Microsecond) }

// Of sorts d in place and returns its percentiles (nearest rank).
func Of(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(q*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return us(float64(d[i]))
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Min: us(float64(d[0])), Max: us(float64(d[len(d)-1])),
		Mean: us(float64(sum)) / float64(len(d))}
}

// Rounded returns p with every value rounded to 0.1 µs (for reports).
func (p Percentiles) Rounded() Percentiles {
	r := func(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
	return Percentiles{P50: r(p.P50), P90: r(p.P90), P99: r(p.P99), Min: r(p.Min), Max: r(p.Max), Mean: r(p.Mean)}
}

// Hist is a log-linear histogram of durations (≈3% precision, 7.5 KiB), so
// that the subscriber of a million messages keeps no per-message state.
// The zero value is empty and ready.
type Hist struct {
	counts   [60 * 32]uint32
	n        uint64
	sum      float64
	min, max int64
}

func bucket(v uint64) int {
	if v < 32 {
		return int(v)
	}
	e := bits.Len64(v) - 6
	return (e+1)*32 + int((v>>uint(e))&31)
}

// bucketValue is the middle of bucket i, in nanoseconds.
func bucketValue(i int) float64 {
	if i < 32 {
		return float64(i)
	}
	e := i/32 - 1
	m := uint64(i%32) | 32
	lo := m << uint(e)
	return float64(lo) + float64(uint64(1)<<uint(e))/2
}

// Add records one duration (negative ones count as zero).
func (h *Hist) Add(d time.Duration) {
	v := max(int64(d), 0)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[bucket(uint64(v))]++
}

// Count is the number of durations added.
func (h *Hist) Count() uint64 { return h.n }

// Percentiles summarises the histogram; ok is false when it is empty.
func (h *Hist) Percentiles() (p Percentiles, ok bool) {
	if h.n == 0 {
		return Percentiles{}, false
	}
	at := func(q float64) float64 {
		want := max(uint64(q*float64(h.n)+0.5), 1)
		var acc uint64
		for i, c := range h.counts {
			acc += uint64(c)
			if acc >= want {
				return us(min(max(bucketValue(i), float64(h.min)), float64(h.max)))
			}
		}
		return us(float64(h.max))
	}
	return Percentiles{P50: at(0.5), P90: at(0.9), P99: at(0.99), Min: us(float64(h.min)), Max: us(float64(h.max)),
		Mean: us(h.sum / float64(h.n))}, true
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

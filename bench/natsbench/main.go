// Command natsbench is the NATS reference of `make bench-compare`: core
// pub/sub of small messages through a running nats-server, one publisher
// and one subscriber in separate processes (itself, re-executed). Like
// `chaski bench`, messages/s is measured at the subscriber, from the first
// message to the last. It prints one JSON object on stdout.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/chaski-dev/chaski/internal/bench/stats"
	"github.com/nats-io/nats.go"
)

type subResult struct {
	Received int64   `json:"received"`
	Seconds  float64 `json:"seconds"`
	RSS      float64 `json:"rss_mib"`
}

type result struct {
	Count      int                `json:"count"`
	Size       int                `json:"size"`
	Received   int64              `json:"received"`
	Seconds    float64            `json:"seconds"`
	MsgsPerSec float64            `json:"msgs_per_sec"`
	MBPerSec   float64            `json:"mb_per_sec"`
	PubSeconds float64            `json:"publish_seconds"`
	RSSMiB     map[string]float64 `json:"rss_mib"`
}

func main() {
	role := flag.String("role", "", "internal: pub or sub")
	url := flag.String("server", nats.DefaultURL, "the nats-server URL (127.0.0.1 only)")
	count := flag.Int("count", 1_000_000, "messages")
	size := flag.Int("size", 100, "payload bytes")
	subject := flag.String("subject", "bench", "subject")
	flag.Parse()
	var err error
	switch *role {
	case "sub":
		err = sub(*url, *subject, *count)
	case "pub":
		err = pub(*url, *subject, *count, *size)
	case "":
		err = orchestrate(*count, *size)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsbench:", err)
		os.Exit(1)
	}
}

func orchestrate(count, size int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var pass []string
	flag.Visit(func(f *flag.Flag) { pass = append(pass, "-"+f.Name+"="+f.Value.String()) })
	sc := exec.Command(self, append([]string{"-role=sub"}, pass...)...)
	sc.Stderr = os.Stderr
	out, err := sc.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sc.Start(); err != nil {
		return err
	}
	defer func() { _ = sc.Process.Kill(); _ = sc.Wait() }()
	rd := bufio.NewReader(out)
	if line, err := rd.ReadString('\n'); err != nil || line != "ready\n" {
		return fmt.Errorf("subscriber did not start: %q %v", line, err)
	}
	pc := exec.Command(self, append([]string{"-role=pub"}, pass...)...)
	pc.Stderr = os.Stderr
	pout, err := pc.Output()
	if err != nil {
		return fmt.Errorf("publisher: %v", err)
	}
	var pr subResult
	if err := json.Unmarshal(pout, &pr); err != nil {
		return fmt.Errorf("publisher output: %v", err)
	}
	var sr subResult
	if err := json.NewDecoder(rd).Decode(&sr); err != nil {
		return fmt.Errorf("subscriber output: %v", err)
	}
	r := result{Count: count, Size: size, Received: sr.Received, Seconds: sr.Seconds, PubSeconds: pr.Seconds,
		RSSMiB: map[string]float64{"publisher": pr.RSS, "subscriber": sr.RSS}}
	if sr.Seconds > 0 {
		r.MsgsPerSec = float64(sr.Received) / sr.Seconds
		r.MBPerSec = r.MsgsPerSec * float64(size) / 1e6
	}
	fmt.Fprintf(os.Stderr, "NATS: %d of %d messages of %d B in %.3f s: %.0f msgs/s, %.1f MB/s (publisher done in %.3f s)\n",
		r.Received, count, size, r.Seconds, r.MsgsPerSec, r.MBPerSec, r.PubSeconds)
	if sr.Received != int64(count) {
		fmt.Fprintf(os.Stderr, "NATS: %d messages lost (core NATS drops for slow consumers)\n", int64(count)-sr.Received)
	}
	return json.NewEncoder(os.Stdout).Encode(&r)
}

// sub counts messages until count arrived or none came for two seconds.
func sub(url, subject string, count int) error {
	nc, err := nats.Connect(url, nats.Name("natsbench-sub"))
	if err != nil {
		return err
	}
	defer nc.Close()
	var n atomic.Int64
	var first, last time.Time
	done := make(chan struct{})
	s, err := nc.Subscribe(subject, func(m *nats.Msg) {
		k := n.Add(1)
		if k == 1 {
			first = time.Now()
		}
		if k == int64(count) {
			last = time.Now()
			close(done)
		}
	})
	if err != nil {
		return err
	}
	if err := s.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	fmt.Println("ready")
	prev := int64(-1)
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true
		case <-time.After(2 * time.Second):
			cur := n.Load()
			if cur == prev && cur > 0 {
				stop = true // the rest was dropped
				last = time.Now().Add(-2 * time.Second)
			}
			prev = cur
		}
	}
	if first.IsZero() {
		return errors.New("no message received")
	}
	return json.NewEncoder(os.Stdout).Encode(subResult{Received: n.Load(), Seconds: last.Sub(first).Seconds(), RSS: stats.PeakRSS()})
}

func pub(url, subject string, count, size int) error {
	nc, err := nats.Connect(url, nats.Name("natsbench-pub"))
	if err != nil {
		return err
	}
	defer nc.Close()
	payload := make([]byte, size)
	start := time.Now()
	for i := 0; i < count; i++ {
		if err := nc.Publish(subject, payload); err != nil {
			return err
		}
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(subResult{Seconds: time.Since(start).Seconds(), RSS: stats.PeakRSS()})
}

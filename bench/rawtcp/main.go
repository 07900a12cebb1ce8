// Command rawtcp measures the loopback ceiling that Chaski is compared with:
// bulk TCP throughput between two processes and the round trip of a small
// ping-pong with TCP_NODELAY. Run without -role it starts a server process
// and a client process (itself, re-executed) on 127.0.0.1 and prints one
// JSON object on stdout.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/internal/bench/stats"
)

type result struct {
	Bulk struct {
		Bytes     int64   `json:"bytes"`
		WriteSize int     `json:"write_size"`
		Seconds   float64 `json:"seconds"`
		MBPerSec  float64 `json:"mb_per_sec"`
	} `json:"bulk"`
	Ping struct {
		Count      int               `json:"count"`
		Size       int               `json:"size"`
		IntervalMs float64           `json:"interval_ms,omitempty"`
		RTTus      stats.Percentiles `json:"rtt_us"`
	} `json:"ping"`
	RSSMiB map[string]float64 `json:"rss_mib"`
}

func main() {
	role := flag.String("role", "", "internal: server or client")
	addr := flag.String("addr", "", "internal: the server's address (client)")
	total := flag.Int64("bytes", 4<<30, "bytes of the bulk transfer")
	wsize := flag.Int("write", 256<<10, "size of one write in the bulk transfer")
	pings := flag.Int("pings", 20000, "ping-pong round trips")
	size := flag.Int("size", 64, "bytes of one ping (and of its pong)")
	freePort := flag.Bool("freeport", false, "print a free TCP port of 127.0.0.1 and exit (for bench/compare.sh)")
	copySize := flag.Int64("copy", 0, "measure a file copy of this many bytes instead (sendfile, read, write, fsync; see filecopy.go)")
	dir := flag.String("dir", os.TempDir(), "the directory of the file copy's files")
	interval := flag.Duration("interval", 0, "wait this long after each pong before the next ping (as `chaski ping -i`); 0 = back to back")
	flag.Parse()
	if *freePort {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "rawtcp:", err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		return
	}
	var err error
	switch *role {
	case "server":
		err = server(*size)
	case "client":
		err = client(*addr, *total, *wsize, *pings, *size, *interval)
	case "copy-server":
		err = copyServer(*dir)
	case "copy-client":
		err = copyClient(*addr, *copySize, *dir)
	case "":
		if *copySize > 0 {
			err = orchestrateCopy(*copySize, *dir)
		} else {
			err = orchestrate()
		}
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawtcp:", err)
		os.Exit(1)
	}
}

// orchestrate runs the server and the client as two processes.
func orchestrate() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var pass []string
	flag.Visit(func(f *flag.Flag) { pass = append(pass, "-"+f.Name+"="+f.Value.String()) })
	srv := exec.Command(self, append([]string{"-role=server"}, pass...)...)
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("server did not start: %v", err)
	}
	cli := exec.Command(self, append([]string{"-role=client", "-addr=" + strings.TrimSpace(line)}, pass...)...)
	cli.Stderr = os.Stderr
	res, err := cli.Output()
	if err != nil {
		return fmt.Errorf("client: %v", err)
	}
	var r result
	if err := json.Unmarshal(res, &r); err != nil {
		return fmt.Errorf("client output: %v", err)
	}
	srvRes, _ := io.ReadAll(out)
	var s struct {
		RSS float64 `json:"rss_mib"`
	}
	if json.Unmarshal(srvRes, &s) == nil {
		r.RSSMiB["server"] = s.RSS
	}
	fmt.Fprintf(os.Stderr, "raw TCP: bulk %.0f MB/s (%d MiB in %d KiB writes); ping %d B: p50 %.1f µs, p90 %.1f µs, p99 %.1f µs\n",
		r.Bulk.MBPerSec, r.Bulk.Bytes>>20, r.Bulk.WriteSize>>10, r.Ping.Size, r.Ping.RTTus.P50, r.Ping.RTTus.P90, r.Ping.RTTus.P99)
	return json.NewEncoder(os.Stdout).Encode(&r)
}

// server accepts two connections: the bulk stream (answered with the byte
// count once it ends) and the ping-pong (every ping echoed).
func server(size int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	var ack [8]byte
	binary.BigEndian.PutUint64(ack[:], uint64(n))
	if _, err := c.Write(ack[:]); err != nil {
		return err
	}
	c.Close()

	p, err := ln.Accept()
	if err != nil {
		return err
	}
	p.(*net.TCPConn).SetNoDelay(true)
	msg := make([]byte, size)
	for {
		if _, err := io.ReadFull(p, msg); err != nil {
			break
		}
		if _, err := p.Write(msg); err != nil {
			break
		}
	}
	p.Close()
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{"rss_mib": stats.PeakRSS()})
}

func client(addr string, total int64, wsize, pings, size int, interval time.Duration) error {
	var r result
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	buf := make([]byte, wsize)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	start := time.Now()
	for left := total; left > 0; {
		k := int64(len(buf))
		if left < k {
			k = left
		}
		if _, err := c.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return err
	}
	el := time.Since(start)
	c.Close()
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != total {
		return fmt.Errorf("server counted %d bytes of %d", got, total)
	}
	r.Bulk.Bytes, r.Bulk.WriteSize, r.Bulk.Seconds = total, wsize, el.Seconds()
	r.Bulk.MBPerSec = float64(total) / el.Seconds() / 1e6

	p, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	p.(*net.TCPConn).SetNoDelay(true)
	msg := make([]byte, size)
	rtts := make([]time.Duration, 0, pings)
	for i := 0; i < pings+pings/10; i++ { // the first tenth warms up
		t0 := time.Now()
		if _, err := p.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(p, msg); err != nil {
			return err
		}
		if i >= pings/10 {
			rtts = append(rtts, time.Since(t0))
		}
		if interval > 0 {
			time.Sleep(interval)
		}
	}
	p.Close()
	r.Ping.Count, r.Ping.Size, r.Ping.RTTus = pings, size, stats.Of(rtts)
	r.Ping.IntervalMs = float64(interval) / 1e6
	r.RSSMiB = map[string]float64{"client": stats.PeakRSS()}
	return json.NewEncoder(os.Stdout).Encode(&r)
}

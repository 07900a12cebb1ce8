package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The file-copy reference: what one 1 GiB file costs to move between two
// processes over loopback TCP with nothing but the copies, on the same
// storage as Chaski's file row. The client writes a random file into dir
// (as `chaski bench --mode files` does), sends it with sendfile(2) (Go's
// io.Copy from an *os.File), and the server writes what it reads into a new
// file in dir with 256 KiB reads and fsyncs it before it answers. Chaski
// does all of that plus the BLAKE3 tree on both sides, its framing and its
// acknowledgements, so the ratio of the two is what verification and the
// protocol cost on this machine's memory (docs/PERFORMANCE.md).

type copyResult struct {
	FileCopy struct {
		Bytes    int64   `json:"bytes"`
		Seconds  float64 `json:"seconds"`
		MBPerSec float64 `json:"mb_per_sec"`
		Dir      string  `json:"dir"`
	} `json:"file_copy"`
}

// orchestrateCopy runs the copy's server and client as two processes.
func orchestrateCopy(size int64, dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv := exec.Command(self, "-role=copy-server", "-dir="+dir)
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
		return fmt.Errorf("copy server did not start: %v", err)
	}
	cli := exec.Command(self, "-role=copy-client", "-addr="+strings.TrimSpace(line),
		fmt.Sprintf("-copy=%d", size), "-dir="+dir)
	cli.Stderr = os.Stderr
	res, err := cli.Output()
	if err != nil {
		return fmt.Errorf("copy client: %v", err)
	}
	var r copyResult
	if err := json.Unmarshal(res, &r); err != nil {
		return fmt.Errorf("copy client output: %v", err)
	}
	fmt.Fprintf(os.Stderr, "raw TCP file copy: %d MiB in %.3f s, %.0f MB/s (sendfile, read, write, fsync; in %s)\n",
		r.FileCopy.Bytes>>20, r.FileCopy.Seconds, r.FileCopy.MBPerSec, dir)
	return json.NewEncoder(os.Stdout).Encode(&r)
}

func copyServer(dir string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := os.CreateTemp(dir, "rawtcp-recv-*.bin")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Plain reads and writes through one buffer, as a receiver that looks
	// at the bytes must do (Chaski hashes them on the way).
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{c}, buf)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	var ack [8]byte
	binary.BigEndian.PutUint64(ack[:], uint64(n))
	_, err = c.Write(ack[:])
	return err
}

func copyClient(addr string, size int64, dir string) error {
	f, err := os.CreateTemp(dir, "rawtcp-send-*.bin")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var seed [32]byte
	seed[0] = 7
	src := mrand.NewChaCha8(seed)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		k := min(int64(len(buf)), left)
		_, _ = src.Read(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.Copy(c, f); err != nil { // sendfile(2)
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return err
	}
	el := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != size {
		return fmt.Errorf("copy server wrote %d bytes of %d", got, size)
	}
	var r copyResult
	r.FileCopy.Bytes, r.FileCopy.Seconds, r.FileCopy.Dir = size, el.Seconds(), dir
	r.FileCopy.MBPerSec = float64(size) / el.Seconds() / 1e6
	return json.NewEncoder(os.Stdout).Encode(&r)
}

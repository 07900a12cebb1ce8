//go:build unix

package chaski

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// loopbackPair returns both ends of a TCP connection on 127.0.0.1.
func loopbackPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// rawReaderOn is the reader an edge would use on c.
func rawReaderOn(t *testing.T, c *net.TCPConn) io.Reader {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return newRawReader(rc)
}

// The reader an edge uses on plain TCP behaves as net.Conn's Read does for
// everything the edge relies on: data, deadlines (a timeout error), the
// peer closing (io.EOF) and our own Close waking a blocked read.
func TestRawReader(t *testing.T) {
	c, s := loopbackPair(t)
	r := rawReaderOn(t, s)

	// A megabyte queued on the socket before the first read: each read
	// must still return at most maxRawRead.
	_ = s.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	want := bytes.Repeat([]byte("chaski"), 1<<20/6)
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	for n := 0; n < len(want); {
		k, err := r.Read(got[n:])
		if err != nil {
			t.Fatal(err)
		}
		if k > maxRawRead {
			t.Fatalf("one read returned %d bytes, more than %d", k, maxRawRead)
		}
		n += k
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes read differ from bytes written")
	}

	_ = s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := r.Read(got)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = s.SetReadDeadline(time.Time{})

	// No allocation per read (the edge's reader calls this per block).
	one := make([]byte, 1)
	if allocs := testing.AllocsPerRun(100, func() {
		_, _ = c.Write(one)
		_, _ = r.Read(one)
	}); allocs > 0 {
		t.Fatalf("%.1f allocations per read", allocs)
	}

	_ = c.Close()
	if n, err := r.Read(got); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after the peer closed: %d, %v; want io.EOF", n, err)
	}
}

func TestRawReaderCloseWakesRead(t *testing.T) {
	_, s := loopbackPair(t)
	r := rawReaderOn(t, s)
	res := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		res <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the read block (it must also work if it has not)
	_ = s.Close()
	select {
	case err := <-res:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed connection: %v, want net.ErrClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not wake the blocked read")
	}
}

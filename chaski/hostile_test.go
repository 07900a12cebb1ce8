package chaski

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// rawPeer speaks the wire protocol by hand, to misbehave in ways a real node
// never would.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	id   [16]byte
}

func dialRaw(t testing.TB, addr string) *rawPeer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &rawPeer{t: t, conn: c, br: bufio.NewReader(c)}
	_, _ = rand.Read(p.id[:])
	return p
}

// handshake sends a valid preamble and hello and reads the node's answer.
func (p *rawPeer) handshake(subs ...string) {
	p.t.Helper()
	b := wire.AppendPreamble(nil)
	b, _ = wire.AppendControlFrame(b, wire.KindHello, "", &wire.Hello{Version: wire.Version, ID: p.id[:], Name: "raw", Listen: "127.0.0.1:1", Subs: subs})
	p.write(b)
	_ = p.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	var pre [wire.PreambleLen]byte
	if _, err := io.ReadFull(p.br, pre[:]); err != nil {
		p.t.Fatalf("reading preamble: %v", err)
	}
	f, err := wire.NewReader(p.br, 0).ReadFrame()
	if err != nil || f.Kind != wire.KindHello {
		p.t.Fatalf("expected hello, got %v %v", f.Kind, err)
	}
	_ = p.conn.SetReadDeadline(time.Time{})
}

func (p *rawPeer) write(b []byte) {
	_ = p.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, _ = p.conn.Write(b)
}

// closedWithin reports whether the node closes the connection in time,
// discarding whatever it sends before.
func (p *rawPeer) closedWithin(d time.Duration) bool {
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, p.br)
	var ne net.Error
	return err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

// stillServes checks the node accepts a normal peer after the abuse. The
// connect is retried: a victim with a short handshake deadline may refuse
// a healthy peer that a loaded machine slows down, and that proves nothing.
func stillServes(t *testing.T, n *Node) {
	t.Helper()
	other := startNode(t, "127.0.0.1", Config{Name: "healthy"})
	eventually(t, "a healthy peer connects", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := other.Connect(ctx, n.Addr())
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := other.Ping(ctx, n.ID(), 0); err != nil {
		t.Fatalf("node unhealthy after abuse: %v", err)
	}
}

func TestHostileGarbage(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim"})
	p := dialRaw(t, n.Addr())
	p.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if !p.closedWithin(waitTimeout) {
		t.Fatal("garbage did not close the connection")
	}
	stillServes(t, n)
}

func TestHostileNeverHandshakes(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim", HandshakeTimeout: 200 * time.Millisecond})
	p := dialRaw(t, n.Addr())
	start := time.Now()
	if !p.closedWithin(waitTimeout) {
		t.Fatal("silent peer kept open")
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Fatal("closed before the handshake deadline")
	}
	stillServes(t, n)
}

func TestHostileVersionMismatch(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim"})
	p := dialRaw(t, n.Addr())
	pre := wire.AppendPreamble(nil)
	pre[4] = wire.Version + 1
	p.write(pre)
	if !p.closedWithin(waitTimeout) {
		t.Fatal("version mismatch not refused")
	}
}

func TestHostileOversizedLength(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim"})
	p := dialRaw(t, n.Addr())
	p.handshake()
	eventually(t, "raw edge up", func() bool { return n.EdgeCount() == 1 })
	var h [wire.HeaderLen]byte
	wire.PutHeader(h[:], wire.KindPublish, 1, 0)
	binary.BigEndian.PutUint32(h[4:], 0xFFFFFFFF) // a 4 GiB body
	p.write(h[:])
	if !p.closedWithin(waitTimeout) {
		t.Fatal("4 GiB frame not refused")
	}
	eventually(t, "edge dropped", func() bool { return n.EdgeCount() == 0 })
	stillServes(t, n)
}

func TestHostileMalformedBodies(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, 100000), 0xc0)
	hugeVisited := &wire.Discover{Request: make([]byte, 16), Origin: make([]byte, 16), Topic: "t", TTL: 1 << 30,
		Visited: make([][]byte, wire.MaxVisited+10), OriginAddr: "127.0.0.1:1"}
	hv, _ := wire.Marshal(hugeVisited)
	cases := map[string][]byte{}
	cases["deep msgpack"], _ = wire.AppendFrame(nil, wire.KindSubs, "", deep)
	cases["huge visited list"], _ = wire.AppendFrame(nil, wire.KindDiscover, "", hv)
	cases["short publish"], _ = wire.AppendFrame(nil, wire.KindPublish, "t", []byte{1, 2, 3})
	cases["second hello"], _ = wire.AppendControlFrame(nil, wire.KindHello, "", &wire.Hello{})
	cases["bad topic"], _ = wire.AppendFrame(nil, wire.KindPublish, "a\x00b", make([]byte, 40))
	for name, frame := range cases {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			n := startNode(t, "127.0.0.1", Config{Name: "victim", Subscriptions: []string{"t"}})
			p := dialRaw(t, n.Addr())
			p.handshake("t")
			eventually(t, "raw edge up", func() bool { return n.EdgeCount() == 1 })
			p.write(frame)
			if !p.closedWithin(waitTimeout) {
				t.Fatalf("%s not refused", name)
			}
			stillServes(t, n)
		})
	}
}

func TestHostileUnknownKindIgnored(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim"})
	p := dialRaw(t, n.Addr())
	p.handshake()
	f, _ := wire.AppendFrame(nil, wire.Kind(0xEE), "", []byte("from the future"))
	for i := 0; i < 10; i++ {
		p.write(f)
	}
	eventually(t, "unknown frames counted", func() bool { return n.Status().Unknown == 10 })
	if n.EdgeCount() != 1 {
		t.Fatal("unknown frame closed the edge")
	}
}

func TestHostilePingFlood(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim"})
	p := dialRaw(t, n.Addr())
	p.handshake()
	// Never read the pongs: the node's control lane is bounded and its
	// memory does not grow with the flood.
	ping := wire.AppendPingFrame(nil, wire.KindPing, &wire.Ping{ID: 1, Echo: true, Padding: make([]byte, 1024)})
	flood := bytes.Repeat(ping, 2000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
		_, _ = p.conn.Write(flood)
	}()
	<-done
	if e := n.findEdge(p.connID()); e != nil {
		e.q.mu.Lock()
		queued := len(e.q.ctrl)
		e.q.mu.Unlock()
		if queued > e.q.maxCtrl {
			t.Fatalf("control lane grew to %d", queued)
		}
	}
	stillServes(t, n)
}

func (p *rawPeer) connID() string { return idString(wire.NodeID(p.id)) }

func TestHostilePeerStopsReading(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim", WriteTimeout: 300 * time.Millisecond, SendQueueBytes: 256 << 10})
	p := dialRaw(t, n.Addr())
	p.handshake("t")
	eventually(t, "raw edge up", func() bool { return n.EdgeCount() == 1 })
	// The raw peer never reads: the socket buffers fill, the writer stalls,
	// and after WriteTimeout the edge is dropped; Publish does not hang.
	publishUntilRefused(t, n)
	eventually(t, "edge dropped", func() bool { return n.EdgeCount() == 0 })
}

// A peer that never reads but keeps talking (here: pinging every 50 ms)
// looks like a slow consumer at first, so it gets MaxWriteStall instead of
// WriteTimeout; then it is dropped all the same.
func TestHostilePeerStopsReadingButTalks(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim", WriteTimeout: 300 * time.Millisecond,
		MaxWriteStall: 1500 * time.Millisecond, SendQueueBytes: 256 << 10})
	downs := edgeDowns(t, n)
	p := dialRaw(t, n.Addr())
	p.handshake("t")
	eventually(t, "raw edge up", func() bool { return n.EdgeCount() == 1 })
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for id := uint64(1); ; id++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_ = p.conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := p.conn.Write(wire.AppendPingFrame(nil, wire.KindPing, &wire.Ping{ID: id})); err != nil {
				return
			}
		}
	}()
	publishUntilRefused(t, n)
	select {
	case reason := <-downs:
		var secs float64
		if _, err := fmt.Sscanf(reason, "write failed: peer accepted no data for %gs (stopped reading?)", &secs); err != nil {
			t.Fatalf("dropped for %q, want a write stall while the peer talks", reason)
		}
		if secs < 1.5 {
			t.Fatalf("dropped after a stall of %vs, want at least MaxWriteStall (1.5s)", secs)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the edge was not dropped")
	}
}

// publishUntilRefused publishes 64 KiB messages on "t" until Publish fails,
// as it must once n drops the edge of a peer that does not read.
func publishUntilRefused(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	payload := make([]byte, 64<<10)
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = n.Publish(ctx, "t", payload)
	}
	if err == nil || ctx.Err() != nil {
		t.Fatalf("publish to a peer that never reads: %v (ctx %v)", err, ctx.Err())
	}
}

func TestHostileConnectionLimit(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim", MaxEdges: 8, HandshakeTimeout: time.Second})
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 2000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", n.Addr(), 5*time.Second)
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	n.mu.RLock()
	pending := n.pending
	n.mu.RUnlock()
	if pending > 8 {
		t.Fatalf("%d handshakes in progress, limit 8", pending)
	}
	for _, c := range conns {
		c.Close()
	}
	// Connections still queued in the listen backlog are accepted (and
	// closed) after this; stillServes retries until they are drained.
	stillServes(t, n)
}

func TestHostileUDP(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "victim"})
	c, err := net.Dial("udp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bomb := append([]byte{'C', 'H', 'S', 'U', wire.Version, byte(wire.UDPStatusRequest)}, bytes.Repeat([]byte{0x91}, 5000)...)
	wrongVersion := []byte{'C', 'H', 'S', 'U', 99, 1, 0x80}
	big := make([]byte, 60000)
	copy(big, "CHSU")
	unknownKind := []byte{'C', 'H', 'S', 'U', wire.Version, 200, 0x80}
	reqNoHandler, _ := wire.AppendDatagram(nil, wire.UDPRequest, &wire.Request{ID: 1, Name: "Close"})
	for _, d := range [][]byte{{}, []byte("garbage"), bomb, wrongVersion, big, unknownKind, reqNoHandler} {
		_, _ = c.Write(d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := QueryStatus(ctx, n.Addr()); err != nil {
		t.Fatalf("status after malformed datagrams: %v", err)
	}
}

// A peer that keeps talking but never answers pings: pings whose callers
// gave up are swept, so the edge's slots do not stay full and later pings
// time out instead of failing as busy for ever.
func TestAbandonedPingsAreSwept(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "n", PingInterval: 100 * time.Millisecond, RequestTimeout: 100 * time.Millisecond})
	p := dialRaw(t, n.Addr())
	p.handshake()
	stop := make(chan struct{})
	talked := make(chan struct{})
	defer func() { close(stop); <-talked }()
	go func() {
		defer close(talked)
		chatter, _ := wire.AppendFrame(nil, wire.Kind(0x7e), "", nil) // an unknown kind: ignored, but heard
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_ = p.conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := p.conn.Write(chatter); err != nil {
				return
			}
		}
	}()
	eventually(t, "the raw peer connected", func() bool { return n.ConnectedTo(p.connID()) })
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_, err := n.Ping(ctx, p.connID(), 0)
		return err
	}
	busy := false
	for i := 0; i < 2*maxPendingPings && !busy; i++ {
		busy = errors.Is(ping(), ErrBusy)
	}
	if !busy {
		t.Fatal("the edge's ping slots never filled")
	}
	e := n.findEdge(p.connID())
	waited := func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		k := 0
		for _, pp := range e.pings {
			if pp.result != nil {
				k++
			}
		}
		return k
	}
	if waited() == 0 {
		t.Fatal("no abandoned ping is pending")
	}
	eventually(t, "abandoned pings swept", func() bool { return waited() == 0 })
	if err := ping(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a ping after the sweep: %v, want a timeout", err)
	}
	if !n.ConnectedTo(p.connID()) {
		t.Fatal("the talking peer was dropped")
	}
}

// A peer that reads, only slowly, keeps its edge: the write deadline bounds
// a wait without progress, not a whole batch. Here a 256 KiB batch takes
// about two seconds to drain while WriteTimeout is one. (The buffers are
// kept at 64 KiB: with smaller ones TCP's zero-window probing moves data
// in 200 ms steps, which would measure TCP, not the node.)
func TestSlowReaderKeepsEdge(t *testing.T) {
	n := startNode(t, "127.0.0.1", Config{Name: "n", WriteTimeout: time.Second, SendQueueBytes: 1 << 20})
	downs := edgeDowns(t, n)
	p := dialRaw(t, n.Addr())
	_ = p.conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	p.handshake("t")
	eventually(t, "the raw peer's subscription known", func() bool {
		e, ok := n.Edge(p.connID())
		return ok && e.Subscribes("t")
	})
	e := n.findEdge(p.connID())
	_ = e.conn.(*net.TCPConn).SetWriteBuffer(64 << 10)
	const total = 512 << 10
	pubDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		msg := make([]byte, 1<<10)
		for i := 0; i < total/len(msg); i++ {
			if err := n.Publish(ctx, "t", msg); err != nil {
				pubDone <- err
				return
			}
		}
		pubDone <- nil
	}()
	buf := make([]byte, 16<<10)
	read := 0
	deadline := time.Now().Add(waitTimeout)
	for read < total*9/10 {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d bytes in time", read, total)
		}
		if !n.ConnectedTo(p.connID()) {
			t.Fatalf("the slow reader was dropped after %d bytes: %s", read, <-downs)
		}
		_ = p.conn.SetReadDeadline(time.Now().Add(time.Second))
		k, err := p.br.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", read, err)
		}
		read += k
		time.Sleep(100 * time.Millisecond) // ≈ 160 KB/s
	}
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	if !n.ConnectedTo(p.connID()) {
		t.Fatal("the slow reader was dropped")
	}
}

// A subscriber that stops taking messages makes its node's reader wait (a
// message owed to a subscriber is never dropped). Once the subscriber takes
// them again, that wait must not count as the peer's silence: the edge
// stays up and every message arrives once, in order. The wait is longer
// than the reader's idle deadline (5 s at least), and messages have mixed
// sizes so that frames straddle the reader's blocks (the reader's next
// socket read then comes straight after the wait).
func TestBlockedSubscriberKeepsEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("waits longer than the idle deadline")
	}
	a := startNode(t, "127.0.0.1", Config{Name: "a", PingInterval: 100 * time.Millisecond})
	b := startNode(t, "127.0.0.1", Config{Name: "b", PingInterval: 100 * time.Millisecond,
		MessageBuffer: 16, Subscriptions: []string{"t"}})
	downs := edgeDowns(t, b)
	connect(t, a, b)
	eventually(t, "b's subscription known to a", func() bool {
		e, ok := a.Edge(b.ID())
		return ok && e.Subscribes("t")
	})
	const total = 6000
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	pubDone := make(chan error, 1)
	go func() {
		for i := 0; i < total; i++ {
			msg := make([]byte, 8+(i*7919)%3000)
			binary.BigEndian.PutUint64(msg, uint64(i))
			if err := a.Publish(ctx, "t", msg); err != nil {
				pubDone <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
		}
		pubDone <- nil
	}()
	// Let the subscriber queue, b's socket and a's lane fill up, then keep
	// b's reader waiting past its idle deadline.
	eventually(t, "b's subscriber queue full", func() bool { return len(b.Messages()) == 16 })
	time.Sleep(b.deadTimeout() + time.Second)
	for i := 0; i < total; i++ {
		select {
		case m := <-b.Messages():
			if got := binary.BigEndian.Uint64(m.Data); got != uint64(i) {
				t.Fatalf("message %d arrived as number %d", i, got)
			}
		case reason := <-downs:
			t.Fatalf("edge dropped after %d messages: %s", i, reason)
		case <-ctx.Done():
			t.Fatalf("only %d of %d messages arrived", i, total)
		}
	}
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-downs:
		t.Fatalf("edge dropped: %s", reason)
	default:
	}
}

// Keep-alive's view of a reader that waited long in a handler: no silence
// while it is busy, and none counted for the wait once it is not (it then
// works through buffered frames before it records the next one).
func TestSilenceAfterBusyReader(t *testing.T) {
	e := &edge{}
	t0 := time.Now()
	e.lastRecv.Store(t0.UnixNano())
	e.readerBusy.Store(true)
	if s, busy := e.silence(t0.Add(30 * time.Second)); !busy || s != 0 {
		t.Fatalf("during the wait: %v, busy %v", s, busy)
	}
	e.readerBusy.Store(false)
	if s, busy := e.silence(t0.Add(30*time.Second + 250*time.Millisecond)); busy || s != 250*time.Millisecond {
		t.Fatalf("one tick after the wait: silent %v, busy %v; want 250ms", s, busy)
	}
	e.lastRecv.Store(t0.Add(31 * time.Second).UnixNano())
	if s, _ := e.silence(t0.Add(33 * time.Second)); s != 2*time.Second {
		t.Fatalf("after a frame: silent %v, want 2s", s)
	}
}

// A subscriber whose consumer slows down after a fast phase reads its
// socket slowly but steadily. After the fast phase the kernel has grown the
// receive buffer to megabytes and reopens a zero window only once about a
// sixteenth of it has been read, so the publisher's writer sees no
// progress for long stretches. That is backpressure, not a dead peer: the
// edge must stay up and every message arrive once, in order.
// Over TLS the same holds (the rule then works under the record layer).
func TestSlowConsumerAfterFastPhaseKeepsEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	t.Run("tcp", func(t *testing.T) { testSlowConsumerAfterFastPhase(t, Config{}, Config{}) })
	t.Run("tls", func(t *testing.T) {
		is := newIssuer(t)
		ia, ib := is.identity(t, "a"), is.identity(t, "b")
		testSlowConsumerAfterFastPhase(t,
			Config{ServerTLS: ia.ServerConfig(), ClientTLS: ia.ClientConfig()},
			Config{ServerTLS: ib.ServerConfig(), ClientTLS: ib.ClientConfig()})
	})
}

func testSlowConsumerAfterFastPhase(t *testing.T, ca, cb Config) {
	const writeTimeout = time.Second
	ca.Name, ca.WriteTimeout, ca.MaxWriteStall, ca.PingInterval = "a", writeTimeout, time.Minute, 100*time.Millisecond
	cb.Name, cb.PingInterval, cb.MessageBuffer, cb.Subscriptions = "b", 100*time.Millisecond, 64, []string{"t"}
	a := startNode(t, "127.0.0.1", ca)
	b := startNode(t, "127.0.0.1", cb)
	downs := edgeDowns(t, a)
	connect(t, a, b)
	eventually(t, "b's subscription known to a", func() bool {
		e, ok := a.Edge(b.ID())
		return ok && e.Subscribes("t")
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var stopPub atomic.Bool
	published := make(chan uint64, 1)
	go func() {
		var i uint64
		msg := make([]byte, 100)
		for !stopPub.Load() {
			binary.BigEndian.PutUint64(msg, i)
			if err := a.Publish(ctx, "t", msg); err != nil {
				break
			}
			i++
		}
		published <- i
	}()
	var next uint64
	check := func(m *Message) {
		if got := binary.BigEndian.Uint64(m.Data); got != next {
			t.Fatalf("message %d arrived as number %d", next, got)
		}
		next++
	}
	take := func() {
		select {
		case m := <-b.Messages():
			check(m)
		case reason := <-downs:
			t.Fatalf("edge dropped after %d messages: %s", next, reason)
		case <-ctx.Done():
			t.Fatalf("stuck after %d messages", next)
		}
	}
	fast := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(fast) {
		take()
	}
	slow := time.Now().Add(5 * writeTimeout)
	for time.Now().Before(slow) {
		for k := 0; k < 2; k++ {
			take()
		}
		time.Sleep(time.Millisecond) // the consumer's work: at most 2,000 messages a second
	}
	// Stop the publisher; it may be waiting for room, so keep taking.
	stopPub.Store(true)
	var total uint64
	for stopped := false; !stopped; {
		select {
		case total = <-published:
			stopped = true
		case m := <-b.Messages():
			check(m)
		case <-ctx.Done():
			t.Fatalf("publisher did not stop; %d messages taken", next)
		}
	}
	for next < total {
		take()
	}
	select {
	case reason := <-downs:
		t.Fatalf("edge dropped: %s", reason)
	default:
	}
	t.Logf("%d messages", total)
}

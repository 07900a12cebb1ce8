package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestObtainEndToEnd(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	token := newToken(t)
	var logs syncBuffer
	addr := startServer(t, ca, token, ServerOptions{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	dir := filepath.Join(t.TempDir(), "node")
	id, err := Obtain(testContext(t), addr, token, CertRequest{
		Name:     "node-a",
		DNSNames: []string{"node-a.example.net"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1")},
		Dir:      dir,
	})
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}

	if id.Leaf.Subject.CommonName != "node-a" {
		t.Errorf("CN = %q", id.Leaf.Subject.CommonName)
	}
	if !slices.Contains(id.Leaf.DNSNames, "node-a") || !slices.Contains(id.Leaf.DNSNames, "node-a.example.net") {
		t.Errorf("DNSNames = %v", id.Leaf.DNSNames)
	}
	if len(id.Leaf.IPAddresses) != 1 || !id.Leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IPAddresses = %v", id.Leaf.IPAddresses)
	}
	if !id.CACert.Equal(ca.Certificate()) {
		t.Error("identity trusts another CA")
	}
	if id.NeedsRenewal(time.Now()) {
		t.Error("a fresh certificate needs renewal")
	}

	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("dir mode = %v, want 0700", got)
	}
	if got := fileMode(t, filepath.Join(dir, NodeKeyFile)); got != 0o600 {
		t.Errorf("node.key mode = %v, want 0600", got)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caPEM, ca.CertPEM()) {
		t.Error("ca.crt is not the CA certificate")
	}
	loaded, err := LoadIdentity(filepath.Join(dir, NodeCrtFile), filepath.Join(dir, NodeKeyFile), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatalf("LoadIdentity: %v", err)
	}
	if !loaded.Leaf.Equal(id.Leaf) || !loaded.CACert.Equal(id.CACert) {
		t.Error("the files hold another identity than the one returned")
	}
	if !publicKeysEqual(loaded.Leaf.PublicKey, id.Certificate.PrivateKey.(crypto.Signer).Public()) {
		t.Error("node.key does not match node.crt")
	}

	out := logs.String()
	if !strings.Contains(out, "issued certificate") || !strings.Contains(out, "node-a") {
		t.Errorf("no issuance log: %s", out)
	}
	if strings.Contains(out, token) {
		t.Error("the token was logged")
	}
}

func TestObtainWrongToken(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	addr := startServer(t, ca, newToken(t), ServerOptions{})
	dir := filepath.Join(t.TempDir(), "node")
	_, err := Obtain(testContext(t), addr, newToken(t), CertRequest{Name: "intruder", Dir: dir})
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
	if !strings.Contains(err.Error(), "invalid join token") {
		t.Errorf("error %q does not say invalid join token", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("something was written: %v", err)
	}
}

// fakeCAServer answers every request with answer(req), which plays a man in
// the middle.
func fakeCAServer(t *testing.T, answer func(req *request) *response) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.SetDeadline(time.Now().Add(testTimeout))
			if req, err := decodeRequest(conn); err == nil {
				encodeJSONFrame(conn, answer(req))
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestObtainBadAnswer(t *testing.T) {
	token := newToken(t)
	realCA, _ := newTestCA(t, CAOptions{Name: "Real"})
	evilCA, _ := newTestCA(t, CAOptions{Name: "Evil"})
	evilToken := newToken(t)

	sign := func(t *testing.T, ca *CA, der []byte) string {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Error(err)
			return ""
		}
		_, certPEM, err := ca.Sign(csr, 0)
		if err != nil {
			t.Error(err)
		}
		return string(certPEM)
	}
	ok := func(req *request, cert, caPEM string, tok string) *response {
		return &response{V: protocolVersion, OK: true, Cert: cert, CA: caPEM,
			MAC: answerMAC([]byte(tok), req.Nonce, cert, caPEM)}
	}

	for _, tc := range []struct {
		name   string
		answer func(t *testing.T, req *request) *response
	}{
		{"own CA, MAC under another token", func(t *testing.T, req *request) *response {
			return ok(req, sign(t, evilCA, req.CSR), string(evilCA.CertPEM()), evilToken)
		}},
		{"no MAC", func(t *testing.T, req *request) *response {
			r := ok(req, sign(t, evilCA, req.CSR), string(evilCA.CertPEM()), evilToken)
			r.MAC = nil
			return r
		}},
		{"CA swapped after the MAC", func(t *testing.T, req *request) *response {
			r := ok(req, sign(t, realCA, req.CSR), string(realCA.CertPEM()), token)
			r.CA = string(evilCA.CertPEM())
			return r
		}},
		{"MAC over another nonce (replayed answer)", func(t *testing.T, req *request) *response {
			old := slices.Clone(req.Nonce)
			old[0] ^= 1
			cert := sign(t, realCA, req.CSR)
			return &response{V: protocolVersion, OK: true, Cert: cert, CA: string(realCA.CertPEM()),
				MAC: answerMAC([]byte(token), old, cert, string(realCA.CertPEM()))}
		}},
		{"valid MAC, certificate from another CA", func(t *testing.T, req *request) *response {
			return ok(req, sign(t, evilCA, req.CSR), string(realCA.CertPEM()), token)
		}},
		{"valid MAC, certificate for another key", func(t *testing.T, req *request) *response {
			der := newCSR(t, newKey(t), "node-a", nil, nil).Raw
			return ok(req, sign(t, realCA, der), string(realCA.CertPEM()), token)
		}},
		{"valid MAC, leaf as CA", func(t *testing.T, req *request) *response {
			leaf := sign(t, realCA, req.CSR)
			return ok(req, leaf, leaf, token)
		}},
		{"valid MAC, garbage", func(t *testing.T, req *request) *response {
			return ok(req, "not a certificate", string(realCA.CertPEM()), token)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeCAServer(t, func(req *request) *response { return tc.answer(t, req) })
			dir := filepath.Join(t.TempDir(), "node")
			_, err := Obtain(testContext(t), addr, token, CertRequest{Name: "node-a", Dir: dir})
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("err = %v, want ErrBadAnswer", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("something was written: %v", err)
			}
		})
	}
}

func TestServerRejectsBadCSR(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	token := newToken(t)
	addr := startServer(t, ca, token, ServerOptions{})
	// A properly authenticated request carrying an unacceptable CSR, sent by
	// hand since Obtain refuses it locally.
	csr := newCSR(t, newKey(t), "node", []string{"*.example.net"}, nil)
	nonce := make([]byte, nonceLen)
	resp, err := exchange(testContext(t), addr, &request{V: protocolVersion, Nonce: nonce, CSR: csr.Raw,
		MAC: requestMAC([]byte(token), nonce, csr.Raw)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.OK || resp.Code != codeBadRequest || !strings.Contains(resp.Error, "invalid DNS name") {
		t.Fatalf("answer = %+v, want a bad_request about the DNS name", resp)
	}

	// Obtain refuses the same thing before dialing.
	if _, err := Obtain(testContext(t), addr, token, CertRequest{Name: "node", DNSNames: []string{"*.x"}}); !errors.Is(err, ErrBadCSR) {
		t.Fatalf("Obtain: err = %v, want ErrBadCSR", err)
	}
}

func TestServerRateLimit(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	token := newToken(t)
	clock := newFakeClock() // frozen unless advanced: no refill between requests
	addr := startServer(t, ca, token, ServerOptions{Now: clock.Now})
	ctx := testContext(t)
	for i := range PerIPBurst {
		if _, err := Obtain(ctx, addr, token, CertRequest{Name: "node"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err := Obtain(ctx, addr, token, CertRequest{Name: "node"})
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("request %d: err = %v, want ErrRateLimited", PerIPBurst, err)
	}
	// Wrong tokens are throttled as well (they cannot be used to probe).
	if _, err := Obtain(ctx, addr, newToken(t), CertRequest{Name: "node"}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("wrong token while limited: err = %v, want ErrRateLimited", err)
	}
	clock.Advance(time.Second)
	if _, err := Obtain(ctx, addr, token, CertRequest{Name: "node"}); err != nil {
		t.Fatalf("after one second: %v", err)
	}
	if _, err := Obtain(ctx, addr, token, CertRequest{Name: "node"}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second request after one second: err = %v, want ErrRateLimited", err)
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Now()
	l := newLimiter(t0)
	for i := range PerIPBurst {
		if !l.allow("a", t0) {
			t.Fatalf("request %d refused", i)
		}
	}
	if l.allow("a", t0) {
		t.Fatal("burst exceeded")
	}
	if !l.allow("b", t0) {
		t.Fatal("another address is limited by the first one")
	}
	if !l.allow("a", t0.Add(time.Second)) {
		t.Fatal("no refill after one second")
	}
	if l.allow("a", t0) {
		t.Fatal("a clock going backwards refilled the bucket")
	}

	// The global bucket: many addresses at once.
	l = newLimiter(t0)
	allowed := 0
	for i := range 2 * GlobalBurst {
		if l.allow(string(rune('A'+i)), t0) {
			allowed++
		}
	}
	if allowed != GlobalBurst {
		t.Fatalf("global burst: %d allowed, want %d", allowed, GlobalBurst)
	}

	// The table is bounded; idle buckets are forgotten.
	l = newLimiter(t0)
	for i := range maxTrackedIPs {
		l.perIP[string(rune(i+0x1000))] = &bucket{tokens: PerIPBurst, last: t0}
	}
	l.global.tokens = GlobalBurst
	if !l.allow("new", t0) {
		t.Fatal("refused although every tracked bucket is idle")
	}
	if len(l.perIP) != 1 {
		t.Fatalf("%d buckets kept after the sweep, want 1", len(l.perIP))
	}

	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:5", "127.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:7", "2001:db8:1:2::/64"},
		{"[::ffff:10.1.2.3]:7", "10.1.2.3"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := limiterKey(a); got != tc.want {
			t.Errorf("limiterKey(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestServeShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ca, _ := newTestCA(t, CAOptions{})
	token := newToken(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- NewServer(ca, token, ServerOptions{}).Serve(ctx, ln) }()

	// Two clients that hang: one silent, one with half a frame.
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	half, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte{0, 0, 1, 0, '{'}); err != nil {
		t.Fatal(err)
	}
	// A full exchange proves the server is up (and, accept order being
	// FIFO, that both hanging connections are being served).
	if _, err := Obtain(testContext(t), ln.Addr().String(), token, CertRequest{Name: "n"}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Serve did not return")
	}
	// Serve closed the hanging connections instead of waiting for their
	// I/O deadline.
	if d := time.Since(start); d >= serverIOTimeout {
		t.Errorf("Serve took %v to return, not shorter than the I/O timeout", d)
	}
	for _, c := range []net.Conn{idle, half} {
		c.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("hanging connection still open")
		}
	}
	// The listener is closed.
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("listener still accepting")
	}
}

func TestServeMaxConns(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	token := newToken(t)
	addr := startServer(t, ca, token, ServerOptions{MaxConns: 1})
	// The only slot is taken by a silent client...
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// ...so a request cannot be answered while it stays.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = Obtain(ctx, addr, token, CertRequest{Name: "n"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the slot taken: err = %v, want a deadline error", err)
	}
	idle.Close()
	if _, err := Obtain(testContext(t), addr, token, CertRequest{Name: "n"}); err != nil {
		t.Fatalf("after the slot was freed: %v", err)
	}
}

func TestServerRefusesMalformed(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	addr := startServer(t, ca, newToken(t), ServerOptions{})
	for _, tc := range []struct {
		name string
		send []byte
		want string
	}{
		{"oversized frame", []byte{0, 1, 0, 1}, codeBadRequest},
		{"not JSON", append([]byte{0, 0, 0, 3}, "xyz"...), codeBadRequest},
		{"wrong version", append([]byte{0, 0, 0, 8}, `{"v":99}`...), codeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(testTimeout))
			if _, err := conn.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			body, err := readFrame(conn)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(body, []byte(`"code":"`+tc.want+`"`)) {
				t.Fatalf("answer %s, want code %s", body, tc.want)
			}
			// One exchange per connection: the server hangs up.
			if _, err := io.ReadAll(conn); err != nil {
				t.Fatalf("after the answer: %v", err)
			}
		})
	}
}

func TestServeRequiresToken(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := NewServer(ca, "", ServerOptions{}).Serve(context.Background(), ln); err == nil {
		t.Fatal("Serve accepted an empty token")
	}
}

// A node that meets "rate limited" waits and asks again (PROTOCOL.md) instead
// of giving up: after the burst is spent, ObtainRetrying gets its
// certificate once the bucket refills, and says how long it waited.
func TestObtainRetryingWaitsOutTheRateLimit(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	token := newToken(t)
	addr := startServer(t, ca, token, ServerOptions{})
	ctx := testContext(t)
	for i := 0; i < PerIPBurst; i++ {
		_, _ = Obtain(ctx, addr, token, CertRequest{Name: "flood"})
	}
	if _, err := Obtain(ctx, addr, token, CertRequest{Name: "node"}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("after the burst: %v, want ErrRateLimited", err)
	}
	var waits []time.Duration
	id, err := ObtainRetrying(ctx, addr, token, CertRequest{Name: "node"}, func(d time.Duration, err error) { waits = append(waits, d) })
	if err != nil {
		t.Fatalf("ObtainRetrying: %v (after %d waits)", err, len(waits))
	}
	if id.Leaf == nil || id.Leaf.Subject.CommonName != "node" || len(waits) == 0 {
		t.Fatalf("got %v after waits %v", id.Leaf, waits)
	}
	// Other errors end it (here once the bucket allows the request).
	if _, err := ObtainRetrying(ctx, addr, newToken(t), CertRequest{Name: "node"}, nil); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a wrong token: %v, want ErrInvalidToken", err)
	}
}

// lineCounter counts the lines written to it.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	return len(b), nil
}

func (c *lineCounter) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// A flood of refused requests does not write a log line each: the lines
// are rate limited and the next one counts those left out (before: one
// line per request).
func TestServerRefusalsLogRateLimited(t *testing.T) {
	ca, _ := newTestCA(t, CAOptions{})
	var out lineCounter
	addr := startServer(t, ca, newToken(t), ServerOptions{Logger: slog.New(slog.NewTextHandler(&out, nil))})
	ctx := testContext(t)
	const flood = 150
	start := time.Now()
	for i := 0; i < flood; i++ {
		_, _ = Obtain(ctx, addr, newToken(t), CertRequest{Name: "flood"})
	}
	elapsed := time.Since(start)
	refused := 0
	for _, l := range out.snapshot() {
		if strings.Contains(l, "refused request") {
			refused++
		}
	}
	t.Logf("%d refused requests in %v: %d log lines", flood, elapsed.Round(time.Millisecond), refused)
	if allowed := refusedBurst + int(elapsed.Seconds()*refusedRate) + 2; refused > allowed {
		t.Fatalf("%d lines for %d refused requests in %v (at most %d expected)", refused, flood, elapsed, allowed)
	}
	time.Sleep(300 * time.Millisecond)
	_, _ = Obtain(ctx, addr, newToken(t), CertRequest{Name: "after"})
	lines := out.snapshot()
	if last := lines[len(lines)-1]; !strings.Contains(last, "suppressed=") {
		t.Fatalf("the next line does not count the suppressed ones: %s", last)
	}
}

package pki

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

const (
	// DefaultMaxConns is the number of connections the signing service
	// handles at once when ServerOptions.MaxConns is zero. Further clients
	// wait in the listen backlog.
	DefaultMaxConns = 32

	// serverIOTimeout bounds the whole exchange on one connection (read the
	// request, sign, write the answer).
	serverIOTimeout = 5 * time.Second

	// tokenBytes is the entropy of tokens made by NewToken.
	tokenBytes = 32
)

// NewToken returns a fresh random join token (256 bits, base64url). The
// token is the only secret that lets a node obtain a certificate: the MACs
// of the protocol can be attacked offline by anyone who records an exchange,
// so tokens must be random like these, never chosen by a human.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ServerOptions configures a Server. The zero value is usable.
type ServerOptions struct {
	// Validity of issued certificates; DefaultLeafValidity if zero.
	Validity time.Duration
	// MaxConns is the number of connections served concurrently;
	// DefaultMaxConns if zero.
	MaxConns int
	// Logger receives one record per request; nothing is logged if nil.
	// The token and MACs are never logged.
	Logger *slog.Logger
	// Now is the clock for certificate validity and rate limiting;
	// time.Now if nil. (I/O deadlines always use the real clock.)
	Now func() time.Time
}

// Server is the certificate signing service: it signs the CSRs of clients
// that prove knowledge of the join token. See PROTOCOL.md.
type Server struct {
	ca       *CA
	token    []byte
	validity time.Duration
	maxConns int
	log      *slog.Logger
	refused  refusedLog
	now      func() time.Time
	lim      *limiter
}

// NewServer returns a signing service for ca that accepts requests
// authenticated with token.
func NewServer(ca *CA, token string, opts ServerOptions) *Server {
	s := &Server{
		ca:       ca,
		token:    []byte(token),
		validity: opts.Validity,
		maxConns: opts.MaxConns,
		log:      opts.Logger,
		now:      opts.Now,
	}
	if s.validity <= 0 {
		s.validity = DefaultLeafValidity
	}
	if s.maxConns <= 0 {
		s.maxConns = DefaultMaxConns
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.lim = newLimiter(s.now())
	return s
}

// Serve accepts connections on ln and answers one request on each. It
// returns nil once ctx is done, or the listener's error if accepting fails
// for good. Either way it closes ln and every open connection, and returns
// only after every goroutine it started has ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.ca == nil {
		ln.Close()
		return errors.New("pki: Server has no CA")
	}
	if len(s.token) == 0 {
		ln.Close()
		return errors.New("pki: empty join token")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = make(map[net.Conn]struct{})
		closed bool
	)
	// The watcher turns cancellation into closed sockets: Accept and every
	// blocked Read/Write return at once.
	wg.Go(func() {
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})

	sem := make(chan struct{}, s.maxConns)
	var serveErr error
	backoff := time.Duration(0)
loop:
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		conn, err := ln.Accept()
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				break loop
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// EMFILE and friends: wait and retry instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("pki: accept failed, retrying", "err", err, "backoff", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					break loop
				}
				continue
			}
			serveErr = fmt.Errorf("pki: accept: %w", err)
			break loop
		}
		backoff = 0
		mu.Lock()
		if closed {
			mu.Unlock()
			conn.Close()
			<-sem
			break loop
		}
		conns[conn] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, conn)
				mu.Unlock()
				conn.Close()
				<-sem
			}()
			s.handle(conn)
		})
	}
	cancel()
	wg.Wait()
	return serveErr
}

// handle serves one request on conn. The caller closes conn.
func (s *Server) handle(conn net.Conn) {
	start := time.Now()
	remote := conn.RemoteAddr()
	log := s.log.With("remote", remote.String())
	if err := conn.SetDeadline(start.Add(serverIOTimeout)); err != nil {
		return
	}
	body, err := readFrame(conn)
	if err != nil {
		if errors.Is(err, errFrameSize) {
			s.logRefused(log, "reason", err)
			s.answerError(conn, codeBadRequest, "message size out of range")
			return
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
			log.Debug("pki: read request", "err", err)
		}
		return
	}
	// Rate limit before any expensive work, and before looking at the
	// token, so guessing tokens is throttled too.
	if !s.lim.allow(limiterKey(remote), s.now()) {
		s.logRefused(log, "reason", "rate limited")
		s.answerError(conn, codeRateLimited, ErrRateLimited.Error())
		return
	}
	req, err := parseRequest(body)
	if err != nil {
		s.logRefused(log, "reason", err)
		s.answerError(conn, codeBadRequest, err.Error())
		return
	}
	if !hmac.Equal(req.MAC, requestMAC(s.token, req.Nonce, req.CSR)) {
		s.logRefused(log, "reason", "invalid join token")
		s.answerError(conn, codeInvalidToken, ErrInvalidToken.Error())
		return
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		s.logRefused(log, "reason", "unparsable CSR", "err", err)
		s.answerError(conn, codeBadRequest, "unparsable CSR")
		return
	}
	cert, certPEM, err := s.ca.signAt(csr, s.validity, s.now())
	if err != nil {
		if errors.Is(err, ErrBadCSR) {
			s.logRefused(log, "reason", err)
			s.answerError(conn, codeBadRequest, err.Error())
		} else {
			log.Error("pki: signing failed", "err", err)
			s.answerError(conn, codeInternal, "internal error")
		}
		return
	}
	resp := response{
		V:    protocolVersion,
		OK:   true,
		Cert: string(certPEM),
		CA:   string(s.ca.certPEM),
	}
	resp.MAC = answerMAC(s.token, req.Nonce, resp.Cert, resp.CA)
	// Logged before the answer is sent: the certificate exists either way.
	log.Info("pki: issued certificate",
		"name", cert.Subject.CommonName,
		"serial", cert.SerialNumber.Text(16),
		"not_after", cert.NotAfter,
		"dns", cert.DNSNames,
		"ips", cert.IPAddresses,
		"duration", time.Since(start))
	if err := encodeJSONFrame(conn, &resp); err != nil {
		log.Warn("pki: write answer", "err", err, "serial", cert.SerialNumber.Text(16))
	}
}

func (s *Server) answerError(w io.Writer, code, msg string) {
	_ = encodeJSONFrame(w, &response{V: protocolVersion, Code: code, Error: msg})
}

// refusedLog rate limits the "refused request" lines, which a flood would
// otherwise write one per request: refusedBurst at once, then refusedRate a
// second; the next line logged counts those left out ("suppressed").
type refusedLog struct {
	mu         sync.Mutex
	b          bucket
	started    bool
	suppressed int
}

const (
	refusedBurst = 20
	refusedRate  = 10.0
)

func (s *Server) logRefused(log *slog.Logger, args ...any) {
	r := &s.refused
	now := time.Now()
	r.mu.Lock()
	if !r.started {
		r.b, r.started = bucket{tokens: refusedBurst, last: now}, true
	}
	r.b.refill(now, refusedRate, refusedBurst)
	if r.b.tokens < 1 {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.b.tokens--
	suppressed := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	log.Warn("pki: refused request", args...)
}

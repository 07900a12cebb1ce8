package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/chaski/pki"
)

func newCACmd() (*command, runner) {
	c := newCommand("ca", "[flags] init | serve",
		"A certificate authority for mutual TLS between nodes.",
		`  init    create the CA in --dir: ca.key (keep it secret) and ca.crt
  serve   run the signing service on --listen: nodes started with
          --ca ADDR --ca-token TOKEN obtain their certificate from it. Without
          --token or --token-file a random join token is made and printed.
          Runs until SIGINT/SIGTERM.`)
	dir := c.fs.String("dir", "", "the CA directory (default <data-dir>/ca, with <data-dir> as for the node commands)")
	c.placeholder("dir", "DIR")
	name := c.fs.String("name", pki.DefaultCAName, "init: the CA certificate's name")
	c.placeholder("name", "NAME")
	validity := c.fs.Duration("validity", pki.DefaultLeafValidity, "serve: lifetime of the node certificates issued")
	c.placeholder("validity", "DUR")
	pwFile := c.fs.String("password-file", "", "a file holding the password that encrypts ca.key (init) or decrypts it (serve)")
	c.placeholder("password-file", "FILE")
	listen := c.fs.String("listen", "127.0.0.1:8510", "serve: the signing service's TCP address")
	c.placeholder("listen", "HOST:PORT")
	token := c.fs.String("token", "", "serve: the join token nodes must present (visible to other local users in the process list; prefer --token-file)")
	c.placeholder("token", "TOKEN")
	tokenFile := c.fs.String("token-file", "", "serve: read the join token from this file")
	c.placeholder("token-file", "FILE")
	asJSON := c.fs.Bool("json", false, "machine-readable output: one JSON object per line")
	logLevel := c.fs.String("log-level", "info", "serve: log level (debug, info, warn, error); the log goes to stderr")
	c.placeholder("log-level", "LEVEL")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) != 1 {
			return usageErrorf("ca needs an action: init or serve (see 'chaski help ca')")
		}
		d := *dir
		if d == "" {
			d = filepath.Join(defaultDataDir(), "ca")
		}
		var password []byte
		if *pwFile != "" {
			b, err := os.ReadFile(*pwFile)
			if err != nil {
				return fmt.Errorf("cannot read the password file: %s", describeFileErr(err))
			}
			password = []byte(strings.TrimRight(string(b), "\r\n"))
		}
		out := newPrinter(e.stdout)
		switch pos[0] {
		case "init":
			ca, err := pki.InitCA(d, pki.CAOptions{Name: *name, Password: password})
			if err != nil {
				if errors.Is(err, pki.ErrCAExists) {
					return fmt.Errorf("a CA already exists in %s (it is never overwritten)", d)
				}
				return fmt.Errorf("cannot create the CA: %s", cleanErr(err))
			}
			fp := sha256.Sum256(ca.Certificate().Raw)
			if *asJSON {
				out.json(event("ca_created").add("dir", d).add("name", ca.Certificate().Subject.CommonName).
					add("certificate", filepath.Join(d, pki.CACertFile)).add("key", filepath.Join(d, pki.CAKeyFile)).
					add("sha256", hex.EncodeToString(fp[:])).add("not_after", ca.Certificate().NotAfter.UTC().Format(time.RFC3339)))
				return nil
			}
			out.linef("created CA %q in %s", ca.Certificate().Subject.CommonName, d)
			out.linef("  certificate: %s (sha256 %s)", filepath.Join(d, pki.CACertFile), hex.EncodeToString(fp[:]))
			out.linef("  key:         %s (keep it secret)", filepath.Join(d, pki.CAKeyFile))
			out.linef("next: chaski ca serve --dir %s --listen HOST:PORT", d)
			return nil
		case "serve":
			level, err := parseLevel(*logLevel)
			if err != nil {
				return usageErrorf("--log-level: %s", err)
			}
			ca, err := pki.LoadCA(d, password)
			if err != nil {
				if errors.Is(err, pki.ErrBadPassword) {
					return fmt.Errorf("cannot load the CA in %s: wrong or missing --password-file", d)
				}
				return fmt.Errorf("cannot load the CA in %s: %s (create it with 'chaski ca init --dir %s')", d, cleanErr(err), d)
			}
			tok := *token
			if *tokenFile != "" {
				if tok != "" {
					return usageErrorf("use either --token or --token-file")
				}
				b, err := os.ReadFile(*tokenFile)
				if err != nil {
					return fmt.Errorf("cannot read the token file: %s", describeFileErr(err))
				}
				tok = strings.TrimSpace(string(b))
			}
			generated := false
			if tok == "" {
				if tok, err = pki.NewToken(); err != nil {
					return err
				}
				generated = true
			}
			ln, err := net.Listen("tcp", *listen)
			if err != nil {
				return fmt.Errorf("cannot listen on %s: %s", *listen, describeNetErr(err))
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			srv := pki.NewServer(ca, tok, pki.ServerOptions{Validity: *validity, Logger: log})
			addr := ln.Addr().String()
			if *asJSON {
				o := event("listening").add("address", addr).add("dir", d)
				if generated {
					o = o.add("token", tok)
				}
				out.json(o)
			} else {
				out.linef("CA signing service listening on %s", addr)
				if generated {
					out.linef("join token: %s", tok)
				}
				out.linef("nodes join with: chaski node --ca %s --ca-token TOKEN", addr)
			}
			if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
				return fmt.Errorf("the signing service stopped: %s", cleanErr(err))
			}
			return nil
		}
		return unknownAction("ca", pos[0], []string{"init", "serve"})
	}
}

// describeNetErr drops the "listen tcp ..." prefix of net errors.
func describeNetErr(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/internal/metrics"
	"github.com/chaski-dev/chaski/internal/sshui"
)

// serveOpts are the flags of the services a running node can offer on the
// side: Prometheus metrics (node and tui) and the dashboard over SSH (node).
type serveOpts struct {
	metrics     string
	ssh         string
	sshKeys     string
	sshSessions int
	sshIdle     time.Duration
	theme       string
	withSSH     bool
}

func addServeFlags(c *command, withSSH bool) *serveOpts {
	s := &serveOpts{withSSH: withSSH}
	c.fs.StringVar(&s.metrics, "metrics", "", "serve Prometheus metrics at http://HOST:PORT/metrics (names start with chaski_; see docs/OPERATIONS.md)")
	c.placeholder("metrics", "HOST:PORT")
	if !withSSH {
		return s
	}
	c.fs.StringVar(&s.ssh, "ssh", "", "serve this node's dashboard over SSH on HOST:PORT to the keys of --ssh-keys")
	c.placeholder("ssh", "HOST:PORT")
	c.fs.StringVar(&s.sshKeys, "ssh-keys", "", "the keys allowed in over --ssh (authorized_keys format; the option chaski-read-only makes a key a viewer that cannot change the node)")
	c.placeholder("ssh-keys", "FILE")
	c.fs.IntVar(&s.sshSessions, "ssh-max-sessions", sshui.DefaultMaxSessions, "at most this many SSH viewers at once")
	c.placeholder("ssh-max-sessions", "N")
	c.fs.DurationVar(&s.sshIdle, "ssh-idle-timeout", sshui.DefaultIdleTimeout, "close an SSH session after this long without a key typed")
	c.placeholder("ssh-idle-timeout", "DUR")
	c.fs.StringVar(&s.theme, "theme", "", "colour theme of the SSH dashboard: default, dark, light, colorblind or mono")
	c.placeholder("theme", "NAME")
	return s
}

func (s *serveOpts) validate() error {
	if !s.withSSH {
		return nil
	}
	if s.ssh != "" && s.sshKeys == "" {
		return usageErrorf("--ssh needs --ssh-keys FILE (an authorized_keys file): the dashboard is only served to known keys")
	}
	if s.ssh == "" && s.sshKeys != "" {
		return usageErrorf("--ssh-keys is for --ssh HOST:PORT")
	}
	if s.sshSessions < 1 {
		return usageErrorf("--ssh-max-sessions must be at least 1")
	}
	if s.sshIdle <= 0 {
		return usageErrorf("--ssh-idle-timeout must be positive")
	}
	return nil
}

// services are the side services started for a node.
type services struct {
	metrics *metrics.Server
	ssh     *sshui.Server
}

// start starts what the flags ask for. stop must run before the node closes
// (it ends the SSH sessions first, so each viewer reads that the node
// stopped).
func (s *serveOpts) start(n *chaski.Node, dataDir string) (*services, error) {
	sv := &services{}
	if s.metrics != "" {
		m, err := metrics.Listen(s.metrics, n, metrics.Options{})
		if err != nil {
			return nil, fmt.Errorf("--metrics %s: %w", s.metrics, err)
		}
		sv.metrics = m
	}
	if s.ssh != "" {
		srv, err := sshui.Listen(sshui.Config{
			Node: n, Addr: s.ssh, AuthorizedKeys: s.sshKeys,
			HostKeyPath: filepath.Join(dataDir, "ssh_host_ed25519_key"),
			MaxSessions: s.sshSessions, IdleTimeout: s.sshIdle, Theme: s.theme,
			Title:  "chaski " + n.Name(),
			Logger: n.Config().Logger,
		})
		if err != nil {
			sv.stop()
			return nil, fmt.Errorf("--ssh %s: %w", s.ssh, err)
		}
		sv.ssh = srv
	}
	return sv, nil
}

func (sv *services) stop() {
	if sv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if sv.ssh != nil {
		_ = sv.ssh.Close(ctx)
		sv.ssh = nil
	}
	if sv.metrics != nil {
		_ = sv.metrics.Close(ctx)
		sv.metrics = nil
	}
}

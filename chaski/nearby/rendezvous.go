package nearby

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The rendezvous directory: one small JSON file per running node
// ("<id>.node"), so that nodes on one machine find each other where
// multicast cannot reach (the loopback interface has no multicast).
const (
	rendezvousExt      = ".node"
	maxRendezvousFile  = 4 << 10 // bytes read of one file
	maxRendezvousFiles = 256     // files looked at per scan
	// heartbeat is how often a node touches its file. A file whose process
	// is gone (in our pid namespace) is removed by any reader at once; a
	// file not touched for staleAfter is ignored (a frozen node, or a pid
	// of another namespace).
	heartbeat  = 5 * time.Second
	staleAfter = 30 * time.Second
)

// rendezvousFile is the content of one file.
type rendezvousFile struct {
	TXT     []string `json:"txt"`     // the same strings as the mDNS TXT record
	Address string   `json:"address"` // host:port to dial from this machine
	PID     int      `json:"pid"`
	NetNS   string   `json:"netns,omitempty"` // network namespace (Linux), e.g. "net:[4026531840]"
	PIDNS   string   `json:"pidns,omitempty"` // pid namespace (Linux): where PID means something
}

// DefaultDir is the rendezvous directory: $XDG_RUNTIME_DIR/chaski, or
// chaski-<uid> under the temporary directory when XDG_RUNTIME_DIR is unset.
func DefaultDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "chaski")
	}
	return filepath.Join(os.TempDir(), "chaski-"+strconv.Itoa(os.Getuid()))
}

type rendezvous struct {
	dir   string
	netns string
	pidns string
	file  string // our file, once published
	cache map[string]cachedFile
}

type cachedFile struct {
	mod  time.Time
	size int64
	peer *Peer // nil: not a usable entry
	pid  int   // >0: a process of our pid namespace whose death makes the file stale
}

func openRendezvous(dir string) (*rendezvous, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nearby: rendezvous directory: %w", err)
	}
	if err := checkPrivateDir(dir); err != nil {
		return nil, err
	}
	ns, _ := os.Readlink("/proc/self/ns/net")
	pns, _ := os.Readlink("/proc/self/ns/pid")
	return &rendezvous{dir: dir, netns: ns, pidns: pns, cache: map[string]cachedFile{}}, nil
}

// localAddress is the address other processes of this machine dial: an
// unspecified host becomes the loopback address of its family.
func localAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || (ip != nil && ip.Equal(net.IPv4zero)):
		host = "127.0.0.1"
	case ip != nil && ip.Equal(net.IPv6unspecified):
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

func (r *rendezvous) publish(s Service) error {
	if s.ID == "" {
		return nil
	}
	body, err := json.Marshal(rendezvousFile{
		TXT: EncodeTXT(s.Record), Address: localAddress(s.Listen), PID: os.Getpid(), NetNS: r.netns, PIDNS: r.pidns,
	})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(r.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("nearby: rendezvous file: %w", err)
	}
	_, werr := tmp.Write(body)
	cerr := tmp.Close()
	name := filepath.Join(r.dir, s.ID+rendezvousExt)
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("nearby: rendezvous file: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("nearby: rendezvous file: %w", err)
	}
	r.file = name
	return nil
}

func (r *rendezvous) touch() {
	if r.file != "" {
		now := time.Now()
		_ = os.Chtimes(r.file, now, now)
	}
}

func (r *rendezvous) remove() {
	if r.file != "" {
		os.Remove(r.file)
	}
}

// scan reads the directory and returns the nodes it lists. Files of dead
// processes are removed, files not touched for staleAfter are skipped, and
// so are files of other network namespaces (their addresses mean nothing
// here).
func (r *rendezvous) scan(self string) (peers []Peer, malformed int) {
	f, err := os.Open(r.dir)
	if err != nil {
		return nil, 0
	}
	names, _ := f.Readdirnames(maxRendezvousFiles)
	f.Close()
	now := time.Now()
	seen := map[string]bool{}
	for _, name := range names {
		if !strings.HasSuffix(name, rendezvousExt) || strings.TrimSuffix(name, rendezvousExt) == self {
			continue
		}
		seen[name] = true
		path := filepath.Join(r.dir, name)
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		c, ok := r.cache[name]
		if !ok || !c.mod.Equal(fi.ModTime()) || c.size != fi.Size() {
			c = cachedFile{mod: fi.ModTime(), size: fi.Size()}
			rf, err := readRendezvousFile(path)
			if err != nil {
				malformed++
			} else if p, err := rf.peer(); err != nil || p.ID+rendezvousExt != name {
				malformed++
			} else {
				if rf.PIDNS == r.pidns {
					c.pid = rf.PID
				}
				if rf.NetNS == "" || r.netns == "" || rf.NetNS == r.netns {
					c.peer = &p
				}
			}
			r.cache[name] = c
		}
		if c.pid > 0 && !processAlive(c.pid) {
			os.Remove(path) // a node that crashed leaves the list at the next scan
			continue
		}
		if now.Sub(fi.ModTime()) > staleAfter {
			continue
		}
		if c.peer != nil {
			peers = append(peers, *c.peer)
		}
	}
	for name := range r.cache {
		if !seen[name] {
			delete(r.cache, name)
		}
	}
	return peers, malformed
}

func readRendezvousFile(path string) (rendezvousFile, error) {
	var rf rendezvousFile
	f, err := os.Open(path)
	if err != nil {
		return rf, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRendezvousFile+1))
	if err != nil {
		return rf, err
	}
	if len(b) > maxRendezvousFile {
		return rf, fmt.Errorf("%w: rendezvous file over %d bytes", ErrMalformed, maxRendezvousFile)
	}
	if err := json.Unmarshal(b, &rf); err != nil {
		return rf, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return rf, nil
}

func (rf rendezvousFile) peer() (Peer, error) {
	rec, err := ParseTXT(rf.TXT)
	if err != nil {
		return Peer{}, err
	}
	host, port, err := net.SplitHostPort(rf.Address)
	if err != nil || net.ParseIP(host) == nil {
		return Peer{}, fmt.Errorf("%w: address %q", ErrMalformed, rf.Address)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return Peer{}, fmt.Errorf("%w: address %q", ErrMalformed, rf.Address)
	}
	if rf.PID <= 0 {
		return Peer{}, fmt.Errorf("%w: pid %d", ErrMalformed, rf.PID)
	}
	return Peer{Record: rec, Address: rf.Address, Via: ViaLocal}, nil
}

func (d *Discovery) rendezvousLoop() {
	scan := time.NewTicker(d.cfg.ScanInterval)
	defer scan.Stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for {
		self, _ := d.service()
		peers, bad := d.rdv.scan(self.ID)
		d.malformed.Add(uint64(bad))
		listed := map[string]bool{}
		for _, p := range peers {
			listed[p.ID] = true
			d.upsert(p, 2*d.cfg.ScanInterval+time.Second)
		}
		// A file that disappeared (its node closed) takes its entry along
		// at once, not only when the entry expires.
		d.removeWhere(func(p *Peer) bool { return p.Via == ViaLocal && !listed[p.ID] })
		select {
		case <-d.ctx.Done():
			return
		case <-beat.C:
			d.rdv.touch()
		case <-scan.C:
		}
	}
}

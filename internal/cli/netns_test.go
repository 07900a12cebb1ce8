package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMultiHostLinkCut runs two nodes in two network namespaces joined by a
// veth pair (our own test hosts, addresses inside the namespaces only), cuts
// the link and restores it: the edge is lost, the dialing side goes to
// "reconnecting", and the edge comes back by itself.
//
// It needs root and iproute2; elsewhere it is skipped with the reason.
func TestMultiHostLinkCut(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-host test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("multi-host test needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("multi-host test needs iproute2 (ip)")
	}
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	nsA, nsB := "chaskiA"+suffix, "chaskiB"+suffix
	vethA, vethB := "chva"+suffix, "chvb"+suffix
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", nsA); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { _ = ip("netns", "del", nsA) })
	if err := ip("netns", "add", nsB); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { _ = ip("netns", "del", nsB) })
	// 10.213.0.0/30 exists only inside these two namespaces.
	for _, args := range [][]string{
		{"link", "add", vethA, "type", "veth", "peer", "name", vethB},
		{"link", "set", vethA, "netns", nsA},
		{"link", "set", vethB, "netns", nsB},
		{"-n", nsA, "addr", "add", "10.213.0.1/30", "dev", vethA},
		{"-n", nsB, "addr", "add", "10.213.0.2/30", "dev", vethB},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
		{"-n", nsA, "link", "set", vethA, "up"},
		{"-n", nsB, "link", "set", vethB, "up"},
	} {
		if err := ip(args...); err != nil {
			t.Skipf("cannot build the test network: %v", err)
		}
	}

	a := startInNS(t, nsA, "node", "--json", "--name", "hostA", "--listen", "10.213.0.1:0", "--ping-interval", "250ms")
	listening := a.waitEvent(t, "listening", 20*time.Second)
	addrA := listening["address"].(string)
	b := startInNS(t, nsB, "node", "--json", "--name", "hostB", "--listen", "10.213.0.2:0", "--ping-interval", "250ms", "--connect", addrA)
	addrB := b.waitEvent(t, "listening", 20*time.Second)["address"].(string)
	b.waitEvent(t, "edge_up", 20*time.Second)
	a.waitEvent(t, "edge_up", 20*time.Second)

	// Cut the link: no FIN, no RST; keep-alive has to notice.
	if err := ip("-n", nsB, "link", "set", vethB, "down"); err != nil {
		t.Fatal(err)
	}
	down := b.waitEvent(t, "edge_down", 60*time.Second)
	t.Logf("edge_down on B: %v", down["reason"])
	if down["reason"] == nil || down["reason"] == "" {
		t.Fatal("edge_down without a reason")
	}
	// B's status says it is reconnecting (asked over UDP inside B's namespace).
	out, err := exec.Command("ip", "netns", "exec", nsB, chaskiBin, "status", addrB).Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var st map[string]any
	if err := json.Unmarshal(out, &st); err != nil || st["reconnecting"] != true {
		t.Fatalf("status while the link is down: %s (%v)", out, err)
	}
	// Restore it: B (which dialed) reconnects on its own.
	time.Sleep(500 * time.Millisecond) // let at least one reconnect attempt fail while the link is down
	if err := ip("-n", nsB, "link", "set", vethB, "up"); err != nil {
		t.Fatal(err)
	}
	b.waitEvent(t, "edge_up", 90*time.Second)
}

type nsProc struct {
	mu     sync.Mutex
	lines  []string
	next   int
	change chan struct{}
	cmd    *exec.Cmd
}

func startInNS(t *testing.T, ns string, args ...string) *nsProc {
	t.Helper()
	p := &nsProc{change: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, chaskiBin}, args...)...)
	p.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+t.TempDir(), "XDG_RUNTIME_DIR="+t.TempDir())
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	p.cmd.Stderr = &stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		scanLines(out, &p.mu, &p.lines, &p.change)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-done
		_ = p.cmd.Wait()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s %v\nstdout:\n%s\nstderr:\n%s", ns, args, strings.Join(p.lines, "\n"), stderr.String())
			p.mu.Unlock()
		}
	})
	return p
}

// waitEvent waits for the next JSON line (after those already consumed)
// whose event field is name.
func (p *nsProc) waitEvent(t *testing.T, name string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for ; p.next < len(p.lines); p.next++ {
			var ev map[string]any
			if json.Unmarshal([]byte(p.lines[p.next]), &ev) == nil && ev["event"] == name {
				p.next++
				p.mu.Unlock()
				return ev
			}
		}
		change := p.change
		p.mu.Unlock()
		select {
		case <-change:
		case <-deadline:
			t.Fatalf("no %s event within %v", name, timeout)
		}
	}
}

package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNetnsLANNodes: two `chaski node --lan` in two network namespaces
// joined by a veth pair (addresses that exist only there), without
// --listen or --connect: each listens on 0.0.0.0, they find each other by
// multicast DNS and connect; `chaski lan --json` in one namespace lists the
// other node with its address on the link. Needs root and iproute2.
func TestNetnsLANNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("network-namespace test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("network-namespace test needs root to create namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network-namespace test needs iproute2 (ip)")
	}
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	nsA, nsB := "chlanA"+suffix, "chlanB"+suffix
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, ns := range []string{nsA, nsB} {
		if err := ip("netns", "add", ns); err != nil {
			t.Skipf("cannot create network namespaces here: %v", err)
		}
		t.Cleanup(func() { _ = ip("netns", "del", ns) })
	}
	for _, args := range [][]string{
		{"-n", nsA, "link", "add", "lan0", "type", "veth", "peer", "name", "lan0", "netns", nsB},
		{"-n", nsA, "addr", "add", "10.216.0.1/24", "dev", "lan0"},
		{"-n", nsB, "addr", "add", "10.216.0.2/24", "dev", "lan0"},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
		{"-n", nsA, "link", "set", "lan0", "up"},
		{"-n", nsB, "link", "set", "lan0", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Skipf("cannot build the test network: %v", err)
		}
	}
	a := startInNS(t, nsA, "node", "--json", "--lan", "--name", "hostA", "--sub", "chat", "--ping-interval", "250ms", "--log-level", "debug")
	b := startInNS(t, nsB, "node", "--json", "--lan", "--name", "hostB", "--sub", "chat", "--ping-interval", "250ms", "--log-level", "debug")
	if addr := a.waitEvent(t, "listening", 20*time.Second)["address"].(string); !strings.HasPrefix(addr, "0.0.0.0:") {
		t.Fatalf("with --lan and no --listen hostA listens on %s, want 0.0.0.0", addr)
	}
	b.waitEvent(t, "listening", 20*time.Second)
	up := a.waitEvent(t, "edge_up", 45*time.Second)
	if up["peer"] != "hostB" {
		t.Fatalf("hostA's edge: %v", up)
	}
	b.waitEvent(t, "edge_up", 45*time.Second)

	cmd := exec.Command("ip", "netns", "exec", nsB, chaskiBin, "lan", "--json", "--timeout", "3s")
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chaski lan: %v", err)
	}
	found := false
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var p map[string]any
		if json.Unmarshal([]byte(l), &p) != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if p["name"] == "hostA" {
			found = true
			if !strings.HasPrefix(fmt.Sprint(p["address"]), "10.216.0.1:") || p["via"] != "mdns" {
				t.Fatalf("hostA listed as %v", p)
			}
		}
	}
	if !found {
		t.Fatalf("chaski lan in hostB's namespace does not list hostA:\n%s", out)
	}
}

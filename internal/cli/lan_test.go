package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// lanEnv is testEnv with nearby discovery allowed again, sharing the
// rendezvous directory dir; multicast stays off (nothing leaves loopback).
func lanEnv(t *testing.T, dir string) []string {
	var env []string
	for _, kv := range testEnv(t) {
		if !strings.HasPrefix(kv, "CHASKI_NO_LAN=") && !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") {
			env = append(env, kv)
		}
	}
	return append(env, "XDG_RUNTIME_DIR="+dir)
}

// Two headless nodes with --lan and no --connect find each other (the
// nearby event), connect, and `chaski lan --json` lists both with the
// contract's fields; a node with --no-lan is not listed.
func TestLANNodesAndLanJSON(t *testing.T) {
	dir := t.TempDir()
	env := lanEnv(t, dir)
	a := startEnv(t, env, "node", "--json", "--listen", "127.0.0.1:0", "--lan", "--name", "ann", "--sub", "chat")
	b := startEnv(t, env, "node", "--json", "--listen", "127.0.0.1:0", "--lan", "--name", "ben", "--sub", "chat,news", "--lan-topics", "chat")
	startEnv(t, env, "node", "--json", "--listen", "127.0.0.1:0", "--lan", "--no-lan", "--name", "nobody", "--sub", "chat")
	_, line := a.waitLine(0, waitFor, "ben nearby", func(l string) bool {
		ev := jsonEvent(l)
		return ev != nil && ev["event"] == "nearby" && ev["name"] == "ben"
	})
	ev := jsonEvent(line)
	if topics, _ := ev["topics"].([]any); len(topics) != 1 || topics[0] != "chat" || ev["address"] == "" {
		t.Fatalf("nearby event: %s", line)
	}
	a.waitLine(0, waitFor, "edge to ben", func(l string) bool {
		ev := jsonEvent(l)
		return ev != nil && ev["event"] == "edge_up" && ev["peer"] == "ben"
	})
	b.waitLine(0, waitFor, "edge to ann", func(l string) bool {
		ev := jsonEvent(l)
		return ev != nil && ev["event"] == "edge_up" && ev["peer"] == "ann"
	})

	out, errOut, code := runEnv(t, env, "", "lan", "--json", "--timeout", "1s")
	if code != 0 {
		t.Fatalf("lan --json: exit %d: %s", code, errOut)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var p struct {
			Name    string   `json:"name"`
			ID      string   `json:"id"`
			Address string   `json:"address"`
			Topics  []string `json:"topics"`
			TLS     *bool    `json:"tls"`
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil || p.ID == "" || p.Address == "" || p.TLS == nil || *p.TLS || p.Topics == nil {
			t.Fatalf("lan --json line %q: %v", l, err)
		}
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"ann", "ben"}) {
		t.Fatalf("lan --json lists %v, want ann and ben:\n%s", names, out)
	}

	out, _, code = runEnv(t, env, "", "lan", "--timeout", "500ms")
	t.Logf("chaski lan:\n%s", out)
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "ann") || !strings.Contains(out, "ben") {
		t.Fatalf("lan table: exit %d\n%s", code, out)
	}
}

// With nothing nearby, `chaski lan` says so and exits 0.
func TestLANNothingNearby(t *testing.T) {
	out, _, code := runEnv(t, lanEnv(t, t.TempDir()), "", "lan", "--timeout", "200ms")
	if code != 0 || !strings.Contains(out, "no nodes nearby") {
		t.Fatalf("exit %d: %q", code, out)
	}
	out, _, code = runEnv(t, lanEnv(t, t.TempDir()), "", "lan", "--json", "--timeout", "200ms")
	if code != 0 || out != "" {
		t.Fatalf("--json with nothing nearby: exit %d: %q", code, out)
	}
}

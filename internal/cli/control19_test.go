package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// While a node holds the store, store get/ls/put/del reach it through its
// control socket: a key put by the CLI is in the running node's store (the
// node fetches it for a peer), and the socket is the owner's only.
func TestStoreCommandsReachRunningNode(t *testing.T) {
	dir := t.TempDir()
	if _, e, code := runCmd(t, "", "store", "put", "before", "was here", "--data-dir", dir); code != 0 {
		t.Fatalf("put before the node: %s", e)
	}
	node, addr := startNode(t, "--data-dir", dir, "--name", "holder")
	sock := filepath.Join(dir, "control.sock")
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %s: %v, %v (want a socket, mode 0600)", sock, fi, err)
	}
	out, e, code := runCmd(t, "", "store", "get", "before", "--data-dir", dir)
	if code != 0 || out != "was here\n" {
		t.Fatalf("get while the node runs: exit %d, %q, %s", code, out, e)
	}
	if _, e, code := runCmd(t, "", "store", "put", "live", "added while running", "--data-dir", dir); code != 0 {
		t.Fatalf("put while the node runs: exit %d, %s", code, e)
	}
	out, e, code = runCmd(t, "", "store", "ls", "--json", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, `"key":"before"`) || !strings.Contains(out, `"key":"live"`) {
		t.Fatalf("ls while the node runs: exit %d, %q, %s", code, out, e)
	}
	// The running node really has it: a peer fetches it from the node.
	out, e, code = runCmd(t, "", "store", "fetch", "live", "--connect", addr, "--data-dir", t.TempDir())
	if code != 0 || out != "added while running\n" {
		t.Fatalf("a peer's fetch from the running node: exit %d, %q, %s", code, out, e)
	}
	if _, e, code := runCmd(t, "", "store", "del", "live", "--data-dir", dir); code != 0 {
		t.Fatalf("del while the node runs: exit %d, %s", code, e)
	}
	if _, e, code := runCmd(t, "", "store", "get", "live", "--data-dir", dir); code != 1 || !strings.Contains(e, `key "live" not found`) {
		t.Fatalf("get after del: exit %d, %q", code, e)
	}
	// The local node's status, without UDP.
	out, e, code = runCmd(t, "", "status", "--data-dir", dir)
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["name"] != "holder" || st["address"] != addr {
		t.Fatalf("status of the local node: exit %d, %q, %s", code, out, e)
	}
	// The node gone, the commands use the file again and the socket is removed.
	_ = node.cmd.Process.Signal(os.Interrupt)
	if code := node.wait(waitFor); code != 0 {
		t.Fatalf("node exit %d", code)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket outlived the node: %v", err)
	}
	if out, _, code := runCmd(t, "", "store", "get", "before", "--data-dir", dir); code != 0 || out != "was here\n" {
		t.Fatalf("get after the node: exit %d, %q", code, out)
	}
	if _, e, code := runCmd(t, "", "status", "--data-dir", dir); code != 1 || !strings.Contains(e, "no chaski node runs with the data dir") {
		t.Fatalf("status with no local node: exit %d, %q", code, e)
	}
}

// store fetch KEY with the key in the local store needs no --connect.
func TestStoreFetchLocalWithoutConnect(t *testing.T) {
	dir := t.TempDir()
	if _, e, code := runCmd(t, "", "store", "put", "here", "local value", "--data-dir", dir); code != 0 {
		t.Fatalf("put: %s", e)
	}
	out, e, code := runCmd(t, "", "store", "fetch", "here", "--data-dir", dir)
	if code != 0 || out != "local value\n" {
		t.Fatalf("fetch of a local key: exit %d, %q, %s", code, out, e)
	}
	_, e, code = runCmd(t, "", "store", "fetch", "absent", "--data-dir", dir)
	if code != 2 || !strings.Contains(e, "--connect") || strings.Count(e, "\n") != 1 {
		t.Fatalf("fetch of an absent key without --connect: exit %d, %q", code, e)
	}
	// With a node running on the data dir, fetch goes through it.
	startNode(t, "--data-dir", dir)
	out, e, code = runCmd(t, "", "store", "fetch", "here", "--data-dir", dir)
	if code != 0 || out != "local value\n" {
		t.Fatalf("fetch through the running node: exit %d, %q, %s", code, out, e)
	}
	_, e, code = runCmd(t, "", "store", "fetch", "absent", "--data-dir", dir, "--timeout", "1s")
	if code != 1 || !strings.Contains(e, `"absent"`) {
		t.Fatalf("fetch of an absent key through the running node: exit %d, %q", code, e)
	}
}

// help store says where the default TTL comes from and how to change it.
func TestHelpStoreTTL(t *testing.T) {
	out, _, code := runCmd(t, "", "help", "store")
	if code != 0 || !strings.Contains(out, "one hour is the original's") || !strings.Contains(out, "store_ttl") {
		t.Fatalf("help store: exit %d\n%s", code, out)
	}
}

// A bad --theme is refused as a usage error before any node starts (so
// also without a terminal, where the dashboard would refuse to start).
func TestBadThemeRefusedBeforeStart(t *testing.T) {
	dir := t.TempDir()
	_, e, code := runCmd(t, "", "tui", "--theme", "bogus", "--data-dir", dir)
	if code != 2 || !strings.Contains(e, `--theme: unknown theme "bogus"`) || strings.Count(e, "\n") != 1 {
		t.Fatalf("--theme bogus: exit %d, %q", code, e)
	}
	if _, err := os.Stat(filepath.Join(dir, "chaski.log")); !os.IsNotExist(err) {
		t.Errorf("a log file was opened before the theme was checked: %v", err)
	}
}

// store fetch --move takes a key out of a holder that allows it (the
// original's fetch), and is a copy from one that does not; the status says
// whether a node accepts files.
func TestStoreFetchMove(t *testing.T) {
	giving, keeping := t.TempDir(), t.TempDir()
	for _, dir := range []string{giving, keeping} {
		if _, e, code := runCmd(t, "", "store", "put", "k", "value", "--data-dir", dir); code != 0 {
			t.Fatalf("put: %s", e)
		}
	}
	_, gaddr := startNode(t, "--data-dir", giving, "--name", "giving", "--allow-fetch-move", "--accept-files", "--download-dir", t.TempDir())
	_, kaddr := startNode(t, "--data-dir", keeping, "--name", "keeping")

	out, e, code := runCmd(t, "", "store", "fetch", "k", "--move", "--json", "--connect", gaddr, "--data-dir", t.TempDir())
	var ent map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &ent) != nil || ent["moved"] != true || ent["size"] != float64(5) {
		t.Fatalf("fetch --move from a giving holder: exit %d, %q, %s", code, out, e)
	}
	if _, e, code := runCmd(t, "", "store", "get", "k", "--data-dir", giving); code != 1 || !strings.Contains(e, `key "k" not found`) {
		t.Fatalf("the giving holder still has the key: exit %d, %q", code, e)
	}
	out, e, code = runCmd(t, "", "store", "fetch", "k", "--move", "--connect", kaddr, "--data-dir", t.TempDir())
	if code != 0 || out != "value\n" || !strings.Contains(e, "the holder kept its copy") {
		t.Fatalf("fetch --move from a keeping holder: exit %d, %q, %q", code, out, e)
	}
	if out, e, code := runCmd(t, "", "store", "get", "k", "--data-dir", keeping); code != 0 || out != "value\n" {
		t.Fatalf("the keeping holder lost the key: exit %d, %q, %s", code, out, e)
	}

	// Through a running node's control socket: that node asks its network.
	if _, e, code := runCmd(t, "", "store", "put", "k2", "second", "--data-dir", giving); code != 0 {
		t.Fatalf("put k2 into the running holder: %s", e)
	}
	asker := t.TempDir()
	startNode(t, "--data-dir", asker, "--name", "asker", "--connect", gaddr)
	deadline := time.Now().Add(waitFor)
	for {
		out, _, _ := runCmd(t, "", "status", "--data-dir", asker)
		var st map[string]any
		if json.Unmarshal([]byte(out), &st) == nil && st["edges"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the asker did not connect: %q", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, e, code = runCmd(t, "", "store", "fetch", "k2", "--move", "--data-dir", asker)
	if code != 0 || out != "second\n" || e != "" {
		t.Fatalf("fetch --move through the control socket: exit %d, %q, %q", code, out, e)
	}
	if _, e, code := runCmd(t, "", "store", "get", "k2", "--data-dir", giving); code != 1 {
		t.Fatalf("the giving holder still has k2: exit %d, %q", code, e)
	}

	for addr, want := range map[string]bool{gaddr: true, kaddr: false} {
		out, e, code := runCmd(t, "", "status", addr, "--timeout", "5s")
		var st map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["accepts_files"] != want {
			t.Fatalf("status of %s: exit %d, %q, %s; want accepts_files %v", addr, code, out, e, want)
		}
	}
}

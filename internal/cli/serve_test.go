package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// `chaski node --metrics --ssh --ssh-keys` serves /metrics and the
// dashboard of that node; SIGTERM ends the SSH session with a notice and
// the node exits 0. The host key lands in the data dir, mode 0600.
func TestNodeServesMetricsAndSSH(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := gossh.NewSignerFromKey(priv)
	sp, _ := gossh.NewPublicKey(pub)
	keys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keys, gossh.MarshalAuthorizedKey(sp), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "node", "--json", "--listen", "127.0.0.1:0", "--name", "served", "--data-dir", dir,
		"--metrics", "127.0.0.1:0", "--ssh", "127.0.0.1:0", "--ssh-keys", keys)
	_, first := p.waitLine(0, waitFor, "the listening line", func(string) bool { return true })
	ev := jsonEvent(first)
	metricsAddr, _ := ev["metrics"].(string)
	sshAddr, _ := ev["ssh"].(string)
	if ev["event"] != "listening" || metricsAddr == "" || sshAddr == "" {
		t.Fatalf("listening event without the metrics and ssh addresses: %q", first)
	}

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `chaski_node_info{`) || !strings.Contains(string(body), `name="served"`) {
		t.Fatalf("metrics:\n%.2000s", body)
	}

	st, err := os.Stat(filepath.Join(dir, "ssh_host_ed25519_key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key: %v %v", err, st)
	}
	client, err := gossh.Dial("tcp", sshAddr, &gossh.ClientConfig{User: "me", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: func(string, net.Addr, gossh.PublicKey) error { return nil }, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", 24, 100, nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var screen bytes.Buffer
	sess.Stdout = lockedWriter{&mu, &screen}
	sess.Stderr = lockedWriter{&mu, &screen}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	text := func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(text(), "chaski served") {
		if time.Now().After(deadline) {
			t.Fatalf("no dashboard over ssh: %q", text())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(waitFor); code != 0 {
		t.Fatalf("node exit %d after SIGTERM: %s", code, p.stderrText())
	}
	_ = sess.Wait()
	if !strings.Contains(text(), "the node stopped") {
		t.Fatalf("the viewer was not told: %q", text()[max(0, len(text())-300):])
	}
}

func TestSSHFlagsNeedEachOther(t *testing.T) {
	_, e, code := runCmd(t, "", "node", "--ssh", "127.0.0.1:0")
	if code != 2 || !strings.Contains(e, "--ssh-keys") {
		t.Fatalf("--ssh alone: exit %d, %q", code, e)
	}
}

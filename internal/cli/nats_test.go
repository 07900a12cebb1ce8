package cli

import (
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// testNATS runs a real nats-server in this process on 127.0.0.1 with
// JetStream in a temp dir; restart keeps its port.
type testNATS struct {
	t    *testing.T
	opts server.Options
	srv  *server.Server
}

func startNATS(t *testing.T, edit func(*server.Options)) *testNATS {
	t.Helper()
	s := &testNATS{t: t, opts: server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()}}
	if edit != nil {
		edit(&s.opts)
	}
	s.start()
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.stop)
	return s
}

func (s *testNATS) start() {
	o := s.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		s.t.Fatal("nats server not ready")
	}
	s.srv = srv
}

func (s *testNATS) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

func (s *testNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.opts.Port) }

// chaski node --nats: bridge_up, both directions, the status's nats object,
// bridge_down and bridge_up again when the server restarts.
func TestNATSBridgeNode(t *testing.T) {
	s := startNATS(t, nil)
	p, addr := startNode(t, "--sub", "chat", "--name", "bridged", "--nats", s.url())
	_, line := p.waitLine(1, waitFor, "bridge_up", isEvent("bridge_up"))
	if ev := jsonEvent(line); ev["url"] != s.url() {
		t.Fatalf("bridge_up: %s", line)
	}
	nc, err := nats.Connect(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("chaski.chat", got); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	if _, e, code := runCmd(t, "", "pub", "--connect", addr, "chat", "hello nats"); code != 0 {
		t.Fatalf("pub: %d %s", code, e)
	}
	select {
	case m := <-got:
		if string(m.Data) != "hello nats" || m.Header.Get("Chaski-Id") == "" || m.Header.Get("Chaski-From") == "" {
			t.Fatalf("on NATS: %q %v", m.Data, m.Header)
		}
	case <-time.After(waitFor):
		t.Fatal("the mesh message did not reach NATS")
	}
	if err := nc.Publish("chaski.chat", []byte("hello mesh")); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	p.waitLine(1, waitFor, "the NATS message", func(l string) bool {
		ev := jsonEvent(l)
		return ev != nil && ev["event"] == "message" && ev["data"] == "hello mesh" && ev["topic"] == "chat"
	})

	out, e, code := runCmd(t, "", "status", addr, "--timeout", "5s")
	if code != 0 {
		t.Fatalf("status: %d %s", code, e)
	}
	st := jsonEvent(strings.TrimSpace(out))
	nst, _ := st["nats"].(map[string]any)
	if nst == nil || nst["state"] != "up" || nst["server"] != s.url() || nst["msgs_out"] != float64(1) || nst["msgs_in"] != float64(1) {
		t.Fatalf("status has no proper nats object: %s", out)
	}
	if _, ok := nst["rtt_ms"]; !ok {
		t.Fatalf("status: no rtt_ms: %s", out)
	}

	p.mu.Lock()
	n := len(p.lines)
	p.mu.Unlock()
	s.stop()
	_, line = p.waitLine(n, waitFor, "bridge_down", isEvent("bridge_down"))
	if ev := jsonEvent(line); ev["reason"] == "" {
		t.Fatalf("bridge_down without a reason: %s", line)
	}
	s.start()
	_, line = p.waitLine(n, waitFor, "bridge_up after the restart", isEvent("bridge_up"))
	if ev := jsonEvent(line); ev["reason"] != "reconnected" {
		t.Fatalf("bridge_up: %s", line)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(waitFor); code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderrText())
	}
}

// Bad URL, nobody listening, refused credentials, a denied subject: one
// sentence on stderr and a non-zero exit.
func TestNATSBridgeErrors(t *testing.T) {
	s := startNATS(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "ok", Password: "pw"},
			{Username: "nosub", Password: "pw", Permissions: &server.Permissions{
				Subscribe: &server.SubjectPermission{Deny: []string{"chaski.chat"}}}},
		}
	})
	dead := startNATS(t, nil)
	deadURL := dead.url()
	dead.stop()
	withUser := func(u string) string { return strings.Replace(s.url(), "nats://", "nats://"+u+"@", 1) }
	for _, c := range []struct {
		url  string
		code int
		want string
	}{
		{"http://127.0.0.1:4222", 2, "bad NATS URL"},
		{deadURL, 1, "no NATS server answers"},
		{withUser("ok:wrong"), 1, "refused"},
		{withUser("nosub:pw"), 1, "denies this user"},
	} {
		_, e, code := runCmd(t, "", "node", "--listen", "127.0.0.1:0", "--sub", "chat", "--nats", c.url)
		lines := strings.Split(strings.TrimSpace(e), "\n")
		if code != c.code || len(lines) != 1 || !strings.Contains(e, c.want) || !strings.HasPrefix(e, "chaski: ") {
			t.Errorf("--nats %s: exit %d (want %d), stderr %q (want one line with %q)", c.url, code, c.code, e, c.want)
		}
	}
	if _, e, code := runCmd(t, "", "node", "--nats-topics", "x"); code != 2 || !strings.Contains(e, "needs --nats") {
		t.Errorf("--nats-topics alone: %d %q", code, e)
	}
	if _, e, code := runCmd(t, "", "node", "--nats", s.url(), "--nats-topics", "a b"); code != 2 || !strings.Contains(e, "--nats-topics") {
		t.Errorf("--nats-topics with a space: %d %q", code, e)
	}
}

// store put --nats-kv writes the bucket; store fetch on another data dir,
// with no network, falls back to it.
func TestNATSStoreKV(t *testing.T) {
	s := startNATS(t, nil)
	d1, d2 := t.TempDir(), t.TempDir()
	kv := []string{"--nats", s.url(), "--nats-kv", "cfg"}
	if _, e, code := runCmd(t, "", append([]string{"store", "put", "colour", "teal", "--ttl", "1h", "--data-dir", d1}, kv...)...); code != 0 {
		t.Fatalf("put: %d %s", code, e)
	}
	out, e, code := runCmd(t, "", append([]string{"store", "fetch", "colour", "--data-dir", d2}, kv...)...)
	if code != 0 || out != "teal\n" {
		t.Fatalf("fetch through the bucket: %d %q %s", code, out, e)
	}
	if out, _, code := runCmd(t, "", "store", "get", "colour", "--data-dir", d2); code != 0 || out != "teal\n" {
		t.Fatalf("the fetched value is not kept locally: %d %q", code, out)
	}
	_, e, code = runCmd(t, "", append([]string{"store", "fetch", "absent", "--data-dir", d2}, kv...)...)
	if code == 0 || !strings.Contains(e, "not in the NATS bucket cfg") {
		t.Fatalf("absent key: %d %q", code, e)
	}
	if _, e, code := runCmd(t, "", "store", "put", "x", "y", "--nats-kv", "cfg", "--data-dir", d1); code != 2 || !strings.Contains(e, "needs --nats") {
		t.Fatalf("--nats-kv alone: %d %q", code, e)
	}
}

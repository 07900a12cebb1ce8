package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/tui"
)

// configEnv is testEnv with a config file holding text; it returns the
// environment and the file's path.
func configEnv(t *testing.T, text string) ([]string, string) {
	t.Helper()
	env := testEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "chaski", "config.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(env, "XDG_CONFIG_HOME="+dir), path
}

// nodeName starts 'chaski node --json' with env and args and returns the
// name in its listening event.
func nodeName(t *testing.T, env []string, args ...string) string {
	t.Helper()
	p := startEnv(t, env, append([]string{"node", "--json"}, args...)...)
	_, first := p.waitLine(0, waitFor, "the listening line", func(string) bool { return true })
	ev := jsonEvent(first)
	if ev == nil || ev["event"] != "listening" {
		t.Fatalf("first line is not the listening event: %q\n%s", first, p.stderrText())
	}
	_ = p.cmd.Process.Kill()
	name, _ := ev["name"].(string)
	return name
}

// A node really runs with the file's value, the environment beats the
// file and a flag beats both.
func TestConfigPrecedenceNode(t *testing.T) {
	env, _ := configEnv(t, "name = \"from-file\"\nlisten = \"127.0.0.1:0\"\n")
	if got := nodeName(t, env); got != "from-file" {
		t.Errorf("file: name %q", got)
	}
	if got := nodeName(t, append(env, "CHASKI_NAME=from-env")); got != "from-env" {
		t.Errorf("env over file: name %q", got)
	}
	if got := nodeName(t, append(env, "CHASKI_NAME=from-env"), "--name", "from-flag"); got != "from-flag" {
		t.Errorf("flag over env: name %q", got)
	}
}

// 'config show' names the source of every setting.
func TestConfigShowSources(t *testing.T) {
	env, path := configEnv(t, `# comment
name = "n1"
connect = ["127.0.0.1:9", "127.0.0.1:10"]
ping_interval = "3s"
store_ttl = "24h"

[keys]
quit = ["ctrl+q"]
`)
	env = append(env, "CHASKI_LOG_LEVEL=debug")
	out, errOut, code := runEnv(t, env, "", "config", "show", "--json", "--ping-interval", "5s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		ev := jsonEvent(line)
		if ev == nil {
			t.Fatalf("not JSON: %q", line)
		}
		if ev["event"] == "config" {
			if ev["path"] != path || ev["found"] != true {
				t.Errorf("config event %v, want path %s", ev, path)
			}
			continue
		}
		got[ev["key"].(string)] = ev
	}
	for _, w := range []struct{ key, value, source, where string }{
		{"name", "n1", "file", "2"},
		{"connect", "127.0.0.1:9,127.0.0.1:10", "file", "3"},
		{"ping_interval", "5s", "flag", ""},
		{"store_ttl", "24h", "file", "5"},
		{"log_level", "debug", "env", "CHASKI_LOG_LEVEL"},
		{"listen", "127.0.0.1:0", "default", ""},
		{"keys.quit", "ctrl+q", "file", "8"},
		{"keys.help", "?, f1", "default", ""},
	} {
		ev := got[w.key]
		where, _ := ev["where"].(string)
		if ev == nil || ev["value"] != w.value || ev["source"] != w.source || where != w.where {
			t.Errorf("%s: %v, want value %q source %q where %q", w.key, ev, w.value, w.source, w.where)
		}
	}
	text, _, code := runEnv(t, env, "", "config", "show")
	if code != 0 || !strings.Contains(text, "config file: "+path+" (found)") || !strings.Contains(text, "file line 2") {
		t.Errorf("text show: exit %d\n%s", code, text)
	}
}

// The store's default TTL comes from store_ttl.
func TestConfigStoreTTL(t *testing.T) {
	env, _ := configEnv(t, "store_ttl = \"0s\"\n")
	if _, errOut, code := runEnv(t, env, "", "store", "put", "k", "v"); code != 0 {
		t.Fatalf("put: exit %d %s", code, errOut)
	}
	out, _, code := runEnv(t, env, "", "store", "ls", "--json")
	if code != 0 || !strings.Contains(out, `"key":"k"`) || !strings.Contains(out, `"expires":null`) {
		t.Errorf("store_ttl = 0s: the entry should never expire: %s", out)
	}
}

// Unknown keys and bad values are one error naming the file and the line;
// commands that take no setting still run with such a file.
func TestConfigErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"name = \"a\"\n\nnmae = \"b\"\n", `:3: unknown key "nmae" (did you mean "name"?)`},
		{"\nping_interval = 3\n", `:2: ping_interval: want a duration in quotes`},
		{"ping_interval = \"soon\"\n", `:1: ping_interval: "soon" is not a duration`},
		{"ping_interval = \"-1s\"\n", `:1: ping_interval: must be positive`},
		{"root = \"yes\"\n", `:1: root: want true or false, not a string`},
		{"# x\non_pair = \"maybe\"\n", `:2: on_pair: want none or disconnect, not "maybe"`},
		{"theme = \"bogus\"\n", `:1: theme: unknown theme "bogus"`},
		{"sub = [\"ok\", 3]\n", `:1: sub: want strings in the list`},
		{"connect = \"nohostport\"\n", `:1: connect: bad address nohostport`},
		{"[keys]\nquit = [\"q\"]\nexplode = [\"x\"]\n", `:3: unknown key action "explode"`},
		{"[keys]\nquit = []\n", `:2: keys.quit: no keys given`},
		{"[foo]\nx = 1\n", `:1: unknown key "foo"`},
		{"name = \n", `:1: `},
	} {
		env, path := configEnv(t, c.text)
		_, errOut, code := runEnv(t, env, "", "node")
		if code != 2 || !strings.HasPrefix(errOut, "chaski: "+path+c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, %q; want exit 2 and %q", c.text, code, errOut, path+c.want)
		}
		if out, _, code := runEnv(t, env, "", "config", "path"); code != 0 || strings.TrimSpace(out) != path {
			t.Errorf("config path with a broken file: exit %d, %q", code, out)
		}
		if _, _, code := runEnv(t, env, "", "version"); code != 0 {
			t.Errorf("version with a broken file: exit %d", code)
		}
	}
	env := append(testEnv(t), "CHASKI_PING_INTERVAL=soon")
	if _, errOut, code := runEnv(t, env, "", "node"); code != 2 || !strings.Contains(errOut, "CHASKI_PING_INTERVAL") {
		t.Errorf("bad environment value: exit %d, %q", code, errOut)
	}
}

// config path follows XDG_CONFIG_HOME, else ~/.config.
func TestConfigPath(t *testing.T) {
	home := t.TempDir()
	var env []string
	for _, kv := range testEnv(t) {
		if !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	out, _, code := runEnv(t, append(env, "HOME="+home), "", "config", "path")
	if want := filepath.Join(home, ".config", "chaski", "config.toml"); code != 0 || strings.TrimSpace(out) != want {
		t.Errorf("config path = %q (exit %d), want %s", out, code, want)
	}
}

// The [keys] table reaches the dashboard: its ? help shows the new keys.
func TestConfigKeysInDashboardHelp(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	path := filepath.Join(dir, "chaski", "config.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("[keys]\nquit = [\"ctrl+q\"]\nconnect = [\"C\", \"ctrl+o\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{}
	cfg, err := e.config()
	if err != nil {
		t.Fatal(err)
	}
	n, err := chaski.Start(chaski.Config{Name: "keys-test", Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	m := tui.New(n, dashboardOptions{Keys: cfg.keys}.tuiOptions())
	defer m.Close()
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 60})
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("?")})
	v := m.View()
	for _, want := range []string{"ctrl+q", "C/ctrl+o"} {
		if !strings.Contains(v, want) {
			t.Errorf("the help does not show %q:\n%s", want, v)
		}
	}
}

// The file's settings reach the commands that have the flag, and only
// those; 'chaski sub TOPIC' does not take the default topics.
func TestSettingsApplyTo(t *testing.T) {
	applies := func(key string, mk func() (*command, runner)) bool {
		c, _ := mk()
		for _, s := range settings() {
			if s.key == key {
				return s.appliesTo(c)
			}
		}
		t.Fatalf("no setting %q", key)
		return false
	}
	for _, c := range []struct {
		key  string
		mk   func() (*command, runner)
		want bool
	}{
		{"sub", newNodeCmd, true}, {"sub", newTUICmd, true}, {"sub", newSubCmd, false},
		{"connect", newPubCmd, true}, {"theme", newTUICmd, true}, {"theme", newNodeCmd, false},
		{"store_ttl", newStoreCmd, true}, {"store_ttl", newNodeCmd, false},
		{"name", newPingCmd, true}, {"connect", newPingCmd, false}, {"data_dir", newStatusCmd, true},
		{"json", newBenchCmd, false},
	} {
		c0, _ := c.mk()
		if got := applies(c.key, c.mk); got != c.want {
			t.Errorf("%s applies to %s: %v, want %v", c.key, c0.name, got, c.want)
		}
	}
}

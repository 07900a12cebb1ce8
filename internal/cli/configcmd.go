package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/chaski-dev/chaski/tui"
)

func newConfigCmd() (*command, runner) {
	// Every configurable flag, with the dashboard's defaults, so that
	// 'config show --name x' shows what a flag does.
	c := newCommand("tui", "", "", "")
	addNodeFlags(c, true)
	addLookFlags(c)
	c.name, c.usage = "config", "path | show [flags]"
	c.synopsis = "The config file: 'path' prints where it is read from, 'show' the effective value of every setting and where it came from (default, file, env or flag)."
	c.details = `The file is $XDG_CONFIG_HOME/chaski/config.toml, else ~/.config/chaski/config.toml.
Its keys are the long flag names with '-' written '_'; a flag overrides the
environment, which overrides the file, which overrides the built-in default:

  name = "lab-1"
  connect = ["10.0.0.2:8511", "10.0.0.3:8511"]   # default peers
  sub = ["chat", "alerts"]                       # default topics
  ping_interval = "2s"
  theme = "light"
  store_ttl = "24h"          # 'chaski store put' without --ttl
  [keys]                     # dashboard actions -> keys (shown in its ? help)
  quit = ["ctrl+q"]
  next_pane = ["tab", "ctrl+l"]

Every key but [keys] can also be set in the environment as CHASKI_<KEY>
(CHASKI_NAME, CHASKI_PING_INTERVAL; lists comma-separated). 'chaski sub
TOPIC' prints only its TOPICs: the file's sub does not add to them. Unknown
keys and bad values are an error naming the file and the line. 'show'
reports the dashboard's defaults (headless commands ping every 7s, not 1s);
with --json it prints one {"event":"setting","key":...,"value":...,
"source":...} object per line.`
	c.fs.Duration("ttl", store.DefaultTTL, "show: the store's default TTL (key store_ttl)")
	c.placeholder("ttl", "DUR")
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) != 1 {
			return usageErrorf("config needs an action: path or show (see 'chaski help config')")
		}
		switch pos[0] {
		case "path":
			fmt.Fprintln(e.stdout, configPath())
			return nil
		case "show":
			return showConfig(e, c)
		}
		return unknownAction("config", pos[0], []string{"path", "show"})
	}
}

// showConfig prints every setting of c with its effective value and source.
func showConfig(e *env, c *command) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	if err := cfg.applyTo(c); err != nil {
		return err
	}
	type row struct {
		key, value string
		src        source
		where      string // the line in the file, the variable of the environment
	}
	var rows []row
	for _, s := range settings() {
		f := c.fs.Lookup(s.flag)
		if f == nil {
			continue
		}
		r := row{key: s.key, value: f.Value.String(), src: fromDefault}
		if flagKind(f) == "duration" {
			r.value = shortDuration(r.value)
		}
		switch {
		case c.set[s.flag]:
			r.src = fromFlag
		case c.configured[s.flag] == fromEnv:
			r.src, r.where = fromEnv, s.env()
		case c.configured[s.flag] == fromFile:
			r.src, r.where = fromFile, strconv.Itoa(cfg.values[s.key].line)
		}
		rows = append(rows, r)
	}
	defaults := tui.DefaultKeys()
	for _, a := range tui.KeyActions() {
		r := row{key: keysTable + "." + a, value: strings.Join(defaults[a], ", "), src: fromDefault}
		if k, ok := cfg.keys[a]; ok {
			r.value, r.src, r.where = strings.Join(k, ", "), fromFile, strconv.Itoa(cfg.keyLines[a])
		}
		rows = append(rows, r)
	}
	if c.fs.Lookup("json").Value.String() == "true" {
		out := newPrinter(e.stdout)
		out.json(event("config").add("path", cfg.path).add("found", cfg.found))
		for _, r := range rows {
			o := event("setting").add("key", r.key).add("value", r.value).add("source", string(r.src))
			if r.where != "" {
				o = o.add("where", r.where)
			}
			out.json(o)
		}
		return nil
	}
	state := "found"
	if !cfg.found {
		state = "not found: built-in defaults"
	}
	fmt.Fprintf(e.stdout, "config file: %s (%s)\n\n", cfg.path, state)
	tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
	for _, r := range rows {
		v := r.value
		if v == "" {
			v = `""`
		}
		src := string(r.src)
		switch r.src {
		case fromFile:
			src += " line " + r.where
		case fromEnv:
			src += " " + r.where
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.key, v, src)
	}
	return tw.Flush()
}

package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/chaski-dev/chaski/tui"
)

// The config file holds defaults for the flags: precedence is built-in
// default < config file < environment (CHASKI_<KEY>) < command line. A key
// is a long flag name with '-' written '_' ("ping_interval"); the [keys]
// table rebinds dashboard actions. Values go through the same flag.Value.Set
// and the same value checks as the command line, so a file cannot hold what
// a flag would refuse; what it refuses is one error naming the file and line.

// source says where an effective setting came from.
type source string

const (
	fromDefault source = "default"
	fromFile    source = "file"
	fromEnv     source = "env"
	fromFlag    source = "flag"
)

// setting is one key the file (and the environment) may hold.
type setting struct {
	key  string // in the file: "ping_interval"
	flag string // the flag it sets: "ping-interval"
	cmd  string // "" for a node flag (every command that has it), else the one command
}

// envPrefix starts the environment variable of a setting: CHASKI_PING_INTERVAL.
const envPrefix = "CHASKI_"

func (s setting) env() string { return envPrefix + strings.ToUpper(s.key) }

// settings lists every configurable key: each node flag, the dashboard's
// theme and mouse, and the store's default TTL.
func settings() []setting {
	var out []setting
	c := newCommand("node", "", "", "")
	addNodeFlags(c, true)
	c.fs.VisitAll(func(f *flag.Flag) {
		out = append(out, setting{key: strings.ReplaceAll(f.Name, "-", "_"), flag: f.Name})
	})
	return append(out,
		setting{key: "theme", flag: "theme", cmd: "tui"},
		setting{key: "mouse", flag: "mouse", cmd: "tui"},
		setting{key: "store_ttl", flag: "ttl", cmd: "store"})
}

// keysTable is the name of the table of key bindings.
const keysTable = "keys"

// configValue is one setting's value from the file or the environment, in
// the form flag.Value.Set takes (a list is one Set per element).
type configValue struct {
	setting
	args   []string
	source source
	line   int // in the file
}

// config is the loaded config file and environment.
type config struct {
	path     string
	found    bool
	values   map[string]configValue // by key
	keys     map[string][]string    // [keys]: action -> keys
	keyLines map[string]int
}

// configPath is $XDG_CONFIG_HOME/chaski/config.toml, else
// ~/.config/chaski/config.toml.
func configPath() string {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "chaski", "config.toml")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "chaski", "config.toml")
}

// loadConfig reads the config file (a missing file is an empty one) and the
// CHASKI_* environment, checking every value.
func loadConfig() (*config, error) {
	cfg := &config{path: configPath(), values: map[string]configValue{}, keyLines: map[string]int{}}
	if cfg.path != "" {
		data, err := os.ReadFile(cfg.path)
		switch {
		case err == nil:
			cfg.found = true
			if err := cfg.parse(data); err != nil {
				return nil, err
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("cannot read the config file: %w", err)
		}
	}
	for _, s := range settings() {
		v, ok := os.LookupEnv(s.env())
		if !ok {
			continue
		}
		cv := configValue{setting: s, args: []string{v}, source: fromEnv}
		if err := checkSetting(cv); err != nil {
			return nil, usageErrorf("environment variable %s: %s", s.env(), err)
		}
		cfg.values[s.key] = cv
	}
	return cfg, nil
}

// errAt is the one error for a problem at a line of the file.
func (cfg *config) errAt(line int, format string, args ...any) error {
	return usageErrorf("%s:%d: %s", cfg.path, line, fmt.Sprintf(format, args...))
}

// parse reads the file's settings. The values come from the TOML decoder;
// the line of each key from the parser's syntax tree, which the decoder
// does not keep.
func (cfg *config) parse(data []byte) error {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return cfg.errAt(line, "%s", strings.TrimPrefix(de.Error(), "toml: "))
		}
		return usageErrorf("%s: %s", cfg.path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	lines := keyLines(data)
	byKey := map[string]setting{}
	var known []string
	for _, s := range settings() {
		byKey[s.key] = s
		known = append(known, s.key)
	}
	// Report problems in the order of the file.
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lines[keys[i]] < lines[keys[j]] })
	for _, k := range keys {
		line := lines[k]
		if k == keysTable {
			if err := cfg.parseKeys(doc[k], line, lines); err != nil {
				return err
			}
			continue
		}
		s, ok := byKey[k]
		if !ok {
			return cfg.errAt(line, "unknown key %q%s", k, didYouMean(k, append(known, keysTable), quoted))
		}
		cv, err := tomlArgs(s, doc[k])
		if err == nil {
			cv.line = line
			err = checkSetting(cv)
		}
		if err != nil {
			return cfg.errAt(line, "%s: %s", k, err)
		}
		cfg.values[k] = cv
	}
	return nil
}

// parseKeys reads the [keys] table: action = "key" or ["key", ...].
func (cfg *config) parseKeys(v any, line int, lines map[string]int) error {
	table, ok := v.(map[string]any)
	if !ok {
		return cfg.errAt(line, "%s must be a table: [keys] with lines such as quit = [\"q\", \"ctrl+c\"]", keysTable)
	}
	cfg.keys = map[string][]string{}
	actions := tui.KeyActions()
	names := make([]string, 0, len(table))
	for a := range table {
		names = append(names, a)
	}
	sort.Slice(names, func(i, j int) bool { return lines[keysTable+"."+names[i]] < lines[keysTable+"."+names[j]] })
	for _, a := range names {
		l := lines[keysTable+"."+a]
		keys, err := stringList(table[a])
		if err == nil && len(keys) == 0 {
			err = errors.New("no keys given")
		}
		if err != nil {
			return cfg.errAt(l, "keys.%s: %s", a, err)
		}
		if err := tui.CheckKeys(map[string][]string{a: keys}); err != nil {
			return cfg.errAt(l, "%s%s", err, didYouMean(a, actions, quoted))
		}
		cfg.keys[a] = keys
		cfg.keyLines[a] = l
	}
	return nil
}

// keyLines maps each key of the document ("name", "keys.quit", and the
// table "keys") to the line where it stands.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		var path []string
		it := func() unstable.Iterator {
			if e.Kind == unstable.KeyValue || e.Kind == unstable.Table || e.Kind == unstable.ArrayTable {
				return e.Key()
			}
			return unstable.Iterator{}
		}()
		first := -1
		for it.Next() {
			n := it.Node()
			if first < 0 {
				first = p.Shape(n.Raw).Start.Line
			}
			path = append(path, string(n.Data))
		}
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = path
		case unstable.KeyValue:
			path = append(append([]string(nil), table...), path...)
		default:
			continue
		}
		if first < 0 {
			continue
		}
		// A key's line, and each enclosing table's first line.
		for i := 1; i <= len(path); i++ {
			k := strings.Join(path[:i], ".")
			if _, seen := lines[k]; !seen {
				lines[k] = first
			}
		}
	}
	return lines
}

// tomlArgs turns a TOML value into the Set calls of s's flag, refusing a
// value of the wrong type (a number for a duration, a string for a bool).
func tomlArgs(s setting, v any) (configValue, error) {
	cv := configValue{setting: s, source: fromFile}
	f := referenceFlag(s)
	switch kind := flagKind(f); kind {
	case "list":
		l, err := stringList(v)
		if err != nil {
			return cv, err
		}
		cv.args = l
	case "bool":
		b, ok := v.(bool)
		if !ok {
			return cv, fmt.Errorf("want true or false, not %s", tomlType(v))
		}
		cv.args = []string{strconv.FormatBool(b)}
	case "int":
		n, ok := v.(int64)
		if !ok {
			return cv, fmt.Errorf("want a whole number, not %s", tomlType(v))
		}
		cv.args = []string{strconv.FormatInt(n, 10)}
	case "duration":
		str, ok := v.(string)
		if !ok {
			return cv, fmt.Errorf("want a duration in quotes such as \"500ms\", \"2s\" or \"1h\", not %s", tomlType(v))
		}
		cv.args = []string{str}
	default:
		str, ok := v.(string)
		if !ok {
			return cv, fmt.Errorf("want a string in quotes, not %s", tomlType(v))
		}
		cv.args = []string{str}
	}
	return cv, nil
}

// stringList reads "a" or ["a", "b"].
func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want strings in the list, not %s", tomlType(e))
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings, not %s", tomlType(v))
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "true/false"
	case int64:
		return "a whole number"
	case float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDate, toml.LocalTime, toml.LocalDateTime:
		return "a date"
	}
	return fmt.Sprintf("%T", v)
}

// referenceCommand is the command whose flag set checks a setting: the
// dashboard for node flags, theme and mouse; store for its TTL.
func referenceCommand(s setting) *command {
	var c *command
	if s.cmd == "store" {
		c, _ = newStoreCmd()
	} else {
		c, _ = newTUICmd()
	}
	return c
}

func referenceFlag(s setting) *flag.Flag { return referenceCommand(s).fs.Lookup(s.flag) }

// flagKind tells how a flag's value is written: list, bool, int, duration
// or string.
func flagKind(f *flag.Flag) string {
	if _, ok := f.Value.(*listFlag); ok {
		return "list"
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "bool"
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "duration"
		case int, int64, uint, uint64:
			return "int"
		}
	}
	return "string"
}

// checkSetting sets the value on a fresh reference flag set, as a flag
// would be, and runs the flag's value check.
func checkSetting(cv configValue) error {
	c := referenceCommand(cv.setting)
	for _, a := range cv.args {
		if err := c.fs.Set(cv.flag, a); err != nil {
			switch flagKind(c.fs.Lookup(cv.flag)) {
			case "duration":
				return fmt.Errorf("%q is not a duration such as 500ms, 2s or 1h", a)
			case "int":
				return fmt.Errorf("%q is not a whole number", a)
			case "bool":
				return fmt.Errorf("%q is not true or false", a)
			}
			return err
		}
	}
	for _, vc := range valueChecks {
		if vc.flag == cv.flag {
			return vc.check(c.fs.Lookup(cv.flag).Value.String())
		}
	}
	return nil
}

// appliesTo reports whether s sets a flag of c.
func (s setting) appliesTo(c *command) bool {
	if c.name == "config" {
		// 'config show' shows every setting.
		return c.fs.Lookup(s.flag) != nil
	}
	if s.cmd != "" {
		return s.cmd == c.name && c.fs.Lookup(s.flag) != nil
	}
	if s.key == "sub" && c.name == "sub" {
		// 'chaski sub TOPIC' prints the topics it is given, not the
		// default subscriptions as well.
		return false
	}
	return c.nodeFlag[s.flag]
}

// applyTo gives every flag of c that the command line did not set the
// value of the file or the environment.
func (cfg *config) applyTo(c *command) error {
	for _, s := range settings() {
		cv, ok := cfg.values[s.key]
		if !ok || !s.appliesTo(c) || c.set[s.flag] {
			continue
		}
		for _, a := range cv.args {
			if err := c.fs.Set(s.flag, a); err != nil {
				return cfg.errAt(cv.line, "%s: %s", s.key, err)
			}
		}
		c.configured[s.flag] = cv.source
	}
	return nil
}

// usesConfig reports whether any setting applies to c (commands without
// one do not read the file, so a broken file does not stop 'chaski help').
func usesConfig(c *command) bool {
	for _, s := range settings() {
		if s.appliesTo(c) {
			return true
		}
	}
	return false
}

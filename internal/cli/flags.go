package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// exitError carries an exit code. A nil err with a code exits silently.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error (exit status 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// withCode gives err the exit status code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// errHelp is returned when -h or --help was asked for: the usage has been
// printed and the program exits 0.
var errHelp = errors.New("help requested")

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// command is one subcommand's flag set with its documentation.
type command struct {
	name     string // "pub", "store", "ca serve"
	synopsis string // one line: what it does
	usage    string // the argument pattern after the name
	details  string // longer description, may be empty
	fs       *flag.FlagSet
	set      map[string]bool // flags explicitly given on the command line
	// configured holds the flags the config file or the environment set.
	configured map[string]source
	argNames   map[string]string
	nodeFlag   map[string]bool // flags listed under "Node flags"
}

func newCommand(name, usage, synopsis, details string) *command {
	fs := flag.NewFlagSet("chaski "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, usage: usage, synopsis: synopsis, details: details, fs: fs,
		set: map[string]bool{}, configured: map[string]source{}, argNames: map[string]string{}, nodeFlag: map[string]bool{}}
}

// given reports whether the user chose the flag's value: on the command
// line, in the config file or in the environment.
func (c *command) given(name string) bool { return c.set[name] || c.configured[name] != "" }

// intFlag registers an int flag whose value the usage calls arg.
func (c *command) intFlag(name string, def int, arg, usage string) *int {
	p := c.fs.Int(name, def, usage)
	c.placeholder(name, arg)
	return p
}

// durationFlag registers a duration flag whose value the usage calls arg.
func (c *command) durationFlag(name string, def time.Duration, arg, usage string) *time.Duration {
	p := c.fs.Duration(name, def, usage)
	c.placeholder(name, arg)
	return p
}

// placeholder names the value of a flag in the usage ("--listen HOST:PORT").
func (c *command) placeholder(flagName, arg string) { c.argNames[flagName] = arg }

// parse parses args with flags allowed anywhere among the positional
// arguments ("--" ends the flags). It returns the positional arguments.
func (c *command) parse(args []string) ([]string, error) {
	var pos []string
	rest := args
	for {
		if err := c.fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usageErrorf("%s (see 'chaski help %s')", c.flagErrText(err), c.name)
		}
		consumed := len(rest) - c.fs.NArg()
		left := c.fs.Args()
		if consumed > 0 && rest[consumed-1] == "--" && !c.endsWithValue(rest[:consumed]) {
			pos = append(pos, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		pos = append(pos, left[0])
		rest = left[1:]
	}
	c.fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	return pos, nil
}

// endsWithValue reports whether the last element of args is the value of a
// flag rather than a "--" terminator (as in "--name --").
func (c *command) endsWithValue(args []string) bool {
	if len(args) < 2 {
		return false
	}
	prev := args[len(args)-2]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") || prev == "--" {
		return false
	}
	f := c.fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

// flagErrText rewrites the flag package's errors with the double dash the
// documentation uses.
func (c *command) flagErrText(err error) string {
	s := err.Error()
	for _, p := range []string{"flag provided but not defined: -", "flag needs an argument: -"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			name := strings.TrimLeft(rest, "-")
			dash := "--"
			if len(name) == 1 {
				dash = "-"
			}
			s = strings.TrimSuffix(p, "-") + dash + name
		}
	}
	if i := strings.Index(s, " for flag -"); i >= 0 {
		rest := s[i+len(" for flag -"):]
		name, tail, _ := strings.Cut(rest, ":")
		dash := "-"
		if len(name) > 1 {
			dash = "--"
		}
		if f := c.fs.Lookup(name); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case time.Duration:
					tail = " want a duration such as 500ms, 2s or 1h"
				case int, int64, uint, uint64:
					tail = " want a whole number"
				}
			}
		}
		s = s[:i] + " for flag " + dash + name + ":" + tail
	}
	if rest, ok := strings.CutPrefix(s, "flag provided but not defined: "); ok {
		s = "unknown flag: " + rest + c.flagSuggestion(strings.TrimLeft(rest, "-"))
	}
	return s
}

// writeUsage prints the command's full usage with every flag and default.
func (c *command) writeUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: chaski %s %s\n\n%s\n", c.name, c.usage, c.synopsis)
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.details, "\n"))
	}
	var flags []*flag.Flag
	c.fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	if len(flags) == 0 {
		return
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	type row struct {
		left, right string
		node        bool
	}
	var rows []row
	width := 0
	for _, f := range flags {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		left := dash + f.Name
		arg, usage := flag.UnquoteUsage(f)
		if a, ok := c.argNames[f.Name]; ok {
			arg = a
		}
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			arg = ""
		}
		if arg != "" {
			left += " " + arg
		}
		right := usage
		if def := flagDefault(f); def != "" {
			right += " (default " + def + ")"
		}
		rows = append(rows, row{left, right, c.nodeFlag[f.Name]})
		if len(left) > width {
			width = len(left)
		}
	}
	for _, node := range []bool{false, true} {
		title := "Flags"
		if node {
			title = "Node flags"
		}
		first := true
		for _, r := range rows {
			if r.node != node {
				continue
			}
			if first {
				fmt.Fprintf(w, "\n%s (before or after the arguments):\n", title)
				first = false
			}
			fmt.Fprintf(w, "  %-*s  %s\n", width, r.left, r.right)
		}
	}
}

// flagDefault renders a flag's default for the usage, "" when there is
// nothing worth showing (false, empty, zero count).
func flagDefault(f *flag.Flag) string {
	switch f.DefValue {
	case "", "false", "[]", "0", "0s":
		return ""
	}
	return shortDuration(f.DefValue)
}

// shortDuration renders a duration as people write it (1h0m0s → 1h,
// 2m0s → 2m); anything else is returned as it is.
func shortDuration(s string) string {
	if _, err := time.ParseDuration(s); err == nil && strings.HasSuffix(s, "0s") && s != "0s" {
		d := strings.TrimSuffix(s, "0s")
		d = strings.TrimSuffix(d, "0m")
		if d == "" || strings.HasSuffix(d, "h") || strings.HasSuffix(d, "m") {
			return d
		}
	}
	return s
}

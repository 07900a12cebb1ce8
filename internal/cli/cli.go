// Package cli is the chaski command: one file per subcommand, the flags
// every node-running command shares (flags.go, start.go) and the rendering
// of events and messages (output.go). main.go at the module root calls Main.
// The contract of its subcommands, flags, JSON events and exit codes is in
// 'chaski help' and README.md; scripts rely on it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// env is what a command reads and writes.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stderrTTY tells whether stderr is a terminal (progress bars);
	// terminal whether stdin and stdout are (the dashboard).
	stderrTTY bool
	terminal  bool

	cfg *config // loaded by config()
}

// config loads the config file and environment once.
func (e *env) config() (*config, error) {
	if e.cfg == nil {
		cfg, err := loadConfig()
		if err != nil {
			return nil, err
		}
		e.cfg = cfg
	}
	return e.cfg, nil
}

// Main runs one command line with the process's standard streams and
// returns the exit status (0 success, 1 failure, 2 usage error).
func Main(ctx context.Context, args []string, stdin *os.File, stdout, stderr *os.File) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, stderrTTY: isTerminal(stderr),
		terminal: isTerminal(stdin) && isTerminal(stdout)}
	return run(ctx, args, e)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, e *env) int {
	err := dispatch(ctx, args, e)
	return exitStatus(err, e.stderr)
}

// exitStatus prints err (one sentence) and maps it to an exit status.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "chaski: %s\n", cleanErr(err))
	return code
}

// cleanErr renders an error as one sentence without the repeated package
// prefixes of the libraries ("chaski: chaski: ...").
func cleanErr(err error) string {
	s := err.Error()
	for _, p := range []string{"chaski: ", "store: ", "pki: "} {
		s = strings.TrimPrefix(s, p)
	}
	return strings.TrimSpace(s)
}

// dispatch finds the subcommand and runs it.
func dispatch(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		return runCommand(ctx, "tui", nil, e)
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		return cmdHelp(rest, e)
	case "help":
		return cmdHelp(rest, e)
	case "-version", "--version":
		return cmdVersion(rest, e)
	}
	if strings.HasPrefix(name, "-") {
		// Flags before the subcommand ("chaski --data-dir D store ls") are
		// moved after it; flags without a subcommand belong to the dashboard.
		if i := commandIndex(args); i > 0 {
			rest := append(append([]string(nil), args[:i]...), args[i+1:]...)
			return runCommand(ctx, args[i], rest, e)
		}
		return runCommand(ctx, "tui", args, e)
	}
	return runCommand(ctx, name, rest, e)
}

// commandIndex finds the subcommand in a command line that starts with
// flags: the first positional argument when the dashboard's flags parse it,
// else the first argument naming a command. -1 when there is none.
func commandIndex(args []string) int {
	c, _ := newTUICmd()
	if pos, err := c.parse(args); err == nil {
		if len(pos) == 0 || findSpec(pos[0]) == nil {
			return -1
		}
		for i, a := range args {
			if a == pos[0] {
				return i
			}
		}
		return -1
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") && findSpec(a) != nil {
			return i
		}
	}
	return -1
}

// runCommand parses the flags of a subcommand and runs it.
func runCommand(ctx context.Context, name string, args []string, e *env) error {
	spec := findSpec(name)
	if spec == nil {
		return unknownCommand(name)
	}
	c, run := spec.make()
	pos, err := c.parse(args)
	if errors.Is(err, errHelp) {
		c.writeUsage(e.stdout)
		return errHelp
	}
	if err != nil {
		return err
	}
	if usesConfig(c) && c.name != "config" { // config reads it itself: 'config path' works with a broken file
		cfg, err := e.config()
		if err != nil {
			return err
		}
		if err := cfg.applyTo(c); err != nil {
			return err
		}
	}
	return run(ctx, e, pos)
}

// runner runs a parsed command with its positional arguments.
type runner func(ctx context.Context, e *env, pos []string) error

// spec describes a subcommand: make builds its flag set and runner.
type spec struct {
	name     string
	synopsis string
	make     func() (*command, runner)
}

func specs() []spec {
	return []spec{
		{"tui", "the interactive dashboard (also what 'chaski' alone runs)", newTUICmd},
		{"node", "a headless node that runs until SIGINT/SIGTERM", newNodeCmd},
		{"pub", "publish messages on a topic", newPubCmd},
		{"sub", "subscribe to topics and print the messages", newSubCmd},
		{"send", "send files to the peers that subscribe to a topic", newSendCmd},
		{"hash", "print the BLAKE3 (or SHA-256, SHA-1, MD5) hash of files", newHashCmd},
		{"ping", "ping a node like ping(8)", newPingCmd},
		{"status", "ask a node for its status over UDP, or the local node through its control socket (JSON)", newStatusCmd},
		{"lan", "list the nodes nearby (this machine and the LAN) once", newLANCmd},
		{"store", "the persistent key-value store: put, get, del, ls, fetch", newStoreCmd},
		{"config", "the config file: where it is read from, and the effective settings", newConfigCmd},
		{"ca", "a certificate authority for mutual TLS: init, serve", newCACmd},
		{"bench", "the built-in benchmark", newBenchCmd},
		{"version", "print the version", newVersionCmd},
		{"help", "show the usage of chaski or of a command", newHelpCmd},
	}
}

func findSpec(name string) *spec {
	for _, s := range specs() {
		if s.name == name {
			return &s
		}
	}
	return nil
}

// closeNode closes the node, reporting a failure to shut down cleanly.
func closeNode(n *runningNode, errp *error) {
	if n == nil {
		return
	}
	if err := n.close(); err != nil && *errp == nil {
		*errp = err
	}
}

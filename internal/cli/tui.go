package cli

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/tui"
)

func newTUICmd() (*command, runner) {
	c := newCommand("tui", "[flags]",
		"The interactive dashboard: edges and latency, topics and messages, discovery, transfers, the store and the log.",
		`'chaski' alone runs it too. The log never goes to the terminal: it is
written to --log-file, by default <data-dir>/chaski.log. --demo also starts
a few in-process peers on loopback that chat, ping and send a file, so every
pane is alive on first launch.`)
	o := addNodeFlags(c, true)
	o.nats = addNATSFlags(c, true)
	demo := c.fs.Bool("demo", false, "also start a few in-process demo peers on loopback that chat, ping and send a file")
	theme, mouse := addLookFlags(c)
	sv := addServeFlags(c, false)
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) > 0 {
			return unknownCommand(pos[0])
		}
		opts := dashboardOptions{Theme: *theme, Mouse: *mouse, Demo: *demo, serve: sv}
		if e.cfg != nil {
			opts.Keys = e.cfg.keys
		}
		return runTUI(ctx, e, o, opts)
	}
}

// addLookFlags registers the dashboard's --theme and --mouse.
func addLookFlags(c *command) (theme *string, mouse *bool) {
	theme = c.fs.String("theme", "", "colour theme: default, dark, light, colorblind or mono (NO_COLOR forces mono)")
	c.placeholder("theme", "NAME")
	mouse = c.fs.Bool("mouse", false, "capture the mouse (wheel scrolling); off keeps the terminal's own selection and scrollback")
	return theme, mouse
}

// dashboardOptions are the dashboard's settings from the command line.
type dashboardOptions struct {
	Theme             string
	Mouse             bool
	Demo              bool
	AcceptFilesPrompt bool
	Title             string
	Keys              map[string][]string // [keys] of the config file
	Connect           []string            // --connect: dialled (and retried) by the dashboard
	StoreNote         string              // why there is no store, with the fix
	DataDir           string              // where the dashboard writes exports (e)
	serve             *serveOpts          // --metrics
}

func runTUI(ctx context.Context, e *env, o *nodeOpts, opts dashboardOptions) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	if !e.terminal {
		return errors.New("the dashboard needs a terminal; for a headless node use 'chaski node'")
	}
	// Warnings must not scribble over the dashboard: they go to the log.
	var warnMu sync.Mutex
	var warnings []string
	warn := func(s string) {
		warnMu.Lock()
		warnings = append(warnings, s)
		warnMu.Unlock()
	}
	if opts.Demo {
		// The node itself joins the demo's topic.
		o.subs = append(o.subs, demoTopic, demoMetrics)
		// A demo writes nothing into the user's real data dir (store,
		// downloads, log) unless --data-dir names one.
		if o.dataDir == "" {
			tmp, err := demoDataDir()
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			o.dataDir = tmp
		}
	}
	n, err := o.start(ctx, e, nodeSetup{tryStore: true, warn: warn, promptFiles: !o.acceptFiles})
	if err != nil {
		return err
	}
	defer closeNode(n, &err)
	// A bridge that cannot start is an error row in Edges.
	o.nats.startOrShow(ctx, n.Node)
	defer o.nats.stop()
	for _, w := range warnings {
		n.Config().Logger.Warn(w)
		if strings.Contains(w, "in use by another process") {
			opts.StoreNote = "store in use by another process: start this one with --data-dir DIR (the store of " +
				o.resolvedDataDir() + " is held by another node or dashboard)"
		}
	}
	if opts.serve != nil {
		sv, err := opts.serve.start(n.Node, o.resolvedDataDir())
		if err != nil {
			return err
		}
		defer sv.stop() // before the node closes
	}
	opts.AcceptFilesPrompt = !o.acceptFiles
	opts.DataDir = o.resolvedDataDir()
	// Background work stops before the node closes (defers run last first).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The dashboard dials --connect itself: a connect that fails is a row
	// in Edges with the reason and the next retry. Discovery runs once an
	// edge is up (or after a while without one), and shows as running in
	// the Discovery pane.
	opts.Connect = o.connect
	if o.discover {
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			deadline := time.Now().Add(30 * time.Second)
			for n.EdgeCount() == 0 && time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
			n.discoverInBackground(ctx, o, func(s string) { n.Config().Logger.Warn(s) })
		}()
	}
	if opts.Demo {
		stopDemo, err := startDemo(ctx, n.Node, n.Config().Logger)
		if err != nil {
			return err
		}
		defer stopDemo()
	}
	return runDashboard(ctx, n.Node, opts)
}

// runDashboard runs the interactive dashboard on node until the user quits
// or ctx ends.
func runDashboard(ctx context.Context, node *chaski.Node, opts dashboardOptions) error {
	return tui.Run(ctx, node, opts.tuiOptions())
}

func (opts dashboardOptions) tuiOptions() tui.Options {
	return tui.Options{
		Theme:             opts.Theme,
		Mouse:             opts.Mouse,
		Title:             opts.Title,
		AcceptFilesPrompt: opts.AcceptFilesPrompt,
		Keys:              opts.Keys,
		Connect:           opts.Connect,
		StoreNote:         opts.StoreNote,
		DataDir:           opts.DataDir,
	}
}

// demoDataDir is the throw-away data dir of a --demo run.
func demoDataDir() (string, error) { return os.MkdirTemp("", "chaski-demo-data-") }

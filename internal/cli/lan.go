package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chaski-dev/chaski/chaski"
)

// lanOpts are the nearby-discovery flags of every command that runs a
// node: --lan, --no-lan, --lan-topics and --lan-multicast.
type lanOpts struct {
	lan       bool
	noLAN     bool
	topics    listFlag
	multicast bool
}

// addLANFlags registers the nearby-discovery flags; the dashboard has
// --lan on by default, headless commands off.
func addLANFlags(c *command, o *lanOpts) {
	def := c.name == "tui"
	help := "announce this node and find nodes nearby (mDNS on the LAN, a rendezvous directory on this machine), connecting to those that share an advertised topic"
	if def {
		help += " (on by default in the dashboard)"
	}
	c.fs.BoolVar(&o.lan, "lan", def, help)
	c.fs.BoolVar(&o.noLAN, "no-lan", false, "no nearby discovery: nothing announced, nothing browsed, nothing connected by itself")
	c.fs.Var(&o.topics, "lan-topics", "the topics announced to nodes nearby, comma-separated (default: every subscription; \"\" announces none)")
	c.placeholder("lan-topics", "TOPICS")
	addMulticastFlag(c, &o.multicast)
}

func addMulticastFlag(c *command, v *bool) {
	c.fs.BoolVar(v, "lan-multicast", true, "use multicast DNS on the LAN interfaces; false keeps nearby discovery to this machine")
}

// lanConfig is the library's LANConfig for the flags, nil when off.
func (o *nodeOpts) lanConfig() *chaski.LANConfig {
	if !o.lanOpts.lan || o.lanOpts.noLAN {
		return nil
	}
	lc := &chaski.LANConfig{NoMulticast: !o.lanOpts.multicast}
	if o.cmd.given("lan-topics") {
		lc.Topics = append([]string{}, o.lanOpts.topics...)
	}
	return lc
}

func newLANCmd() (*command, runner) {
	c := newCommand("lan", "[flags]",
		"List the Chaski nodes nearby (this machine and the LAN) once, then exit 0.",
		`Listens for --timeout for nodes announcing themselves (by multicast DNS on
the LAN, service _chaski._tcp, and in the rendezvous directory of this
machine) without announcing anything or connecting. Prints a table, or with
--json one object per node: name, id, address, topics, tls, via ("local" or
"mdns"). Nodes announce themselves when they run with --lan (the dashboard
does by default).`)
	timeout := c.fs.Duration("timeout", 2*time.Second, "how long to listen")
	c.placeholder("timeout", "DUR")
	asJSON := c.fs.Bool("json", false, "one JSON object per node (NDJSON) on stdout")
	var multicast bool
	addMulticastFlag(c, &multicast)
	return c, func(ctx context.Context, e *env, pos []string) error {
		if len(pos) > 0 {
			return usageErrorf("lan takes no arguments, got %q (see 'chaski help lan')", pos[0])
		}
		if *timeout <= 0 {
			return usageErrorf("--timeout must be positive")
		}
		list, err := chaski.BrowseNearby(ctx, chaski.LANConfig{NoMulticast: !multicast}, *timeout)
		if err != nil && ctx.Err() == nil {
			return err
		}
		out := newPrinter(e.stdout)
		if *asJSON {
			for _, p := range list {
				out.json(nearbyJSON(p))
			}
			return nil
		}
		if len(list) == 0 {
			out.linef("no nodes nearby (listened for %v)", *timeout)
			return nil
		}
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADDRESS\tTOPICS\tTLS\tVIA")
		for _, p := range list {
			tls := "no"
			if p.TLS {
				tls = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Address, joinComma(p.Topics), tls, p.Via)
		}
		tw.Flush()
		out.linef("%s", strings.TrimRight(b.String(), "\n"))
		return nil
	}
}

// nearbyJSON is a nearby node as `chaski lan --json` and the nearby
// event print it.
func nearbyJSON(p chaski.NearbyNode) obj {
	return obj{}.add("name", p.Name).add("id", p.ID).add("address", p.Address).
		add("topics", nonNil(p.Topics)).add("tls", p.TLS).add("via", p.Via)
}

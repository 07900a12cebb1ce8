package cli

import (
	"flag"
	"fmt"
	"strings"
)

// didYouMean returns ` (did you mean "x"?)`, or "" when no candidate is
// close to typed. Close means a small edit distance (a typo: one or two
// letters wrong, missing, extra or swapped, fewer for short words) or
// typed being the start of exactly one candidate.
func didYouMean(typed string, candidates []string, quote func(string) string) string {
	if typed == "" {
		return ""
	}
	limit := 1
	if len(typed) >= 5 {
		limit = 2
	}
	var best []string
	bestD := limit + 1
	var prefixed []string
	for _, c := range candidates {
		if c == typed {
			return ""
		}
		if strings.HasPrefix(c, typed) {
			prefixed = append(prefixed, c)
		}
		d := editDistance(typed, c)
		if d > limit || d >= len(typed) {
			continue
		}
		switch {
		case d < bestD:
			best, bestD = []string{c}, d
		case d == bestD:
			best = append(best, c)
		}
	}
	if len(best) == 0 && len(prefixed) == 1 {
		best = prefixed
	}
	if len(best) == 0 || len(best) > 3 {
		return ""
	}
	q := make([]string, len(best))
	for i, b := range best {
		q[i] = quote(b)
	}
	return fmt.Sprintf(" (did you mean %s?)", strings.Join(q, " or "))
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

func quoted(s string) string { return fmt.Sprintf("%q", s) }

// commandNames are the names of the subcommands.
func commandNames() []string {
	var names []string
	for _, s := range specs() {
		names = append(names, s.name)
	}
	return names
}

// unknownCommand is the usage error for a command name that is not one.
func unknownCommand(name string) error {
	return usageErrorf("unknown command %q%s (see 'chaski help')", name, didYouMean(name, commandNames(), quoted))
}

// unknownAction is the usage error for a mistyped action of a command with
// actions (store, ca, config).
func unknownAction(cmd, action string, actions []string) error {
	list := strings.Join(actions[:len(actions)-1], ", ") + " or " + actions[len(actions)-1]
	return usageErrorf("unknown %s action %q%s: use %s", cmd, action, didYouMean(action, actions, quoted), list)
}

// flagSuggestion is the " (did you mean --x?)" for an unknown flag of c.
func (c *command) flagSuggestion(typed string) string {
	var names []string
	c.fs.VisitAll(func(f *flag.Flag) {
		if f.Usage != "internal" {
			names = append(names, f.Name)
		}
	})
	return didYouMean(typed, names, dashed)
}

// dashed is a flag name as the documentation writes it.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

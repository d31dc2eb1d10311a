package multivalue

import (
	"fmt"
	"time"
)

// Defaults of version 2's selection options.
const (
	defaultWeight   = 1
	defaultTier     = 1
	defaultV4Prefix = 24
	defaultV6Prefix = 56
	maxSlowStart    = 24 * time.Hour
)

// selectionConfig is the selection options as written in one block, the
// `multivalue` block or a `records` block: nil where not given, so that a
// records block overrides only what it sets.
type selectionConfig struct {
	minHealthy     *int
	sticky         *[2]int // IPv4 and IPv6 prefix lengths
	slowStart      *time.Duration
	panicThreshold *int
}

// over returns base with the options given here in place of its own.
func (sc *selectionConfig) over(base selection) selection {
	if sc.minHealthy != nil {
		base.minHealthy = *sc.minHealthy
	}
	if sc.sticky != nil {
		base.sticky, base.v4Prefix, base.v6Prefix = true, sc.sticky[0], sc.sticky[1]
	}
	if sc.slowStart != nil {
		base.slowStart = *sc.slowStart
	}
	if sc.panicThreshold != nil {
		base.panicThreshold = *sc.panicThreshold
	}
	return base
}

// options are the keywords that set sc, for a block's option table.
func (sc *selectionConfig) options(p *parser) map[string]option {
	return map[string]option{
		"min_healthy": numberOption(p, "min_healthy", 1, 255, func(n int) { sc.minHealthy = &n }),
		"sticky": {args: arity{0, 2}, set: func(args []string) error {
			prefixes := [2]int{defaultV4Prefix, defaultV6Prefix}
			for i, a := range args {
				limit, which := 32, "V4_PREFIX"
				if i == 1 {
					limit, which = 128, "V6_PREFIX"
				}
				n, err := wholeNumber(a, 0, limit)
				if err != nil {
					return p.errf("sticky %s %v", which, err)
				}
				prefixes[i] = n
			}
			sc.sticky = &prefixes
			return nil
		}},
		"slow_start": {args: oneArg, set: func(args []string) error {
			d, err := time.ParseDuration(args[0])
			if err != nil {
				return p.errf("slow_start %q is not a duration (like 30s or 2m)", args[0])
			}
			if d <= 0 || d > maxSlowStart {
				return p.errf("slow_start %s out of range: more than 0, at most 24h", args[0])
			}
			sc.slowStart = &d
			return nil
		}},
		"panic_threshold": numberOption(p, "panic_threshold", 0, 100, func(n int) { sc.panicThreshold = &n }),
	}
}

// valueOptions are the keywords of `weight` and `tier`, which a records block
// sets for its values and a value's block for itself: setting *weight and
// *tier (-1 where not given).
func valueOptions(p *parser, weight, tier *int) map[string]option {
	return map[string]option{
		"weight": numberOption(p, "weight", 0, 255, func(n int) { *weight = n }),
		"tier":   numberOption(p, "tier", 1, 255, func(n int) { *tier = n }),
	}
}

// numberOption is `NAME N`, N a whole number from lo to hi.
func numberOption(p *parser, name string, lo, hi int, set func(int)) option {
	return option{args: oneArg, set: func(args []string) error {
		n, err := wholeNumber(args[0], lo, hi)
		if err != nil {
			return p.errf("%s %v", name, err)
		}
		set(n)
		return nil
	}}
}

// wholeNumber reads a number from lo to hi, or says what it must be.
func wholeNumber(s string, lo, hi int) (int, error) {
	n, err := atoiDigits(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q must be a whole number from %d to %d", s, lo, hi)
	}
	return n, nil
}

// misplaced is an option table of keywords that belong elsewhere, each with
// the error that says where.
func misplaced(p *parser, where map[string]string) map[string]option {
	opts := map[string]option{}
	for kw, msg := range where {
		opts[kw] = option{args: anyArgs, set: func([]string) error { return p.errf("%s %s", kw, msg) }}
	}
	return opts
}

// merge returns the union of option tables.
func merge(tables ...map[string]option) map[string]option {
	out := map[string]option{}
	for _, t := range tables {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

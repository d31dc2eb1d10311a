package multivalue

import (
	"fmt"
	"slices"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
)

// fallback is what a record set with no healthy value answers (all_unhealthy).
type fallback uint8

const (
	fallbackServe fallback = iota
	fallbackNodata
	fallbackFallthrough
)

var fallbackNames = [...]string{fallbackServe: "serve", fallbackNodata: "nodata", fallbackFallthrough: "fallthrough"}

const (
	defaultTTL        = 60
	defaultMaxAnswers = 8
	maxMaxAnswers     = 255
	maxTTL            = 1<<31 - 1 // RFC 2181 section 8
)

// config is one `multivalue` block, parsed and validated.
type config struct {
	zones        []string
	ttl          uint32
	maxAnswers   int
	allUnhealthy fallback
	fall         fall.F
	selection    selection    // the block's selection options, before records blocks override them
	sets         []*recordSet // in Corefile order
	op           operatorConfig

	cluster *clusterConfig // nil: this process decides alone
}

// parse reads the `multivalue` block of a server block. Every error names the
// line.
func parse(c *caddy.Controller) (*config, error) {
	p := newParser(c)
	var cfg *config
	for p.next() {
		if cfg != nil {
			return nil, p.errOnce()
		}
		var err error
		if cfg, err = parseConfig(p); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func parseConfig(p *parser) (*config, error) {
	cfg := &config{ttl: defaultTTL, maxAnswers: defaultMaxAnswers}
	line := p.at
	if args := p.args(); len(args) > 0 {
		zones, err := normalizeZones(args)
		if err != nil {
			return nil, p.errf("%v", err)
		}
		cfg.zones = zones
	} else {
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(nil, p.serverBlockKeys())
	}
	if len(cfg.zones) == 0 {
		return nil, p.errf("no zones: give them as arguments or as the server block's keys")
	}
	if !p.openBlock() {
		return nil, p.errf("multivalue needs a block { ... } with at least one records line")
	}

	templates := map[string]*checkTemplate{}
	var sets []*rawSet
	var sel selectionConfig
	_, err := p.block(options{
		opts: merge(sel.options(p), cfg.op.options(p), misplaced(p, map[string]string{
			"weight": "goes in a records block or a value's block",
			"tier":   "goes in a records block or a value's block",
			"drain":  "goes in a value's block",
		}), map[string]option{
			"ttl": ttlOption(p, func(ttl uint32) { cfg.ttl = ttl }),
			"max_answers": {args: oneArg, set: func(args []string) error {
				n, err := atoiDigits(args[0])
				if err != nil || n < 1 || n > maxMaxAnswers {
					return p.errf("max_answers %q must be a whole number from 1 to %d", args[0], maxMaxAnswers)
				}
				cfg.maxAnswers = n
				return nil
			}},
			"all_unhealthy": {args: oneArg, set: func(args []string) error {
				f := slices.Index(fallbackNames[:], args[0])
				if f < 0 {
					return p.errf("all_unhealthy %q: want serve, nodata or fallthrough", args[0])
				}
				cfg.allUnhealthy = fallback(f)
				return nil
			}},
			"fallthrough": {args: anyArgs, set: func(args []string) error {
				if len(args) == 0 {
					cfg.fall.SetZonesFromArgs(nil) // the root: everything
					return nil
				}
				zones, err := normalizeZones(args)
				if err != nil {
					return p.errf("fallthrough: %v", err)
				}
				cfg.fall.Zones = zones
				return nil
			}},
			"health_check": {args: oneArg, repeat: true, argErr: "health_check needs exactly one NAME before its block",
				set: func(args []string) error {
					t, err := parseCheckTemplate(p, args[0], templates)
					if err != nil {
						return err
					}
					templates[t.name] = t
					return nil
				}},
			"cluster": {args: arity{1, -1}, argErr: "cluster needs a store and its endpoints: cluster etcd ENDPOINT...",
				set: func(args []string) error {
					cc, err := parseCluster(p, args)
					if err != nil {
						return err
					}
					cfg.cluster = cc
					return nil
				}},
			"records": {args: arity{2, -1}, repeat: true, argErr: "records needs a NAME and a TYPE",
				set: func(args []string) error {
					rs, err := parseRecords(p, args, cfg.zones)
					if err != nil {
						return err
					}
					sets = append(sets, rs)
					return nil
				}},
		}),
		other: func(opt string, _ []string) error { return p.errf("unknown option %q", opt) },
	})
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, p.errAt(line, "multivalue needs at least one records line")
	}
	if p.closed > 0 {
		return nil, p.errHere("unexpected '}'")
	}
	if err := cfg.op.agree(p); err != nil {
		return nil, err
	}

	cfg.selection = sel.over(selection{minHealthy: 1})
	if err := checkChildren(p, templates); err != nil {
		return nil, err
	}
	if err := cfg.buildSets(p, sets, templates); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ttlOption is `ttl SECONDS`, in the multivalue block and a records block.
func ttlOption(p *parser, set func(uint32)) option {
	return option{args: oneArg, set: func(args []string) error {
		ttl, err := parseTTL(args[0])
		if err != nil {
			return p.errf("%v", err)
		}
		set(ttl)
		return nil
	}}
}

func parseTTL(s string) (uint32, error) {
	n, err := atoiDigits(s)
	if err != nil || n < 0 || n > maxTTL {
		return 0, fmt.Errorf("ttl %q must be a whole number of seconds from 0 to %d", s, maxTTL)
	}
	return uint32(n), nil
}

package multivalue

import (
	"fmt"

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
	sets         []*recordSet // in Corefile order
}

// parse reads the `multivalue` block of a server block. Every error names the
// line.
func parse(cc *caddy.Controller) (*config, error) {
	c := &parser{Controller: cc}
	var cfg *config
	for c.Next() {
		if cfg != nil {
			// A second block would silently shadow the first in the chain.
			return nil, c.Err("multivalue can be used only once per server block")
		}
		var err error
		if cfg, err = parseConfig(c); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func parseConfig(c *parser) (*config, error) {
	cfg := &config{ttl: defaultTTL, maxAnswers: defaultMaxAnswers}
	line := c.Line()
	args := c.args()
	if len(args) > 0 {
		zones, err := normalizeZones(args)
		if err != nil {
			return nil, c.Err(err.Error())
		}
		cfg.zones = zones
	} else {
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(nil, c.ServerBlockKeys)
	}
	if len(cfg.zones) == 0 {
		return nil, c.Err("no zones: give them as arguments or as the server block's keys")
	}

	templates := map[string]*checkTemplate{}
	var sets []*rawSet
	seen := map[string]bool{}
	if !c.openBlock() {
		return nil, c.Err("multivalue needs a block { ... } with at least one records line")
	}
	err := c.block(func(opt string) error {
		if opt != "records" && opt != "health_check" {
			if seen[opt] {
				return c.Errf("%s given twice", opt)
			}
			seen[opt] = true
		}
		switch opt {
		case "ttl":
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			ttl, err := parseTTL(args[0])
			if err != nil {
				return c.Err(err.Error())
			}
			cfg.ttl = ttl
		case "max_answers":
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			n, err := atoiDigits(args[0])
			if err != nil || n < 1 || n > maxMaxAnswers {
				return c.Errf("max_answers %q must be a whole number from 1 to %d", args[0], maxMaxAnswers)
			}
			cfg.maxAnswers = n
		case "all_unhealthy":
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			switch args[0] {
			case "serve":
				cfg.allUnhealthy = fallbackServe
			case "nodata":
				cfg.allUnhealthy = fallbackNodata
			case "fallthrough":
				cfg.allUnhealthy = fallbackFallthrough
			default:
				return c.Errf("all_unhealthy %q: want serve, nodata or fallthrough", args[0])
			}
		case "fallthrough":
			args := c.args()
			if len(args) == 0 {
				cfg.fall.SetZonesFromArgs(nil) // the root: everything
				return nil
			}
			zones, err := normalizeZones(args)
			if err != nil {
				return c.Errf("fallthrough: %v", err)
			}
			cfg.fall.Zones = zones
		case "health_check":
			args := c.args()
			if len(args) != 1 {
				return c.Err("health_check needs exactly one NAME before its block")
			}
			name := args[0]
			if name == "" {
				return c.Err("health_check needs a non-empty NAME")
			}
			if name == "none" {
				return c.Err(`health_check: "none" is reserved, pick another name`)
			}
			if prev, ok := templates[name]; ok {
				return c.Errf("health_check %s already defined on line %d", name, prev.line)
			}
			if !c.openBlock() {
				return c.Errf("health_check %s: expected a block { ... }", name)
			}
			t, err := parseCheckTemplate(c, name)
			if err != nil {
				return err
			}
			templates[name] = t
		case "records":
			rs, err := parseRecords(c, cfg.zones)
			if err != nil {
				return err
			}
			sets = append(sets, rs)
		default:
			return c.Errf("unknown option %q", opt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, errAt(c, line, "multivalue needs at least one records line")
	}

	if err := cfg.buildSets(c, sets, templates); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseTTL(s string) (uint32, error) {
	n, err := atoiDigits(s)
	if err != nil || n < 0 || n > maxTTL {
		return 0, fmt.Errorf("ttl %q must be a whole number of seconds from 0 to %d", s, maxTTL)
	}
	return uint32(n), nil
}

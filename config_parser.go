package multivalue

import (
	"fmt"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
)

// parser reads the tokens of a `multivalue` block. It keeps the dispenser to
// itself: the dispenser's RemainingArgs and NextBlock do not know that a block
// may close at the end of an option's line, as in
// `127.0.0.1 { target 127.0.0.1:8080 }`, so every read goes through the few
// operations below, which do.
type parser struct {
	d      *caddy.Controller
	closed int // closing braces read as arguments, not yet matched by a block
	at     int // line of the first token of the line being read
}

func newParser(c *caddy.Controller) *parser { return &parser{d: c} }

// next moves to the next `multivalue` of the server block, and reports
// whether there is one.
func (p *parser) next() bool {
	if !p.d.Next() {
		return false
	}
	p.at = p.d.Line()
	return true
}

// serverBlockKeys are the keys of the server block the plugin is in.
func (p *parser) serverBlockKeys() []string { return p.d.ServerBlockKeys }

// args returns the rest of the line, up to an opening brace (left for
// openBlock) or closing braces (which end the enclosing blocks).
func (p *parser) args() []string {
	args := p.d.RemainingArgs()
	for len(args) > 0 && args[len(args)-1] == "}" {
		args = args[:len(args)-1]
		p.closed++
	}
	return args
}

// openBlock consumes a `{` that ends the line just read with args, and
// reports whether there was one.
func (p *parser) openBlock() bool { return p.closed == 0 && p.d.NextArg() }

// arity is how many arguments an option takes; max < 0: no limit.
type arity struct{ min, max int }

var (
	noArgs   = arity{0, 0}
	oneArg   = arity{1, 1}
	optArg   = arity{0, 1}
	someArgs = arity{1, -1}
	anyArgs  = arity{0, -1}
)

func (a arity) allows(n int) bool { return n >= a.min && (a.max < 0 || n <= a.max) }

func (a arity) String() string {
	switch {
	case a.max == 0:
		return "none"
	case a.min == a.max:
		return fmt.Sprint(a.min)
	case a.max < 0:
		return fmt.Sprintf("at least %d", a.min)
	case a.min == 0:
		return fmt.Sprintf("at most %d", a.max)
	}
	return fmt.Sprintf("%d to %d", a.min, a.max)
}

// option is a keyword of a block: how many arguments it takes, declared once
// here, whether it may be given again, and what it does with its arguments.
// The parser checks both before it calls set.
type option struct {
	args   arity
	repeat bool   // may be given more than once in the block
	argErr string // the message for a wrong number of arguments, if not the generic one
	set    func(args []string) error
}

// options are the keywords of one kind of block. Their errors start with
// prefix, as "health_check web: ".
type options struct {
	prefix string
	opts   map[string]option
	// other reads a line whose first token is not a keyword: a value in a
	// records block, else an error.
	other func(first string, args []string) error
}

// block reads the lines of a `{ ... }` block up to its closing brace, the
// opening brace having just been read by openBlock. It returns the line on
// which each keyword was (first) given.
func (p *parser) block(o options) (map[string]int, error) {
	outer := p.at
	defer func() { p.at = outer }()
	seen := map[string]int{}
	for {
		if !p.d.Next() {
			return nil, p.d.EOFErr()
		}
		switch p.d.Val() {
		case "}":
			return seen, nil
		case "{":
			return nil, p.d.Err("unexpected '{'")
		}
		first := p.d.Val()
		p.at = p.d.Line()
		args := p.args()
		var err error
		if opt, ok := o.opts[first]; ok {
			err = p.option(o.prefix, first, opt, args, seen)
		} else {
			err = o.other(first, args)
		}
		if err != nil {
			return nil, err
		}
		if p.closed > 0 {
			p.closed--
			return seen, nil
		}
	}
}

func (p *parser) option(prefix, name string, opt option, args []string, seen map[string]int) error {
	if first, ok := seen[name]; ok && !opt.repeat {
		return p.errf("%s%s given twice (first on line %d)", prefix, name, first)
	}
	if _, ok := seen[name]; !ok {
		seen[name] = p.at
	}
	if !opt.args.allows(len(args)) {
		if opt.argErr != "" {
			return p.errf("%s", opt.argErr)
		}
		return p.errf("%swrong number of arguments for %s: want %s, have %d", prefix, name, opt.args, len(args))
	}
	return opt.set(args)
}

// errf is an error on the line being read.
func (p *parser) errf(format string, args ...any) error { return p.errAt(p.at, format, args...) }

// errAt is an error on another line, as the caddy dispenser words it.
func (p *parser) errAt(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d - Error during parsing: %s", p.d.File(), line, fmt.Sprintf(format, args...))
}

// errOnce refuses a second `multivalue` in a server block, on its line: it
// would silently shadow the first in the chain.
func (p *parser) errOnce() error {
	return fmt.Errorf("%s:%d - Error during parsing: %w", p.d.File(), p.at, plugin.ErrOnce)
}

// errHere is an error on the line of the token read last, for what the
// dispenser found there (a stray brace, the end of the input).
func (p *parser) errHere(msg string) error { return p.d.Err(msg) }

package multivalue

import (
	"fmt"

	"github.com/coredns/caddy"
)

// parser is the dispenser plus what it cannot track itself: a block closed
// at the end of an option's line, as in `127.0.0.1 { target 127.0.0.1:8080 }`.
type parser struct {
	*caddy.Controller
	closed int    // closing braces read as arguments, not yet matched by a block
	opt    string // first token of the line being read, for ArgErr
}

// ArgErr names the option whose arguments are wrong: the dispenser's own
// message names the last token read, which may be a closing brace.
func (c *parser) ArgErr() error {
	return c.Errf("wrong number of arguments for %s", c.opt)
}

// args returns the rest of the line, up to an opening brace (left for the
// caller) or closing braces (which end the enclosing blocks).
func (c *parser) args() []string {
	args := c.RemainingArgs()
	for len(args) > 0 && args[len(args)-1] == "}" {
		args = args[:len(args)-1]
		c.closed++
	}
	return args
}

// block calls fn for every line of a `{ ... }` block whose opening brace the
// dispenser stands on, with the line's first token; fn reads the rest of the
// line with args. Nested blocks are fn's to read, again with block.
func (c *parser) block(fn func(first string) error) error {
	if c.Val() != "{" {
		return c.Errf("unexpected %q, expected a block { ... }", c.Val())
	}
	for {
		if !c.Next() {
			return c.EOFErr()
		}
		switch c.Val() {
		case "}":
			return nil
		case "{":
			return c.Err("unexpected '{'")
		}
		c.opt = c.Val()
		if err := fn(c.Val()); err != nil {
			return err
		}
		if c.closed > 0 {
			c.closed--
			return nil
		}
	}
}

// openBlock consumes a `{` that follows on the current line.
func (c *parser) openBlock() bool { return c.closed == 0 && c.NextArg() }

// errAt is c.Errf for a line other than the current token's.
func errAt(c *parser, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d - Error during parsing: %s", c.File(), line, fmt.Sprintf(format, args...))
}

package multivalue

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// operatorConfig is what a `multivalue` block says about operating the
// process: where the admin API listens and where the state file is.
type operatorConfig struct {
	admin *adminConfig // nil: no admin API from this block
	state *stateConfig // nil: no state file from this block
}

// adminConfig is `admin ADDRESS [{ token_file PATH }]`.
type adminConfig struct {
	addr      string // host:port, as written
	tokenFile string // cleaned path; "" for none
	token     []byte // the file's content, trimmed
	line      int
}

// stateConfig is `state_file PATH [MAX_AGE]`.
type stateConfig struct {
	path   string        // cleaned
	maxAge time.Duration // how old a saved status may be to be used
	line   int
}

const (
	defaultStateMaxAge = time.Hour
	maxTokenFile       = 4 << 10 // a token is a line, not a file
)

// options are the keywords of the multivalue block that set oc.
func (oc *operatorConfig) options(p *parser) map[string]option {
	return map[string]option{
		"admin": {args: oneArg, argErr: "admin needs exactly one ADDRESS (HOST:PORT) before its block",
			set: func(args []string) error {
				a, err := parseAdmin(p, args[0])
				if err != nil {
					return err
				}
				oc.admin = a
				return nil
			}},
		"state_file": {args: arity{1, 2}, argErr: "state_file needs a PATH and, optionally, a MAX_AGE",
			set: func(args []string) error {
				if args[0] == "" {
					return p.errf(`state_file "": want a PATH`)
				}
				sc := &stateConfig{path: filepath.Clean(args[0]), maxAge: defaultStateMaxAge, line: p.at}
				if len(args) == 2 {
					d, err := time.ParseDuration(args[1])
					if err != nil || d <= 0 {
						return p.errf("state_file MAX_AGE %q must be a duration above 0, like 30m or 2h", args[1])
					}
					sc.maxAge = d
				}
				oc.state = sc
				return nil
			}},
	}
}

// parseAdmin reads `admin ADDRESS [{ token_file PATH }]`, its argument having
// been read.
func parseAdmin(p *parser, addr string) (*adminConfig, error) {
	a := &adminConfig{addr: addr, line: p.at}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, p.errf("admin %q: want HOST:PORT, as 127.0.0.1:8053", addr)
	}
	if _, err := parsePort(port); err != nil {
		return nil, p.errf("admin %s: %v", addr, err)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostName(host) {
		return nil, p.errf("admin %s: %q is neither an IP address nor a host name", addr, host)
	}
	if p.openBlock() {
		_, err := p.block(options{
			prefix: "admin " + addr + ": ",
			opts: map[string]option{
				"token_file": {args: oneArg, set: func(args []string) error {
					tok, err := readToken(args[0])
					if err != nil {
						return p.errf("admin %s: token_file %s: %v", addr, args[0], err)
					}
					a.tokenFile, a.token = filepath.Clean(args[0]), tok
					return nil
				}},
			},
			other: func(opt string, _ []string) error {
				return p.errf("admin %s: unknown option %q, want token_file", addr, opt)
			},
		})
		if err != nil {
			return nil, err
		}
	}
	if a.tokenFile == "" && !loopbackHost(host) {
		what := host
		if what == "" {
			what = "every address"
		}
		return nil, p.errAt(a.line, "admin %s: %s is not loopback: an admin API reachable from other hosts needs token_file PATH (or listen on 127.0.0.1, ::1 or localhost)", addr, what)
	}
	return a, nil
}

// loopbackHost reports whether host (of HOST:PORT) is a loopback address:
// 127.0.0.0/8, ::1 or localhost.
func loopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readToken reads a bearer token file: one line, not empty, trimmed.
func readToken(path string) ([]byte, error) {
	// Stat first: not a FIFO (opening one blocks) nor a directory.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if fi.Size() > maxTokenFile {
		return nil, fmt.Errorf("larger than %d bytes: a token file holds one token", maxTokenFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tok := bytes.TrimSpace(b)
	switch {
	case len(tok) == 0:
		return nil, fmt.Errorf("is empty")
	case bytes.ContainsFunc(tok, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return nil, fmt.Errorf("the token must be one line without control characters")
	}
	return tok, nil
}

// operatorAgreement is what the `multivalue` blocks of one Corefile said so
// far about admin addresses and the state file, kept in the caddy instance's
// storage while the Corefile is set up.
type operatorAgreement struct {
	admins map[string]*adminConfig
	state  *stateConfig
}

type operatorAgreementKey struct{}

// agree checks oc against the blocks set up before it: an admin address
// named twice must have the same token_file, and the process has one state
// file.
func (oc *operatorConfig) agree(p *parser) error {
	if oc.admin == nil && oc.state == nil {
		return nil
	}
	ag, _ := p.d.Get(operatorAgreementKey{}).(*operatorAgreement)
	if ag == nil {
		ag = &operatorAgreement{admins: map[string]*adminConfig{}}
		p.d.Set(operatorAgreementKey{}, ag)
	}
	if a := oc.admin; a != nil {
		prev, ok := ag.admins[a.addr]
		switch {
		case !ok:
			ag.admins[a.addr] = a
		case prev.tokenFile != a.tokenFile:
			return p.errAt(a.line, "admin %s: %s, but line %d gives it %s: blocks that share an admin address share its token_file",
				a.addr, tokenFileText(a.tokenFile), prev.line, tokenFileText(prev.tokenFile))
		}
	}
	if s := oc.state; s != nil {
		switch prev := ag.state; {
		case prev == nil:
			ag.state = s
		case prev.path != s.path || prev.maxAge != s.maxAge:
			return p.errAt(s.line, "state_file %s %s differs from state_file %s %s on line %d: the process has one state file",
				s.path, s.maxAge, prev.path, prev.maxAge, prev.line)
		}
	}
	return nil
}

func tokenFileText(path string) string {
	if path == "" {
		return "no token_file"
	}
	return "token_file " + path
}

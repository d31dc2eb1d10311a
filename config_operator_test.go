package multivalue

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

// parseErrorsOperator are broken admin and state_file lines, in a multivalue
// block with one records line (line 1 is `multivalue example.org {`).
var parseErrorsOperator = []parseErrorCase{
	{"admin without address", "\nadmin", 2, "admin needs exactly one ADDRESS"},
	{"admin with two addresses", "\nadmin 127.0.0.1:1 127.0.0.1:2", 2, "admin needs exactly one ADDRESS"},
	{"admin without port", "\nadmin 127.0.0.1", 2, `admin "127.0.0.1": want HOST:PORT`},
	{"admin with port 0", "\nadmin 127.0.0.1:0", 2, `port "0" must be a number from 1 to 65535`},
	{"admin with a big port", "\nadmin 127.0.0.1:65536", 2, `port "65536"`},
	{"admin with a named port", "\nadmin 127.0.0.1:http", 2, `port "http"`},
	{"admin with a bad host", "\nadmin a!b:8053", 2, `"a!b" is neither an IP address nor a host name`},
	{"admin on every address without token", "\nadmin :8053", 2, "admin :8053: every address is not loopback: an admin API reachable from other hosts needs token_file PATH"},
	{"admin on a public address without token", "\nadmin 192.0.2.1:8053", 2, "192.0.2.1 is not loopback"},
	{"admin on a name without token", "\nadmin dns.example.org:8053", 2, "dns.example.org is not loopback"},
	{"admin on ::", "\nadmin [::]:8053", 2, ":: is not loopback"},
	{"admin twice", "\nadmin 127.0.0.1:8053\nadmin 127.0.0.1:8054", 3, "admin given twice (first on line 2)"},
	{"admin unknown option", "\nadmin 127.0.0.1:8053 {\n    token /x\n}", 3, `admin 127.0.0.1:8053: unknown option "token", want token_file`},
	{"token_file missing", "\nadmin 192.0.2.1:8053 {\n    token_file /nonexistent/token\n}", 3, "token_file /nonexistent/token: stat /nonexistent/token: no such file or directory"},
	{"token_file a directory", "\nadmin 192.0.2.1:8053 {\n    token_file /\n}", 3, "token_file /: not a regular file"},
	{"token_file without path", "\nadmin 192.0.2.1:8053 {\n    token_file\n}", 3, "admin 192.0.2.1:8053: wrong number of arguments for token_file: want 1, have 0"},
	{"token_file twice", "\nadmin 192.0.2.1:8053 {\n    token_file /a\n    token_file /b\n}", 3, "token_file /a"},
	{"state_file without path", "\nstate_file", 2, "state_file needs a PATH and, optionally, a MAX_AGE"},
	{"state_file with three arguments", "\nstate_file /a 1h 2h", 2, "state_file needs a PATH"},
	{"state_file with an empty path", "\nstate_file \"\"", 2, `state_file "": want a PATH`},
	{"state_file MAX_AGE not a duration", "\nstate_file /tmp/s 1", 2, `state_file MAX_AGE "1" must be a duration above 0`},
	{"state_file MAX_AGE zero", "\nstate_file /tmp/s 0s", 2, `state_file MAX_AGE "0s"`},
	{"state_file MAX_AGE negative", "\nstate_file /tmp/s -1h", 2, `state_file MAX_AGE "-1h"`},
	{"state_file twice", "\nstate_file /tmp/a\nstate_file /tmp/b", 3, "state_file given twice (first on line 2)"},
}

// writeToken writes a token file in a test's directory.
func writeToken(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseOperator: what admin and state_file parse to.
func TestParseOperator(t *testing.T) {
	tok := writeToken(t, "token", "\n  abc def  \n")
	for _, tc := range []struct {
		lines     string
		admin     string
		tokenFile string
		token     string
		state     string
		maxAge    time.Duration
	}{
		{lines: "ttl 30"},
		{lines: "admin 127.0.0.1:8053", admin: "127.0.0.1:8053"},
		{lines: "admin 127.9.9.9:8053", admin: "127.9.9.9:8053"},
		{lines: "admin [::1]:8053", admin: "[::1]:8053"},
		{lines: "admin localhost:8053", admin: "localhost:8053"},
		{lines: "admin LOCALHOST.:8053", admin: "LOCALHOST.:8053"},
		{lines: "admin :8053 {\n token_file " + tok + "\n}", admin: ":8053", tokenFile: tok, token: "abc def"},
		{lines: "admin 192.0.2.1:8053 { token_file " + tok + " }", admin: "192.0.2.1:8053", tokenFile: tok, token: "abc def"},
		{lines: "admin 127.0.0.1:8053 {\n}", admin: "127.0.0.1:8053"},
		{lines: "state_file /var/lib/coredns/multivalue.json", state: "/var/lib/coredns/multivalue.json", maxAge: time.Hour},
		{lines: "state_file ./x/../state.json 90m", state: "state.json", maxAge: 90 * time.Minute},
	} {
		c := caddy.NewTestController("dns", "multivalue example.org {\n"+tc.lines+"\nrecords www A 127.0.0.1\n}")
		cfg, err := parse(c)
		if err != nil {
			t.Errorf("%q: %v", tc.lines, err)
			continue
		}
		a, s := cfg.op.admin, cfg.op.state
		switch {
		case tc.admin == "" && a != nil, tc.admin != "" && (a == nil || a.addr != tc.admin || a.tokenFile != tc.tokenFile || string(a.token) != tc.token):
			t.Errorf("%q: admin %+v, want %s with token_file %q (%q)", tc.lines, a, tc.admin, tc.tokenFile, tc.token)
		case tc.state == "" && s != nil, tc.state != "" && (s == nil || s.path != tc.state || s.maxAge != tc.maxAge):
			t.Errorf("%q: state_file %+v, want %s %s", tc.lines, s, tc.state, tc.maxAge)
		}
	}
}

// TestParseTokenFileErrors: a token file that is empty, too large or more
// than a line is refused on its line.
func TestParseTokenFileErrors(t *testing.T) {
	for _, tc := range []struct{ content, err string }{
		{"", "is empty"},
		{" \n\t\n", "is empty"},
		{"abc\ndef", "one line without control characters"},
		{strings.Repeat("a", maxTokenFile+1), "larger than 4096 bytes"},
	} {
		p := writeToken(t, "token", tc.content)
		c := caddy.NewTestController("dns", "multivalue example.org {\n    admin 192.0.2.1:8053 {\n        token_file "+p+"\n    }\n    records www A 127.0.0.1\n}")
		_, err := parse(c)
		if err == nil || !strings.HasPrefix(err.Error(), "Testfile:3 - Error during parsing: admin 192.0.2.1:8053: token_file "+p+": ") || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("token file %q: error %v, want line 3 and %q", tc.content, err, tc.err)
		}
	}
}

// TestOperatorAcrossBlocks: blocks of one Corefile that name the same admin
// address must give it the same token_file, and name one state file; the
// Corefile is refused otherwise, on the line of the second block's option.
func TestOperatorAcrossBlocks(t *testing.T) {
	tokA, tokB := writeToken(t, "a", "A"), writeToken(t, "b", "B")
	dir := t.TempDir()
	block := func(zone, opts string) string {
		return fmt.Sprintf("%s:0 {\n    bind 127.0.0.1\n    multivalue {\n%s\n        records www A 127.0.0.1\n    }\n}\n", zone, opts)
	}
	admin := func(addr, tok string) string {
		if tok == "" {
			return "        admin " + addr
		}
		return "        admin " + addr + " {\n            token_file " + tok + "\n        }"
	}
	addr := "127.0.0.1:" + freeTCPPort(t)
	for _, tc := range []struct {
		name     string
		corefile string
		err      string // "" when it starts
	}{
		{"same address, same token", block("example.org", admin(addr, tokA)) + block("example.net", admin(addr, tokA)), ""},
		{"same address, no token", block("example.org", admin(addr, "")) + block("example.net", admin(addr, "")), ""},
		{"same address, other token", block("example.org", admin(addr, tokA)) + block("example.net", admin(addr, tokB)),
			fmt.Sprintf("Corefile:13 - Error during parsing: admin %s: token_file %s, but line 4 gives it token_file %s: blocks that share an admin address share its token_file", addr, tokB, tokA)},
		{"same address, token in one", block("example.org", admin(addr, "")) + block("example.net", admin(addr, tokB)),
			fmt.Sprintf("Corefile:11 - Error during parsing: admin %s: token_file %s, but line 4 gives it no token_file", addr, tokB)},
		{"same state file", block("example.org", "        state_file "+dir+"/s 2h") + block("example.net", "        state_file "+dir+"/s 2h"), ""},
		{"other state file", block("example.org", "        state_file "+dir+"/s") + block("example.net", "        state_file "+dir+"/t"),
			fmt.Sprintf("Corefile:11 - Error during parsing: state_file %[1]s/t 1h0m0s differs from state_file %[1]s/s 1h0m0s on line 4: the process has one state file", dir)},
		{"other max age", block("example.org", "        state_file "+dir+"/s") + block("example.net", "        state_file "+dir+"/s 2h"),
			"differs from state_file " + dir + "/s 1h0m0s on line 4"},
		{"state file in one block only", block("example.org", "        state_file "+dir+"/s") + block("example.net", ""), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(tc.corefile), Filepath: "Corefile", ServerTypeName: "dns"})
			if err == nil {
				// Stopping servers that do not serve yet races in caddy.
				for _, srv := range inst.Servers() {
					waitServingAt(t, srv.LocalAddr().String(), srv.Addr().String())
				}
				inst.ShutdownCallbacks()
				inst.Stop()
				inst.Wait()
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("refused: %v\n%s", err, tc.corefile)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want %q\n%s", err, tc.err, tc.corefile)
			}
		})
	}
}

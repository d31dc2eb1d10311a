package multivalue

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

// testCAFiles writes a valid PEM CA certificate and a file that holds none,
// and returns input with CA_FILE, BAD_CA_FILE and MISSING_CA_FILE replaced by
// their paths, and CA_DIR by a directory.
func testCAFiles(t *testing.T, input string) string {
	t.Helper()
	if !strings.Contains(input, "CA_") {
		return input
	}
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "multivalue test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("this is not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("MISSING_CA_FILE", filepath.Join(dir, "missing.pem"), "BAD_CA_FILE", bad, "CA_FILE", good, "CA_DIR", dir)
	return r.Replace(input)
}

// parseErrorCase is a broken Corefile, the line its error must name (the
// Corefile's first line is 1) and a part of the message.
type parseErrorCase struct {
	name  string
	input string
	line  int
	err   string
}

// wrapInputs returns cases with each input replaced by wrap(input).
func wrapInputs(cases []parseErrorCase, wrap func(string) string) []parseErrorCase {
	out := slices.Clone(cases)
	for i := range out {
		out[i].input = wrap(out[i].input)
	}
	return out
}

// parseErrorsWhole are whole Corefiles: the zones, the block itself.
var parseErrorsWhole = []parseErrorCase{
	{"no block", `multivalue example.org`, 1, "needs a block"},
	{"unclosed block", `multivalue example.org {
    records www A 127.0.0.1`, 2, "Unexpected EOF"},
	{"invalid zone argument", `multivalue example..org {
    records www.example.org. A 127.0.0.1
}`, 1, `invalid zone "example..org"`},
	{"multivalue twice in a server block", `multivalue example.org {
    records www A 127.0.0.1
}
multivalue example.org {
    records mail A 127.0.0.1
}`, 4, "this plugin can only be used once per Server Block"},
	{"relative name with two zones", `multivalue example.org example.net {
    records www A 127.0.0.1
}`, 2, "relative name needs exactly one zone, have 2"},
	{"apex with two zones", `multivalue example.org example.net {
    records @ A 127.0.0.1
}`, 2, "@ needs exactly one zone, have 2"},
	{"name is a parent of the zone", `multivalue sub.example.org {
    records example.org. A 127.0.0.1
}`, 2, "example.org. is not in the zones sub.example.org."},
	{"zone with a blank", `multivalue "example.org www" {
    records www.example.org. A 127.0.0.1
}`, 1, `invalid zone "example.org www"`},
}

// parseErrorsInBlock are the body of `multivalue example.org {` ... `}`: the
// body's first line (the one after the opening backquote) is line 2.
var parseErrorsInBlock = []parseErrorCase{
	// The plugin's own options.
	{"no records", `
    ttl 30`, 1, "at least one records line"},
	{"empty block", ``, 1, "at least one records line"},
	{"unknown option", `
    records www A 127.0.0.1
    colour 10`, 3, `unknown option "colour"`},
	{"ttl without value", `
    ttl
    records www A 127.0.0.1`, 2, "wrong number of arguments for ttl: want 1, have 0"},
	{"ttl with two values", `
    ttl 30 60
    records www A 127.0.0.1`, 2, "wrong number of arguments for ttl: want 1, have 2"},
	{"ttl negative", `
    records www A 127.0.0.1
    ttl -1`, 3, `ttl "-1" must be a whole number of seconds from 0 to 2147483647`},
	{"ttl too large", `
    ttl 2147483648
    records www A 127.0.0.1`, 2, `ttl "2147483648" must be`},
	{"ttl not a number", `
    ttl 1m
    records www A 127.0.0.1`, 2, `ttl "1m" must be`},
	{"ttl with a sign", `
    ttl +60
    records www A 127.0.0.1`, 2, `ttl "+60" must be`},
	{"ttl given twice", `
    ttl 30
    records www A 127.0.0.1
    ttl 30`, 4, "ttl given twice (first on line 2)"},
	{"max_answers 0", `
    max_answers 0
    records www A 127.0.0.1`, 2, `max_answers "0" must be a whole number from 1 to 255`},
	{"max_answers 256", `
    records www A 127.0.0.1
    max_answers 256`, 3, `max_answers "256" must be`},
	{"max_answers without value", `
    max_answers
    records www A 127.0.0.1`, 2, "wrong number of arguments for max_answers: want 1, have 0"},
	{"max_answers given twice", `
    max_answers 2
    max_answers 3
    records www A 127.0.0.1`, 3, "max_answers given twice (first on line 2)"},
	{"all_unhealthy unknown policy", `
    all_unhealthy drop
    records www A 127.0.0.1`, 2, `all_unhealthy "drop": want serve, nodata or fallthrough`},
	{"all_unhealthy without value", `
    all_unhealthy
    records www A 127.0.0.1`, 2, "wrong number of arguments for all_unhealthy: want 1, have 0"},
	{"all_unhealthy given twice", `
    all_unhealthy serve
    records www A 127.0.0.1
    all_unhealthy nodata`, 4, "all_unhealthy given twice (first on line 2)"},
	{"fallthrough invalid zone", `
    records www A 127.0.0.1
    fallthrough example..org`, 3, `fallthrough: invalid zone "example..org"`},
	{"fallthrough given twice", `
    fallthrough
    fallthrough example.org
    records www A 127.0.0.1`, 3, "fallthrough given twice (first on line 2)"},
	{"stray brace", `
    {
    records www A 127.0.0.1`, 2, "unexpected '{'"},
	{"stray closing brace after a one-line close", `
    records www A 127.0.0.1 } }`, 2, "unexpected '}'"},
	{"arguments spanning lines: the option's line", `
    ttl "1
2" 3
    records www A 127.0.0.1`, 2, "wrong number of arguments for ttl: want 1, have 2"},
	// health_check definitions: their names and blocks.
	{"health_check without name", `
    health_check {
    }
    records www A 127.0.0.1`, 2, "health_check needs exactly one NAME"},
	{"health_check with two names", `
    health_check web api {
    }
    records www A 127.0.0.1`, 2, "health_check needs exactly one NAME"},
	{"health_check named none", `
    health_check none {
    }
    records www A 127.0.0.1`, 2, `"none" is reserved`},
	{"health_check with empty name", `
    health_check "" {
    }
    records www A 127.0.0.1`, 2, "non-empty NAME"},
	{"health_check without block", `
    health_check web
    records www A 127.0.0.1`, 2, "health_check web: expected a block"},
	{"health_check defined twice", `
    health_check web {
    }
    records www A 127.0.0.1
    health_check web {
        port 8080
    }`, 5, "health_check web already defined on line 2"},
	{"tls_verify on tcp", `
    health_check db {
        protocol tcp
        port 5432
        tls_verify
    }
    records www A 127.0.0.1`, 5, "health_check db: tls_verify does not apply to protocol tcp"},
	{"path on tcp", `
    health_check db {
        path /health
        protocol tcp
        port 5432
    }
    records www A 127.0.0.1`, 3, "path does not apply to protocol tcp"},
	{"host on tcp", `
    health_check db {
        protocol tcp
        port 5432
        host db.example.org
    }
    records www A 127.0.0.1`, 5, "host does not apply to protocol tcp"},
	{"match and status on tcp", `
    health_check db {
        protocol tcp
        port 5432
        match ok
        status 200
    }
    records www A 127.0.0.1`, 5, "match, status does not apply to protocol tcp"},
	// records.
	{"records without type", `
    records www`, 2, "records needs a NAME and a TYPE"},
	{"records without values", `
    records www A`, 2, "records www A: no values"},
	{"records with an empty block", `
    records www A {
        ttl 30
    }`, 2, "records www A: no values"},
	{"unknown type", `
    records www FOO 127.0.0.1`, 2, `unknown type "FOO"`},
	{"CNAME", `
    records www CNAME web.example.org.`, 2, "type CNAME cannot be a multivalue record set"},
	{"NS", `
    records @ NS ns1.example.org.`, 2, "type NS cannot be"},
	{"SOA", `
    records @ soa "ns1.example.org. hostmaster.example.org. 1 7200 3600 1209600 3600"`, 2, "type SOA cannot be"},
	{"DNAME", `
    records old DNAME example.net.`, 2, "type DNAME cannot be"},
	{"ANY", `
    records www ANY 127.0.0.1`, 2, "type ANY is a meta type"},
	{"A out of range", `
    records www A {
        127.0.0.1
        127.0.0.999
    }`, 4, `records www.example.org. A: value "127.0.0.999": not a valid A value`},
	{"A given an IPv6 address", `
    records www A ::1`, 2, `value "::1"`},
	{"AAAA given an IPv4 address", `
    records www AAAA 127.0.0.1`, 2, `value "127.0.0.1"`},
	{"MX without preference", `
    records @ MX {
        mail.example.org.
    }`, 3, `records example.org. MX: value "mail.example.org.": not a valid MX value`},
	{"SRV missing fields", `
    records _sip._tcp SRV {
        10 60 sip.example.org.
    }`, 3, `value "10 60 sip.example.org."`},
	{"name outside the zones", `
    records www.example.net. A 127.0.0.1`, 2, "www.example.net. is not in the zones example.org."},
	{"name invalid", `
    records www..x A 127.0.0.1`, 2, "invalid name"},
	{"name with a blank", `
    records "www 60 IN A" A 127.0.0.1`, 2, "invalid name"},
	{"name with a line break", `
    records "www.example.org.
" A 127.0.0.1`, 2, "invalid name"},
	{"generic RDATA that is no A", `
    records www A "\# 0"`, 2, `value "\\# 0": not a valid A value: the generic RDATA does not decode to one`},
	{"generic RDATA that is no MX", `
    records @ MX {
        \# 2 000a
    }`, 3, "not a valid MX value"},
	{"value too large for a message", `
    records www TXT ` + strings.Repeat("x", 70000) + ``, 2, "not a valid TXT value"},
	{"same NAME and TYPE twice", `
    records www A 127.0.0.1
    records mail A 127.0.0.1
    records www A 127.0.0.2`, 4, "records www.example.org. A already defined on line 2"},
	{"same NAME and TYPE differing in case", `
    records www A 127.0.0.1
    records WWW.Example.ORG. a 127.0.0.2`, 3, "records www.example.org. A already defined on line 2"},
	{"same value twice", `
    records www A {
        127.0.0.1
        127.0.0.2
        127.0.0.1
    }`, 5, `records www.example.org. A: value "127.0.0.1" given twice (first on line 3)`},
	{"same value twice on the records line", `
    records www A 127.0.0.1 127.0.0.1`, 2, `value "127.0.0.1" given twice`},
	{"equal AAAA written differently", `
    records www AAAA {
        ::1
        0:0:0:0:0:0:0:1
    }`, 4, `value "0:0:0:0:0:0:0:1" given twice (first on line 3)`},
	{"equal MX differing in case", `
    records @ MX {
        10 mail.example.org.
        10 MAIL.Example.org.
    }`, 4, `value "10 MAIL.Example.org." given twice (first on line 3)`},
	{"equal MX relative and absolute", `
    records @ MX {
        10 mail
        10 mail.example.org.
    }`, 4, `value "10 mail.example.org." given twice (first on line 3)`},
	{"equal RP differing in case", `
    records @ RP {
        admin.example.org. info.example.org.
        ADMIN.example.org. Info.Example.org.
    }`, 4, "given twice (first on line 3)"},
	{"wildcard name", `
    records * A 127.0.0.1`, 2, "wildcard names are not supported"},
	{"wildcard name below", `
    records *.app A 127.0.0.1`, 2, "wildcard names are not supported"},
	{"records ttl twice", `
    records www A {
        ttl 30
        ttl 60
        127.0.0.1
    }`, 4, "ttl given twice (first on line 3)"},
	{"records ttl out of range", `
    records www A {
        ttl 99999999999
        127.0.0.1
    }`, 3, `ttl "99999999999" must be`},
	{"records health_check twice", `
    health_check web {
    }
    records www A {
        health_check web
        health_check web
        127.0.0.1
    }`, 6, "health_check given twice (first on line 5)"},
	{"records health_check without name", `
    records www A {
        health_check
        127.0.0.1
    }`, 3, "wrong number of arguments for health_check: want at least 1, have 0"},
	{"records health_check with an empty name", `
    records www A {
        health_check ""
        127.0.0.1
    }`, 3, `health_check "": want a NAME or none`},
	{"value health_check with an empty name", `
    records www A {
        127.0.0.1 { health_check "" }
    }`, 3, `health_check "": want a NAME or none`},
	{"value with a line break", `
    records www TXT "one
two"`, 2, "line break in value"},
	// References to health checks and targets.
	{"undefined health_check", `
    health_check web {
    }
    records www A {
        health_check wbe
        127.0.0.1
    }`, 5, "health_check wbe is not defined (defined: web)"},
	{"undefined health_check on a value", `
    records www A {
        127.0.0.1 {
            health_check web
        }
    }`, 4, "health_check web is not defined: no health_check NAME { ... } in this block"},
	{"target without a check", `
    records www A {
        127.0.0.1 {
            target 127.0.0.2:8080
        }
    }`, 4, "target 127.0.0.2:8080 given for a value without a health check"},
	{"target with check none", `
    health_check web {
    }
    records www A {
        health_check web
        127.0.0.1 {
            health_check none
            target 127.0.0.2
        }
    }`, 8, "target 127.0.0.2 given for a value without a health check"},
	{"target port 0", `
    health_check web {
    }
    records www A {
        health_check web
        127.0.0.1 { target 127.0.0.1:0 }
    }`, 6, `target "127.0.0.1:0": port "0" must be`},
	{"target not a host", `
    health_check web {
    }
    records www A {
        health_check web
        127.0.0.1 { target "a b" }
    }`, 6, `target "a b": "a b" is neither an IP address nor a host name`},
	{"target given twice", `
    health_check web {
    }
    records www A {
        health_check web
        127.0.0.1 {
            target 127.0.0.2
            target 127.0.0.3
        }
    }`, 8, "target given twice (first on line 7)"},
	{"value health_check twice", `
    health_check web {
    }
    records www A {
        127.0.0.1 {
            health_check web
            health_check none
        }
    }`, 7, "health_check given twice (first on line 6)"},
	{"unknown value option", `
    records www A {
        127.0.0.1 { colour 10 }
    }`, 3, `unknown value option "colour", want health_check, target, weight, tier or drain`},
	{"value option without argument", `
    records www A {
        127.0.0.1 { target }
    }`, 3, "wrong number of arguments for target: want 1, have 0"},
	{"TXT value with a check but no target", `
    health_check web {
    }
    records www TXT {
        health_check web
        "v=spf1 -all"
    }`, 6, "value \"v=spf1 -all\": a TXT value needs `target HOST[:PORT]` for health_check web"},
	{"null MX with a check but no target", `
    health_check web {
    }
    records @ MX {
        health_check web
        0 .
    }`, 6, "a MX value needs `target HOST[:PORT]`"},
	{"checked MX whose exchange is no host name", `
    health_check web {
    }
    records @ MX {
        health_check web
        0 !
    }`, 6, `records example.org. MX: value "0 !": exchange "!.example.org." is not a valid host name to check; give target HOST[:PORT]`},
	{"checked MX whose exchange is no host name, one-line blocks (found by FuzzParse)", `
    health_check b { }
    records 0 MX { health_check b
0 ! } `, 4, `records 0.example.org. MX: value "0 !": exchange "!.example.org." is not a valid host name`},
	{"checked MX whose exchange has an escaped blank", `
    health_check web {
    }
    records @ MX {
        10 mail
        20 mail\032x { health_check web }
    }`, 6, `value "20 mail\\032x": exchange "mail\\032x.example.org." is not a valid host name to check`},
	{"checked SRV whose target is no host name", `
    health_check web {
    }
    records _sip._tcp SRV {
        health_check web
        "10 10 5060 sip1"
        "10 20 5060 s!p"
    }`, 7, `records _sip._tcp.example.org. SRV: value "10 20 5060 s!p": target "s!p.example.org." is not a valid host name to check; give target HOST[:PORT]`},
	{"tcp check without port", `
    health_check db {
        protocol tcp
    }
    records db A {
        health_check db
        127.0.0.1 { target 127.0.0.5 }
    }`, 7, `value "127.0.0.1": health_check db (tcp) has no port`},
	{"tcp check without port on MX", `
    health_check smtp {
        protocol tcp
    }
    records @ MX {
        10 mail
        20 mail2 {
            health_check smtp
        }
    }`, 7, `value "20 mail2": health_check smtp (tcp) has no port`},
}

// parseErrorsInCheck are the lines of `health_check web {` ... `}`, the first
// on line 3, in a block that also holds `records www A 127.0.0.1`.
var parseErrorsInCheck = []parseErrorCase{
	{"unknown check option", `retries 3`, 3, `health_check web: unknown option "retries"`},
	{"check option given twice", "port 8080\npath /health\nport 8081", 5, "health_check web: port given twice (first on line 3)"},
	{"protocol unknown", `protocol udp`, 3, `unknown protocol "udp", want http, https, tcp, grpc, grpcs, dns or calculated`},
	{"protocol without value", `protocol`, 3, "health_check web: wrong number of arguments for protocol: want 1, have 0"},
	{"port 0", `port 0`, 3, `port "0" must be a number from 1 to 65535`},
	{"port 70000", `port 70000`, 3, `port "70000" must be a number from 1 to 65535`},
	{"port not a number", `port http`, 3, `port "http" must be`},
	{"port with sign", `port +80`, 3, `port "+80" must be`},
	{"path without slash", `path health`, 3, `path "health" must start with /`},
	{"path with a space", `path "/a b"`, 3, `path "/a b" must not contain spaces`},
	{"host invalid", `host "www example org"`, 3, `host "www example org" is not a valid host name`},
	{"status 99", `status 99`, 3, `status "99" must lie within 100-599`},
	{"status 600", `status 200 600`, 3, `status "600" must lie within 100-599`},
	{"status range backwards", `status 300-200`, 3, `status "300-200" must lie within 100-599, low before high`},
	{"status not a number", `status abc`, 3, `status "abc" is not a code or LOW-HIGH range`},
	{"status open range", `status 200-`, 3, `status "200-" is not a code`},
	{"status without value", `status`, 3, "health_check web: wrong number of arguments for status: want at least 1, have 0"},
	{"match empty", `match ""`, 3, "match must be 1 to 5120 bytes"},
	{"match too long", `match ` + strings.Repeat("x", 5121), 3, "match must be 1 to 5120 bytes"},
	{"interval without unit", `interval 10`, 3, `interval "10" is not a duration`},
	{"interval too short", "interval 5ms\ntimeout 1ms", 3, "interval 5ms out of range 10ms to 24h"},
	{"timeout too long", `timeout 25h`, 3, "timeout 25h out of range"},
	{"timeout not a duration", `timeout soon`, 3, `timeout "soon" is not a duration`},
	{"timeout equals interval", "interval 5s\ntimeout 5s", 4, "health_check web: timeout 5s must be less than interval 5s"},
	{"timeout above default interval", "path /\ntimeout 12s", 4, "timeout 12s must be less than interval 10s"},
	{"interval below default timeout", "path /\ninterval 3s", 4, "timeout 4s must be less than interval 3s"},
	{"failure_threshold 0", `failure_threshold 0`, 3, `failure_threshold "0" must be a whole number from 1 to 10`},
	{"failure_threshold 11", `failure_threshold 11`, 3, `failure_threshold "11" must be`},
	{"success_threshold 0", `success_threshold 0`, 3, `success_threshold "0" must be`},
	{"success_threshold 11", `success_threshold 11`, 3, `success_threshold "11" must be`},
	{"invert with argument", `invert yes`, 3, "health_check web: wrong number of arguments for invert: want none, have 1"},
	{"tls_verify with missing CA file", "protocol https\ntls_verify MISSING_CA_FILE", 4, "no such file"},
	{"tls_verify with a file holding no certificate", "protocol https\ntls_verify BAD_CA_FILE", 4, "holds no PEM certificate"},
	{"tls_verify with a directory", "protocol https\ntls_verify CA_DIR", 4, "is not a regular file"},
	{"tls_verify with two files", "protocol https\ntls_verify CA_FILE CA_FILE", 4, "health_check web: wrong number of arguments for tls_verify: want at most 1, have 2"},
	{"tls_verify on http", "port 8443\ntls_verify", 4, "health_check web: tls_verify does not apply to protocol http"},
}

// TestParseErrors feeds broken Corefiles to the parser: each must fail with a
// message that names the file, the line of the mistake, and the mistake.
func TestParseErrors(t *testing.T) {
	for _, tc := range parseErrorCases() {
		t.Run(tc.name, func(t *testing.T) {
			c := caddy.NewTestController("dns", testCAFiles(t, tc.input))
			cfg, err := parse(c)
			if err == nil {
				t.Fatalf("no error, config %+v", cfg)
			}
			prefix := fmt.Sprintf("Testfile:%d - Error during parsing: ", tc.line)
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %q does not contain %q", err, tc.err)
			}
		})
	}
}

// parseErrorCases are the tables above, their inputs wrapped.
func parseErrorCases() []parseErrorCase {
	return slices.Concat(
		parseErrorsWhole,
		wrapInputs(slices.Concat(parseErrorsInBlock, parseErrorsSelection, parseErrorsChecks), func(body string) string {
			return "multivalue example.org {" + body + "\n}"
		}),
		wrapInputs(parseErrorsOperator, func(body string) string {
			return "multivalue example.org {" + body + "\nrecords www A 127.0.0.1\n}"
		}),
		wrapInputs(parseErrorsInCheck, func(lines string) string {
			return "multivalue example.org {\n    health_check web {\n        " +
				strings.ReplaceAll(lines, "\n", "\n        ") + "\n    }\n    records www A 127.0.0.1\n}"
		}),
	)
}

// summary renders a parsed config as the assertions below spell it: a line
// per set (name, type, TTL), then a line per value in the set's order, with
// each check's protocol and host:port when the value has checks (a
// calculated one as `calculated NAME[its children]`).
func summary(cfg *config) []string {
	var out []string
	for _, s := range cfg.sets {
		out = append(out, fmt.Sprintf("%s %s ttl=%d", s.name, s.typeName, s.values[0].rr.Header().Ttl))
		for _, v := range s.values {
			line := "  " + v.text
			if len(v.specs) > 0 {
				line += " -> " + specSummary(v.specs)
			}
			out = append(out, line)
		}
	}
	return out
}

func specSummary(specs []*checkSpec) string {
	var parts []string
	for _, s := range specs {
		if s.protocol == protoCalculated {
			parts = append(parts, "calculated "+s.template+"["+specSummary(s.kids)+"]")
		} else {
			parts = append(parts, s.protocol+" "+s.target())
		}
	}
	return strings.Join(parts, ", ")
}

// specOf returns the first check of the value whose text is text in the set
// name, nil when it has none.
func specOf(t *testing.T, cfg *config, name, text string) *checkSpec {
	t.Helper()
	if specs := specsOf(t, cfg, name, text); len(specs) > 0 {
		return specs[0]
	}
	return nil
}

// specsOf returns the checks of the value whose text is text in the set name.
func specsOf(t *testing.T, cfg *config, name, text string) []*checkSpec {
	t.Helper()
	for _, s := range cfg.sets {
		if s.name != name {
			continue
		}
		for _, v := range s.values {
			if v.text == text {
				return v.specs
			}
		}
	}
	t.Fatalf("no value %q in %s", text, name)
	return nil
}

// TestParse checks what good Corefiles parse to: defaults, overrides, names,
// values and their order, and the health check every value ends up with.
func TestParse(t *testing.T) {
	defaultSpec := func(host string) checkSpec {
		return checkSpec{
			checkSettings: checkSettings{
				protocol: "http", port: 80, path: "/", status: "200-399", method: "GET",
				interval: 10 * time.Second, timeout: 4 * time.Second,
				failureThreshold: 3, successThreshold: 3,
			},
			host: host, template: "web", statusRanges: []statusRange{{200, 399}},
		}
	}
	tests := []struct {
		name  string
		keys  []string // the server block's keys
		input string
		want  []string // summary
		check func(t *testing.T, cfg *config)
	}{
		{
			name: "defaults",
			input: `multivalue example.org {
    records www A 127.0.0.1
}`,
			want: []string{"www.example.org. A ttl=60", "  127.0.0.1"},
			check: func(t *testing.T, cfg *config) {
				if !slices.Equal(cfg.zones, []string{"example.org."}) {
					t.Errorf("zones %v", cfg.zones)
				}
				if cfg.ttl != 60 || cfg.maxAnswers != 8 || cfg.allUnhealthy != fallbackServe {
					t.Errorf("ttl %d max_answers %d all_unhealthy %s, want 60 8 serve", cfg.ttl, cfg.maxAnswers, fallbackNames[cfg.allUnhealthy])
				}
				if len(cfg.fall.Zones) != 0 {
					t.Errorf("fallthrough %v, want none", cfg.fall.Zones)
				}
				if cfg.sets[0].zone != "example.org." {
					t.Errorf("set zone %q", cfg.sets[0].zone)
				}
			},
		},
		{
			name: "options set, records ttl overrides",
			input: `multivalue example.org {
    records www A 127.0.0.1
    ttl 300
    max_answers 255
    all_unhealthy nodata
    fallthrough
    records api A {
        ttl 0
        127.0.0.1
    }
}`,
			want: []string{"www.example.org. A ttl=300", "  127.0.0.1", "api.example.org. A ttl=0", "  127.0.0.1"},
			check: func(t *testing.T, cfg *config) {
				if cfg.ttl != 300 || cfg.maxAnswers != 255 || cfg.allUnhealthy != fallbackNodata {
					t.Errorf("ttl %d max_answers %d all_unhealthy %s, want 300 255 nodata", cfg.ttl, cfg.maxAnswers, fallbackNames[cfg.allUnhealthy])
				}
				if !slices.Equal(cfg.fall.Zones, []string{"."}) {
					t.Errorf("fallthrough %v, want [.]", cfg.fall.Zones)
				}
			},
		},
		{
			name: "all_unhealthy fallthrough, fallthrough zones, max_answers 1",
			input: `multivalue example.org {
    all_unhealthy fallthrough
    max_answers 1
    fallthrough Sub.Example.ORG example.net.
    records www A 127.0.0.1
}`,
			want: []string{"www.example.org. A ttl=60", "  127.0.0.1"},
			check: func(t *testing.T, cfg *config) {
				if cfg.allUnhealthy != fallbackFallthrough || cfg.maxAnswers != 1 {
					t.Errorf("all_unhealthy %s max_answers %d", fallbackNames[cfg.allUnhealthy], cfg.maxAnswers)
				}
				if !slices.Equal(cfg.fall.Zones, []string{"sub.example.org.", "example.net."}) {
					t.Errorf("fallthrough %v", cfg.fall.Zones)
				}
			},
		},
		{
			name: "zones from the server block keys",
			keys: []string{"dns://Example.ORG:1053", "example.net.:53"},
			input: `multivalue {
    records www.example.net. A 127.0.0.1
    records WWW.example.org. A 127.0.0.2
}`,
			want: []string{"www.example.net. A ttl=60", "  127.0.0.1", "www.example.org. A ttl=60", "  127.0.0.2"},
			check: func(t *testing.T, cfg *config) {
				if !slices.Equal(cfg.zones, []string{"example.org.", "example.net."}) {
					t.Errorf("zones %v", cfg.zones)
				}
				if cfg.sets[0].zone != "example.net." || cfg.sets[1].zone != "example.org." {
					t.Errorf("set zones %q %q", cfg.sets[0].zone, cfg.sets[1].zone)
				}
			},
		},
		{
			name: "zones from arguments win over the server block's",
			keys: []string{"example.org:53"},
			input: `multivalue Sub.Example.org sub.example.org {
    records www A 127.0.0.1
    records @ A 127.0.0.2
}`,
			want: []string{"www.sub.example.org. A ttl=60", "  127.0.0.1", "sub.example.org. A ttl=60", "  127.0.0.2"},
			check: func(t *testing.T, cfg *config) {
				if !slices.Equal(cfg.zones, []string{"sub.example.org."}) {
					t.Errorf("zones %v, want the duplicate folded", cfg.zones)
				}
			},
		},
		{
			name: "reverse zone from a CIDR key",
			keys: []string{"127.0.0.0/8"},
			input: `multivalue {
    records 1.0.0 PTR localhost
}`,
			want: []string{"1.0.0.127.in-addr.arpa. PTR ttl=60", "  localhost.127.in-addr.arpa."},
		},
		{
			name: "root zone",
			input: `multivalue . {
    records www A 127.0.0.1
    records mail.example. MX "10 mail.example."
}`,
			want: []string{"www. A ttl=60", "  127.0.0.1", "mail.example. MX ttl=60", "  10 mail.example."},
		},
		{
			name: "apex, case folded, relative names in RDATA",
			input: `multivalue example.org {
    records @ MX {
        20 Mail2
        10 mail.example.org.
    }
    records Www.Example.Org. A 127.0.0.1
}`,
			want: []string{
				"example.org. MX ttl=60", "  10 mail.example.org.", "  20 Mail2.example.org.",
				"www.example.org. A ttl=60", "  127.0.0.1",
			},
		},
		{
			name: "values in canonical order",
			input: `multivalue example.org {
    records www A 127.0.0.100 127.0.0.10 {
        127.0.0.9
        127.0.0.2
    }
    records txt TXT {
        aaa
        zz
        b
    }
    records v6 AAAA ::1 ::0.0.0.2 fe80::1
}`,
			want: []string{
				"www.example.org. A ttl=60", "  127.0.0.2", "  127.0.0.9", "  127.0.0.10", "  127.0.0.100",
				// Canonical order compares the wire form: shorter strings first.
				"txt.example.org. TXT ttl=60", `  "b"`, `  "zz"`, `  "aaa"`,
				"v6.example.org. AAAA ttl=60", "  ::1", "  ::2", "  fe80::1",
			},
		},
		{
			name: "TXT quoting",
			input: `multivalue example.org {
    records spf TXT "v=spf1 -all"
    records two TXT one two
    records multi TXT {
        one two "three four"
        "say \"hi\""
    }
}`,
			want: []string{
				"spf.example.org. TXT ttl=60", `  "v=spf1 -all"`,
				// Two single-token values on the records line.
				"two.example.org. TXT ttl=60", `  "one"`, `  "two"`,
				// One value of three strings, one of a string with quotes.
				"multi.example.org. TXT ttl=60", `  "one" "two" "three four"`, `  "say \"hi\""`,
			},
		},
		{
			name: "SRV, MX and a generic type",
			input: `multivalue example.org {
    records _sip._tcp SRV "10 60 5060 sip1" {
        "10 40 5060 sip2.example.org."
    }
    records gen TYPE65280 "\# 2 abcd"
    records caa CAA "0 issue ca.example.net"
}`,
			want: []string{
				"_sip._tcp.example.org. SRV ttl=60", "  10 40 5060 sip2.example.org.", "  10 60 5060 sip1.example.org.",
				"gen.example.org. TYPE65280 ttl=60", `  \# 2 abcd`,
				"caa.example.org. CAA ttl=60", `  0 issue "ca.example.net"`,
			},
		},
		{
			name: "escaped names as a query spells them",
			input: `multivalue ex\097mple.ORG {
    records \065 A 127.0.0.1
    records b\.c A "\# 4 7f000002"
}`,
			want: []string{"a.example.org. A ttl=60", "  127.0.0.1", `b\.c.example.org. A ttl=60`, "  127.0.0.2"},
		},
		{
			name: "quoted strings of a multi-string type",
			input: `multivalue example.org {
    records www HINFO {
        "Intel x86" Linux
    }
}`,
			want: []string{"www.example.org. HINFO ttl=60", `  "Intel x86" "Linux"`},
		},
		{
			name: "check defaults",
			input: `multivalue example.org {
    health_check web {
    }
    records www A {
        health_check web
        127.0.0.1
    }
}`,
			want: []string{"www.example.org. A ttl=60", "  127.0.0.1 -> http 127.0.0.1:80"},
			check: func(t *testing.T, cfg *config) {
				got, want := *specOf(t, cfg, "www.example.org.", "127.0.0.1"), defaultSpec("127.0.0.1")
				if !reflect.DeepEqual(got, want) {
					t.Errorf("spec\n%+v, want\n%+v", got, want)
				}
			},
		},
		{
			name: "check options",
			input: `multivalue example.org {
    health_check web {
        protocol HTTPS
        path /healthz?full=1
        host www.example.org
        status 200 301-302
        match "all good"
        interval 30s
        timeout 29s
        failure_threshold 5
        invert
        tls_verify
    }
    records www A {
        health_check web
        127.0.0.1
    }
}`,
			want: []string{"www.example.org. A ttl=60", "  127.0.0.1 -> https 127.0.0.1:443"},
			check: func(t *testing.T, cfg *config) {
				got := *specOf(t, cfg, "www.example.org.", "127.0.0.1")
				want := checkSpec{
					checkSettings: checkSettings{
						protocol: "https", port: 443, path: "/healthz?full=1", method: "GET",
						hostHeader: "www.example.org", match: "all good", status: "200-200 301-302",
						interval: 30 * time.Second, timeout: 29 * time.Second,
						// success_threshold defaults to failure_threshold.
						failureThreshold: 5, successThreshold: 5,
						invert: true, tlsVerify: true,
					},
					host: "127.0.0.1", template: "web", statusRanges: []statusRange{{200, 200}, {301, 302}},
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("spec\n%+v, want\n%+v", got, want)
				}
			},
		},
		{
			name: "tcp check with a port",
			input: `multivalue example.org {
    health_check db {
        protocol tcp
        port 5432
        success_threshold 1
        interval 1s
        timeout 500ms
    }
    records db A {
        health_check db
        127.0.0.1
    }
}`,
			want: []string{"db.example.org. A ttl=60", "  127.0.0.1 -> tcp 127.0.0.1:5432"},
			check: func(t *testing.T, cfg *config) {
				got := *specOf(t, cfg, "db.example.org.", "127.0.0.1")
				want := checkSpec{
					checkSettings: checkSettings{
						protocol: "tcp", port: 5432,
						interval: time.Second, timeout: 500 * time.Millisecond,
						failureThreshold: 3, successThreshold: 1,
					},
					host: "127.0.0.1", template: "db",
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("spec\n%+v, want\n%+v", got, want)
				}
			},
		},
		{
			name: "reference before definition, none, per-value override",
			input: `multivalue example.org {
    records www A {
        health_check web
        127.0.0.1
        127.0.0.2 {
            health_check none
        }
        127.0.0.3 {
            health_check alt
        }
    }
    records plain A 127.0.0.4 {
        127.0.0.5 {
            health_check web
        }
    }
    health_check web {
    }
    health_check alt {
        port 8080
    }
}`,
			want: []string{
				"www.example.org. A ttl=60",
				"  127.0.0.1 -> http 127.0.0.1:80", "  127.0.0.2", "  127.0.0.3 -> http 127.0.0.3:8080",
				"plain.example.org. A ttl=60", "  127.0.0.4", "  127.0.0.5 -> http 127.0.0.5:80",
			},
		},
		{
			name: "target host and port precedence",
			input: `multivalue example.org {
    health_check web {
    }
    health_check web8080 {
        port 8080
    }
    health_check tls {
        protocol https
    }
    health_check db {
        protocol tcp
    }
    records a A {
        health_check web8080
        127.0.0.1 { target 127.0.0.11:9090 }
        127.0.0.2 { target 127.0.0.12 }
        127.0.0.3
        127.0.0.4 { health_check tls }
        127.0.0.5 {
            health_check db
            target 127.0.0.15:5432
        }
    }
    records _sip._tcp SRV {
        health_check web
        "10 10 5060 sip1"
        "10 20 5060 sip2" {
            health_check web8080
        }
        "10 30 5060 sip3" {
            target Mgmt.example.org:9000
        }
        "10 40 5060 sip4" { health_check db }
    }
    records @ MX {
        health_check web
        10 mail
        20 mail2.example.net.
    }
    records txt TXT {
        health_check tls
        token { target 127.0.0.20 }
    }
    records v6 AAAA {
        health_check web
        ::1
        ::2 { target [::3]:8080 }
    }
}`,
			want: []string{
				"a.example.org. A ttl=60",
				"  127.0.0.1 -> http 127.0.0.11:9090", // target :PORT first
				"  127.0.0.2 -> http 127.0.0.12:8080", // then the check's port
				"  127.0.0.3 -> http 127.0.0.3:8080",
				"  127.0.0.4 -> https 127.0.0.4:443", // the protocol's default
				"  127.0.0.5 -> tcp 127.0.0.15:5432",
				"_sip._tcp.example.org. SRV ttl=60",
				"  10 10 5060 sip1.example.org. -> http sip1.example.org:5060", // the SRV port before the default
				"  10 20 5060 sip2.example.org. -> http sip2.example.org:8080", // the check's port before the SRV's
				"  10 30 5060 sip3.example.org. -> http mgmt.example.org:9000",
				"  10 40 5060 sip4.example.org. -> tcp sip4.example.org:5060",
				"example.org. MX ttl=60",
				"  10 mail.example.org. -> http mail.example.org:80",
				"  20 mail2.example.net. -> http mail2.example.net:80",
				"txt.example.org. TXT ttl=60",
				`  "token" -> https 127.0.0.20:443`,
				"v6.example.org. AAAA ttl=60",
				"  ::1 -> http [::1]:80",
				"  ::2 -> http [::3]:8080",
			},
		},
		{
			name: "with its own target, an exchange or SRV target need not be a host name",
			input: `multivalue example.org {
    health_check web {
    }
    records @ MX {
        health_check web
        0 ! { target 127.0.0.1 }
    }
    records _s._tcp SRV {
        health_check web
        "10 10 5060 s!p" { target 127.0.0.2 }
    }
}`,
			want: []string{
				"example.org. MX ttl=60", "  0 !.example.org. -> http 127.0.0.1:80",
				"_s._tcp.example.org. SRV ttl=60", "  10 10 5060 s!p.example.org. -> http 127.0.0.2:5060",
			},
		},
		{
			name: "one-line blocks",
			input: `multivalue example.org {
    health_check web { port 8080 }
    health_check tls { protocol https }
    records www A { 127.0.0.1 }
    records api A {
        health_check web
        127.0.0.1 { target 127.0.0.1:8081 }
        127.0.0.2 { health_check tls } }
    records txt TXT { "v=spf1 -all" } }`,
			want: []string{
				"www.example.org. A ttl=60", "  127.0.0.1",
				"api.example.org. A ttl=60", "  127.0.0.1 -> http 127.0.0.1:8081", "  127.0.0.2 -> https 127.0.0.2:443",
				"txt.example.org. TXT ttl=60", `  "v=spf1 -all"`,
			},
		},
		{
			name: "identical checks share a key, whatever the template's name",
			input: `multivalue example.org {
    health_check web {
        path /health
    }
    health_check web2 {
        path /health
        port 80
        status 200-399
    }
    health_check other {
        path /other
    }
    records www A {
        health_check web
        127.0.0.1
        127.0.0.2 { target 127.0.0.1 }
    }
    records api A {
        health_check web2
        127.0.0.1
        127.0.0.2 { health_check other }
    }
    records @ MX {
        health_check web
        10 Mail
    }
    records other A {
        health_check web
        127.0.0.9 { target mail.EXAMPLE.org. }
        127.0.0.8 { target [::FFFF:127.0.0.1] }
    }
}`,
			check: func(t *testing.T, cfg *config) {
				k := func(name, text string) checkKey { return specOf(t, cfg, name, text).key() }
				www1 := k("www.example.org.", "127.0.0.1")
				if www1 != k("www.example.org.", "127.0.0.2") {
					t.Error("a target equal to another value's address must give the same check")
				}
				if www1 != k("api.example.org.", "127.0.0.1") {
					t.Error("templates with equal settings must give the same check")
				}
				if k("api.example.org.", "127.0.0.2") == k("www.example.org.", "127.0.0.2") {
					t.Error("different paths must give different checks")
				}
				if k("example.org.", "10 Mail.example.org.") != k("other.example.org.", "127.0.0.9") {
					t.Error("host names differing in case or a trailing dot must give the same check")
				}
				if www1 != k("other.example.org.", "127.0.0.8") {
					t.Error("an IPv4-mapped IPv6 target must give the same check as the IPv4 address")
				}
			},
		},
		{
			name: "the spec's full syntax",
			input: `multivalue example.org example.net {
    ttl 30
    max_answers 4
    all_unhealthy nodata
    fallthrough example.net

    health_check web {
        protocol https
        port 8443
        path /healthz
        host www.example.org
        status 200 204 300-399
        match OK
        interval 5s
        timeout 2s
        failure_threshold 2
        success_threshold 4
        invert
        tls_verify CA_FILE
    }

    records www.example.org. A 127.0.0.1 127.0.0.2 {
        ttl 10
        health_check web
        127.0.0.3 {
            health_check none
        }
        127.0.0.4 {
            health_check web
            target mgmt.example.org:9443
        }
    }
    records www.example.net. A 127.0.0.1
}`,
			want: []string{
				"www.example.org. A ttl=10",
				"  127.0.0.1 -> https 127.0.0.1:8443",
				"  127.0.0.2 -> https 127.0.0.2:8443",
				"  127.0.0.3",
				"  127.0.0.4 -> https mgmt.example.org:9443",
				"www.example.net. A ttl=30",
				"  127.0.0.1",
			},
			check: func(t *testing.T, cfg *config) {
				if !slices.Equal(cfg.zones, []string{"example.org.", "example.net."}) {
					t.Errorf("zones %v", cfg.zones)
				}
				if cfg.ttl != 30 || cfg.maxAnswers != 4 || cfg.allUnhealthy != fallbackNodata {
					t.Errorf("ttl %d max_answers %d all_unhealthy %s", cfg.ttl, cfg.maxAnswers, fallbackNames[cfg.allUnhealthy])
				}
				if !slices.Equal(cfg.fall.Zones, []string{"example.net."}) {
					t.Errorf("fallthrough %v", cfg.fall.Zones)
				}
				got := *specOf(t, cfg, "www.example.org.", "127.0.0.1")
				if got.caPool == nil || !strings.Contains(got.caFile, "ca.pem sha256:") {
					t.Errorf("CA file %q, pool %v: want ca.pem loaded", got.caFile, got.caPool)
				}
				got.caPool, got.caFile = nil, ""
				want := checkSpec{
					checkSettings: checkSettings{
						protocol: "https", port: 8443, path: "/healthz", method: "GET",
						hostHeader: "www.example.org", match: "OK", status: "200-200 204-204 300-399",
						interval: 5 * time.Second, timeout: 2 * time.Second,
						failureThreshold: 2, successThreshold: 4,
						invert: true, tlsVerify: true,
					},
					host: "127.0.0.1", template: "web", statusRanges: []statusRange{{200, 200}, {204, 204}, {300, 399}},
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("spec\n%+v, want\n%+v", got, want)
				}
			},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := caddy.NewTestController("dns", testCAFiles(t, tc.input))
			c.ServerBlockKeys = tc.keys
			cfg, err := parse(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(cfg); tc.want != nil && !slices.Equal(got, tc.want) {
				t.Errorf("parsed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

// TestCAFileContentsMakeTheCheck: replacing the CA file and reloading must
// give checks with the new roots, not reuse the running check with the old.
func TestCAFileContentsMakeTheCheck(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	keyFor := func(caName string) checkKey {
		t.Helper()
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hcNewCA(t, caName).cert.Raw})
		if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		c := caddy.NewTestController("dns", `multivalue {
    health_check web {
        protocol https
        tls_verify `+ca+`
    }
    records www A 127.0.0.1 {
        health_check web
    }
}`)
		c.ServerBlockKeys = []string{"example.org."}
		cfg, err := parse(c)
		if err != nil {
			t.Fatal(err)
		}
		return specOf(t, cfg, "www.example.org.", "127.0.0.1").key()
	}
	if keyFor("old CA") == keyFor("new CA") {
		t.Error("the same check key after the CA file changed: a reload would keep the old roots")
	}
}

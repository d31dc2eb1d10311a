package multivalue

import (
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"
)

// errLine reads the line an error names; every parse error must name one.
var errLine = regexp.MustCompile(`^Testfile:(\d+) - `)

// FuzzParse feeds arbitrary Corefile text to the parser. It must never panic
// or hang; an error must name a line of the input; a config it accepts must
// hold what the handler relies on.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"multivalue example.org {\n    records www A 127.0.0.1\n}",
		"multivalue {\n    records www A 127.0.0.1 127.0.0.2\n}",
		"multivalue . {\n    records @ TXT \"v=spf1 -all\" two\n}",
		"multivalue example.org {\n    health_check web { port 8080 }\n    records www A {\n        health_check web\n        127.0.0.1 { target 127.0.0.1:8081 }\n    }\n}",
		"multivalue example.org {\n    records _s._tcp SRV \"10 10 5060 sip\" {\n        health_check db\n    }\n    health_check db {\n        protocol tcp\n        interval 1s\n        timeout 500ms\n    }\n}",
		"multivalue example.org example.net {\n    ttl 30\n    max_answers 2\n    all_unhealthy fallthrough\n    fallthrough example.net\n    records www.example.net. MX {\n        10 mail.example.net.\n        20 MAIL.example.net.\n    }\n}",
		"multivalue 127.0.0.0/8 {\n    records 1.0.0 PTR localhost.\n    records x TYPE65280 \"\\# 2 abcd\"\n}",
		"multivalue example.org {\n    health_check h {\n        protocol https\n        status 200 300-399\n        match ok\n        invert\n        tls_verify\n    }\n    records v6 AAAA ::1 { ::2 { health_check h } }\n}",
		// Version 2's health checks: every protocol and option.
		"multivalue example.org {\n    health_check api {\n        protocol grpc\n        target api.example.org:9090\n        service my.pkg.Api\n        host api.example.org\n        fast_interval 2s\n    }\n    health_check apis {\n        protocol grpcs\n        port 9443\n        tls_verify\n    }\n    health_check r {\n        protocol dns\n        query www.example.org AAAA\n        match 2001:db8\n    }\n    records www A {\n        health_check api r\n        127.0.0.1\n        127.0.0.2 { health_check apis }\n    }\n}",
		"multivalue example.org {\n    health_check all {\n        protocol calculated\n        children web db\n        healthy_threshold 1\n        invert\n    }\n    health_check web {\n        method HEAD\n        header X-Check 1\n        header x-check 2\n        interval 5s\n        timeout 1s\n        fast_interval 2s\n    }\n    health_check db { protocol tcp\n target db.example.org:5432 }\n    records txt TXT \"v=spf1 -all\" {\n        health_check all\n        \"v=spf1 -all\" { target 127.0.0.1 }\n    }\n    records _s._tcp SRV \"1 1 5060 sip\" { health_check db none }\n}",
	} {
		f.Add(seed)
	}
	// The broken Corefiles of TestParseErrors: each reaches one error path.
	for _, tc := range parseErrorCases() {
		if len(tc.input) <= 4096 { // not the oversized ones: they slow every mutation
			f.Add(tc.input)
		}
	}
	f.Fuzz(func(t *testing.T, input string) {
		c := caddy.NewTestController("dns", input)
		c.ServerBlockKeys = []string{"example.org:53"}
		cfg, err := parse(c)
		if err != nil {
			m := errLine.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error names no line: %v", err)
			}
			// A quoted token may hold line breaks, so the count is a bound.
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > strings.Count(input, "\n")+1 {
				t.Fatalf("error names line %d of a %d-line input: %v", n, strings.Count(input, "\n")+1, err)
			}
			return
		}
		if cfg == nil {
			// No token at all (blank, comments, an unclosed quote): setup
			// is never called for that in CoreDNS.
			if d := caddyfile.NewDispenser("Testfile", strings.NewReader(input)); d.Next() {
				t.Fatalf("no config and no error for %q", input)
			}
			return
		}
		checkConfig(t, cfg)
	})
}

// checkConfig fails t when cfg breaks an invariant the handler relies on.
func checkConfig(t *testing.T, cfg *config) {
	t.Helper()
	if len(cfg.zones) == 0 {
		t.Fatal("no zones")
	}
	if len(cfg.sets) == 0 {
		t.Fatal("no record set")
	}
	if cfg.maxAnswers < 1 || cfg.maxAnswers > maxMaxAnswers {
		t.Fatalf("max_answers %d", cfg.maxAnswers)
	}
	seen := map[string]bool{}
	for _, s := range cfg.sets {
		if len(s.values) == 0 {
			t.Fatalf("%s %s has no value", s.name, s.typeName)
		}
		if s.name != strings.ToLower(s.name) || !dns.IsFqdn(s.name) {
			t.Fatalf("name %q is not lower case and fully qualified", s.name)
		}
		// Every name lies in its zone, which is one of the zones, and the
		// zone is a suffix of it as text (the handler compares strings).
		inZone := dns.IsSubDomain(s.zone, s.name) && strings.HasSuffix(s.name, s.zone) &&
			(s.zone == "." || len(s.name) == len(s.zone) || s.name[len(s.name)-len(s.zone)-1] == '.')
		if !slices.Contains(cfg.zones, s.zone) || !inZone {
			t.Fatalf("%s is not in its zone %q (zones %v)", s.name, s.zone, cfg.zones)
		}
		// The handler walks label by label from every name up to its zone:
		// it must get there.
		for name := s.name; name != s.zone; {
			if name == "." {
				t.Fatalf("walking up from %s never reaches its zone %s", s.name, s.zone)
			}
			if off, end := dns.NextLabel(name, 0); end {
				name = "."
			} else {
				name = name[off:]
			}
		}
		k := s.name + " " + s.typeName
		if seen[k] {
			t.Fatalf("%s held twice", k)
		}
		seen[k] = true
		texts := map[string]bool{}
		for _, v := range s.values {
			h := v.rr.Header()
			if h.Name != s.name || h.Rrtype != s.qtype || h.Class != dns.ClassINET {
				t.Fatalf("value %q has header %v in set %s %s", v.text, h, s.name, s.typeName)
			}
			if texts[v.text] {
				t.Fatalf("%s holds %q twice", k, v.text)
			}
			texts[v.text] = true
			for _, sp := range v.specs {
				if sp.protocol != protoCalculated {
					checkProbing(t, sp, v.text, k)
					continue
				}
				if len(sp.kids) == 0 || sp.healthyThreshold < 0 || sp.healthyThreshold > maxHealthyThreshold || sp.host != "" {
					t.Fatalf("value %q of %s has a bad calculated check %+v", v.text, k, sp)
				}
				for _, kid := range sp.kids {
					checkProbing(t, kid, v.text, k)
				}
			}
		}
	}
}

// checkSpecSettings fails t when a check's settings are not what the prober
// of its protocol relies on.
func checkSpecSettings(t *testing.T, sp *checkSpec) {
	t.Helper()
	switch sp.protocol {
	case protoTCP:
		if sp.path != "" || sp.hostHeader != "" || sp.status != "" || sp.statusRanges != nil || sp.match != "" || sp.tlsVerify || sp.caFile != "" || sp.caPool != nil {
			t.Fatalf("tcp check with http settings %+v", sp)
		}
	case protoHTTP, protoHTTPS:
		if len(sp.statusRanges) == 0 || sp.status != formatStatus(sp.statusRanges) || !strings.HasPrefix(sp.path, "/") ||
			(sp.hostHeader != "" && !validHostName(sp.hostHeader)) || len(sp.match) > maxBodyMatch ||
			(sp.caFile != "") != (sp.caPool != nil) || (sp.caFile != "" && !sp.tlsVerify) || (sp.tlsVerify && sp.protocol != protoHTTPS) {
			t.Fatalf("%s check with bad settings %+v", sp.protocol, sp)
		}
	}
}

// checkProbing fails t when sp, a probing check of value text in set k,
// breaks an invariant the probers and the scheduler rely on.
func checkProbing(t *testing.T, sp *checkSpec, text, k string) {
	t.Helper()
	if !slices.Contains(probing, sp.protocol) ||
		(net.ParseIP(sp.host) == nil && !validHostName(sp.host)) || sp.host != strings.ToLower(sp.host) || sp.port < 1 || sp.port > 65535 || sp.timeout >= sp.interval ||
		(sp.fastInterval != 0 && (sp.fastInterval <= sp.timeout || sp.fastInterval >= sp.interval)) ||
		sp.failureThreshold < 1 || sp.failureThreshold > 10 || sp.successThreshold < 1 || sp.successThreshold > 10 ||
		(sp.protocol == protoDNS) != (sp.query != "") || len(sp.kids) > 0 || sp.children != "" {
		t.Fatalf("value %q of %s has a bad check %+v", text, k, sp)
	}
	checkSpecSettings(t, sp)
}

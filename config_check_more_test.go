package multivalue

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"
)

// parseErrorsChecks are version 2's health checks, broken: the body of
// `multivalue example.org {` ... `}`, whose first line is line 2.
var parseErrorsChecks = []parseErrorCase{
	// Options that belong to other protocols.
	{"method on tcp", `
    health_check db {
        protocol tcp
        port 5432
        method HEAD
    }
    records www A 127.0.0.1`, 5, "health_check db: method does not apply to protocol tcp"},
	{"header on grpc", `
    health_check api {
        protocol grpc
        header X-A b
        port 9090
    }
    records www A 127.0.0.1`, 4, "health_check api: header does not apply to protocol grpc"},
	{"service on http", `
    health_check web {
        service api
    }
    records www A 127.0.0.1`, 3, "health_check web: service does not apply to protocol http"},
	{"query on https", `
    health_check web {
        protocol https
        query www.example.org
    }
    records www A 127.0.0.1`, 4, "health_check web: query does not apply to protocol https"},
	{"children on dns", `
    health_check r {
        protocol dns
        query www.example.org
        children a b
    }
    records www A 127.0.0.1`, 5, "health_check r: children does not apply to protocol dns"},
	{"healthy_threshold on http", `
    health_check web {
        healthy_threshold 1
    }
    records www A 127.0.0.1`, 3, "health_check web: healthy_threshold does not apply to protocol http"},
	{"tls_verify on grpc", `
    health_check api {
        protocol grpc
        port 9090
        tls_verify
    }
    records www A 127.0.0.1`, 5, "health_check api: tls_verify does not apply to protocol grpc"},
	{"path and status on grpcs", `
    health_check api {
        protocol grpcs
        port 9090
        status 200
        path /x
    }
    records www A 127.0.0.1`, 5, "health_check api: status, path does not apply to protocol grpcs"},
	{"host on dns", `
    health_check r {
        protocol dns
        query www.example.org
        host ns.example.org
    }
    records www A 127.0.0.1`, 5, "host does not apply to protocol dns"},
	{"match on grpc", `
    health_check api {
        protocol grpc
        port 9090
        match SERVING
    }
    records www A 127.0.0.1`, 5, "match does not apply to protocol grpc"},
	{"calculated with a port", `
    health_check all {
        protocol calculated
        children web
        port 80
    }
    health_check web {
    }
    records www A 127.0.0.1`, 5, "health_check all: port does not apply to protocol calculated (a calculated check takes only children, healthy_threshold and invert)"},
	{"calculated with timing and a target", `
    health_check all {
        interval 5s
        protocol calculated
        children web
        target 127.0.0.1
        fast_interval 1s
    }
    health_check web {
    }
    records www A 127.0.0.1`, 3, "health_check all: interval, target, fast_interval does not apply to protocol calculated"},
	{"fast_interval on calculated", `
    health_check all {
        protocol calculated
        children web
        fast_interval 1s
    }
    health_check web {
    }
    records www A 127.0.0.1`, 5, "fast_interval does not apply to protocol calculated"},

	// What a protocol needs.
	{"dns without query", `
    health_check r {
        protocol dns
    }
    records www A 127.0.0.1`, 2, "health_check r: protocol dns needs `query NAME [TYPE]`"},
	{"calculated without children", `
    health_check all {
        protocol calculated
        healthy_threshold 1
    }
    records www A 127.0.0.1`, 2, "health_check all: protocol calculated needs `children NAME...`"},
	{"grpc without a port", `
    health_check api {
        protocol grpc
    }
    records www A {
        health_check api
        127.0.0.1
    }`, 7, `value "127.0.0.1": health_check api (grpc) has no port: set ` + "`port`, `target HOST:PORT`, or use an SRV record"},
	{"grpcs with a target but no port", `
    health_check api {
        protocol grpcs
        target api.example.org
    }
    records www A {
        health_check api
        127.0.0.1
    }`, 8, `value "127.0.0.1": health_check api (grpcs) has no port`},
	{"grpc child without a port", `
    health_check all {
        protocol calculated
        children web api
    }
    health_check web {
    }
    health_check api {
        protocol grpc
    }
    records www A {
        health_check all
        127.0.0.1
    }`, 13, `value "127.0.0.1": health_check api (a child of all) (grpc) has no port`},

	// Calculated checks' children.
	{"unknown child", `
    health_check all {
        protocol calculated
        children web db
    }
    health_check web {
    }
    records www A 127.0.0.1`, 4, "health_check all: child db is not defined (defined: all, web)"},
	{"calculated child", `
    health_check web {
    }
    health_check all {
        protocol calculated
        children web inner
    }
    health_check inner {
        protocol calculated
        children web
    }
    records www A 127.0.0.1`, 6, "health_check all: child inner is a calculated check: the children of a calculated check must probe"},
	{"own child", `
    health_check all {
        protocol calculated
        children all
    }
    records www A 127.0.0.1`, 4, "health_check all: children: a calculated check cannot be its own child"},
	{"child twice", `
    health_check all {
        protocol calculated
        children web web
    }
    health_check web {
    }
    records www A 127.0.0.1`, 4, "health_check all: children: web given twice"},
	{"children without names", `
    health_check all {
        protocol calculated
        children
    }
    records www A 127.0.0.1`, 4, "health_check all: wrong number of arguments for children: want at least 1, have 0"},
	{"child named none", `
    health_check all {
        protocol calculated
        children web none
    }
    records www A 127.0.0.1`, 4, `health_check all: children: "none" is not a health_check name`},
	{"healthy_threshold 256", `
    health_check all {
        protocol calculated
        children web
        healthy_threshold 256
    }
    health_check web {
    }
    records www A 127.0.0.1`, 5, `health_check all: healthy_threshold "256" must be a whole number from 0 to 255`},
	{"healthy_threshold negative", `
    health_check all {
        protocol calculated
        children web
        healthy_threshold -1
    }
    records www A 127.0.0.1`, 5, `healthy_threshold "-1" must be a whole number from 0 to 255`},
	{"healthy_threshold not a number", `
    health_check all {
        protocol calculated
        children web
        healthy_threshold all
    }
    records www A 127.0.0.1`, 5, `healthy_threshold "all" must be`},

	// Options' own values.
	{"header Host", `
    health_check web {
        header Host www.example.org
    }
    records www A 127.0.0.1`, 3, "health_check web: header Host: use the host option"},
	{"header host in lower case", `
    health_check web {
        header X-A b
        header host www.example.org
    }
    records www A 127.0.0.1`, 4, "header Host: use the host option"},
	{"header Content-Length", `
    health_check web {
        header content-length 10
    }
    records www A 127.0.0.1`, 3, "header Content-Length: the probe sends no body"},
	{"header name with a space", `
    health_check web {
        header "X A" b
    }
    records www A 127.0.0.1`, 3, `header "X A" is not a header name`},
	{"header without value", `
    health_check web {
        header X-A
    }
    records www A 127.0.0.1`, 3, "health_check web: wrong number of arguments for header: want 2, have 1"},
	{"header value with a line break", "\n    health_check web {\n        header X-A \"a\\\nb\"\n    }\n    records www A 127.0.0.1", 3, "header X-A: the value must not contain control characters"},
	{"method with a space", `
    health_check web {
        method "GE T"
    }
    records www A 127.0.0.1`, 3, `health_check web: method "GE T" is not an HTTP method`},
	{"method given twice", `
    health_check web {
        method GET
        method POST
    }
    records www A 127.0.0.1`, 4, "health_check web: method given twice (first on line 3)"},
	{"match with method HEAD", `
    health_check web {
        method HEAD
        match ok
    }
    records www A 127.0.0.1`, 4, "health_check web: match needs a response body, which method HEAD does not get"},
	{"service with a space", `
    health_check api {
        protocol grpc
        port 9090
        service "my service"
    }
    records www A 127.0.0.1`, 5, `health_check api: service "my service" must be at most 1024 bytes, without spaces or control characters`},
	{"query not a name", `
    health_check r {
        protocol dns
        query a..b
    }
    records www A 127.0.0.1`, 4, `health_check r: query "a..b" is not a domain name`},
	{"query of an unknown type", `
    health_check r {
        protocol dns
        query www.example.org BOGUS
    }
    records www A 127.0.0.1`, 4, `health_check r: query www.example.org: unknown type "BOGUS"`},
	{"query AXFR", `
    health_check r {
        protocol dns
        query example.org AXFR
    }
    records www A 127.0.0.1`, 4, "query example.org: type AXFR cannot be a health check's query"},
	{"query with three arguments", `
    health_check r {
        protocol dns
        query example.org A IN
    }
    records www A 127.0.0.1`, 4, "health_check r: wrong number of arguments for query: want 1 to 2, have 3"},
	{"fast_interval equal to interval", `
    health_check web {
        interval 5s
        fast_interval 5s
    }
    records www A 127.0.0.1`, 4, "health_check web: fast_interval 5s must be less than interval 5s"},
	{"fast_interval equal to the timeout", `
    health_check web {
        fast_interval 4s
    }
    records www A 127.0.0.1`, 3, "health_check web: fast_interval 4s must be more than timeout 4s"},
	{"fast_interval below the timeout", `
    health_check web {
        fast_interval 1s
        timeout 2s
        interval 5s
    }
    records www A 127.0.0.1`, 3, "fast_interval 1s must be more than timeout 2s"},
	{"fast_interval not a duration", `
    health_check web {
        fast_interval fast
    }
    records www A 127.0.0.1`, 3, `health_check web: fast_interval "fast" is not a duration`},
	{"fast_interval too short", `
    health_check web {
        fast_interval 1ms
    }
    records www A 127.0.0.1`, 3, "health_check web: fast_interval 1ms out of range 10ms to 24h"},
	{"template target not a host", `
    health_check web {
        target "a b"
    }
    records www A 127.0.0.1`, 3, `health_check web: target "a b": "a b" is neither an IP address nor a host name`},
	{"template target port 0", `
    health_check web {
        target 127.0.0.1:0
    }
    records www A 127.0.0.1`, 3, `health_check web: target "127.0.0.1:0": port "0" must be`},

	// Several checks per value.
	{"none mixed with names in a records block", `
    health_check web {
    }
    records www A {
        health_check web none
        127.0.0.1
    }`, 5, "health_check: none cannot be mixed with names"},
	{"none mixed with names in a value's block", `
    health_check web {
    }
    records www A {
        127.0.0.1 { health_check none web }
    }`, 5, "health_check: none cannot be mixed with names"},
	{"a check named twice", `
    health_check web {
    }
    records www A {
        health_check web web
        127.0.0.1
    }`, 5, "health_check: web given twice"},
	{"one of several checks undefined", `
    health_check web {
    }
    records www A {
        127.0.0.1 { health_check web wbe }
    }`, 5, "health_check wbe is not defined (defined: web)"},
	{"a value's target no check uses", `
    health_check db {
        protocol tcp
        target 127.0.0.1:5432
    }
    records www A {
        health_check db
        127.0.0.1 { target 127.0.0.9 }
    }`, 8, "target 127.0.0.9 is not used: every health_check of the value has a target of its own"},
	{"TXT value: one check with a target, one without", `
    health_check db {
        protocol tcp
        target 127.0.0.1:5432
    }
    health_check web {
    }
    records txt TXT {
        health_check db web
        "v=spf1 -all"
    }`, 10, "value \"v=spf1 -all\": a TXT value needs `target HOST[:PORT]` for health_check web"},
	{"TXT value: a calculated check's child without a target", `
    health_check all {
        protocol calculated
        children web
    }
    health_check web {
    }
    records txt TXT {
        health_check all
        "v=spf1 -all"
    }`, 10, "a TXT value needs `target HOST[:PORT]` for health_check web (a child of all)"},
}

// TestParseMoreChecks checks what version 2's health checks parse to.
func TestParseMoreChecks(t *testing.T) {
	tests := []struct {
		name  string
		input string // the body of `multivalue example.org {` ... `}`
		want  []string
		check func(t *testing.T, cfg *config)
	}{
		{
			name: "grpc, grpcs and dns checks, their defaults",
			input: `
    health_check api {
        protocol grpc
        port 9090
    }
    health_check apis {
        protocol GRPCS
        port 9443
        host api.example.org
        service my.pkg.Api
        tls_verify CA_FILE
    }
    health_check r {
        protocol dns
        query WWW.Example.ORG
    }
    health_check r2 {
        protocol dns
        query example.org. txt
        match v=spf1
        port 5353
    }
    records www A {
        127.0.0.1 { health_check api }
        127.0.0.2 { health_check apis }
        127.0.0.3 { health_check r }
        127.0.0.4 { health_check r2 }
    }`,
			want: []string{
				"www.example.org. A ttl=60",
				"  127.0.0.1 -> grpc 127.0.0.1:9090",
				"  127.0.0.2 -> grpcs 127.0.0.2:9443",
				"  127.0.0.3 -> dns 127.0.0.3:53", // dns's default port
				"  127.0.0.4 -> dns 127.0.0.4:5353",
			},
			check: func(t *testing.T, cfg *config) {
				base := checkSettings{interval: 10 * time.Second, timeout: 4 * time.Second, failureThreshold: 3, successThreshold: 3}
				api := specOf(t, cfg, "www.example.org.", "127.0.0.1")
				want := base
				want.protocol, want.port = "grpc", 9090
				if api.checkSettings != want || api.template != "api" {
					t.Errorf("grpc spec %+v, want %+v (no path, status or method)", api.checkSettings, want)
				}
				apis := specOf(t, cfg, "www.example.org.", "127.0.0.2")
				if apis.service != "my.pkg.Api" || apis.hostHeader != "api.example.org" || !apis.tlsVerify || apis.caPool == nil {
					t.Errorf("grpcs spec %+v: want service, host and tls_verify with a CA", apis)
				}
				r := specOf(t, cfg, "www.example.org.", "127.0.0.3")
				want = base
				want.protocol, want.port, want.query, want.queryType = "dns", 53, "www.example.org.", dns.TypeA
				if r.checkSettings != want {
					t.Errorf("dns spec %+v, want %+v", r.checkSettings, want)
				}
				r2 := specOf(t, cfg, "www.example.org.", "127.0.0.4")
				if r2.query != "example.org." || r2.queryType != dns.TypeTXT || r2.match != "v=spf1" {
					t.Errorf("dns spec %+v: want query example.org. TXT, match v=spf1", r2)
				}
			},
		},
		{
			name: "method and headers",
			input: `
    health_check web {
        method POST
        header x-token abc
        header Accept text/plain
        header X-Token "second value"
        header User-Agent probe
        fast_interval 5s
    }
    health_check web2 {
        header Accept text/plain
        header User-Agent probe
        method POST
        header X-TOKEN abc
        header x-token "second value"
        fast_interval 5s
    }
    records www A {
        health_check web
        127.0.0.1
        127.0.0.2 { health_check web2 }
        127.0.0.3 { target 127.0.0.2 }
    }`,
			check: func(t *testing.T, cfg *config) {
				s := specOf(t, cfg, "www.example.org.", "127.0.0.1")
				wantHeaders := "Accept: text/plain\nUser-Agent: probe\nX-Token: abc\nX-Token: second value\n"
				if s.method != "POST" || s.headers != wantHeaders || s.fastInterval != 5*time.Second {
					t.Errorf("method %q, headers %q, fast_interval %v; want POST, %q, 5s", s.method, s.headers, s.fastInterval, wantHeaders)
				}
				wantList := []httpHeader{{"X-Token", "abc"}, {"Accept", "text/plain"}, {"X-Token", "second value"}, {"User-Agent", "probe"}}
				if !reflect.DeepEqual(s.header, wantList) {
					t.Errorf("headers %v, want %v in the order given", s.header, wantList)
				}
				// Headers in another order, names in another case: the
				// same request, the same check.
				if specOf(t, cfg, "www.example.org.", "127.0.0.2").key() != specOf(t, cfg, "www.example.org.", "127.0.0.3").key() {
					t.Error("templates sending the same request to the same target must share a check")
				}
			},
		},
		{
			name: "several checks per value, replaced by a value's own list, removed by none",
			input: `
    health_check web {
    }
    health_check db {
        protocol tcp
        target db.example.org:5432
    }
    health_check r {
        protocol dns
        query example.org SOA
        target 127.0.0.53
    }
    records www A {
        health_check web db r
        127.0.0.1
        127.0.0.2 { health_check db }
        127.0.0.3 { health_check none }
        127.0.0.4 {
            health_check r web
            target 127.0.0.40:8080
        }
    }
    records txt TXT {
        health_check db r
        "v=spf1 -all"
    }`,
			want: []string{
				"www.example.org. A ttl=60",
				"  127.0.0.1 -> http 127.0.0.1:80, tcp db.example.org:5432, dns 127.0.0.53:53",
				"  127.0.0.2 -> tcp db.example.org:5432",
				"  127.0.0.3",
				// The template's target wins; the value's applies to its other checks.
				"  127.0.0.4 -> dns 127.0.0.53:53, http 127.0.0.40:8080",
				"txt.example.org. TXT ttl=60",
				// Every check has a target of its own: a TXT value needs none.
				`  "v=spf1 -all" -> tcp db.example.org:5432, dns 127.0.0.53:53`,
			},
			check: func(t *testing.T, cfg *config) {
				if specOf(t, cfg, "www.example.org.", "127.0.0.2").key() != specOf(t, cfg, "txt.example.org.", `"v=spf1 -all"`).key() {
					t.Error("a template's target makes one check for every value that uses it")
				}
			},
		},
		{
			name: "calculated checks: children defined after, their targets, the threshold",
			input: `
    records www A {
        health_check all any
        127.0.0.1
        127.0.0.2 { target 127.0.0.20:8080 }
    }
    records _s._tcp SRV {
        health_check db2
        "10 10 5060 sip"
    }
    health_check all {
        protocol calculated
        children web db
        invert
    }
    health_check any {
        protocol calculated
        children web
        healthy_threshold 0
    }
    health_check web {
        fast_interval 5s
    }
    health_check db {
        protocol tcp
        target db.example.org:5432
    }
    health_check db2 {
        protocol tcp
        target db.example.org
    }`,
			want: []string{
				"www.example.org. A ttl=60",
				"  127.0.0.1 -> calculated all[http 127.0.0.1:80, tcp db.example.org:5432], calculated any[http 127.0.0.1:80]",
				"  127.0.0.2 -> calculated all[http 127.0.0.20:8080, tcp db.example.org:5432], calculated any[http 127.0.0.20:8080]",
				"_s._tcp.example.org. SRV ttl=60",
				// The port rule applies to a template's target too: the
				// SRV record's port comes before the protocol's default.
				"  10 10 5060 sip.example.org. -> tcp db.example.org:5060",
			},
			check: func(t *testing.T, cfg *config) {
				specs := specsOf(t, cfg, "www.example.org.", "127.0.0.1")
				all, anyOf := specs[0], specs[1]
				if all.healthyThreshold != 2 || !all.invert || all.children != "web db" || all.interval != 0 || all.host != "" {
					t.Errorf("calculated all: %+v; want healthy_threshold 2 (all children), invert, no target or timing", all.checkSettings)
				}
				if anyOf.healthyThreshold != 0 {
					t.Errorf("calculated any: healthy_threshold %d, want 0", anyOf.healthyThreshold)
				}
				if all.kids[0].fastInterval != 5*time.Second || all.kids[0].template != "web" {
					t.Errorf("child web: %+v", all.kids[0])
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := caddy.NewTestController("dns", testCAFiles(t, "multivalue example.org {"+tc.input+"\n}"))
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

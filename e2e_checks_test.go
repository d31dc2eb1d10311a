package multivalue

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestEndToEndMoreChecks runs a real CoreDNS whose values depend on a real
// gRPC server and a real DNS server on loopback, through grpc, dns, several
// and calculated checks: each value leaves the answers when what it depends
// on fails, with a log line naming the template, and comes back; the probes
// count in checks_total and check_duration_seconds under their protocol.
func TestEndToEndMoreChecks(t *testing.T) {
	slow(t)
	logs := captureLog(t)
	g := newGRPCTarget(t, nil, true)
	var rcode atomic.Int64 // what the DNS server answers
	d := newDNSTarget(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Rcode = int(rcode.Load())
		w.WriteMsg(m)
	})
	s := startCoreDNS(t, fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        all_unhealthy nodata
        health_check api {
            protocol grpc
            target %s
            interval 500ms
            timeout 300ms
            failure_threshold 1
        }
        health_check resolver {
            protocol dns
            query www.example.org
            target %s
            interval 500ms
            timeout 300ms
            failure_threshold 1
        }
        health_check both {
            protocol calculated
            children api resolver
        }
        health_check either {
            protocol calculated
            children api resolver
            healthy_threshold 1
        }
        records api A 127.0.6.1 { health_check api }
        records res A 127.0.6.2 { health_check resolver }
        records all A 127.0.6.3 { health_check api resolver }
        records both A 127.0.6.4 { health_check both }
        records either A 127.0.6.5 { health_check either }
    }
}`, g.addr, d.addr))
	waitFirstResults(t)

	names := map[string]string{"api": "127.0.6.1", "res": "127.0.6.2", "all": "127.0.6.3", "both": "127.0.6.4", "either": "127.0.6.5"}
	served := func() []string {
		var up []string
		for name, ip := range names {
			if slices.Contains(answerValues(s.query(t, "udp", name+".example.org.", dns.TypeA)), ip) {
				up = append(up, name)
			}
		}
		slices.Sort(up)
		return up
	}
	expect := func(when string, want ...string) {
		t.Helper()
		slices.Sort(want)
		if !eventually(5*time.Second, func() bool { return slices.Equal(served(), want) }) {
			t.Fatalf("%s: served %v, want %v", when, served(), want)
		}
	}
	expect("all up", "api", "res", "all", "both", "either")

	g.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	expect("gRPC server NOT_SERVING", "res", "either")
	grpcReason := "NOT_SERVING (grpc check api of " + g.addr + ")"
	for _, want := range []string{
		"api.example.org. A 127.0.6.1 is now unhealthy: " + grpcReason,
		"all.example.org. A 127.0.6.3 is now unhealthy: " + grpcReason,
		"both.example.org. A 127.0.6.4 is now unhealthy: 1 of 2 children healthy, 2 needed (calculated check both); unhealthy: " + grpcReason,
	} {
		if got := logs.lines(want); len(got) != 1 {
			t.Errorf("logged %q %d times, want once", want, len(got))
		}
	}

	rcode.Store(dns.RcodeServerFailure)
	expect("and the DNS server failing", []string{}...)
	dnsReason := "rcode SERVFAIL (dns check resolver of " + d.addr + ")"
	for _, want := range []string{
		"res.example.org. A 127.0.6.2 is now unhealthy: " + dnsReason,
		"either.example.org. A 127.0.6.5 is now unhealthy: 0 of 2 children healthy, 1 needed (calculated check either); unhealthy: " + grpcReason + "; " + dnsReason,
	} {
		if got := logs.lines(want); len(got) != 1 {
			t.Errorf("logged %q %d times, want once", want, len(got))
		}
	}

	g.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	expect("gRPC server back", "api", "either")
	rcode.Store(dns.RcodeSuccess)
	expect("both back", "api", "res", "all", "both", "either")
	if got := logs.lines("either.example.org. A 127.0.6.5 is now healthy: 1 of 2 children healthy, 1 needed (calculated check either)"); len(got) != 1 {
		t.Errorf("either's recovery logged %d times, want once: %q", len(got), logs.lines("either.example.org."))
	}

	// One probe loop per target and protocol, shared by every value.
	for _, tc := range []struct{ target, protocol string }{{g.addr, "grpc"}, {d.addr, "dns"}} {
		for _, result := range []string{"success", "failure"} {
			if v := seriesValue(t, "coredns_multivalue_checks_total", labels{"target": tc.target, "protocol": tc.protocol, "result": result}); v < 1 {
				t.Errorf("checks_total{%s, %s, %s} = %v, want at least 1", tc.target, tc.protocol, result, v)
			}
		}
		if v := seriesValue(t, "coredns_multivalue_check_duration_seconds", labels{"target": tc.target, "protocol": tc.protocol}); v < 2 {
			t.Errorf("check_duration_seconds{%s, %s} counted %v probes, want at least 2", tc.target, tc.protocol, v)
		}
	}
	if n := defaultEngine.table.len(); n != 2 {
		t.Errorf("%d checks run, want 2: every value shares the grpc and the dns check", n)
	}
	if strings.Contains(strings.Join(logs.lines("multivalue"), "\n"), "check of ") {
		t.Error("a reason without its template's name")
	}

	// A reload without the checks stops them all: every value released the
	// checks it held, a calculated check's children included.
	if err := s.reload("example.org:0 {\n    bind 127.0.0.1\n    multivalue {\n        records api A 127.0.6.1\n    }\n}"); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, schedulerIdle) {
		t.Errorf("%d checks still run after a reload removed them", defaultEngine.table.len())
	}
}

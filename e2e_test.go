package multivalue

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestEndToEndKillAndRecover runs a real CoreDNS with four real backends on
// 127.0.0.x, kills one, and watches its value leave every answer and return.
func TestEndToEndKillAndRecover(t *testing.T) {
	var backends []*backend
	for i := 1; i <= 4; i++ {
		backends = append(backends, newBackend(t, fmt.Sprintf("127.0.0.%d", i)))
	}
	// Backends listen on different ports; give every value its own target.
	corefile := fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        health_check web {
            interval 200ms
            timeout 100ms
            failure_threshold 2
            success_threshold 2
        }
        records www A {
            health_check web
            127.0.0.1 { target %s }
            127.0.0.2 { target %s }
            127.0.0.3 { target %s }
            127.0.0.4 { target %s }
        }
    }
}`, backends[0].addr, backends[1].addr, backends[2].addr, backends[3].addr)
	s := startCoreDNS(t, corefile)
	waitFirstResults(t)

	all := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
	if r := s.query(t, "udp", "www.example.org.", dns.TypeA); !sameSet(answerValues(r), all) {
		t.Fatalf("before any failure: got %v, want %v", answerValues(r), all)
	}

	backends[2].kill()
	killed := time.Now()
	gone := eventually(5*time.Second, func() bool {
		return !slices.Contains(answerValues(s.query(t, "udp", "www.example.org.", dns.TypeA)), "127.0.0.3")
	})
	if !gone {
		t.Fatalf("127.0.0.3 still served 5s after its backend died")
	}
	detect := time.Since(killed)
	// From now on it must be absent from every answer, over UDP and TCP.
	for i := 0; i < 50; i++ {
		for _, network := range []string{"udp", "tcp"} {
			got := answerValues(s.query(t, network, "www.example.org.", dns.TypeA))
			if want := []string{"127.0.0.1", "127.0.0.2", "127.0.0.4"}; !sameSet(got, want) {
				t.Fatalf("after detection, over %s: got %v, want %v", network, got, want)
			}
		}
	}

	backends[2].revive()
	revived := time.Now()
	back := eventually(5*time.Second, func() bool {
		return sameSet(answerValues(s.query(t, "udp", "www.example.org.", dns.TypeA)), all)
	})
	if !back {
		t.Fatalf("127.0.0.3 not served again 5s after recovery")
	}
	t.Logf("detection %v (window: 2 x 200ms + 100ms + jitter), recovery %v", detect.Round(time.Millisecond), time.Since(revived).Round(time.Millisecond))
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestEndToEndTruncation: what does not fit the client's UDP size is cut and
// TC set; the same query over TCP gets the whole answer.
func TestEndToEndTruncation(t *testing.T) {
	var values string
	for i := 0; i < 8; i++ {
		values += fmt.Sprintf("            %q\n", strings.Repeat(string(rune('a'+i)), 200))
	}
	s := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    multivalue {
        records big TXT {
`+values+`        }
    }
}`)
	udp := s.query(t, "udp", "big.example.org.", dns.TypeTXT) // no EDNS0: 512 bytes
	if !udp.Truncated || len(udp.Answer) >= 8 {
		t.Errorf("UDP without EDNS0: TC=%v with %d answers, want TC and fewer than 8", udp.Truncated, len(udp.Answer))
	}
	tcp := s.query(t, "tcp", "big.example.org.", dns.TypeTXT)
	if tcp.Truncated || len(tcp.Answer) != 8 {
		t.Errorf("TCP: TC=%v with %d answers, want all 8", tcp.Truncated, len(tcp.Answer))
	}
	m := new(dns.Msg)
	m.SetQuestion("big.example.org.", dns.TypeTXT)
	m.SetEdns0(4096, false)
	if big := s.exchange(t, "udp", m); big.Truncated || len(big.Answer) != 8 {
		t.Errorf("UDP with a 4096-byte buffer: TC=%v with %d answers, want all 8", big.Truncated, len(big.Answer))
	}
}

// TestEndToEndInFrontOfFile: multivalue before `file` on the same zone:
// the file's names still resolve, negative answers carry the zone's SOA, and
// an NXDOMAIN from file for a name multivalue holds becomes NODATA.
func TestEndToEndInFrontOfFile(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "db.example.org")
	err := os.WriteFile(zone, []byte(`$ORIGIN example.org.
@   3600 IN SOA ns.example.org. hostmaster.example.org. 2024010101 7200 3600 1209600 300
@   3600 IN NS  ns.example.org.
ns  3600 IN A   127.0.0.53
www 3600 IN A   127.0.0.80
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    multivalue {
        fallthrough
        records app A 127.0.0.1 127.0.0.2
    }
    file `+zone+`
}`)
	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
		soa    bool
	}{
		{"app.example.org.", dns.TypeA, dns.RcodeSuccess, []string{"127.0.0.1", "127.0.0.2"}, false},
		{"www.example.org.", dns.TypeA, dns.RcodeSuccess, []string{"127.0.0.80"}, false},
		{"app.example.org.", dns.TypeAAAA, dns.RcodeSuccess, nil, true}, // file says NXDOMAIN: NODATA
		{"nope.example.org.", dns.TypeA, dns.RcodeNameError, nil, true},
		{"example.org.", dns.TypeSOA, dns.RcodeSuccess, []string{"ns.example.org. hostmaster.example.org. 2024010101 7200 3600 1209600 300"}, false},
	} {
		r := s.query(t, "udp", tc.name, tc.qtype)
		if r.Rcode != tc.rcode || !sameSet(answerValues(r), tc.answer) || (len(r.Ns) > 0 && r.Ns[0].Header().Rrtype == dns.TypeSOA) != tc.soa || !r.Authoritative {
			t.Errorf("%s %s: got %s AA=%v %v authority %v; want %s %v soa=%v", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], r.Authoritative, answerValues(r), r.Ns, dns.RcodeToString[tc.rcode], tc.answer, tc.soa)
		}
	}

	// Without fallthrough, multivalue answers negatively itself, with the
	// SOA it got from file, TTL min(SOA TTL, MINIMUM).
	s2 := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    multivalue {
        records app A 127.0.0.1
    }
    file `+zone+`
}`)
	r := s2.query(t, "udp", "www.example.org.", dns.TypeA)
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA || r.Ns[0].Header().Ttl != 300 {
		t.Errorf("without fallthrough: got %s authority %v, want NXDOMAIN with SOA TTL 300", dns.RcodeToString[r.Rcode], r.Ns)
	}
}

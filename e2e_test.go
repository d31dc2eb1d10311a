package multivalue

import (
	"fmt"
	"slices"
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

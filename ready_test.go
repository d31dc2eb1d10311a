package multivalue

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

// TestReadyPlugin runs CoreDNS with the ready plugin: /ready answers 503 while
// a check waits for its first result, however long its backend takes, and
// 200 once every check has one, in whatever server block.
func TestReadyPlugin(t *testing.T) {
	slow(t)
	const block = `%s:0 {
    bind 127.0.0.1
    ready %s
    multivalue {
        health_check web {
            interval 30s
            timeout 20s
        }
        records www A {
            health_check web
%s
        }
    }
}
`
	value := func(ip, target string) string { return ip + " {\ntarget " + target + "\n}\n" }
	tests := []struct {
		name     string
		corefile func(readyAddr, fast, slow string) string
	}{
		{
			name: "one server block",
			corefile: func(readyAddr, fast, slow string) string {
				return fmt.Sprintf(block, "example.org", readyAddr, value("127.0.0.1", fast)+value("127.0.0.5", slow))
			},
		},
		{
			// The ready plugin asks one multivalue of the two: the
			// one whose checks are done must not answer for both.
			name: "two server blocks",
			corefile: func(readyAddr, fast, slow string) string {
				return fmt.Sprintf(block, "example.org", readyAddr, value("127.0.0.5", slow)) +
					fmt.Sprintf(block, "example.net", readyAddr, value("127.0.0.1", fast))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fast := newBackend(t, "127.0.0.1")
			slow := newGatedBackend(t, "127.0.0.5")
			readyAddr := "127.0.0.1:" + freeTCPPort(t)
			startCoreDNS(t, tc.corefile(readyAddr, fast.addr, slow.addr))

			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			defer client.CloseIdleConnections()
			get := func() (int, string) {
				t.Helper()
				resp, err := client.Get("http://" + readyAddr + "/ready")
				if err != nil {
					t.Fatalf("GET /ready: %v", err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}

			if code, body := get(); code != http.StatusServiceUnavailable {
				t.Fatalf("/ready right after start: %d %q, want 503", code, body)
			}
			// The slow backend holds its first probe; the fast one answers.
			select {
			case <-slow.arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("the first probe of the slow backend never arrived")
			}
			waitChecks(t, func(c *check) bool { return c.target != slow.addr })
			if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "multivalue") {
				t.Fatalf("/ready with one first result pending: %d %q, want 503 naming multivalue", code, body)
			}

			slow.open()
			ok := eventually(10*time.Second, func() bool { code, _ := get(); return code == http.StatusOK })
			if !ok {
				code, body := get()
				t.Fatalf("/ready after every first result: %d %q, want 200", code, body)
			}
		})
	}
}

// TestReady calls Ready on the handler through its life: not before start,
// not while a first result is pending, yes once every check has one (healthy
// or not), not after stop.
func TestReady(t *testing.T) {
	slow(t)
	tests := []struct {
		name string
		// records is the body of `records www A { ... }`, given the
		// addresses of a backend that answers, one that holds its first
		// probe until released and a closed port.
		records func(up, held, closed string) string
		held    bool // a first probe is held: Ready must wait for it
	}{
		{
			name:    "no health check",
			records: func(up, held, closed string) string { return "127.0.0.1" },
		},
		{
			name: "healthy",
			records: func(up, held, closed string) string {
				return "health_check web\n127.0.0.1 {\ntarget " + up + "\n}"
			},
		},
		{
			name: "first result is a failure",
			records: func(up, held, closed string) string {
				return "health_check web\n127.0.0.3 {\ntarget " + closed + "\n}"
			},
		},
		{
			name: "first probe pending",
			records: func(up, held, closed string) string {
				return "health_check web\n127.0.0.5 {\ntarget " + held + "\n}"
			},
			held: true,
		},
		{
			name: "one of three pending",
			records: func(up, held, closed string) string {
				return "health_check web\n127.0.0.1 {\ntarget " + up + "\n}\n127.0.0.3 {\ntarget " + closed +
					"\n}\n127.0.0.5 {\ntarget " + held + "\n}\n127.0.0.9 {\nhealth_check none\n}"
			},
			held: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newBackend(t, "127.0.0.1")
			held := newGatedBackend(t, "127.0.0.5")
			closed := closedAddr(t, "127.0.0.3")
			m := newTestInstance(t, tc.records(up.addr, held.addr, closed))

			if m.Ready() {
				t.Fatal("ready before start")
			}
			if err := m.start(); err != nil {
				t.Fatal(err)
			}
			if tc.held {
				select {
				case <-held.arrived:
				case <-time.After(10 * time.Second):
					t.Fatal("the held probe never arrived")
				}
				waitChecks(t, func(c *check) bool { return c.target != held.addr })
				if m.Ready() {
					t.Fatal("ready while a first probe is pending")
				}
				held.open()
			}
			if !eventually(10*time.Second, m.Ready) {
				t.Fatal("not ready 10s after start")
			}
			if err := m.stop(); err != nil {
				t.Fatal(err)
			}
			if m.Ready() {
				t.Fatal("ready after stop")
			}
		})
	}
}

// TestReadyAcrossReload: a reloaded instance whose checks the old one already
// ran is ready at once, without waiting for a new probe.
func TestReadyAcrossReload(t *testing.T) {
	up := newGatedBackend(t, "127.0.0.1")
	up.open()
	// interval 1h: one probe in the test's lifetime, so the reloaded
	// instance's readiness cannot come from a probe of its own.
	records := "health_check web\n127.0.0.1 {\ntarget " + up.addr + "\n}"
	old := newTestInstance(t, records)
	if err := old.start(); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, old.Ready) {
		t.Fatal("old instance not ready 10s after start")
	}
	probes := up.requests.Load()

	reloaded := newTestInstance(t, records)
	if err := reloaded.start(); err != nil {
		t.Fatal(err)
	}
	if !reloaded.Ready() {
		t.Error("reloaded instance not ready at once although its check has a result")
	}
	if err := old.stop(); err != nil {
		t.Fatal(err)
	}
	if !reloaded.Ready() {
		t.Error("reloaded instance not ready after the old one stopped")
	}
	if n := up.requests.Load(); n != probes {
		t.Errorf("the backend got %d more probes: the test measured a new first result", n-probes)
	}
}

// newTestInstance parses `multivalue example.org. { health_check web {...}
// records www A { records } }` and builds the handler; it stops it at the end
// of the test.
func newTestInstance(t *testing.T, records string) *Multivalue {
	t.Helper()
	c := caddy.NewTestController("dns", `multivalue example.org. {
    health_check web {
        interval 1h
        timeout 30s
    }
    records www A {
`+records+`
    }
}`)
	cfg, err := parse(c)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	m := newMultivalue(cfg, defaultEngine)
	t.Cleanup(func() { m.stop() })
	return m
}

// waitChecks waits until every running check that which selects has a first
// result.
func waitChecks(t *testing.T, which func(*check) bool) {
	t.Helper()
	ok := eventually(10*time.Second, func() bool {
		all := true
		defaultEngine.table.each(func(c *check) {
			if which(c) && !c.hasResult() {
				all = false
			}
		})
		return all
	})
	if !ok {
		t.Fatal("checks have no first result after 10s")
	}
}

// gatedBackend is an HTTP backend that holds every request until open is
// called, then answers 200: a target whose first probe takes as long as the
// test wants.
type gatedBackend struct {
	addr     string
	arrived  chan struct{} // closed when the first request comes in
	gate     chan struct{} // closed by open
	once     sync.Once
	arrival  sync.Once
	requests atomic.Int64
}

func newGatedBackend(t *testing.T, ip string) *gatedBackend {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	b := &gatedBackend{addr: ln.Addr().String(), arrived: make(chan struct{}), gate: make(chan struct{})}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		b.arrival.Do(func() { close(b.arrived) })
		select {
		case <-b.gate:
			w.Write([]byte("OK"))
		case <-r.Context().Done():
		}
	})}}
	srv.Start()
	t.Cleanup(func() {
		b.open()
		srv.Close()
	})
	return b
}

func (b *gatedBackend) open() { b.once.Do(func() { close(b.gate) }) }

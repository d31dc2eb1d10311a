package multivalue

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsProbe queries www.example.org. A over UDP without pause until stop, and
// counts the queries that got no answer in time.
type dnsProbe struct {
	stopc    chan struct{}
	done     chan struct{}
	ok, fail atomic.Int64
}

func startDNSProbe(addr string) *dnsProbe {
	p := &dnsProbe{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		c := &dns.Client{Net: "udp", Timeout: time.Second}
		for {
			select {
			case <-p.stopc:
				return
			default:
			}
			m := new(dns.Msg)
			m.SetQuestion("www.example.org.", dns.TypeA)
			// Tried three times, as a resolver does: a datagram late on a
			// loaded machine (two cores, -race) is not a failure to answer.
			answered := false
			for range 3 {
				if r, _, err := c.Exchange(m, addr); err == nil && len(r.Answer) > 0 {
					answered = true
					break
				}
			}
			if answered {
				p.ok.Add(1)
			} else {
				p.fail.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func (p *dnsProbe) stop(t *testing.T) {
	t.Helper()
	close(p.stopc)
	<-p.done
	if p.fail.Load() > 0 || p.ok.Load() == 0 {
		t.Errorf("DNS while the admin API was under attack: %d answered, %d failed", p.ok.Load(), p.fail.Load())
	}
}

// noGoroutineGrowth fails the test unless the number of goroutines comes back
// to about before within a few seconds (a connection the server closes lingers
// half a second, as net/http avoids a reset).
func noGoroutineGrowth(t *testing.T, before int) {
	t.Helper()
	var after int
	if !eventually(5*time.Second, func() bool { after = runtime.NumGoroutine(); return after <= before+2 }) {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestAdminSlowloris: a client that sends its header a byte a second is cut
// off after ReadHeaderTimeout; meanwhile DNS answers and the API answers
// other clients; nothing is left running after.
func TestAdminSlowloris(t *testing.T) {
	slow(t)
	s, a := startAdmin(t, "")
	before := goroutinesSettled()
	dnsp := startDNSProbe(s.udp)

	const slowClients = 5
	cut := make(chan time.Duration, slowClients)
	for range slowClients {
		c, err := net.Dial("tcp", strings.TrimPrefix(a.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			start := time.Now()
			req := "GET /v1/status HTTP/1.1\r\nHost: admin\r\nX-Slow: " + strings.Repeat("a", 100)
			for i := 0; i < len(req); i++ {
				if _, err := c.Write([]byte{req[i]}); err != nil {
					break
				}
				time.Sleep(time.Second)
			}
			// The server has given up: a read ends (with whatever it sent).
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c)
			cut <- time.Since(start)
		}()
	}
	// Others are served while the slow clients trickle.
	for i := 0; i < 20; i++ {
		a.status("")
		time.Sleep(100 * time.Millisecond)
	}
	for range slowClients {
		select {
		case d := <-cut:
			if d > 8*time.Second {
				t.Errorf("a slow client was cut off after %v, want about ReadHeaderTimeout (5s)", d)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a slow client is still connected after 15s")
		}
	}
	dnsp.stop(t)
	noGoroutineGrowth(t, before)
}

// TestAdminConcurrentClients: 200 clients at once, reading status and
// setting and removing overrides, all get their answer; DNS answers
// throughout; nothing is left running after.
func TestAdminConcurrentClients(t *testing.T) {
	slow(t)
	s, a := startAdmin(t, "")
	before := goroutinesSettled()
	dnsp := startDNSProbe(s.udp)
	var wg sync.WaitGroup
	var failures atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	const clients = 200
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
			<-start
			for j := range 5 {
				var req *http.Request
				switch (i + j) % 3 {
				case 0:
					req, _ = http.NewRequest("GET", a.base+"/v1/status?name=www.example.org&type=A", nil)
				case 1:
					req, _ = http.NewRequest("POST", a.base+"/v1/overrides", strings.NewReader(`{"name":"api.example.org.","type":"A","value":"127.0.0.4","state":"up","ttl":"1m"}`))
				case 2:
					req, _ = http.NewRequest("GET", a.base+"/v1/overrides", nil)
				}
				resp, err := c.Do(req)
				if err != nil {
					fail(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(fmt.Errorf("%s %s: %d", req.Method, req.URL, resp.StatusCode))
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	dnsp.stop(t)
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed, first: %v", n, clients*5, firstErr.Load())
	}
	noGoroutineGrowth(t, before)
}

// TestAdminBodyLimit: bodies over 64 KiB get 413 whether their length is
// announced or not, and however slowly they would come; the API and DNS go
// on answering.
func TestAdminBodyLimit(t *testing.T) {
	slow(t)
	s, a := startAdmin(t, "")
	before := goroutinesSettled()
	dnsp := startDNSProbe(s.udp)
	host := strings.TrimPrefix(a.base, "http://")
	// Raw requests: the server answers 413 and closes the connection without
	// reading the rest, so a client still sending may see a reset instead of
	// the answer; here the body is sent by a goroutine while the answer is
	// read.
	raw := func(req string, body io.Reader) string {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			io.WriteString(c, req)
			if body != nil {
				io.Copy(c, body)
			}
		}()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Errorf("no reply: %v", err)
		}
		return strings.TrimSpace(line)
	}
	// Announced: refused before it is read (the body is never sent).
	if got := raw("POST /v1/overrides HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n", nil); got != "HTTP/1.1 413 Request Entity Too Large" {
		t.Errorf("announced 100 MB: %q", got)
	}
	// Chunked, of unknown length: cut at 64 KiB.
	chunked := strings.NewReader(fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 1<<20, strings.Repeat(" ", 1<<20)))
	if got := raw("POST /v1/overrides HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", chunked); got != "HTTP/1.1 413 Request Entity Too Large" {
		t.Errorf("chunked 1 MiB: %q", got)
	}
	// Valid JSON that goes on past the limit: a huge string, in a POST and a
	// DELETE of unknown length.
	for _, method := range []string{"POST", "DELETE"} {
		big := `{"target": "127.0.0.2", "state": "down", "reason": "` + strings.Repeat("r", 1<<20) + `"}`
		chunked := strings.NewReader(fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big))
		if got := raw(method+" /v1/overrides HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", chunked); got != "HTTP/1.1 413 Request Entity Too Large" {
			t.Errorf("%s of 1 MiB JSON: %q", method, got)
		}
	}
	// Exactly at the limit is not over it: read, and refused for what it says.
	atLimit := `{"target": "127.0.0.2", "state": "down", "reason": "` + strings.Repeat("r", maxAdminBody-len(`{"target": "127.0.0.2", "state": "down", "reason": ""}`)) + `"}`
	if len(atLimit) != maxAdminBody {
		t.Fatalf("body of %d bytes", len(atLimit))
	}
	if code, body := a.do("POST", "/v1/overrides", atLimit); code != http.StatusBadRequest || !strings.Contains(string(body), "reason is longer") {
		t.Errorf("64 KiB JSON: %d %s", code, body)
	}
	a.status("")
	dnsp.stop(t)
	noGoroutineGrowth(t, before)
}

// TestLimitListener: connections beyond the limit are closed at once, and a
// closed connection frees its slot.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &limitListener{Listener: inner, slots: make(chan struct{}, 2)}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	a, b := <-accepted, <-accepted
	// The third was closed by the listener: its read ends.
	clients[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := clients[2].Read(make([]byte, 1)); err == nil {
		t.Error("the third connection is open")
	}
	a.Close()
	a.Close() // twice: one slot freed
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case got := <-accepted:
		got.Close()
	case <-time.After(5 * time.Second):
		t.Error("a freed slot was not reused")
	}
	b.Close()
}

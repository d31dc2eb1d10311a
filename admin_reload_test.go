package multivalue

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hammer sends GET /v1/status to addr without pause, over fresh and
// keep-alive connections, until stop is called, and counts what fails.
type hammer struct {
	stopc    chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	mu       sync.Mutex
	errs     []string
}

func startHammer(addr string, token string) *hammer {
	h := &hammer{stopc: make(chan struct{})}
	for _, keepAlive := range []bool{false, true} {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			tr := &http.Transport{DisableKeepAlives: !keepAlive}
			defer tr.CloseIdleConnections()
			c := &http.Client{Timeout: 2 * time.Second, Transport: tr}
			for {
				select {
				case <-h.stopc:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+addr+"/v1/status", nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := c.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					h.fail.Add(1)
					h.mu.Lock()
					h.errs = append(h.errs, err.Error())
					h.mu.Unlock()
					continue
				}
				h.ok.Add(1)
			}
		}()
	}
	return h
}

func (h *hammer) stop(t *testing.T) {
	t.Helper()
	close(h.stopc)
	h.wg.Wait()
	if h.fail.Load() > 0 {
		t.Errorf("%d of %d admin requests failed, first: %s", h.fail.Load(), h.ok.Load()+h.fail.Load(), h.errs[0])
	}
	if h.ok.Load() == 0 {
		t.Errorf("no admin request answered")
	}
}

// reloaded waits until the servers a reload started answer over UDP and
// TCP: stopping them before they serve races in caddy.
func reloaded(t *testing.T, s *coreDNS) {
	t.Helper()
	waitServingAt(t, s.udp, s.tcp)
}

// allServing waits until every server of s answers: a test that only talks
// to the admin API must not stop servers that do not serve yet.
func allServing(t *testing.T, s *coreDNS) {
	t.Helper()
	for _, srv := range s.inst.Servers() {
		waitServingAt(t, srv.LocalAddr().String(), srv.Addr().String())
	}
}

// waitServingAt waits until a DNS server answers on udp and tcp.
func waitServingAt(t *testing.T, udp, tcp string) {
	t.Helper()
	for _, nw := range [][2]string{{"udp", udp}, {"tcp", tcp}} {
		c := &dns.Client{Net: nw[0], Timeout: 200 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion("example.org.", dns.TypeSOA)
		if !eventually(5*time.Second, func() bool { _, _, err := c.Exchange(m, nw[1]); return err == nil }) {
			t.Fatalf("no answer over %s from %s", nw[0], nw[1])
		}
	}
}

func adminListening(addr string) bool {
	admins.Lock()
	defer admins.Unlock()
	_, ok := admins.byAddr[addr]
	return ok
}

// TestAdminAcrossReloads: a reload that keeps the address keeps the
// listener, and no request fails while it runs; one that moves it closes the
// old address and opens the new; one that drops admin closes it; a token
// added by a reload applies at once.
func TestAdminAcrossReloads(t *testing.T) {
	clearOverrides(t)
	up, down := newBackend(t, "127.0.0.1"), newBackend(t, "127.0.0.2")
	down.fail.Store(true)
	addr := "127.0.0.1:" + freeTCPPort(t)
	s := startCoreDNS(t, adminCorefile(addr, up.addr, down.addr, ""))
	allServing(t, s)
	waitFirstResults(t)
	a := newAdminClient(t, addr)
	// An override survives every reload: it belongs to the process.
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"target": "127.0.0.2", "state": "drain"}, nil)

	h := startHammer(addr, "")
	for i := range 6 {
		if err := s.reload(adminCorefile(addr, up.addr, down.addr, fmt.Sprintf("        ttl %d", 30+i))); err != nil {
			h.stop(t)
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	reloaded(t, s)
	h.stop(t)
	t.Logf("%d admin requests answered across 6 reloads", h.ok.Load())
	if st := a.status(""); st.value(t, "www.example.org.", "A", "127.0.0.2").Override == nil {
		t.Errorf("the override did not survive the reloads")
	}

	// Moved.
	addr2 := "127.0.0.1:" + freeTCPPort(t)
	if err := s.reload(adminCorefile(addr2, up.addr, down.addr, "")); err != nil {
		t.Fatal(err)
	}
	reloaded(t, s)
	if adminListening(addr) {
		t.Errorf("%s still open after the reload moved the admin API", addr)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections", addr)
	}
	a2 := newAdminClient(t, addr2)
	a2.status("")

	// A token added by a reload on the same address.
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("tok\n"), 0o600)
	withToken := strings.Replace(adminCorefile(addr2, up.addr, down.addr, ""), "admin "+addr2, "admin "+addr2+" {\n            token_file "+tokenFile+"\n        }", 1)
	if err := s.reload(withToken); err != nil {
		t.Fatal(err)
	}
	reloaded(t, s)
	if code, _ := a2.do("GET", "/v1/status", nil); code != http.StatusUnauthorized {
		t.Errorf("after a reload added a token: %d without it, want 401", code)
	}
	a2.token = "tok"
	a2.status("")

	// Dropped.
	noAdmin := strings.Replace(adminCorefile(addr2, up.addr, down.addr, ""), "admin "+addr2, "", 1)
	if err := s.reload(noAdmin); err != nil {
		t.Fatal(err)
	}
	reloaded(t, s)
	if adminListening(addr2) {
		t.Errorf("admin API still open after a reload removed it")
	}
}

// TestAdminReloadFailsOnBusyAddress: a reload whose admin address cannot be
// opened fails, and the running instance keeps its admin API and its checks.
func TestAdminReloadFailsOnBusyAddress(t *testing.T) {
	clearOverrides(t)
	up, down := newBackend(t, "127.0.0.1"), newBackend(t, "127.0.0.2")
	addr := "127.0.0.1:" + freeTCPPort(t)
	s := startCoreDNS(t, adminCorefile(addr, up.addr, down.addr, ""))
	allServing(t, s)
	waitFirstResults(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	checks := registeredChecks()
	if err := s.reload(adminCorefile(busy.Addr().String(), up.addr, down.addr, "        ttl 5")); err == nil {
		t.Fatal("reload onto a busy admin address succeeded")
	} else if !strings.Contains(err.Error(), "admin "+busy.Addr().String()) {
		t.Errorf("error %q does not name the admin address", err)
	}
	newAdminClient(t, addr).status("")
	if adminListening(busy.Addr().String()) {
		t.Errorf("the failed reload left a registration on %s", busy.Addr())
	}
	if n := registeredChecks(); n != checks {
		t.Errorf("%d checks after the failed reload, want %d", n, checks)
	}
}

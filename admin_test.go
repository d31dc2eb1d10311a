package multivalue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// adminClient talks to an admin API on loopback.
type adminClient struct {
	t     testing.TB
	base  string // http://127.0.0.1:PORT
	token string // sent as a bearer token when not empty
	c     *http.Client
}

func newAdminClient(t testing.TB, addr string) *adminClient {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return &adminClient{t: t, base: "http://" + addr, c: c}
}

// do sends a request with body (a string as is, anything else as JSON) and
// returns the status code and the body.
func (a *adminClient) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	if !json.Valid(out) {
		a.t.Errorf("%s %s: body is not JSON: %q", method, path, out)
	}
	return resp.StatusCode, out
}

// must sends a request that must get want, and decodes the reply into v (if
// not nil).
func (a *adminClient) must(want int, method, path string, body, v any) {
	a.t.Helper()
	code, out := a.do(method, path, body)
	if code != want {
		a.t.Fatalf("%s %s %v: status %d, want %d: %s", method, path, body, code, want, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, out)
		}
	}
}

// status returns GET /v1/status decoded.
func (a *adminClient) status(query string) statusReply {
	a.t.Helper()
	var r statusReply
	a.must(http.StatusOK, http.MethodGet, "/v1/status"+query, nil, &r)
	return r
}

// value returns one value's status, failing when it is not there once.
func (r statusReply) value(t testing.TB, name, typ, val string) valueStatus {
	t.Helper()
	var found []valueStatus
	for _, s := range r.Sets {
		if s.Name == name && s.Type == typ {
			for _, v := range s.Values {
				if v.Value == val {
					found = append(found, v)
				}
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("status of %s %s %s: found %d times in %+v", name, typ, val, len(found), r)
	}
	return found[0]
}

// clearOverrides removes every override of the default engine when the test
// ends: they outlive the instances whose values they select.
func clearOverrides(t testing.TB) {
	t.Cleanup(func() {
		st := defaultEngine.ops.overrides
		st.mu.Lock()
		clear(st.byKey)
		st.arm()
		st.mu.Unlock()
		defaultEngine.ops.recount()
	})
}

// adminCorefile serves www (127.0.0.1 checked against up, 127.0.0.2 against
// down, 127.0.0.3 without a check) and api (127.0.0.2, 127.0.0.4 on a
// checked SRV-less TXT) with the admin API on adminAddr and extra lines.
func adminCorefile(adminAddr, up, down, extra string) string {
	return fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        admin %s
        health_check web {
            interval 100ms
            timeout 50ms
            failure_threshold 1
        }
        records www A {
            health_check web
            127.0.0.1 { target %s }
            127.0.0.2 { target %s }
            127.0.0.3 { health_check none }
        }
        records api A {
            health_check web
            127.0.0.2 { target %s }
            127.0.0.4 { target %s }
        }
        records txt TXT "v=spf1 -all" "hello world"
%s
    }
}
`, adminAddr, up, down, down, up, extra)
}

// startAdmin starts CoreDNS with adminCorefile on a free loopback port, and
// waits for the checks' first results.
func startAdmin(t *testing.T, extra string) (*coreDNS, *adminClient) {
	t.Helper()
	clearOverrides(t)
	up, down := newBackend(t, "127.0.0.1"), newBackend(t, "127.0.0.2")
	down.fail.Store(true)
	addr := "127.0.0.1:" + freeTCPPort(t)
	s := startCoreDNS(t, adminCorefile(addr, up.addr, down.addr, extra))
	allServing(t, s)
	waitFirstResults(t)
	waitServed(t, s, "127.0.0.1", "127.0.0.3")
	return s, newAdminClient(t, addr)
}

// TestAdminStatus: GET /v1/status holds every set with exactly the fields of
// the spec; ?name=&type= narrows it to one set, names matching in any case
// and with or without the final dot.
func TestAdminStatus(t *testing.T) {
	_, a := startAdmin(t, "")
	var raw map[string][]map[string]any
	a.must(http.StatusOK, http.MethodGet, "/v1/status", nil, &raw)
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
	if len(raw) != 1 || len(raw["sets"]) != 3 {
		t.Fatalf("want {sets: [3 sets]}, got %v", raw)
	}
	for _, set := range raw["sets"] {
		if got, want := keys(set), []string{"name", "type", "values", "zone"}; !slices.Equal(got, want) {
			t.Errorf("set fields %v, want %v", got, want)
		}
		for _, v := range set["values"].([]any) {
			v := v.(map[string]any)
			if got, want := keys(v), []string{"checks", "override", "reason", "served", "since", "status", "tier", "value", "weight"}; !slices.Equal(got, want) {
				t.Errorf("value fields %v, want %v", got, want)
			}
			for _, c := range v["checks"].([]any) {
				if got, want := keys(c.(map[string]any)), []string{"last_probe", "last_reason", "last_result", "protocol", "status", "target"}; !slices.Equal(got, want) {
					t.Errorf("check fields %v, want %v", got, want)
				}
			}
		}
	}

	st := a.status("")
	if got := []string{st.Sets[0].Name, st.Sets[1].Name, st.Sets[2].Name}; !slices.Equal(got, []string{"www.example.org.", "api.example.org.", "txt.example.org."}) {
		t.Errorf("sets %v, want Corefile order", got)
	}
	up := st.value(t, "www.example.org.", "A", "127.0.0.1")
	if up.Status != "healthy" || !up.Served || up.Since != nil || up.Weight != 1 || up.Tier != 1 || up.Override != nil || len(up.Checks) != 1 {
		t.Errorf("www 127.0.0.1: %+v, want healthy, served, never changed, weight 1, tier 1, no override, one check", up)
	}
	if c := up.Checks[0]; c.Protocol != "http" || c.Status != "healthy" || c.LastResult == nil || *c.LastResult != "success" ||
		c.LastProbe == nil || time.Since(*c.LastProbe) > 5*time.Second || c.LastReason == nil || !strings.Contains(*c.LastReason, "status 200") {
		t.Errorf("www 127.0.0.1's check: %+v", c)
	}
	down := st.value(t, "www.example.org.", "A", "127.0.0.2")
	if down.Status != "unhealthy" || down.Served || down.Since == nil || !strings.Contains(down.Reason, "status 503") {
		t.Errorf("www 127.0.0.2: %+v, want unhealthy, not served, a since, reason status 503", down)
	}
	if c := down.Checks[0]; c.Status != "unhealthy" || *c.LastResult != "failure" {
		t.Errorf("www 127.0.0.2's check: %+v", c)
	}
	unchecked := st.value(t, "www.example.org.", "A", "127.0.0.3")
	if unchecked.Status != "healthy" || !unchecked.Served || len(unchecked.Checks) != 0 || unchecked.Reason != "no health check" {
		t.Errorf("www 127.0.0.3 (no check): %+v", unchecked)
	}
	txt := st.value(t, "txt.example.org.", "TXT", `"v=spf1 -all"`)
	if !txt.Served {
		t.Errorf("txt: %+v", txt)
	}

	for _, q := range []string{"?name=api.example.org.&type=A", "?name=API.Example.ORG&type=a", "?name=api.example.org"} {
		got := a.status(q)
		if len(got.Sets) != 1 || got.Sets[0].Name != "api.example.org." || len(got.Sets[0].Values) != 2 {
			t.Errorf("status%s: %+v, want the api set alone", q, got)
		}
	}
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"?name=nope.example.org&type=A", http.StatusNotFound},
		{"?name=www.example.org&type=AAAA", http.StatusNotFound},
		{"?type=A", http.StatusBadRequest},
		{"?name=", http.StatusBadRequest},
		{"?name=www&name=api", http.StatusBadRequest},
		{"?name=www.example.org&type=BOGUS", http.StatusBadRequest},
		{"?name=www.example.org&type=CNAME", http.StatusBadRequest},
		{"?zone=example.org", http.StatusBadRequest},
		{"?name=a..b", http.StatusBadRequest},
		{"?name=%zz", http.StatusBadRequest},
	} {
		code, body := a.do(http.MethodGet, "/v1/status"+tc.query, nil)
		var e map[string]string
		if code != tc.code || json.Unmarshal(body, &e) != nil || e["error"] == "" {
			t.Errorf("status%s: %d %s, want %d with a JSON error", tc.query, code, body, tc.code)
		}
	}
}

// TestAdminErrors: unknown paths 404, wrong methods 405 with Allow,
// malformed requests 400, each with a JSON error. (413: TestAdminBodyLimit.)
func TestAdminErrors(t *testing.T) {
	_, a := startAdmin(t, "")
	for _, tc := range []struct {
		method, path string
		body         any
		code         int
		errHas       string
	}{
		{"GET", "/", nil, 404, "no such endpoint"},
		{"GET", "/v1/status/", nil, 404, "no such endpoint"},
		{"GET", "/v2/status", nil, 404, "no such endpoint"},
		{"GET", "/v1/overrides/x", nil, 404, "no such endpoint"},
		{"POST", "/v1/status", nil, 405, "method not allowed"},
		{"DELETE", "/v1/status", nil, 405, "method not allowed"},
		{"PUT", "/v1/overrides", nil, 405, "method not allowed"},
		{"PATCH", "/v1/overrides", nil, 405, "method not allowed"},
		{"POST", "/v1/overrides", "", 400, "empty body"},
		{"POST", "/v1/overrides", "{", 400, "bad JSON"},
		{"POST", "/v1/overrides", "[]", 400, "bad JSON"},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "state": "down"} {}`, 400, "data after"},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "state": "down", "color": "red"}`, 400, `unknown field "color"`},
		{"POST", "/v1/overrides", `{"target": 5, "state": "down"}`, 400, "bad JSON"},
		{"POST", "/v1/overrides", `{"state": "down"}`, 400, "give name, type and value, or target"},
		{"POST", "/v1/overrides", `{"name": "www.example.org.", "state": "down"}`, 400, "give name, type and value"},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "name": "www.example.org.", "state": "down"}`, 400, "not both"},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "state": "off"}`, 400, `state "off"`},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2"}`, 400, `state ""`},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2:80", "state": "down"}`, 400, "without a port"},
		{"POST", "/v1/overrides", `{"target": "not a host", "state": "down"}`, 400, "neither an IP"},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "state": "down", "ttl": "soon"}`, 400, `ttl "soon"`},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "state": "down", "ttl": "-5m"}`, 400, `ttl "-5m"`},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "state": "down", "ttl": "0s"}`, 400, `ttl "0s"`},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "state": "down", "ttl": "9000h"}`, 400, `ttl "9000h"`},
		{"POST", "/v1/overrides", `{"target": "127.0.0.2", "state": "down", "reason": "a\nb"}`, 400, "control character"},
		{"POST", "/v1/overrides", `{"name": "www.example.org.", "type": "A", "value": "not-an-ip", "state": "down"}`, 400, "not a A value"},
		{"POST", "/v1/overrides", `{"name": "www.example.org.", "type": "WHAT", "value": "127.0.0.1", "state": "down"}`, 400, "unknown type"},
		{"POST", "/v1/overrides", `{"name": "a..b", "type": "A", "value": "127.0.0.1", "state": "down"}`, 400, "not a domain name"},
		{"POST", "/v1/overrides", `{"name": "www.example.org.", "type": "A", "value": "127.0.0.9", "state": "down"}`, 404, "no value matches"},
		{"POST", "/v1/overrides", `{"target": "127.0.0.99", "state": "down"}`, 404, "no value matches target 127.0.0.99"},
		{"DELETE", "/v1/overrides", `{"target": "127.0.0.2"}`, 404, "no override"},
		{"DELETE", "/v1/overrides", `{}`, 400, "give name, type and value, or target"},
		{"GET", "/v1/overrides?x=1", nil, 400, "no parameters"},
	} {
		code, body := a.do(tc.method, tc.path, tc.body)
		var e map[string]string
		json.Unmarshal(body, &e)
		if code != tc.code || !strings.Contains(e["error"], tc.errHas) {
			short := fmt.Sprint(tc.body)
			if len(short) > 80 {
				short = short[:80] + "..."
			}
			t.Errorf("%s %s %s: %d %s, want %d with an error holding %q", tc.method, tc.path, short, code, body, tc.code, tc.errHas)
		}
	}
	// 405 says what is allowed.
	req, _ := http.NewRequest(http.MethodPut, a.base+"/v1/overrides", nil)
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Allow"); got != "GET, POST, DELETE" {
		t.Errorf("405's Allow: %q", got)
	}
	// Nothing of the above left an override.
	var list map[string][]overrideListed
	a.must(http.StatusOK, http.MethodGet, "/v1/overrides", nil, &list)
	if len(list["overrides"]) != 0 {
		t.Errorf("overrides after bad requests: %+v", list)
	}
}

// TestAdminOverrides: overrides set through the API take effect on the next
// query, are listed, logged at INFO with the values and the reason, counted
// in coredns_multivalue_overrides, removed by DELETE, and expire.
func TestAdminOverrides(t *testing.T) {
	s, a := startAdmin(t, "")
	logs := captureLog(t)
	www := func() []string { return answerValues(s.query(t, "udp", "www.example.org.", dns.TypeA)) }
	api := func() []string { return answerValues(s.query(t, "udp", "api.example.org.", dns.TypeA)) }

	// drain by value: out of the very next answer, its checks' status kept.
	var reply valuesReply
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"name": "WWW.example.org", "type": "a", "value": "127.0.0.1", "state": "drain", "reason": "maintenance"}, &reply)
	if want := []valueRef{{"example.org.", "www.example.org.", "A", "127.0.0.1"}}; !slices.Equal(reply.Values, want) {
		t.Errorf("POST drain: values %+v, want %+v", reply.Values, want)
	}
	if got := www(); !slices.Equal(got, []string{"127.0.0.3"}) {
		t.Errorf("after drain, www answers %v, want [127.0.0.3]", got)
	}
	v := a.status("?name=www.example.org&type=A").value(t, "www.example.org.", "A", "127.0.0.1")
	if v.Status != "healthy" || v.Served || v.Override == nil || v.Override.State != "drain" || v.Override.Reason != "maintenance" || v.Override.Expires != nil {
		t.Errorf("drained value's status: %+v (override %+v)", v, v.Override)
	}
	if l := logs.lines("[INFO]", "override drain set on www.example.org. A 127.0.0.1", "maintenance"); len(l) != 1 {
		t.Errorf("log of the drain: %q", logs.lines("override"))
	}
	waitValue(t, "coredns_multivalue_overrides", labels{"state": "drain"}, 1)

	// up by target over two values of two sets: the dead 127.0.0.2 served.
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"target": "127.0.0.2", "state": "up", "reason": "checker is wrong"}, &reply)
	if len(reply.Values) != 2 {
		t.Errorf("POST up for target 127.0.0.2: %+v, want www and api", reply.Values)
	}
	if got := www(); !sameSet(got, []string{"127.0.0.2", "127.0.0.3"}) {
		t.Errorf("after up, www answers %v", got)
	}
	if got := api(); !sameSet(got, []string{"127.0.0.2", "127.0.0.4"}) {
		t.Errorf("after up, api answers %v", got)
	}
	waitValue(t, "coredns_multivalue_overrides", labels{"state": "up"}, 2)
	if l := logs.lines("[INFO]", "is now healthy: override up: checker is wrong"); len(l) != 2 {
		t.Errorf("transitions under the up override: %q", logs.lines("is now"))
	}

	// A value's own override wins over its target's.
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"name": "api.example.org.", "type": "A", "value": "127.0.0.2", "state": "down"}, nil)
	if got := api(); !slices.Equal(got, []string{"127.0.0.4"}) {
		t.Errorf("value down over target up: api answers %v", got)
	}
	var list map[string][]overrideListed
	a.must(http.StatusOK, "GET", "/v1/overrides", nil, &list)
	if got := list["overrides"]; len(got) != 3 || got[0].State != "drain" || got[1].Target != "127.0.0.2" || len(got[1].Values) != 2 || got[2].Value != "127.0.0.2" {
		t.Errorf("GET /v1/overrides: %+v", got)
	}
	waitValue(t, "coredns_multivalue_overrides", labels{"state": "up"}, 1)
	waitValue(t, "coredns_multivalue_overrides", labels{"state": "down"}, 1)

	// DELETE by the same selector.
	a.must(http.StatusOK, "DELETE", "/v1/overrides", map[string]string{"target": "127.0.0.2"}, &reply)
	a.must(http.StatusOK, "DELETE", "/v1/overrides", map[string]string{"name": "api.example.org.", "type": "A", "value": "127.0.0.2"}, nil)
	a.must(http.StatusOK, "DELETE", "/v1/overrides", map[string]string{"name": "www.example.org.", "type": "A", "value": "127.0.0.1"}, nil)
	if got := www(); !sameSet(got, []string{"127.0.0.1", "127.0.0.3"}) {
		t.Errorf("after DELETE, www answers %v", got)
	}
	if l := logs.lines("[INFO]", "override up removed from", "www.example.org. A 127.0.0.2", "api.example.org. A 127.0.0.2"); len(l) != 1 {
		t.Errorf("log of the removal: %q", logs.lines("override"))
	}
	for _, st := range overrideStates {
		waitValue(t, "coredns_multivalue_overrides", labels{"state": st}, 0)
	}

	// Expiry: a down override with a ttl ends by itself.
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"name": "www.example.org.", "type": "A", "value": "127.0.0.3", "state": "down", "ttl": "300ms", "reason": "short"}, nil)
	if got := www(); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("under a down override, www answers %v", got)
	}
	a.must(http.StatusOK, "GET", "/v1/overrides", nil, &list)
	if got := list["overrides"]; len(got) != 1 || got[0].Expires == nil || got[0].Expires.Sub(got[0].Created) != 300*time.Millisecond {
		t.Errorf("listed with expiry: %+v", got)
	}
	if !eventually(3*time.Second, func() bool { return sameSet(www(), []string{"127.0.0.1", "127.0.0.3"}) }) {
		t.Errorf("the down override did not expire: www answers %v", www())
	}
	if l := logs.lines("[INFO]", "override down expired on www.example.org. A 127.0.0.3", "short"); len(l) != 1 {
		t.Errorf("log of the expiry: %q", logs.lines("override"))
	}
	a.must(http.StatusOK, "GET", "/v1/overrides", nil, &list)
	if len(list["overrides"]) != 0 {
		t.Errorf("expired override still listed: %+v", list)
	}

	// A drained value stays out under all_unhealthy serve; a down one does not.
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"target": "127.0.0.1", "state": "down"}, nil)
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"name": "api.example.org.", "type": "A", "value": "127.0.0.2", "state": "drain"}, nil)
	for range 20 {
		if got := api(); !slices.Equal(got, []string{"127.0.0.4"}) {
			t.Fatalf("all_unhealthy serve with one value drained and one down: api answers %v, want the down one only", got)
		}
	}
	// Replacing an override logs it.
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"target": "127.0.0.1", "state": "drain"}, nil)
	if l := logs.lines("[INFO]", "override drain replaced (was down) on"); len(l) != 1 {
		t.Errorf("log of the replacement: %q", logs.lines("override"))
	}
	// Every value of api drained: NODATA.
	if r := s.query(t, "udp", "api.example.org.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("every value drained: %v", r)
	}
}

// TestAdminToken: with token_file every request needs the bearer token, on
// any path; the token is the file's content, trimmed.
func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("  s3cret-token\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + freeTCPPort(t)
	allServing(t, startCoreDNS(t, fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        admin %s {
            token_file %s
        }
        records www A 127.0.0.1
    }
}`, addr, tokenFile)))
	a := newAdminClient(t, addr)
	for _, tok := range []string{"", "wrong", "s3cret-token-and-more", "s3cret-toke"} {
		a.token = tok
		for _, path := range []string{"/v1/status", "/v1/overrides", "/nope"} {
			code, body := a.do("GET", path, nil)
			if code != http.StatusUnauthorized || !strings.Contains(string(body), "bearer token") {
				t.Errorf("token %q, %s: %d %s, want 401", tok, path, code, body)
			}
		}
	}
	// Another scheme, or the token in another header, is not it.
	for _, h := range []string{"Basic s3cret-token", "s3cret-token", "Bearer"} {
		req, _ := http.NewRequest("GET", a.base+"/v1/status", nil)
		req.Header.Set("Authorization", h)
		resp, err := a.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d (WWW-Authenticate %q), want 401 with a challenge", h, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	a.token = "s3cret-token"
	if st := a.status(""); len(st.Sets) != 1 {
		t.Errorf("with the token: %+v", st)
	}
}

// TestAdminServesEveryBlock: one admin address, named by one server block,
// serves the sets of every server block; two blocks may name the same
// address (one listener).
func TestAdminServesEveryBlock(t *testing.T) {
	clearOverrides(t)
	addr := "127.0.0.1:" + freeTCPPort(t)
	s := startCoreDNS(t, fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        admin %[1]s
        records www A 127.0.0.1 127.0.0.2
    }
}
example.net:0 {
    bind 127.0.0.1
    multivalue {
        records www A 127.0.0.3
    }
}
example.com:0 {
    bind 127.0.0.1
    multivalue {
        admin %[1]s
        records www A 127.0.0.4
    }
}`, addr))
	allServing(t, s)
	a := newAdminClient(t, addr)
	st := a.status("")
	var names []string
	for _, s := range st.Sets {
		names = append(names, s.Zone+" "+s.Name)
	}
	slices.Sort(names)
	if want := []string{"example.com. www.example.com.", "example.net. www.example.net.", "example.org. www.example.org."}; !slices.Equal(names, want) {
		t.Errorf("sets %v, want %v", names, want)
	}
	admins.Lock()
	n := len(admins.byAddr)
	admins.Unlock()
	if n != 1 {
		t.Errorf("%d admin listeners, want 1", n)
	}
	var reply valuesReply
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"name": "www.example.net", "type": "A", "value": "127.0.0.3", "state": "drain"}, &reply)
	if len(reply.Values) != 1 || reply.Values[0].Zone != "example.net." {
		t.Errorf("override in a block without admin: %+v", reply)
	}
}

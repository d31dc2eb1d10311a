package multivalue

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const fuzzAdminToken = "fuzz-token"

// FuzzAdminAPI sends arbitrary requests (method, path and query, bearer
// token, body) to the admin API's handler, over a running instance with
// checked and unchecked values. It must never panic; every reply is JSON with
// one of the spec's status codes, an error reply says what is wrong, a
// successful POST names the values it applies to, and no request leaves an
// override that selects nothing.
func FuzzAdminAPI(f *testing.F) {
	for _, seed := range []struct{ method, target, token, body string }{
		{"GET", "/v1/status", fuzzAdminToken, ""},
		{"GET", "/v1/status?name=www.example.org&type=A", fuzzAdminToken, ""},
		{"GET", "/v1/status?name=WWW.EXAMPLE.ORG.", fuzzAdminToken, ""},
		{"GET", "/v1/overrides", fuzzAdminToken, ""},
		{"POST", "/v1/overrides", fuzzAdminToken, `{"name": "www.example.org.", "type": "A", "value": "127.0.0.1", "state": "drain", "ttl": "30m", "reason": "maintenance"}`},
		{"POST", "/v1/overrides", fuzzAdminToken, `{"target": "127.0.0.2", "state": "down"}`},
		{"POST", "/v1/overrides", fuzzAdminToken, `{"name": "mail.example.org", "type": "mx", "value": "10 mx1.example.org.", "state": "up"}`},
		{"POST", "/v1/overrides", fuzzAdminToken, `{"name": "txt.example.org", "type": "TXT", "value": "\"b c\"", "state": "drain"}`},
		{"DELETE", "/v1/overrides", fuzzAdminToken, `{"target": "127.0.0.2"}`},
		{"POST", "/v1/overrides", fuzzAdminToken, `{"target": "127.0.0.2", "state": "down"} trailing`},
		{"POST", "/v1/overrides", fuzzAdminToken, `{"target": 1e999}`},
		{"POST", "/v1/overrides", "wrong", `{"target": "127.0.0.2", "state": "down"}`},
		{"PUT", "/v1/overrides", fuzzAdminToken, ""},
		{"GET", "/v1/nope?x=%zz", fuzzAdminToken, ""},
		{"GET", "/v1/status?name=%00&type=A", fuzzAdminToken, ""},
	} {
		f.Add(seed.method, seed.target, seed.token, []byte(seed.body))
	}
	e := testEngine()
	testInstance(f, e, `multivalue example.org {
    health_check db {
        protocol tcp
        port 1
        interval 1h
        timeout 1s
    }
    records www A 127.0.0.1 127.0.0.2 127.0.0.3 {
        health_check db
    }
    records mail MX {
        10 mx1.example.org. { health_check db }
    }
    records txt TXT "a" "b c"
}`)
	sum := sha256.Sum256([]byte(fuzzAdminToken))
	a := &adminServer{regs: []adminReg{{token: &sum, engine: e}}}
	f.Fuzz(func(t *testing.T, method, target, token string, body []byte) {
		t.Cleanup(func() {
			st := e.ops.overrides
			st.mu.Lock()
			clear(st.byKey)
			st.arm()
			st.mu.Unlock()
		})
		u, err := url.ParseRequestURI(target)
		if err != nil || !validMethod(method) || strings.ContainsAny(token, "\r\n\x00") {
			return // net/http refuses these before a handler sees them
		}
		r := &http.Request{
			Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Host: "admin",
		}
		r = r.WithContext(t.Context())
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)

		code := w.Code
		if !slices.Contains([]int{200, 400, 401, 404, 405, 413}, code) {
			t.Fatalf("%s %s: status %d", method, target, code)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		out := w.Body.Bytes()
		if code != http.StatusOK {
			var e map[string]string
			if err := json.Unmarshal(out, &e); err != nil || e["error"] == "" || len(e) != 1 {
				t.Fatalf("%s %s: %d with %q, want {\"error\": ...}", method, target, code, out)
			}
			if code == http.StatusUnauthorized && strings.TrimSpace(token) == fuzzAdminToken {
				t.Fatalf("the right token refused")
			}
			return
		}
		switch {
		case u.Path == "/v1/status":
			var st statusReply
			if err := json.Unmarshal(out, &st); err != nil || st.Sets == nil {
				t.Fatalf("status: %v %q", err, out)
			}
		case method == http.MethodPost:
			var v valuesReply
			if err := json.Unmarshal(out, &v); err != nil || len(v.Values) == 0 {
				t.Fatalf("POST: 200 with %q", out)
			}
		}
		// Every override in force selects a value.
		for _, ov := range e.ops.overrides.list(time.Now()) {
			if len(e.ops.matching(ov.key)) == 0 {
				t.Fatalf("override %s selects nothing", ov.selector())
			}
		}
	})
}

// validMethod reports whether m is a method net/http would pass on: an
// HTTP token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c) {
			return false
		}
	}
	return true
}

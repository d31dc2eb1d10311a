package multivalue

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// stateCorefile serves www: 127.0.0.1 checked against up, 127.0.0.2 against
// down, 127.0.0.3 without a check, with a state file and the admin API.
func stateCorefile(adminAddr, path, up, down, check string) string {
	return fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        admin %s
        state_file %s
        health_check web {
%s
        }
        records www A {
            health_check web
            127.0.0.1 { target %s }
            127.0.0.2 { target %s }
            127.0.0.3 { health_check none }
        }
    }
}
`, adminAddr, path, check, up, down)
}

func readStateJSON(t *testing.T, path string) *stateJSON {
	t.Helper()
	st, err := readState(path)
	if err != nil || st == nil {
		t.Fatalf("state file %s: %v (exists: %v)", path, err, st != nil)
	}
	return st
}

// TestStateFileRestart: statuses and overrides saved at shutdown come back
// at the next start: a value saved unhealthy is out of the very first
// answer, and stays out until its check's success_threshold is met; a
// drained value stays drained.
func TestStateFileRestart(t *testing.T) {
	clearOverrides(t)
	path := filepath.Join(t.TempDir(), "multivalue.state")
	up, down := newBackend(t, "127.0.0.1"), newBackend(t, "127.0.0.2")
	down.fail.Store(true)
	addr := "127.0.0.1:" + freeTCPPort(t)
	fast := "            interval 100ms\n            timeout 50ms\n            failure_threshold 1"
	s := startCoreDNS(t, stateCorefile(addr, path, up.addr, down.addr, fast))
	allServing(t, s)
	waitFirstResults(t)
	waitServed(t, s, "127.0.0.1", "127.0.0.3")
	a := newAdminClient(t, addr)
	a.must(http.StatusOK, "POST", "/v1/overrides", map[string]string{"name": "www.example.org.", "type": "A", "value": "127.0.0.3", "state": "drain", "ttl": "1h", "reason": "restart test"}, nil)
	waitServed(t, s, "127.0.0.1")
	s.stop()
	clearOverridesNow()

	st := readStateJSON(t, path)
	statuses := map[string]string{}
	for _, c := range st.Checks {
		statuses[c.Target] = c.Status + " " + c.LastResult
	}
	if want := map[string]string{up.addr: "healthy success", down.addr: "unhealthy failure"}; !maps2Equal(statuses, want) {
		t.Fatalf("saved statuses %v, want %v", statuses, want)
	}
	if len(st.Overrides) != 1 || st.Overrides[0].Value != "127.0.0.3" || st.Overrides[0].State != "drain" || st.Overrides[0].Expires == nil {
		t.Fatalf("saved overrides %+v", st.Overrides)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the state file's directory holds %d entries, want the file alone (no temporary file left)", len(entries))
	}

	// The dead backend is back. The new config probes every 10s and needs
	// two successes: the saved status holds for the first answers and past
	// the first probe.
	down.fail.Store(false)
	logs := captureLog(t)
	slowCheck := "            interval 10s\n            timeout 1s\n            failure_threshold 2"
	s = startCoreDNS(t, stateCorefile(addr, path, up.addr, down.addr, slowCheck))
	defer allServing(t, s)
	if got := answerValues(s.query(t, "udp", "www.example.org.", dns.TypeA)); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Fatalf("first answer after the restart: %v, want [127.0.0.1] (127.0.0.2 saved unhealthy, 127.0.0.3 drained)", got)
	}
	if l := logs.lines("[INFO]", "override drain for www.example.org. A 127.0.0.3 restored from the state file, until ", "restart test"); len(l) != 1 {
		t.Errorf("log of the restored override: %q", logs.lines("override"))
	}
	v := a.status("").value(t, "www.example.org.", "A", "127.0.0.2")
	if v.Status != "unhealthy" || v.Since == nil || v.Checks[0].LastResult == nil || *v.Checks[0].LastResult != "failure" {
		t.Errorf("restored value's status: %+v", v)
	}
	if !eventually(3*time.Second, func() bool {
		c := a.status("").value(t, "www.example.org.", "A", "127.0.0.2").Checks[0]
		return *c.LastResult == "success"
	}) {
		t.Fatal("no first probe 3s after the restart")
	}
	if got := answerValues(s.query(t, "udp", "www.example.org.", dns.TypeA)); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("after one success of two: %v, want [127.0.0.1]", got)
	}
}

// clearOverridesNow removes the default engine's overrides at once.
func clearOverridesNow() {
	st := defaultEngine.ops.overrides
	st.mu.Lock()
	clear(st.byKey)
	st.arm()
	st.mu.Unlock()
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestStateFileBroken: whatever is at the state file's path, or in its way,
// CoreDNS starts and serves; what cannot be read or written is logged at
// WARNING, and nothing is overwritten that is not a state file.
func TestStateFileBroken(t *testing.T) {
	valid := func(t *testing.T) []byte {
		b, _ := json.Marshal(stateJSON{Version: stateVersion, Saved: time.Now(), Checks: []savedCheck{{ID: "x", Status: "unhealthy", Checked: time.Now()}}})
		return b
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, path string) // makes what is at path
		warning string                          // "" for none
	}{
		{"missing", func(*testing.T, string) {}, ""},
		{"empty", func(t *testing.T, p string) { os.WriteFile(p, nil, 0o600) }, "corrupt: unexpected end of JSON input"},
		{"truncated", func(t *testing.T, p string) { b := valid(t); os.WriteFile(p, b[:len(b)/2], 0o600) }, "corrupt: unexpected end of JSON input"},
		{"garbage", func(t *testing.T, p string) { os.WriteFile(p, []byte("\x00\xff\xfegarbage{]"), 0o600) }, "corrupt: invalid character"},
		{"an array", func(t *testing.T, p string) { os.WriteFile(p, []byte(`[{"version": 1}]`), 0o600) }, "corrupt: json: cannot unmarshal array"},
		{"checks not a list", func(t *testing.T, p string) { os.WriteFile(p, []byte(`{"version": 1, "checks": 5}`), 0o600) }, "corrupt: json: cannot unmarshal number"},
		{"no version", func(t *testing.T, p string) { os.WriteFile(p, []byte(`{"checks": []}`), 0o600) }, "corrupt: version 0, want 1"},
		{"an override with a bad state", func(t *testing.T, p string) {
			os.WriteFile(p, []byte(`{"version": 1, "overrides": [{"target": "127.0.0.1", "state": "sideways", "created": "2020-01-01T00:00:00Z"}]}`), 0o600)
		}, `an override is ignored: state "sideways"`},
		{"a directory in its place", func(t *testing.T, p string) { os.Mkdir(p, 0o700) }, "is a directory: ignored"},
		{"a FIFO in its place", func(t *testing.T, p string) { syscall.Mkfifo(p, 0o600) }, "is not a regular file: ignored"},
		{"unreadable", func(t *testing.T, p string) {
			os.WriteFile(p, valid(t), 0o000)
		}, map[bool]string{true: "", false: "permission denied"}[os.Geteuid() == 0]},
		{"a read-only directory", func(t *testing.T, p string) {
			os.Chmod(filepath.Dir(p), 0o500)
			t.Cleanup(func() { os.Chmod(filepath.Dir(p), 0o700) })
		}, map[bool]string{true: "", false: "cannot save"}[os.Geteuid() == 0]}, // root writes anyway
		{"a file where its directory should be", func(t *testing.T, p string) {
			os.Remove(filepath.Dir(p))
			os.WriteFile(filepath.Dir(p), []byte("not a directory"), 0o600)
		}, "cannot save"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state", "multivalue.state")
			os.Mkdir(filepath.Dir(path), 0o700)
			tc.prepare(t, path)
			before, _ := os.Lstat(path)
			logs := captureLog(t)
			s := startCoreDNS(t, fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    multivalue {
        state_file %s
        records www A 127.0.0.1 127.0.0.2
    }
}`, path))
			allServing(t, s)
			if got := answerValues(s.query(t, "udp", "www.example.org.", dns.TypeA)); !sameSet(got, []string{"127.0.0.1", "127.0.0.2"}) {
				t.Errorf("answer %v", got)
			}
			if tc.warning != "" && !eventually(3*time.Second, func() bool { return len(logs.lines("[WARNING]", "state_file "+path, tc.warning)) > 0 }) {
				t.Errorf("no WARNING about %q, log:\n%s", tc.warning, strings.Join(logs.lines("state_file"), "\n"))
			}
			if tc.warning == "" {
				// A good write follows (within a second of the start).
				if !eventually(3*time.Second, func() bool { st, err := readState(path); return err == nil && st != nil }) {
					t.Errorf("no state file written; log:\n%s", strings.Join(logs.lines("state_file"), "\n"))
				}
			}
			s.stop()
			if before != nil && !before.Mode().IsRegular() {
				if after, err := os.Lstat(path); err != nil || after.Mode().Type() != before.Mode().Type() {
					t.Errorf("%s was %v, is now %v (%v)", path, before.Mode(), after.Mode(), err)
				}
			}
		})
	}
}

// testInstance starts block on an engine of its own (registry, dialer
// guarded to loopback), and stops it when the test ends.
func testInstance(t testing.TB, e *engine, block string) *Multivalue {
	t.Helper()
	c := caddy.NewTestController("dns", block)
	c.ServerBlockKeys = []string{"example.org."}
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	m := newMultivalue(cfg, e)
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.stop() })
	return m
}

func testEngine() *engine {
	e := newEngine(prometheus.NewRegistry())
	e.dialer = defaultEngine.dialer
	return e
}

// TestStateFileMaxAge: a saved status is used only when younger than
// MAX_AGE; an override comes back unless it expired; a restored status is
// not a result for readiness.
func TestStateFileMaxAge(t *testing.T) {
	dead := closedAddr(t, "127.0.0.1")
	path := filepath.Join(t.TempDir(), "state.json")
	block := fmt.Sprintf(`multivalue {
    state_file %s 30m
    health_check web {
        protocol tcp
        interval 10s
        timeout 1s
    }
    records www A {
        health_check web
        127.0.0.1 { target %s }
        127.0.0.2 { target %s }
    }
    records api A 127.0.0.5 127.0.0.6 127.0.0.7
}`, path, dead, strings.Replace(dead, "127.0.0.1", "127.0.0.2", 1))
	c := caddy.NewTestController("dns", block)
	c.ServerBlockKeys = []string{"example.org."}
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return checkID(cfg.sets[0].values[i].specs[0]) }
	now := time.Now()
	hourAgo := now.Add(-time.Hour)
	st := stateJSON{
		Version: stateVersion,
		Saved:   now,
		Checks: []savedCheck{
			{ID: id(0), Status: "unhealthy", Since: hourAgo, Checked: now.Add(-time.Minute), LastResult: "failure", Reason: "connection refused"},
			{ID: id(1), Status: "unhealthy", Since: hourAgo, Checked: now.Add(-31 * time.Minute), LastResult: "failure"},
		},
		Overrides: []savedOverride{
			{overrideRequest{Name: "api.example.org.", Type: "A", Value: "127.0.0.5", State: "down"}, hourAgo, nil, ""},
			{overrideRequest{Name: "api.example.org.", Type: "A", Value: "127.0.0.6", State: "down"}, hourAgo, ptr(now.Add(-time.Second)), ""},
			{overrideRequest{Name: "api.example.org.", Type: "A", Value: "127.0.0.7", State: "drain"}, hourAgo, ptr(now.Add(time.Hour)), ""},
		},
	}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e := testEngine()
	m := testInstance(t, e, block)
	www, api := m.sets[0], m.sets[1]
	if got := healthyTexts(www); !slices.Equal(got, []string{"127.0.0.2"}) {
		t.Errorf("www after the start: %v, want [127.0.0.2]: 127.0.0.1 saved unhealthy a minute ago, 127.0.0.2's status 31m old", got)
	}
	if got := healthyTexts(api); !slices.Equal(got, []string{"127.0.0.6"}) {
		t.Errorf("api after the start: %v, want [127.0.0.6]: 127.0.0.5 down, 127.0.0.6's override expired, 127.0.0.7 drained", got)
	}
	if v := www.values[0].verdict(); v.reason != "connection refused" || !v.since.Equal(hourAgo) {
		t.Errorf("restored verdict %+v", v)
	}
	if m.Ready() {
		t.Error("ready with a restored status and no probe")
	}
	if !eventually(4*time.Second, m.Ready) {
		t.Error("not ready after the first probes")
	}
}

func ptr[T any](v T) *T { return &v }

func healthyTexts(s *recordSet) []string {
	var out []string
	for _, rr := range s.healthyRRs() {
		out = append(out, rdataText(rr))
	}
	return out
}

// TestStateFileWrites: the file is written within a second of a change, at
// most once a second however many changes come, and a write that fails is
// retried until it succeeds.
func TestStateFileWrites(t *testing.T) {
	slow(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "later", "state.json") // its directory does not exist yet
	logs := captureLog(t)
	e := testEngine()
	testInstance(t, e, fmt.Sprintf(`multivalue {
    state_file %s
    records www A 127.0.0.1 127.0.0.2 127.0.0.3
}`, path))
	if !eventually(3*time.Second, func() bool { return len(logs.lines("[WARNING]", "state_file "+path+": cannot save")) == 1 }) {
		t.Fatalf("no warning about the missing directory: %q", logs.lines("state_file"))
	}
	os.Mkdir(filepath.Dir(path), 0o700)
	if !eventually(5*time.Second, func() bool { st, err := readState(path); return err == nil && st != nil }) {
		t.Fatal("the write was not retried once the directory exists")
	}
	if l := logs.lines("[INFO]", "state_file "+path+": saved again"); len(l) != 1 {
		t.Errorf("no INFO when the writes succeed again: %q", logs.lines("state_file"))
	}
	if l := logs.lines("[WARNING]", "cannot save"); len(l) != 1 {
		t.Errorf("the failing writes were logged %d times, want once: %q", len(l), l)
	}

	// A change is saved within a second, and changes a hundred times a
	// second are saved once a second.
	time.Sleep(1100 * time.Millisecond)
	set := func(i int) time.Time {
		now := time.Now()
		e.ops.set(&override{key: overrideKey{host: "x"}, state: overrideDown, created: now})
		ov, _ := (&overrideRequest{Name: "www.example.org.", Type: "A", Value: "127.0.0.1", State: overrideStates[i%3], Reason: fmt.Sprint(i)}).override(now)
		e.ops.set(ov)
		return now
	}
	changed := set(0)
	if !eventually(1500*time.Millisecond, func() bool {
		st, _ := readState(path)
		return st != nil && len(st.Overrides) == 1 && st.Overrides[0].Reason == "0"
	}) {
		t.Fatal("a change was not saved within a second")
	}
	if d := time.Since(changed); d > 1200*time.Millisecond {
		t.Errorf("saved %v after the change", d)
	}
	var saves []time.Time
	last := time.Time{}
	deadline := time.Now().Add(3500 * time.Millisecond)
	for i := 1; time.Now().Before(deadline); i++ {
		set(i)
		if st, err := readState(path); err == nil && st != nil && !st.Saved.Equal(last) {
			last = st.Saved
			saves = append(saves, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 1; i < len(saves); i++ {
		if gap := saves[i].Sub(saves[i-1]); gap < 990*time.Millisecond {
			t.Errorf("two writes %v apart: %v", gap, saves)
		}
	}
	if len(saves) < 3 {
		t.Errorf("%d writes in 3.5s of changes, want one a second: %v", len(saves), saves)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files next to the state file, want none (temporary files removed)", len(entries)-1)
	}
}

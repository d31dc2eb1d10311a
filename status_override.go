package multivalue

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Override states: what an operator says about values, whatever their
// checks say.
const (
	overrideUp    = "up"    // healthy (Route 53's disabled health check)
	overrideDown  = "down"  // unhealthy
	overrideDrain = "drain" // never served, not even by all_unhealthy serve
)

var overrideStates = []string{overrideUp, overrideDown, overrideDrain}

// overrideKey is what an override selects: one value, by name, type and
// RDATA, or (host set) every value whose checks target a host.
type overrideKey struct {
	name  string // fully qualified, lower case
	qtype uint16
	rdata string // canonical RDATA (RFC 4034 section 6.2)
	host  string // a target selector's host, spelled as checks spell it
}

// override is one override in force.
type override struct {
	key     overrideKey
	value   string // a value selector's RDATA as zone-file text
	state   string
	reason  string
	created time.Time
	expires time.Time // zero: none
	etcdKey string    // set: stored in etcd under this key (below the prefix), for every replica
}

// live reports whether the override still applies at now.
func (ov *override) live(now time.Time) bool { return ov.expires.IsZero() || now.Before(ov.expires) }

// selector describes what the override selects, for logs.
func (ov *override) selector() string {
	if ov.key.host != "" {
		return "target " + ov.key.host
	}
	return ov.key.name + " " + typeString(ov.key.qtype) + " " + ov.value
}

// describe is the reason a value's verdict gives while the override decides.
func (ov *override) describe() string {
	if ov.reason == "" {
		return "override " + ov.state
	}
	return "override " + ov.state + ": " + ov.reason
}

// apply returns v as the override makes it: up and down decide healthy (the
// status changed when the override was set, if it differs from the checks'),
// drain keeps the checks' status and takes the value out of every answer.
func (ov *override) apply(v verdict) verdict {
	switch ov.state {
	case overrideUp, overrideDown:
		healthy := ov.state == overrideUp
		if v.healthy != healthy {
			v.healthy, v.since = healthy, ov.created
		}
		v.reason = ov.describe()
	case overrideDrain:
		v.drained = true
	}
	return v
}

// overrideStore holds the overrides of an engine, whatever instance or
// server block their values are in, and tells the values concerned when one
// changes. Expiry needs no timer per override: a verdict ignores an override
// past its expiry, and one timer, for the earliest expiry, removes the
// expired ones and tells their values.
type overrideStore struct {
	n atomic.Int64 // len(byKey): a set rebuilt while no override exists takes no lock per value

	mu      sync.Mutex
	byKey   map[overrideKey]*override
	watches map[*overrideWatch]struct{}
	timer   *time.Timer
	timerAt time.Time // when timer fires; zero: not armed

	// expired is told, outside the lock, which overrides the timer removed.
	expired func([]*override)
}

// overrideWatch is a bound value watching the overrides that may select it.
type overrideWatch struct {
	key   overrideKey
	hosts []string
	fn    func()
}

func newOverrideStore() *overrideStore {
	return &overrideStore{byKey: map[overrideKey]*override{}, watches: map[*overrideWatch]struct{}{}}
}

// effective returns the override that decides for a value with key k whose
// checks target hosts, or nil: the value's own override, else the latest set
// of the target overrides of its hosts.
func (st *overrideStore) effective(k overrideKey, hosts []string, now time.Time) *override {
	if st.n.Load() == 0 {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if ov := st.byKey[k]; ov != nil && ov.live(now) {
		return ov
	}
	var best *override
	for _, h := range hosts {
		if ov := st.byKey[overrideKey{host: h}]; ov != nil && ov.live(now) && (best == nil || ov.created.After(best.created)) {
			best = ov
		}
	}
	return best
}

// put sets ov, replacing and returning the override with the same selector.
// The caller then notifies the values (after logging the change: the values'
// own transitions follow it in the log).
func (st *overrideStore) put(ov *override) (prev *override) {
	st.mu.Lock()
	defer st.mu.Unlock()
	prev = st.byKey[ov.key]
	st.byKey[ov.key] = ov
	st.arm()
	return prev
}

// add sets ov unless an override with its selector is in force; it reports
// whether it did. The caller notifies.
func (st *overrideStore) add(ov *override) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.byKey[ov.key] != nil {
		return false
	}
	st.byKey[ov.key] = ov
	st.arm()
	return true
}

// remove deletes the override with key k and returns it, or nil. The caller
// notifies.
func (st *overrideStore) remove(k overrideKey) *override {
	st.mu.Lock()
	defer st.mu.Unlock()
	ov := st.byKey[k]
	if ov != nil {
		delete(st.byKey, k)
		st.arm()
	}
	return ov
}

// list returns the overrides in force at now, oldest first.
func (st *overrideStore) list(now time.Time) []*override {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*override, 0, len(st.byKey))
	for _, ov := range st.byKey {
		if ov.live(now) {
			out = append(out, ov)
		}
	}
	slices.SortFunc(out, func(a, b *override) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.selector(), b.selector())
	})
	return out
}

// arm sets the timer for the earliest expiry, after every change of byKey.
// Under mu.
func (st *overrideStore) arm() {
	st.n.Store(int64(len(st.byKey)))
	var next time.Time
	for _, ov := range st.byKey {
		if !ov.expires.IsZero() && (next.IsZero() || ov.expires.Before(next)) {
			next = ov.expires
		}
	}
	if next.Equal(st.timerAt) {
		return
	}
	st.timerAt = next
	if next.IsZero() {
		if st.timer != nil {
			st.timer.Stop()
		}
		return
	}
	d := time.Until(next)
	if st.timer == nil {
		st.timer = time.AfterFunc(d, st.expire)
		return
	}
	st.timer.Reset(d)
}

// expire removes the overrides past their expiry and tells their values.
func (st *overrideStore) expire() {
	now := time.Now()
	st.mu.Lock()
	var gone []*override
	for k, ov := range st.byKey {
		if !ov.live(now) {
			gone = append(gone, ov)
			delete(st.byKey, k)
		}
	}
	st.timerAt = time.Time{}
	st.arm()
	st.mu.Unlock()
	if len(gone) > 0 && st.expired != nil {
		st.expired(gone)
	}
}

// watch calls fn whenever an override that may select the value (key k,
// checks targeting hosts) is set, removed or expires.
func (st *overrideStore) watch(k overrideKey, hosts []string, fn func()) (unwatch func()) {
	w := &overrideWatch{key: k, hosts: hosts, fn: fn}
	st.mu.Lock()
	st.watches[w] = struct{}{}
	st.mu.Unlock()
	return func() {
		st.mu.Lock()
		delete(st.watches, w)
		st.mu.Unlock()
	}
}

// notify calls, outside the lock, the watchers of the values k selects.
func (st *overrideStore) notify(k overrideKey) {
	st.mu.Lock()
	var fns []func()
	for w := range st.watches {
		if k.host == "" && w.key == k || k.host != "" && slices.Contains(w.hosts, k.host) {
			fns = append(fns, w.fn)
		}
	}
	st.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// overridden is the source of a bound value: its checks' verdict (inner),
// unless an override decides.
type overridden struct {
	inner source
	store *overrideStore
	key   overrideKey
	hosts []string
}

// verdict implements source.
func (o *overridden) verdict() verdict {
	v := o.inner.verdict()
	if ov := o.store.effective(o.key, o.hosts, time.Now()); ov != nil {
		v = ov.apply(v)
	}
	return v
}

// watch implements source: fn runs when the checks' verdict changes or an
// override selecting the value does.
func (o *overridden) watch(fn func()) (unwatch func()) {
	a := o.inner.watch(fn)
	b := o.store.watch(o.key, o.hosts, fn)
	return func() { a(); b() }
}

// valueKey is the key of a value's own override.
func valueKey(s *recordSet, v *value) overrideKey {
	return overrideKey{name: s.name, qtype: s.qtype, rdata: string(canonicalRdata(v.rr))}
}

// valueHosts are the hosts v's checks target: what a target override
// selects it by.
func valueHosts(v *value) []string {
	var hosts []string
	var add func(specs []*checkSpec)
	add = func(specs []*checkSpec) {
		for _, sp := range specs {
			if sp.host != "" && !slices.Contains(hosts, sp.host) {
				hosts = append(hosts, sp.host)
			}
			add(sp.kids) // a calculated check's children
		}
	}
	add(v.specs)
	return hosts
}

// valueChecks are the running checks v holds. Under the set's mu.
func valueChecks(v *value) []*check { return v.checks }

// overrideRequest is the JSON body of POST and DELETE /v1/overrides, and an
// override in the state file: a selector (name, type and value, or target)
// and what to do.
type overrideRequest struct {
	Name   string `json:"name,omitempty"`
	Type   string `json:"type,omitempty"`
	Value  string `json:"value,omitempty"`
	Target string `json:"target,omitempty"`
	State  string `json:"state,omitempty"`
	TTL    string `json:"ttl,omitempty"`
	Reason string `json:"reason,omitempty"`
}

const (
	maxOverrideReason = 1024
	maxOverrideTTL    = 366 * 24 * time.Hour
)

// selector reads the request's selector: the key and, for a value, its RDATA
// as zone-file text.
func (r *overrideRequest) selector() (overrideKey, string, error) {
	for _, f := range []struct{ name, v string }{{"name", r.Name}, {"type", r.Type}, {"value", r.Value}, {"target", r.Target}} {
		if strings.ContainsFunc(f.v, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			return overrideKey{}, "", fmt.Errorf("%s holds a control character", f.name)
		}
		if len(f.v) > 1024 {
			return overrideKey{}, "", fmt.Errorf("%s is longer than 1024 bytes", f.name)
		}
	}
	byValue := r.Name != "" || r.Type != "" || r.Value != ""
	switch {
	case r.Target != "" && byValue:
		return overrideKey{}, "", fmt.Errorf("give either target, or name, type and value: not both")
	case r.Target != "":
		host, err := targetHost(r.Target)
		return overrideKey{host: host}, "", err
	case r.Name == "" || r.Type == "" || r.Value == "":
		return overrideKey{}, "", fmt.Errorf("give name, type and value, or target")
	}
	name, ok := canonicalName(r.Name)
	if !ok || hasZoneFileSyntax(r.Name) {
		return overrideKey{}, "", fmt.Errorf("name %q is not a domain name", r.Name)
	}
	qtype, err := parseType(r.Type)
	if err != nil {
		return overrideKey{}, "", err
	}
	rr, err := dns.NewRR(name + " 0 IN " + typeString(qtype) + " " + r.Value)
	if err != nil || rr == nil || rr.Header().Rrtype != qtype {
		return overrideKey{}, "", fmt.Errorf("value %q is not a %s value", r.Value, typeString(qtype))
	}
	return overrideKey{name: name, qtype: qtype, rdata: string(canonicalRdata(rr))}, rdataText(rr), nil
}

// targetHost reads a target selector's host and spells it as checks do: an
// IP address in its canonical form, a name in lower case without the final
// dot. A port is refused: the selector is a host.
func targetHost(s string) (string, error) {
	h := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ".")
	if ip := net.ParseIP(h); ip != nil {
		return ip.String(), nil
	}
	if validHostName(h) {
		return strings.ToLower(h), nil
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return "", fmt.Errorf("target %q: give the host without a port", s)
	}
	return "", fmt.Errorf("target %q is neither an IP address nor a host name", s)
}

// override reads the whole request into an override created at now.
func (r *overrideRequest) override(now time.Time) (*override, error) {
	key, value, err := r.selector()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(overrideStates, r.State) {
		return nil, fmt.Errorf("state %q: want up, down or drain", r.State)
	}
	if len(r.Reason) > maxOverrideReason {
		return nil, fmt.Errorf("reason is longer than %d bytes", maxOverrideReason)
	}
	if strings.ContainsFunc(r.Reason, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return nil, fmt.Errorf("reason holds a control character")
	}
	ov := &override{key: key, value: value, state: r.State, reason: r.Reason, created: now}
	if r.TTL != "" {
		d, err := time.ParseDuration(r.TTL)
		if err != nil || d <= 0 || d > maxOverrideTTL {
			return nil, fmt.Errorf("ttl %q: want a duration above 0 and at most %s, like 30m or 4h", r.TTL, maxOverrideTTL)
		}
		ov.expires = now.Add(d)
	}
	return ov, nil
}

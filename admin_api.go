package multivalue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// adminAPI is the admin API's routes over an engine's operations, apart from
// the listener and authentication (admin.go), so that tests and the fuzzer
// can call it directly.
//
//	GET    /v1/status[?name=N[&type=T]]   every set, or one
//	GET    /v1/overrides                  the overrides in force
//	POST   /v1/overrides                  set one
//	DELETE /v1/overrides                  remove one, by its selector
type adminAPI struct{ ops *operations }

func (api adminAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/status":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		api.status(w, r)
	case "/v1/overrides":
		switch r.Method {
		case http.MethodGet:
			api.listOverrides(w, r)
		case http.MethodPost:
			api.setOverride(w, r)
		case http.MethodDelete:
			api.deleteOverride(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost, http.MethodDelete)
		}
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %q: see /v1/status and /v1/overrides", r.URL.Path))
	}
}

// statusReply is GET /v1/status.
type statusReply struct {
	Sets []setStatus `json:"sets"`
}

type setStatus struct {
	Zone   string        `json:"zone"`
	Name   string        `json:"name"`
	Type   string        `json:"type"`
	Values []valueStatus `json:"values"`
}

type valueStatus struct {
	Value    string         `json:"value"`
	Status   string         `json:"status"` // what the checks say
	Served   bool           `json:"served"` // whether an answer can hold it now
	Since    *time.Time     `json:"since"`  // last transition; null before the first
	Reason   string         `json:"reason"` // of the last result
	Weight   int            `json:"weight"`
	Tier     int            `json:"tier"`
	Override *overrideReply `json:"override"`
	Checks   []checkStatus  `json:"checks"`
}

type checkStatus struct {
	Protocol   string       `json:"protocol"`
	Target     string       `json:"target"`
	Status     string       `json:"status"`
	LastResult *string      `json:"last_result"` // success or failure; null before the first probe
	LastReason *string      `json:"last_reason"`
	LastProbe  *time.Time   `json:"last_probe"`
	Votes      []voteStatus `json:"votes,omitempty"` // in a cluster: every live replica's verdict of this check
}

// voteStatus is one replica's verdict of a check, in a cluster.
type voteStatus struct {
	Replica string     `json:"replica"`
	Status  string     `json:"status"`
	Since   *time.Time `json:"since"`
}

// overrideReply is an override as the API shows it: its selector, state,
// reason, when it was set and when it expires (null: never).
type overrideReply struct {
	Name    string     `json:"name,omitempty"`
	Type    string     `json:"type,omitempty"`
	Value   string     `json:"value,omitempty"`
	Target  string     `json:"target,omitempty"`
	State   string     `json:"state"`
	Reason  string     `json:"reason"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires"`
}

// overrideListed is an override in GET /v1/overrides, with the values it
// selects now.
type overrideListed struct {
	overrideReply
	Values []valueRef `json:"values"`
}

// valuesReply is the reply of POST and DELETE /v1/overrides: the values the
// override applies, or applied, to.
type valuesReply struct {
	Values []valueRef `json:"values"`
}

func (api adminAPI) status(w http.ResponseWriter, r *http.Request) {
	q, err := parseStatusQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	reply := statusReply{Sets: api.ops.status(q)}
	if q.name != "" && len(reply.Sets) == 0 {
		what := q.name
		if q.qtype != 0 {
			what += " " + typeString(q.qtype)
		}
		writeError(w, http.StatusNotFound, "no record set "+what)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// statusQuery narrows GET /v1/status: to one name, or one name and type.
type statusQuery struct {
	name  string // "" for all
	qtype uint16 // 0 for all types of name
}

func parseStatusQuery(r *http.Request) (statusQuery, error) {
	var q statusQuery
	vals, err := urlQuery(r)
	if err != nil {
		return q, err
	}
	for k, v := range vals {
		if k != "name" && k != "type" {
			return q, fmt.Errorf("unknown parameter %q: want name and type", k)
		}
		if len(v) != 1 {
			return q, fmt.Errorf("parameter %s given %d times", k, len(v))
		}
	}
	name, hasName := vals["name"]
	typ, hasType := vals["type"]
	if hasType && !hasName {
		return q, errors.New("type needs a name")
	}
	if hasName {
		n, ok := canonicalName(name[0])
		if name[0] == "" || !ok || hasZoneFileSyntax(name[0]) {
			return q, fmt.Errorf("name %q is not a domain name", name[0])
		}
		q.name = n
	}
	if hasType {
		t, err := parseType(typ[0])
		if err != nil {
			return q, err
		}
		q.qtype = t
	}
	return q, nil
}

// urlQuery parses the query string, refusing what does not parse (the
// standard library would skip it).
func urlQuery(r *http.Request) (map[string][]string, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("bad query string: %v", err)
	}
	return vals, nil
}

// status returns the sets of the running instances that q selects, each
// once: when a reload overlaps two instances, or two server blocks hold the
// same set, the newest instance's values come first and another's values
// that it lacks are added.
func (o *operations) status(q statusQuery) []setStatus {
	now := time.Now()
	var sets []setStatus
	index := map[[2]any]int{}
	seen := map[valueLabel]bool{}
	for _, m := range o.newestFirst() {
		for _, s := range m.sets {
			if q.name != "" && (s.name != q.name || q.qtype != 0 && s.qtype != q.qtype) {
				continue
			}
			k := [2]any{s.name, s.qtype}
			i, ok := index[k]
			if !ok {
				i = len(sets)
				index[k] = i
				sets = append(sets, setStatus{Zone: s.zone, Name: s.name, Type: s.typeName, Values: []valueStatus{}})
			}
			snap := s.snapshot()
			for _, v := range s.values {
				if l := s.label(v); !seen[l] {
					seen[l] = true
					vs := o.valueStatus(s, v, snap, now)
					o.addVotes(m, s, v, &vs)
					sets[i].Values = append(sets[i].Values, vs)
				}
			}
		}
	}
	if sets == nil {
		sets = []setStatus{}
	}
	return sets
}

// valueStatus describes one value: its checks' verdict, whether it can be
// served, the override that decides for it, and each check.
func (o *operations) valueStatus(s *recordSet, v *value, snap *snapshot, now time.Time) valueStatus {
	s.mu.Lock()
	src, checks := v.src, valueChecks(v)
	s.mu.Unlock()
	inner := src
	var ov *override
	if w, ok := src.(*overridden); ok {
		inner = w.inner
		ov = o.overrides.effective(w.key, w.hosts, now)
	}
	if inner == nil {
		inner = alwaysHealthy{}
	}
	vd := inner.verdict()
	vs := valueStatus{
		Value:  v.text,
		Status: statusName(vd.healthy),
		Served: serves(snap, s.fallback, v),
		Reason: vd.reason,
		Weight: v.weight,
		Tier:   v.tier,
		Checks: []checkStatus{},
	}
	if !vd.since.IsZero() {
		t := vd.since.UTC()
		vs.Since = &t
	}
	switch {
	case vs.Reason != "":
	case len(v.specs) == 0:
		vs.Reason = "no health check"
	case !vd.known:
		vs.Reason = "no result yet: counts as healthy"
	}
	if ov != nil {
		r := ov.reply()
		vs.Override = &r
	}
	for _, c := range checks {
		vs.Checks = append(vs.Checks, c.report())
	}
	return vs
}

// serves reports whether an answer from snap can hold v: it is a candidate,
// or there is none and all_unhealthy serve picks from all.
func serves(snap *snapshot, fb fallback, v *value) bool {
	if snap == nil || snap.drained {
		return false
	}
	from := snap.cands
	if len(from) == 0 {
		if fb != fallbackServe {
			return false
		}
		from = snap.fallback
	}
	return slices.ContainsFunc(from, func(c candidate) bool { return c.rr == v.rr })
}

// report is the check as the status API shows it.
// addVotes fills, for an instance in a cluster, each check's votes: every
// live replica's verdict, this one's included.
func (o *operations) addVotes(m *Multivalue, set *recordSet, v *value, vs *valueStatus) {
	if m.cluster == nil {
		return
	}
	set.mu.Lock()
	checks := valueChecks(v)
	set.mu.Unlock()
	s := m.engine
	for i, c := range checks {
		if i >= len(vs.Checks) {
			return
		}
		vt := s.cluster.lookupVote(m.cluster, c)
		if vt == nil {
			continue
		}
		votes := []voteStatus{}
		for _, p := range vt.votes() {
			st := voteStatus{Replica: p.replica, Status: statusName(p.healthy)}
			if !p.since.IsZero() {
				t := p.since.UTC()
				st.Since = &t
			}
			votes = append(votes, st)
		}
		vs.Checks[i].Votes = votes
	}
}

func (c *check) report() checkStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := checkStatus{Protocol: c.spec.protocol, Target: c.target, Status: statusName(c.status.healthy)}
	if !c.lastProbe.IsZero() {
		result, reason, at := resultName(c.lastOK), c.reason, c.lastProbe.UTC()
		cs.LastResult, cs.LastReason, cs.LastProbe = &result, &reason, &at
	}
	return cs
}

func (ov *override) reply() overrideReply {
	r := ov.request()
	or := overrideReply{Name: r.Name, Type: r.Type, Value: r.Value, Target: r.Target, State: ov.state, Reason: ov.reason, Created: ov.created.UTC()}
	if !ov.expires.IsZero() {
		e := ov.expires.UTC()
		or.Expires = &e
	}
	return or
}

func (api adminAPI) listOverrides(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		writeError(w, http.StatusBadRequest, "GET /v1/overrides takes no parameters")
		return
	}
	list := []overrideListed{}
	for _, ov := range api.ops.overrides.list(time.Now()) {
		list = append(list, overrideListed{ov.reply(), api.ops.matching(ov.key)})
	}
	writeJSON(w, http.StatusOK, map[string][]overrideListed{"overrides": list})
}

func (api adminAPI) setOverride(w http.ResponseWriter, r *http.Request) {
	var req overrideRequest
	if code, err := decodeJSON(r, &req); err != nil {
		writeError(w, code, err.Error())
		return
	}
	ov, err := req.override(time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	vals := api.ops.setShared(ov)
	if len(vals) == 0 {
		writeError(w, http.StatusNotFound, "no value matches "+ov.selector())
		return
	}
	writeJSON(w, http.StatusOK, valuesReply{vals})
}

func (api adminAPI) deleteOverride(w http.ResponseWriter, r *http.Request) {
	var req overrideRequest
	if code, err := decodeJSON(r, &req); err != nil {
		writeError(w, code, err.Error())
		return
	}
	key, _, err := req.selector()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ov, vals := api.ops.removeShared(key)
	if ov == nil {
		writeError(w, http.StatusNotFound, "no override for this selector")
		return
	}
	writeJSON(w, http.StatusOK, valuesReply{vals})
}

// decodeJSON reads a body holding one JSON object and nothing else, whose
// fields are all known. The status code goes with the error: 413 for a body
// over the limit, 400 for the rest.
func decodeJSON(r *http.Request, dst any) (int, error) {
	if r.ContentLength > maxAdminBody {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d KiB", maxAdminBody>>10)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		// Nothing may follow the object.
		if _, err = dec.Token(); err == io.EOF {
			return 0, nil
		} else if err == nil {
			err = errors.New("data after the JSON object")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d KiB", maxAdminBody>>10)
	case err == io.EOF:
		return http.StatusBadRequest, errors.New("empty body: want a JSON object")
	}
	return http.StatusBadRequest, fmt.Errorf("bad JSON body: %v", strings.TrimPrefix(err.Error(), "json: "))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func methodNotAllowed(w http.ResponseWriter, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method not allowed: use "+strings.Join(allowed, " or "))
}

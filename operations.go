package multivalue

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// operations is what an engine keeps for operators: the overrides, the
// running instances (whose sets the admin API shows and overrides select),
// the open state files and the statuses read from them.
type operations struct {
	e         *engine
	overrides *overrideStore
	share     shareState // overrides shared through the cluster (override_share.go)

	mu        sync.Mutex
	instances []*Multivalue           // running, in the order they started
	files     map[string]*stateFile   // open, by path
	saved     map[string]restoredSave // statuses read from a state file, by check id, until a check takes its own
}

// restoredSave is a check's saved status and how old it may be when used.
type restoredSave struct {
	savedCheck
	maxAge time.Duration
}

// operatorHeld is what an instance's start took: released by its stop.
type operatorHeld struct {
	admin *adminServer
	state *stateFile
}

func newOperations(e *engine) *operations {
	o := &operations{e: e, overrides: newOverrideStore(), files: map[string]*stateFile{}, saved: map[string]restoredSave{}}
	o.overrides.expired = func(gone []*override) {
		for _, ov := range gone {
			o.logChange("expired on", ov)
			o.overrides.notify(ov.key)
		}
		o.afterChange()
	}
	return o
}

// start opens the instance's state file (reading it if no running instance
// has it open) and its admin listener. On error it holds nothing.
func (o *operations) start(m *Multivalue) error {
	if sc := m.op.state; sc != nil {
		m.held.state = o.openState(sc)
	}
	if ac := m.op.admin; ac != nil {
		a, err := acquireAdmin(ac, m)
		if err != nil {
			if m.held.state != nil {
				o.closeState(m.held.state)
				m.held.state = nil
			}
			return fmt.Errorf("admin %s: %w", ac.addr, err)
		}
		m.held.admin = a
	}
	return nil
}

// running registers a started instance: its sets are served by the admin
// API and selected by overrides from now on.
func (o *operations) running(m *Multivalue) {
	o.mu.Lock()
	o.instances = append(o.instances, m)
	if m.member != nil {
		if o.share.members == nil {
			o.share.members = map[*Multivalue]*member{}
		}
		o.share.members[m] = m.member
	}
	o.mu.Unlock()
	o.recount()
	if m.member != nil {
		o.watchMember(m.member)
	}
}

// stop forgets the instance and lets go of what its start took; the last
// instance with the state file open saves it. The instance's checks still
// run: the caller releases them after.
func (o *operations) stop(m *Multivalue) {
	o.mu.Lock()
	for i, r := range o.instances {
		if r == m {
			o.instances = append(o.instances[:i], o.instances[i+1:]...)
			break
		}
	}
	delete(o.share.members, m)
	o.mu.Unlock()
	o.recount()
	if m.member != nil {
		o.unwatchMember(m.member)
	}
	if m.held.admin != nil {
		m.held.admin.release(m)
		m.held.admin = nil
	}
	if m.held.state != nil {
		o.closeState(m.held.state)
		m.held.state = nil
	}
}

// wrap returns the source of a bound value: src, unless an override decides.
func (o *operations) wrap(s *recordSet, v *value, src source) source {
	return &overridden{inner: src, store: o.overrides, key: valueKey(s, v), hosts: valueHosts(v)}
}

// running instances, newest first: when a reload overlaps two instances, the
// new one's sets are the ones shown.
func (o *operations) newestFirst() []*Multivalue {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]*Multivalue, len(o.instances))
	for i, m := range o.instances {
		out[len(out)-1-i] = m
	}
	return out
}

// valueRef names a value in the admin API.
type valueRef struct {
	Zone  string `json:"zone"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// each calls fn for every value of every running instance, once per name,
// type and value however many instances and server blocks hold it.
func (o *operations) each(fn func(s *recordSet, v *value)) {
	seen := map[valueLabel]bool{}
	for _, m := range o.newestFirst() {
		for _, s := range m.sets {
			for _, v := range s.values {
				l := s.label(v)
				if !seen[l] {
					seen[l] = true
					fn(s, v)
				}
			}
		}
	}
}

// matching returns the running values that k selects.
func (o *operations) matching(k overrideKey) []valueRef {
	out := []valueRef{}
	o.each(func(s *recordSet, v *value) {
		if k.host != "" {
			for _, h := range valueHosts(v) {
				if h == k.host {
					out = append(out, valueRef{s.zone, s.name, s.typeName, v.text})
					return
				}
			}
			return
		}
		if s.name == k.name && s.qtype == k.qtype && string(canonicalRdata(v.rr)) == k.rdata {
			out = append(out, valueRef{s.zone, s.name, s.typeName, v.text})
		}
	})
	return out
}

// set puts ov in force, if it selects a running value, and returns the values
// it selects.
func (o *operations) set(ov *override) []valueRef {
	vals := o.matching(ov.key)
	if len(vals) == 0 {
		return vals
	}
	verb := "set on"
	if prev := o.overrides.put(ov); prev != nil && prev.live(time.Now()) {
		verb = "replaced (was " + prev.state + ") on"
	}
	o.logChangeValues(verb, ov, vals)
	o.overrides.notify(ov.key)
	o.afterChange()
	return vals
}

// remove takes the override with key k out of force and returns it and the
// values it selected, or nil.
func (o *operations) remove(k overrideKey) (*override, []valueRef) {
	ov := o.overrides.remove(k)
	if ov == nil {
		return nil, nil
	}
	if !ov.live(time.Now()) {
		// Expired, and the timer is about to say so: say it here.
		o.logChange("expired on", ov)
		o.overrides.notify(k)
		o.afterChange()
		return nil, nil
	}
	vals := o.matching(k)
	o.logChangeValues("removed from", ov, vals)
	o.overrides.notify(k)
	o.afterChange()
	return ov, vals
}

// logChange logs a change of ov at INFO, naming the values it selects.
func (o *operations) logChange(verb string, ov *override) {
	o.logChangeValues(verb, ov, o.matching(ov.key))
}

func (o *operations) logChangeValues(verb string, ov *override, vals []valueRef) {
	var b strings.Builder
	fmt.Fprintf(&b, "override %s %s", ov.state, verb)
	const most = 20
	for i, v := range vals {
		if i == most {
			fmt.Fprintf(&b, " and %d more", len(vals)-most)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %s %s", v.Name, v.Type, v.Value)
	}
	if len(vals) == 0 {
		b.WriteString(" no running value")
	}
	if ov.key.host != "" {
		fmt.Fprintf(&b, " (target %s)", ov.key.host)
	}
	if !ov.expires.IsZero() && verb != "expired on" && !strings.HasPrefix(verb, "removed ") {
		fmt.Fprintf(&b, ", until %s", ov.expires.UTC().Format(time.RFC3339))
	}
	if ov.reason != "" {
		fmt.Fprintf(&b, ": %s", ov.reason)
	}
	log.Info(b.String())
}

// afterChange runs after every change of the overrides: the gauge, and the
// state file.
func (o *operations) afterChange() {
	o.recount()
	o.changed()
}

// recount sets coredns_multivalue_overrides: how many running values each
// kind of override holds.
func (o *operations) recount() {
	counts := map[string]int{}
	now := time.Now()
	o.each(func(s *recordSet, v *value) {
		if ov := o.overrides.effective(valueKey(s, v), valueHosts(v), now); ov != nil {
			counts[ov.state]++
		}
	})
	for _, st := range overrideStates {
		o.e.metrics.overrides.WithLabelValues(st).Set(float64(counts[st]))
	}
}

// changed tells the open state files that something they save changed.
func (o *operations) changed() {
	o.mu.Lock()
	files := make([]*stateFile, 0, len(o.files))
	for _, f := range o.files {
		files = append(files, f)
	}
	o.mu.Unlock()
	for _, f := range files {
		f.poke()
	}
}

// restore starts a new check from the status a state file saved for it, if
// it is recent enough. The saved status is used once.
func (o *operations) restore(c *check) {
	o.mu.Lock()
	if len(o.saved) == 0 {
		o.mu.Unlock()
		return
	}
	id := checkID(c.spec)
	sv, ok := o.saved[id]
	delete(o.saved, id)
	o.mu.Unlock()
	if !ok || time.Since(sv.Checked) >= sv.maxAge {
		return
	}
	c.restoreSaved(sv.savedCheck)
}

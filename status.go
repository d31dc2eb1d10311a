package multivalue

import (
	"sync"
	"time"
)

// verdict is what a source says about a value's health.
type verdict struct {
	healthy bool
	known   bool      // a first result has come; before it a value counts as healthy
	since   time.Time // the last change of healthy; zero before the first
	reason  string    // why, for logs and the status API: "status 503 (http check web of 127.0.0.1:80)"
	drained bool      // an override drains the value: never served, whatever healthy says (status_override.go)
}

// source is where a value's health comes from. Sources are read only when a
// record set's snapshot is rebuilt, never per query, and tell their watchers
// when their verdict changes, after it has changed.
//
// The sources are the probing check (check.go), alwaysHealthy, and those
// that combine others (status_combined.go): all of a value's checks
// (status_allof.go) and a calculated check's k of n children
// (status_calculated.go). A value's effective verdict is its source's.
// Sources that replace others (an override, a saved status, a cluster vote)
// implement the same two methods.
type source interface {
	verdict() verdict
	watch(fn func()) (unwatch func())
}

// alwaysHealthy is the source of a value without a health check, and of a
// checked value before its check runs (a value counts as healthy until its
// check has a first result).
type alwaysHealthy struct{}

func (alwaysHealthy) verdict() verdict              { return verdict{healthy: true} }
func (alwaysHealthy) watch(func()) (unwatch func()) { return func() {} }

// watchers is the list of functions a source calls when its verdict changes.
type watchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

func (w *watchers) add(fn func()) (remove func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]func(){}
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		delete(w.fns, id)
		w.mu.Unlock()
	}
}

// notify calls every watcher, outside the lock: a watcher may read the source
// and rebuild sets, and may remove itself.
func (w *watchers) notify() {
	w.mu.Lock()
	fns := make([]func(), 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	w.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func statusName(healthy bool) string {
	if healthy {
		return "healthy"
	}
	return "unhealthy"
}

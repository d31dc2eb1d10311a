package multivalue

import "sync"

// lifecycle is whether an instance has started and stopped.
type lifecycle struct {
	mu      sync.Mutex
	started bool
	stopped bool
}

// reloading tracks the instances a reload in progress has started. Caddy
// runs the new instance's OnStartup before it opens the new listeners, and
// when that fails (an address in use) or a later OnStartup does, it discards
// the new instance without running its OnShutdown: what it acquired would
// probe for ever. restartFailed, run from the old instance's OnRestartFailed,
// stops them; the old instance's OnShutdown, which runs only when the reload
// succeeded, forgets them.
var reloading struct {
	sync.Mutex
	active  bool
	started []*Multivalue
}

// restarting runs in the running instance's OnRestart, before the new
// instance is set up: what starts from now on belongs to the new one.
func (m *Multivalue) restarting() error {
	reloading.Lock()
	defer reloading.Unlock()
	reloading.active, reloading.started = true, nil
	return nil
}

// restartFailed runs in the running instance's OnRestartFailed: the new
// instance is discarded, so stop what it started. The running instance,
// started before the reload, is not among them and keeps its checks.
func (m *Multivalue) restartFailed() error {
	reloading.Lock()
	started := reloading.started
	reloading.active, reloading.started = false, nil
	reloading.Unlock()
	for _, n := range started {
		n.stop()
	}
	return nil
}

// start acquires the instance's checks (starting those that are new) and binds
// its values to them. Runs in OnStartup, before the servers accept queries.
func (m *Multivalue) start() error {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	if m.life.started {
		return nil
	}
	m.life.started = true
	reloading.Lock()
	if reloading.active {
		reloading.started = append(reloading.started, m)
	}
	reloading.Unlock()
	e := m.engine
	// The state file first, so that new checks start from their saved
	// statuses; then the admin listener.
	if err := e.ops.start(m); err != nil {
		return err
	}
	if m.cluster != nil {
		m.member = e.cluster.acquire(m.cluster, e.metrics)
	}
	for _, s := range m.sets {
		for _, v := range s.values {
			// Each check's verdict is the cluster's when there is one;
			// overrides decide over them all.
			src, checks := e.acquireSource(v.specs, m.clusterSource)
			src = e.ops.wrap(s, v, src)
			st := e.metrics.acquireValue(s.label(v), src.verdict())
			s.bind(v, src, checks, st)
		}
		s.refresh()
	}
	e.ops.running(m)
	return nil
}

// stop releases the instance's checks; those no other instance uses stop, and
// with the last one the scheduler ends. Runs in OnShutdown, which on a reload
// comes after the new instance's start.
func (m *Multivalue) stop() error {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	if !m.life.started || m.life.stopped {
		return nil
	}
	m.life.stopped = true
	// Shutting down after a reload means the reload succeeded: what it
	// started is the running instance now. (A shutdown by restartFailed
	// finds reloading already cleared.)
	reloading.Lock()
	reloading.active, reloading.started = false, nil
	reloading.Unlock()
	e := m.engine
	// Before the checks go: the last instance to use the state file saves
	// their statuses.
	e.ops.stop(m)
	for _, s := range m.sets {
		for _, v := range s.values {
			checks, st := s.unbind(v)
			for _, c := range checks {
				e.release(c)
			}
			if st != nil {
				e.metrics.releaseValue(st)
			}
		}
	}
	m.releaseCluster()
	return nil
}

// Ready implements ready.Readiness: ready once every running check, of every
// server block, has a first result. The ready plugin keeps one Readiness per
// plugin name, so with multivalue in several server blocks it asks only one
// of them: each must answer for all.
func (m *Multivalue) Ready() bool {
	m.life.mu.Lock()
	running := m.life.started && !m.life.stopped
	m.life.mu.Unlock()
	if !running {
		return false
	}
	return m.engine.table.allHaveResults()
}

package multivalue

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The state file keeps what a restart would otherwise forget: the statuses of
// the checks, so that a value known to be down is not served for the first
// seconds after a restart, and the overrides. It is written atomically (a
// temporary file in the same directory, synced, renamed over it, and the
// directory synced) at most once a second, within a second of a change, every
// few minutes so that its statuses stay recent, and when the last instance
// using it stops. Nothing about it can stop CoreDNS: an unreadable file is
// logged and ignored, a failed write is logged and retried.

const (
	stateVersion    = 1
	maxStateFile    = 64 << 20
	stateMinGap     = time.Second      // between two writes
	stateMaxRefresh = 5 * time.Minute  // between two writes when nothing changes
	stateMaxBackoff = 30 * time.Second // between two attempts when writes fail
)

// stateJSON is the file's content.
type stateJSON struct {
	Version   int             `json:"version"`
	Saved     time.Time       `json:"saved"`
	Checks    []savedCheck    `json:"checks"`
	Overrides []savedOverride `json:"overrides"`
}

// savedCheck is the status of one check. ID says what the check probes
// (everything but its timing and thresholds, as a reload compares them), so
// that a check whose interval changed over a restart still finds its status.
type savedCheck struct {
	ID         string    `json:"id"`
	Protocol   string    `json:"protocol"`
	Target     string    `json:"target"`
	Status     string    `json:"status"`         // healthy or unhealthy
	Since      time.Time `json:"since,omitzero"` // zero: no transition yet
	Checked    time.Time `json:"checked"`
	LastResult string    `json:"last_result"` // success or failure
	Reason     string    `json:"reason"`
}

// savedOverride is an override in force.
type savedOverride struct {
	overrideRequest
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires"`
	EtcdKey string     `json:"etcd_key,omitempty"` // set: from etcd, removed when etcd no longer holds it
}

// checkID identifies what a check probes, across restarts.
func checkID(s *checkSpec) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%#v", probeKey(s.key())))
	return hex.EncodeToString(sum[:16])
}

// stateFile is an open state file. Its writes are serialised by writeMu;
// mu guards the schedule.
type stateFile struct {
	path   string
	maxAge atomic.Int64 // time.Duration: the latest config's MAX_AGE
	ops    *operations
	refs   int // instances holding it open; under ops.mu

	mu        sync.Mutex
	timer     *time.Timer
	due       time.Time // when timer fires; zero: not armed
	lastWrite time.Time
	failing   bool          // the last write failed
	backoff   time.Duration // before the next attempt after a failure
	closed    bool
	inflight  sync.WaitGroup // writes started by the timer

	writeMu sync.Mutex
	kept    map[string]savedCheck // saved statuses of checks not running now, still recent; under writeMu
}

// openState opens the state file of sc, reading it if no running instance
// has it open already.
func (o *operations) openState(sc *stateConfig) *stateFile {
	o.mu.Lock()
	if f := o.files[sc.path]; f != nil {
		// A reload that keeps the file: it is not read again (what runs
		// knows better), but a new MAX_AGE applies.
		f.refs++
		f.maxAge.Store(int64(sc.maxAge))
		o.mu.Unlock()
		return f
	}
	f := &stateFile{path: sc.path, ops: o, refs: 1, kept: map[string]savedCheck{}}
	f.maxAge.Store(int64(sc.maxAge))
	o.files[sc.path] = f
	o.mu.Unlock()

	st, err := readState(sc.path)
	switch {
	case err != nil:
		log.Warningf("state_file %s: %v: ignored, starting without saved statuses and overrides", sc.path, err)
	case st == nil:
		log.Infof("state_file %s does not exist yet: starting without saved statuses and overrides", sc.path)
	default:
		o.load(f, st)
	}
	f.poke() // a first write soon: it tells at once whether the file can be written
	return f
}

// closeState lets go of f; the last user saves it.
func (o *operations) closeState(f *stateFile) {
	o.mu.Lock()
	if f.refs--; f.refs > 0 {
		o.mu.Unlock()
		return
	}
	delete(o.files, f.path)
	if len(o.files) == 0 {
		// No instance reads a state file any more: the statuses it gave
		// are for the checks of a start that is over.
		clear(o.saved)
	}
	o.mu.Unlock()
	f.close()
}

// load takes the statuses and overrides of a state file.
func (o *operations) load(f *stateFile, st *stateJSON) {
	now, maxAge := time.Now(), f.age()
	statuses := 0
	o.mu.Lock()
	for _, c := range st.Checks {
		if c.ID == "" || (c.Status != "healthy" && c.Status != "unhealthy") || now.Sub(c.Checked) >= maxAge {
			continue
		}
		o.saved[c.ID] = restoredSave{c, maxAge}
		statuses++
	}
	o.mu.Unlock()
	f.writeMu.Lock()
	for _, c := range st.Checks {
		if c.ID != "" && now.Sub(c.Checked) < maxAge {
			f.kept[c.ID] = c
		}
	}
	f.writeMu.Unlock()

	overrides := 0
	for _, so := range st.Overrides {
		ov, err := so.override()
		if err != nil {
			log.Warningf("state_file %s: an override is ignored: %v", f.path, err)
			continue
		}
		if !ov.live(now) {
			continue // expired while CoreDNS was down
		}
		if o.overrides.add(ov) {
			overrides++
			// Logged by selector: the values are not running yet.
			msg := "override " + ov.state + " for " + ov.selector() + " restored from the state file"
			if !ov.expires.IsZero() {
				msg += ", until " + ov.expires.UTC().Format(time.RFC3339)
			}
			if ov.reason != "" {
				msg += ": " + ov.reason
			}
			log.Info(msg)
			o.overrides.notify(ov.key)
		}
	}
	log.Infof("state_file %s: read %d recent check statuses (of %d, max age %s) and %d overrides", f.path, statuses, len(st.Checks), maxAge, overrides)
	if overrides > 0 {
		o.recount()
	}
}

// override reads a saved override back.
func (so *savedOverride) override() (*override, error) {
	r := so.overrideRequest
	r.TTL = ""
	ov, err := r.override(so.Created)
	if err != nil {
		return nil, err
	}
	if so.Created.IsZero() {
		return nil, errors.New("no creation time")
	}
	if so.Expires != nil {
		ov.expires = *so.Expires
	}
	if strings.HasPrefix(so.EtcdKey, "override/") {
		ov.etcdKey = so.EtcdKey
	}
	return ov, nil
}

// readState reads and decodes a state file; nil, nil when there is none.
func readState(path string) (*stateJSON, error) {
	// Stat first: a FIFO would block the open, a directory or a device is
	// not a state file.
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, errors.New("is a directory")
	case !fi.Mode().IsRegular():
		return nil, errors.New("is not a regular file")
	case fi.Size() > maxStateFile:
		return nil, fmt.Errorf("is larger than %d MiB", maxStateFile>>20)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxStateFile+1))
	if err != nil {
		return nil, err
	}
	var st stateJSON
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("corrupt: %v", err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("corrupt: version %d, want %d", st.Version, stateVersion)
	}
	return &st, nil
}

// poke schedules a write within a second of now, and at least a second
// after the last one.
func (f *stateFile) poke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.schedule(later(time.Now(), f.lastWrite.Add(stateMinGap)))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// schedule arms the timer for at, unless it fires sooner. Under mu.
func (f *stateFile) schedule(at time.Time) {
	if f.closed || !f.due.IsZero() && !f.due.After(at) {
		return
	}
	f.due = at
	if f.timer == nil {
		f.timer = time.AfterFunc(time.Until(at), f.flush)
		return
	}
	f.timer.Reset(time.Until(at))
}

// refreshEvery is how often the file is written when nothing changes, so
// that the statuses it holds stay younger than maxAge.
func (f *stateFile) refreshEvery() time.Duration {
	return max(stateMinGap, min(f.age()/4, stateMaxRefresh))
}

// age is MAX_AGE: how old a saved status may be to be used, or kept.
func (f *stateFile) age() time.Duration { return time.Duration(f.maxAge.Load()) }

// flush writes the file, from the timer.
func (f *stateFile) flush() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.due = time.Time{}
	f.lastWrite = time.Now()
	f.inflight.Add(1)
	f.mu.Unlock()
	defer f.inflight.Done()

	err := f.write()

	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	switch {
	case err != nil:
		if !f.failing {
			log.Warningf("state_file %s: cannot save: %v (retrying)", f.path, err)
			f.failing, f.backoff = true, stateMinGap
		}
		f.schedule(now.Add(f.backoff))
		f.backoff = min(2*f.backoff, stateMaxBackoff)
	default:
		if f.failing {
			log.Infof("state_file %s: saved again", f.path)
			f.failing = false
		}
		f.schedule(now.Add(f.refreshEvery()))
	}
}

// close stops the timer, waits for a write under way, and writes the file a
// last time.
func (f *stateFile) close() {
	f.mu.Lock()
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
	f.mu.Unlock()
	f.inflight.Wait()
	if err := f.write(); err != nil {
		log.Warningf("state_file %s: cannot save at shutdown: %v", f.path, err)
	}
}

// write saves the statuses of the running checks (and, for the checks not
// running now, the recent statuses saved before), and the overrides.
func (f *stateFile) write() error {
	f.writeMu.Lock()
	defer f.writeMu.Unlock()
	now := time.Now()
	st := stateJSON{Version: stateVersion, Saved: now.UTC(), Checks: []savedCheck{}, Overrides: []savedOverride{}}
	running := map[string]bool{}
	f.ops.e.table.each(func(c *check) {
		if sc, ok := c.saved(now); ok && !running[sc.ID] {
			running[sc.ID] = true
			st.Checks = append(st.Checks, sc)
			f.kept[sc.ID] = sc
		}
	})
	for id, sc := range f.kept {
		switch {
		case now.Sub(sc.Checked) >= f.age():
			delete(f.kept, id)
		case !running[id]:
			st.Checks = append(st.Checks, sc)
		}
	}
	slices.SortFunc(st.Checks, func(a, b savedCheck) int { return strings.Compare(a.Target+" "+a.ID, b.Target+" "+b.ID) })
	for _, ov := range f.ops.overrides.list(now) {
		st.Overrides = append(st.Overrides, ov.saved())
	}
	b, err := json.MarshalIndent(&st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(f.path, append(b, '\n'))
}

// saved is the check's status for the state file; ok is false before a
// first result.
func (c *check) saved(now time.Time) (savedCheck, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.status.known {
		return savedCheck{}, false
	}
	sc := savedCheck{
		ID:       checkID(c.spec),
		Protocol: c.spec.protocol,
		Target:   c.target,
		Status:   statusName(c.status.healthy),
		Since:    c.since.UTC(),
		Checked:  c.lastProbe.UTC(),
		Reason:   c.reason,
	}
	if c.lastProbe.IsZero() {
		// Known without a probe of its own: a status taken over from the
		// check a reload replaced. It is current now.
		sc.Checked = now.UTC()
		sc.LastResult = resultName(c.status.healthy != c.spec.invert)
	} else {
		sc.LastResult = resultName(c.lastOK)
	}
	return sc, true
}

// restoreSaved starts the check from a saved status: known, so that its
// thresholds apply from its first probe on, but not a result for readiness.
func (c *check) restoreSaved(sc savedCheck) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = thresholds{healthy: sc.Status == "healthy", known: true}
	c.since, c.reason = sc.Since, sc.Reason
	c.lastProbe, c.lastOK, c.restored = sc.Checked, sc.LastResult == "success", true
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "FIFO"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

func resultName(ok bool) string {
	if ok {
		return "success"
	}
	return "failure"
}

// saved is the override for the state file.
func (ov *override) saved() savedOverride {
	so := savedOverride{overrideRequest: ov.request(), Created: ov.created.UTC(), EtcdKey: ov.etcdKey}
	if !ov.expires.IsZero() {
		e := ov.expires.UTC()
		so.Expires = &e
	}
	return so
}

// request is the selector, state and reason of ov as a request gives them.
func (ov *override) request() overrideRequest {
	r := overrideRequest{State: ov.state, Reason: ov.reason}
	if ov.key.host != "" {
		r.Target = ov.key.host
	} else {
		r.Name, r.Type, r.Value = ov.key.name, typeString(ov.key.qtype), ov.value
	}
	return r
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, renamed over path, and the directory synced, so that a
// crash leaves the old file or the new one, never a part. A symbolic link is
// followed (the file it points to is replaced, not the link); anything but a
// regular file in the way is left alone.
func writeAtomic(path string, data []byte) (err error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return errors.New("a directory is in its place")
		}
		return fmt.Errorf("a %s is in its place, not a regular file", fileKind(fi.Mode()))
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

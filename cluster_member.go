package multivalue

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// maxTxnOps is how many puts and deletes one transaction carries: etcd's
// default --max-txn-ops.
const maxTxnOps = 128

// clusterHub is the cluster members of an engine. Members are shared by
// every instance whose cluster connects the same way (clusterConn), so a
// reload that keeps the cluster line keeps the member: its client, its lease
// and its mirror. A reload that changes it starts a new member before the old
// one stops; the newest writes the metrics.
type clusterHub struct {
	mu      sync.Mutex
	members []*member // oldest first
}

// acquire returns the member for cc, starting it if it is new. Runs in
// OnStartup.
func (h *clusterHub) acquire(cc *clusterConfig, ms *metricSet) *member {
	h.mu.Lock()
	for _, m := range h.members {
		if m.conn == cc.conn {
			m.refs++
			h.mu.Unlock()
			return m
		}
	}
	m := newMember(cc, ms, h)
	m.refs = 1
	h.members = append(h.members, m)
	h.mu.Unlock()
	m.start()
	return m
}

// release drops one use of m; the last one stops it: its lease is revoked, so
// its votes go at once.
func (h *clusterHub) release(m *member) {
	h.mu.Lock()
	if m.refs--; m.refs > 0 {
		h.mu.Unlock()
		return
	}
	h.members = slices.DeleteFunc(h.members, func(o *member) bool { return o == m })
	var next *member
	if n := len(h.members); n > 0 {
		next = h.members[n-1]
	}
	h.mu.Unlock()
	m.close()
	if next != nil {
		next.writeMetrics()
	} else {
		m.ms.dropCluster()
	}
}

// current reports whether m is the member whose state the metrics show.
func (h *clusterHub) current(m *member) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.members) > 0 && h.members[len(h.members)-1] == m
}

// lookupVote returns the running vote of c under cc, or nil: a reloaded
// instance serves what the cluster already decided from its first query on.
func (h *clusterHub) lookupVote(cc *clusterConfig, c *check) *vote {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.members {
		if m.conn == cc.conn {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.votes[voteKey{c, cc.rule}]
		}
	}
	return nil
}

// member is one replica in an etcd cluster: it holds a lease, publishes this
// replica's verdict of each clustered check under it, mirrors the other
// replicas' verdicts, and tells the votes (cluster_vote.go) when either
// changes.
//
// Whether etcd is reachable is judged by lease keepalives, not by the watch:
// a watch can hang for ever on a connection that is gone (etcd-io/etcd#8980).
// Once no keepalive has succeeded for a lease, the member is down: the votes
// fall back to the local verdicts until a new session (a new lease, the own
// verdicts put again, the mirror listed again) is up.
type member struct {
	hub  *clusterHub
	conn clusterConn
	tls  *tls.Config
	ms   *metricSet
	refs int // under hub.mu

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{} // run has ended
	kick      chan struct{} // something to publish
	recompute chan struct{} // votes to update
	notified  chan struct{} // notify has ended

	lastOK atomic.Int64 // when etcd last answered for the lease, Unix ns

	// Owned by the run goroutine.
	cli    *clientv3.Client
	lease  clientv3.LeaseID
	warned bool // this outage has been logged

	metricsMu sync.Mutex // orders the writes of the gauges

	overrideWatchers watchers

	mu             sync.Mutex
	up             bool
	votes          map[voteKey]*vote
	byID           map[string][]*vote
	own            map[string][]*check // by check id: the local checks voting, newest last
	pub            map[string]pubState // by check id: what etcd holds of ours
	dirty          map[string]bool     // check ids whose own verdict may need publishing
	presence       bool                // the replicas/ key is in etcd
	peers          map[string]map[string]peerVote
	replicas       map[string]bool
	disagreements  int
	overrideSet    map[string]*clusterOverride // by key below the prefix
	overridesStale bool                        // notify tells the override watchers
	liveClient     *clientv3.Client            // cli while up, for storing overrides
	stale          map[string]bool             // check ids whose votes notify updates
	allStale       bool                        // every vote: notify updates them all
	started        int                         // sessions started, for tests
	leaseID        clientv3.LeaseID            // the last session's lease, for tests
	outages        int                         // outages warned of, for tests
}

// pubState is an own verdict as etcd holds it.
type pubState struct {
	healthy bool
	rev     int64 // the revision that put it
}

// voteJSON is the value of an obs/ key.
type voteJSON struct {
	Replica  string `json:"replica"`
	Status   string `json:"status"` // healthy or unhealthy
	Since    string `json:"since,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Target   string `json:"target,omitempty"`
}

// replicaJSON is the value of a replicas/ key.
type replicaJSON struct {
	Replica string `json:"replica"`
	Started string `json:"started"`
}

func newMember(cc *clusterConfig, ms *metricSet, h *clusterHub) *member {
	m := &member{
		hub:         h,
		conn:        cc.conn,
		tls:         cc.tls,
		ms:          ms,
		done:        make(chan struct{}),
		kick:        make(chan struct{}, 1),
		recompute:   make(chan struct{}, 1),
		notified:    make(chan struct{}),
		stale:       map[string]bool{},
		overrideSet: map[string]*clusterOverride{},
		votes:       map[voteKey]*vote{},
		byID:        map[string][]*vote{},
		own:         map[string][]*check{},
		pub:         map[string]pubState{},
		dirty:       map[string]bool{},
		peers:       map[string]map[string]peerVote{},
		replicas:    map[string]bool{},
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

func (m *member) start() {
	m.writeMetrics()
	go m.run()
	go m.notify()
}

// close ends the session, revokes the lease and closes the client.
func (m *member) close() {
	m.cancel()
	<-m.done
	<-m.notified
}

// opTimeout bounds every request to etcd.
func (m *member) opTimeout() time.Duration { return max(m.conn.lease/3, time.Second) }

func (m *member) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *member) run() {
	defer close(m.done)
	m.lastOK.Store(time.Now().UnixNano())
	for m.ctx.Err() == nil {
		err := m.session()
		if m.ctx.Err() != nil {
			break
		}
		wait := 100 * time.Millisecond
		if m.failed(err) {
			wait = min(m.conn.lease/3, 2*time.Second)
			// Dial afresh next time: gRPC's reconnection backoff grows
			// to two minutes in a long outage, and a connection that
			// died without a reset may still look open.
			if m.cli != nil {
				m.cli.Close()
				m.cli = nil
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if m.cli != nil {
		if m.lease != 0 {
			// A clean shutdown: the votes go now, not a lease later.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			m.cli.Revoke(ctx, m.lease)
			cancel()
		}
		m.cli.Close()
	}
}

// failed notes that a session could not start or ended, and reports whether
// etcd is now considered unreachable: no answer for the lease for about a
// lease. The first time in an outage it logs a warning and the votes fall
// back to the local verdicts.
func (m *member) failed(err error) (down bool) {
	if m.sinceOK() < m.conn.lease {
		return false
	}
	if !m.warned {
		m.warned = true
		m.mu.Lock()
		m.outages++
		m.mu.Unlock()
		log.Warningf("cluster: etcd %s unreachable (%v): this replica decides on its own verdicts until it is back", m.conn.endpoints, err)
	}
	m.setUp(false)
	return true
}

// session connects, takes a new lease, publishes every own verdict under it,
// lists the mirror and watches it, and keeps the lease alive until it is
// lost or the member closes.
func (m *member) session() error {
	if m.cli == nil {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   m.conn.endpointList(),
			DialTimeout: m.opTimeout(),
			TLS:         m.tls,
			Username:    m.conn.username,
			Password:    m.conn.password,
			Logger:      zap.NewNop(), // failures are logged here, once per outage
			// gRPC pings find a connection that died without a reset, so
			// that the client dials again instead of waiting on it.
			DialKeepAliveTime:    10 * time.Second,
			DialKeepAliveTimeout: max(m.conn.lease, 3*time.Second),
		})
		if err != nil {
			return fmt.Errorf("connecting: %w", err)
		}
		m.cli = cli
	}
	if m.lease != 0 {
		// The last session's lease: etcd keeps leases across its own
		// restarts, and its keys must not outlive the session.
		ctx, cancel := context.WithTimeout(m.ctx, m.opTimeout())
		m.cli.Revoke(ctx, m.lease)
		cancel()
		m.lease = 0
	}
	ctx, cancel := context.WithTimeout(m.ctx, m.opTimeout())
	g, err := m.cli.Grant(ctx, int64(m.conn.lease/time.Second))
	cancel()
	if err != nil {
		return fmt.Errorf("granting a lease: %w", err)
	}
	m.lease = g.ID
	m.lastOK.Store(time.Now().UnixNano())
	m.mu.Lock()
	m.started, m.leaseID = m.started+1, g.ID
	m.pub, m.presence = map[string]pubState{}, false
	for id := range m.own {
		m.dirty[id] = true
	}
	m.mu.Unlock()

	// Keepalives run on their own: publishing a burst or a slow etcd
	// must not starve them, or the lease would expire for nothing.
	lost := make(chan error, 1)
	kctx, kcancel := context.WithCancel(m.ctx)
	kdone := make(chan struct{})
	go func() {
		defer close(kdone)
		m.keepAlive(kctx, g.ID, lost)
	}()
	defer func() {
		kcancel()
		<-kdone
	}()

	// What fails from here on is tried again on the next tick: only a
	// lost lease ends the session.
	m.publish()
	wch, wcancel, err := m.list()
	defer func() { wcancel() }()
	relist := err != nil
	if !relist {
		m.back()
	}
	tick := time.NewTicker(m.conn.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return nil
		case err := <-lost:
			return err
		case <-m.kick:
			if err := m.publish(); errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return err
			}
		case <-tick.C:
			if relist {
				wcancel()
				if wch, wcancel, err = m.list(); err == nil {
					relist = false
					m.back()
				}
			}
			m.reconcile()
		case resp, ok := <-wch:
			if ok && !resp.Canceled && resp.Err() == nil && resp.CompactRevision == 0 {
				m.apply(resp.Events)
				continue
			}
			// Compacted past the mirror, cancelled, or closed: list again.
			wcancel()
			if wch, wcancel, err = m.list(); err != nil {
				relist = true
			}
		}
	}
}

// back marks the member up: a session with a lease and a mirror.
func (m *member) back() {
	if m.warned {
		m.warned = false
		log.Infof("cluster: etcd %s reachable again: replicas vote again", m.conn.endpoints)
	}
	m.mu.Lock()
	m.liveClient = m.cli
	m.mu.Unlock()
	m.setUp(true)
}

// keepAlive renews the lease every lease/3 until ctx ends, and reports on
// lost when the lease is gone or etcd has not answered for a lease.
func (m *member) keepAlive(ctx context.Context, id clientv3.LeaseID, lost chan<- error) {
	tick := time.NewTicker(m.conn.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		kctx, cancel := context.WithTimeout(ctx, m.opTimeout())
		_, err := m.cli.KeepAliveOnce(kctx, id)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			m.lastOK.Store(time.Now().UnixNano())
			continue
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			lost <- fmt.Errorf("lease expired: %w", err)
			return
		case m.sinceOK() >= m.conn.lease:
			lost <- fmt.Errorf("no lease keepalive for %s: %w", m.conn.lease, err)
			return
		}
	}
}

// sinceOK is how long etcd has not answered for the lease.
func (m *member) sinceOK() time.Duration {
	return time.Duration(time.Now().UnixNano() - m.lastOK.Load())
}

// publish puts the own verdicts that changed since they were published, and
// deletes those of checks this replica no longer runs, in transactions of at
// most maxTxnOps operations. A failed transaction leaves its checks dirty.
func (m *member) publish() error {
	for {
		ops, done := m.pending()
		if len(ops) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(m.ctx, m.opTimeout())
		resp, err := m.cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		m.committed(done, resp, err)
		if err != nil {
			return err
		}
	}
}

// pendingOp is what a transaction does for one check id (or the presence
// key, id "").
type pendingOp struct {
	id      string
	put     bool
	healthy bool
}

// pending takes up to maxTxnOps dirty check ids off the dirty set and returns
// the operations that bring etcd in line with them.
func (m *member) pending() ([]clientv3.Op, []pendingOp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ops []clientv3.Op
	var done []pendingOp
	if !m.presence {
		b, _ := json.Marshal(replicaJSON{Replica: m.conn.replica, Started: time.Now().UTC().Format(time.RFC3339Nano)})
		ops = append(ops, clientv3.OpPut(m.conn.prefix+"replicas/"+m.conn.replica, string(b), clientv3.WithLease(m.lease)))
		done = append(done, pendingOp{put: true})
	}
	for id := range m.dirty {
		if len(ops) == maxTxnOps {
			break
		}
		delete(m.dirty, id)
		key := m.conn.prefix + "obs/" + id + "/" + m.conn.replica
		want, ok := m.ownVerdict(id)
		pub, published := m.pub[id]
		switch {
		case !ok && published:
			ops = append(ops, clientv3.OpDelete(key))
			done = append(done, pendingOp{id: id})
		case ok && (!published || pub.healthy != want.healthy):
			c := m.own[id][0]
			j := voteJSON{Replica: m.conn.replica, Status: statusName(want.healthy), Reason: want.reason, Protocol: c.spec.protocol, Target: c.target}
			if !want.since.IsZero() {
				j.Since = want.since.UTC().Format(time.RFC3339Nano)
			}
			b, _ := json.Marshal(j)
			ops = append(ops, clientv3.OpPut(key, string(b), clientv3.WithLease(m.lease)))
			done = append(done, pendingOp{id: id, put: true, healthy: want.healthy})
		}
	}
	return ops, done
}

// committed records a transaction's outcome: on success what etcd now holds,
// on failure the checks are dirty again.
func (m *member) committed(done []pendingOp, resp *clientv3.TxnResponse, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range done {
		switch {
		case err != nil && d.id == "":
		case err != nil:
			m.dirty[d.id] = true
		case d.id == "":
			m.presence = true
		case d.put:
			m.pub[d.id] = pubState{healthy: d.healthy, rev: resp.Header.Revision}
		default:
			delete(m.pub, d.id)
		}
	}
}

// reconcile marks dirty every check id whose own verdict etcd does not hold
// as it is: a first result (which, when healthy, is no change a check tells
// its watchers of), or what a failed transaction left. Runs on every
// keepalive.
func (m *member) reconcile() {
	m.mu.Lock()
	for id := range m.own {
		want, ok := m.ownVerdict(id)
		pub, published := m.pub[id]
		if ok && (!published || pub.healthy != want.healthy) {
			m.dirty[id] = true
		}
	}
	for id := range m.pub {
		if _, ok := m.own[id]; !ok {
			m.dirty[id] = true
		}
	}
	n := len(m.dirty)
	m.mu.Unlock()
	if n > 0 {
		m.poke()
	}
}

// ownVerdict is what this replica says of a check id: the newest local check
// with that id that has a result. Under mu.
func (m *member) ownVerdict(id string) (verdict, bool) {
	cs := m.own[id]
	for i := len(cs) - 1; i >= 0; i-- {
		if v := cs[i].verdict(); v.known {
			return v, true
		}
	}
	return verdict{}, false
}

// list reads every key under the prefix into the mirror and watches from the
// next revision.
func (m *member) list() (clientv3.WatchChan, context.CancelFunc, error) {
	kvs, rev, err := m.getAll()
	if err != nil {
		return nil, func() {}, fmt.Errorf("listing %s: %w", m.conn.prefix, err)
	}
	peers := map[string]map[string]peerVote{}
	replicas := map[string]bool{}
	overrides := map[string]*clusterOverride{}
	for _, kv := range kvs {
		kind, id, replica := m.parseKey(string(kv.Key))
		switch kind {
		case "obs":
			if replica == m.conn.replica {
				continue
			}
			if pv, ok := parseVote(replica, kv.Value); ok {
				if peers[id] == nil {
					peers[id] = map[string]peerVote{}
				}
				peers[id][replica] = pv
			}
		case "replicas":
			replicas[replica] = true
		case "override":
			if o, ok := parseOverride(id, kv.Value); ok {
				overrides[id] = o
			}
		}
	}
	m.mu.Lock()
	m.peers, m.replicas, m.overrideSet = peers, replicas, overrides
	m.allStale, m.overridesStale = true, true
	m.mu.Unlock()
	m.writeMetrics()
	m.signal()
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(m.ctx))
	wch := m.cli.Watch(wctx, m.conn.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	return wch, wcancel, nil
}

// listPage is how many keys one read of a listing returns: 10,000 checks
// and ten replicas are 100,000 keys, which one read could not return within
// a timeout on a loaded etcd.
const listPage = 1000

// getAll reads every key under the prefix at one revision, a page at a time.
func (m *member) getAll() (kvs []*mvccpb.KeyValue, rev int64, err error) {
	end := clientv3.GetPrefixRangeEnd(m.conn.prefix)
	from := m.conn.prefix
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		ctx, cancel := context.WithTimeout(m.ctx, m.opTimeout())
		resp, err := m.cli.Get(ctx, from, opts...)
		cancel()
		if err != nil {
			return nil, 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		kvs = append(kvs, resp.Kvs...)
		if !resp.More || len(resp.Kvs) == 0 {
			return kvs, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// apply brings the mirror up to date with watch events and updates the
// votes of the checks they touch. An own key deleted after it was put (by
// the lease of an older session or member, or by hand) is put again.
func (m *member) apply(events []*clientv3.Event) {
	affected := map[string]bool{}
	replicasChanged, republish, overridesChanged := false, false, false
	m.mu.Lock()
	for _, ev := range events {
		kind, id, replica := m.parseKey(string(ev.Kv.Key))
		del := ev.Type == mvccpb.DELETE
		switch {
		case kind == "obs" && replica == m.conn.replica:
			if pub, ok := m.pub[id]; del && ok && ev.Kv.ModRevision > pub.rev {
				delete(m.pub, id)
				m.dirty[id], republish = true, true
			}
		case kind == "obs":
			pv, ok := parseVote(replica, ev.Kv.Value)
			if del || !ok {
				delete(m.peers[id], replica)
				if len(m.peers[id]) == 0 {
					delete(m.peers, id)
				}
			} else {
				if m.peers[id] == nil {
					m.peers[id] = map[string]peerVote{}
				}
				m.peers[id][replica] = pv
			}
			affected[id] = true
		case kind == "override":
			if o, ok := parseOverride(id, ev.Kv.Value); ok && !del {
				m.overrideSet[id] = o
			} else {
				delete(m.overrideSet, id)
			}
			m.overridesStale, overridesChanged = true, true
		case kind == "replicas":
			replicasChanged = true
			if !del {
				m.replicas[replica] = true
				break
			}
			delete(m.replicas, replica)
			if replica == m.conn.replica && m.presence {
				m.presence, republish = false, true
			}
		}
	}
	for id := range affected {
		m.stale[id] = true
	}
	m.mu.Unlock()
	if len(affected) > 0 || overridesChanged {
		m.signal()
	}
	if replicasChanged {
		m.writeMetrics()
	}
	if republish {
		m.poke()
	}
}

// parseKey splits PREFIX obs/ID/REPLICA and PREFIX replicas/REPLICA.
func (m *member) parseKey(key string) (kind, id, replica string) {
	rest, ok := strings.CutPrefix(key, m.conn.prefix)
	if !ok {
		return "", "", ""
	}
	if r, ok := strings.CutPrefix(rest, "replicas/"); ok && r != "" && !strings.Contains(r, "/") {
		return "replicas", "", r
	}
	if strings.HasPrefix(rest, "override/") {
		return "override", rest, ""
	}
	if r, ok := strings.CutPrefix(rest, "obs/"); ok {
		if i := strings.LastIndexByte(r, '/'); i > 0 && i < len(r)-1 {
			return "obs", r[:i], r[i+1:]
		}
	}
	return "", "", ""
}

// parseVote reads an obs/ value; a malformed one is no vote.
func parseVote(replica string, b []byte) (peerVote, bool) {
	var j voteJSON
	if err := json.Unmarshal(b, &j); err != nil || (j.Status != "healthy" && j.Status != "unhealthy") {
		return peerVote{}, false
	}
	pv := peerVote{replica: replica, healthy: j.Status == "healthy", reason: j.Reason}
	if j.Since != "" {
		pv.since, _ = time.Parse(time.RFC3339Nano, j.Since)
	}
	return pv, true
}

// setUp records whether etcd is reachable; a change updates every vote.
func (m *member) setUp(up bool) {
	m.mu.Lock()
	changed := m.up != up
	m.up = up
	if !up {
		m.liveClient = nil
	}
	m.mu.Unlock()
	if changed {
		m.writeMetrics()
		m.mu.Lock()
		m.allStale = true
		m.mu.Unlock()
		m.signal()
	}
}

func (m *member) signal() {
	select {
	case m.recompute <- struct{}{}:
	default:
	}
}

// notify updates the votes the mirror or the member's state made stale, off
// the run goroutine: rebuilding record sets for thousands of votes must not
// hold up the watch or publishing. Runs until the member closes.
func (m *member) notify() {
	defer close(m.notified)
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.recompute:
		}
		m.mu.Lock()
		var vs []*vote
		if m.allStale {
			for _, v := range m.votes {
				vs = append(vs, v)
			}
		} else {
			for id := range m.stale {
				vs = append(vs, m.byID[id]...)
			}
		}
		overrides := m.overridesStale
		m.allStale, m.stale, m.overridesStale = false, map[string]bool{}, false
		m.mu.Unlock()
		for _, v := range vs {
			v.update()
		}
		if overrides {
			m.overrideWatchers.notify()
		}
	}
}

// state is what a vote on check id needs: whether etcd is reachable and the
// other replicas' live verdicts.
func (m *member) state(id string) (up bool, peers []peerVote) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.up {
		return false, nil
	}
	for _, p := range m.peers[id] {
		peers = append(peers, p)
	}
	return true, peers
}

// markDirty asks for a check id's own verdict to be published.
func (m *member) markDirty(id string) {
	m.mu.Lock()
	m.dirty[id] = true
	m.mu.Unlock()
	m.poke()
}

func (m *member) addDisagreement(d int) {
	m.mu.Lock()
	m.disagreements += d
	m.mu.Unlock()
	m.writeMetrics()
}

// writeMetrics sets the cluster gauges from m, when m is the engine's newest
// member.
func (m *member) writeMetrics() {
	m.metricsMu.Lock()
	defer m.metricsMu.Unlock()
	if !m.hub.current(m) {
		return
	}
	m.mu.Lock()
	up, replicas, dis := m.up, 1, m.disagreements
	if up {
		replicas = len(m.replicas)
		if !m.replicas[m.conn.replica] {
			replicas++
		}
	}
	m.mu.Unlock()
	m.ms.setCluster(up, replicas, dis)
}

// vote returns the cluster's verdict source for c under rule, counting the
// use; the check's own verdict is published from now on.
func (m *member) vote(c *check, rule clusterRule) *vote {
	m.mu.Lock()
	k := voteKey{c, rule}
	if v := m.votes[k]; v != nil {
		v.refs++
		m.mu.Unlock()
		return v
	}
	id := clusterID(c.spec)
	v := &vote{m: m, c: c, id: id, rule: rule, refs: 1, cur: c.verdict()}
	m.votes[k] = v
	m.byID[id] = append(m.byID[id], v)
	m.own[id] = append(m.own[id], c)
	m.dirty[id] = true
	v.unwatch = c.watch(func() {
		v.update()
		m.markDirty(id)
	})
	m.mu.Unlock()
	v.update()
	m.poke()
	return v
}

// releaseVote drops one use of v; with the last the check no longer votes
// from this replica (its key is deleted unless another local check with the
// same id votes on).
func (m *member) releaseVote(v *vote) {
	m.mu.Lock()
	if v.refs--; v.refs > 0 {
		m.mu.Unlock()
		return
	}
	delete(m.votes, voteKey{v.c, v.rule})
	m.byID[v.id] = slices.DeleteFunc(m.byID[v.id], func(o *vote) bool { return o == v })
	if len(m.byID[v.id]) == 0 {
		delete(m.byID, v.id)
	}
	if i := slices.Index(m.own[v.id], v.c); i >= 0 {
		m.own[v.id] = slices.Delete(m.own[v.id], i, i+1)
	}
	if len(m.own[v.id]) == 0 {
		delete(m.own, v.id)
	}
	m.dirty[v.id] = true
	m.mu.Unlock()
	v.unwatch()
	if v.release() {
		m.addDisagreement(-1)
	}
	m.poke()
}

package multivalue

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// The overrides every replica applies: an override set or removed through the
// admin API of a process with a running cluster member is stored in (or
// deleted from) etcd too, and the overrides the member mirrors from etcd are
// synced into the engine's override store, whichever replica or operator put
// them there. An override from etcd carries its etcd key (etcdKey): those
// are the ones a sync may remove; local-only ones (set while etcd was
// unreachable, or in a process without cluster) stay until removed here.

// shareState is what operations keeps for sharing overrides.
type shareState struct {
	mu      sync.Mutex         // orders syncs and the admin API's shared changes
	watched map[*member]func() // the members whose overrides are watched, and their unwatch

	members map[*Multivalue]*member // the running instances' members; under operations.mu
}

// clusterMember returns the member of the newest running instance with
// `cluster`, or nil.
func (o *operations) clusterMember() *member {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.instances) - 1; i >= 0; i-- {
		if mem := o.share.members[o.instances[i]]; mem != nil {
			return mem
		}
	}
	return nil
}

// watchMember starts syncing the overrides of mem, once per member, and
// syncs at once if mem is up (its mirror is listed; a new member syncs when
// its first listing tells the watchers).
func (o *operations) watchMember(mem *member) {
	o.share.mu.Lock()
	if o.share.watched == nil {
		o.share.watched = map[*member]func(){}
	}
	if _, ok := o.share.watched[mem]; ok {
		o.share.mu.Unlock()
		return
	}
	o.share.watched[mem] = mem.watchOverrides(o.syncCluster)
	o.share.mu.Unlock()
	if _, err := mem.client(); err == nil {
		o.syncCluster()
	}
}

// unwatchMember stops watching mem unless a running instance still holds it.
func (o *operations) unwatchMember(mem *member) {
	o.mu.Lock()
	for _, other := range o.share.members {
		if other == mem {
			o.mu.Unlock()
			return
		}
	}
	o.mu.Unlock()
	o.share.mu.Lock()
	unwatch := o.share.watched[mem]
	delete(o.share.watched, mem)
	o.share.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
}

// syncCluster makes the store hold the overrides etcd holds: those from etcd
// are added or replace the one with their selector, and the ones from etcd no
// longer there are removed. Local-only overrides are kept.
func (o *operations) syncCluster() {
	mem := o.clusterMember()
	if mem == nil {
		return
	}
	o.share.mu.Lock()
	defer o.share.mu.Unlock()
	now := time.Now()
	cos := mem.overrides()
	slices.SortFunc(cos, func(a, b *clusterOverride) int { return strings.Compare(a.key, b.key) })
	want := map[overrideKey]*override{}
	for _, co := range cos {
		ov, err := co.local(now)
		if err != nil {
			log.Debugf("cluster: override %s ignored: %v", co.key, err)
			continue
		}
		if want[ov.key] == nil { // two spellings of one selector: the first key
			want[ov.key] = ov
		}
	}
	changed := false
	for _, ov := range want {
		cur := o.overrides.get(ov.key)
		if cur != nil && cur.live(now) && cur.same(ov) {
			continue
		}
		verb := "set from etcd on"
		if prev := o.overrides.put(ov); prev != nil && prev.live(now) {
			verb = "replaced from etcd (was " + prev.state + ") on"
		}
		o.logChange(verb, ov)
		o.overrides.notify(ov.key)
		changed = true
	}
	for _, cur := range o.overrides.list(now) {
		if cur.etcdKey == "" || want[cur.key] != nil {
			continue
		}
		if o.overrides.remove(cur.key) == nil {
			continue
		}
		o.logChange("removed (deleted in etcd) from", cur)
		o.overrides.notify(cur.key)
		changed = true
	}
	if changed {
		o.afterChange()
	}
}

// setShared is set for the admin API: with a running cluster member, the
// override is stored in etcd for every replica first. If etcd refuses, it is
// set on this replica only, and a warning says so.
func (o *operations) setShared(ov *override) []valueRef {
	mem := o.clusterMember()
	if mem == nil || len(o.matching(ov.key)) == 0 {
		return o.set(ov)
	}
	o.share.mu.Lock()
	defer o.share.mu.Unlock()
	co := ov.clusterOverride()
	ctx, cancel := context.WithTimeout(context.Background(), mem.opTimeout())
	defer cancel()
	if err := mem.storeOverride(ctx, co); err != nil {
		log.Warningf("override %s for %s is set on this replica only: %v", ov.state, ov.selector(), err)
	} else {
		ov.etcdKey = etcdOverrideKey(co)
	}
	return o.set(ov)
}

// removeShared is remove for the admin API: with a running cluster member,
// the override is deleted from etcd too (under the key it came from, and
// under the one this replica would store it at). If etcd refuses, it is
// removed here only, until the next change in etcd syncs it back.
func (o *operations) removeShared(k overrideKey) (*override, []valueRef) {
	mem := o.clusterMember()
	if mem == nil {
		return o.remove(k)
	}
	o.share.mu.Lock()
	defer o.share.mu.Unlock()
	if cur := o.overrides.get(k); cur != nil && cur.live(time.Now()) {
		ctx, cancel := context.WithTimeout(context.Background(), mem.opTimeout())
		defer cancel()
		co := cur.clusterOverride()
		err := mem.deleteOverride(ctx, co)
		if err == nil && cur.etcdKey != "" && cur.etcdKey != etcdOverrideKey(co) {
			err = mem.deleteOverrideKey(ctx, cur.etcdKey)
		}
		if err != nil {
			log.Warningf("override %s for %s is removed on this replica only: %v", cur.state, cur.selector(), err)
		}
	}
	return o.remove(k)
}

// clusterOverride is ov as etcd stores it, with its absolute expiry.
func (ov *override) clusterOverride() *clusterOverride {
	r := ov.request()
	co := &clusterOverride{Name: r.Name, Type: r.Type, Value: r.Value, Target: r.Target, State: ov.state, Reason: ov.reason}
	if !ov.expires.IsZero() {
		co.Expires = ov.expires.UTC().Format(time.RFC3339Nano)
		co.expires = ov.expires
	}
	return co
}

// local reads an override from etcd as this replica applies it, created at
// now.
func (co *clusterOverride) local(now time.Time) (*override, error) {
	r := overrideRequest{Name: co.Name, Type: co.Type, Value: co.Value, Target: co.Target, State: co.State, Reason: co.Reason}
	ov, err := r.override(now)
	if err != nil {
		return nil, err
	}
	ov.expires, ov.etcdKey = co.expires, co.key
	return ov, nil
}

// same reports whether ov and other say the same: selector, state, reason,
// expiry and origin.
func (ov *override) same(other *override) bool {
	return ov.key == other.key && ov.value == other.value && ov.state == other.state && ov.reason == other.reason &&
		ov.expires.Equal(other.expires) && ov.etcdKey == other.etcdKey
}

// get returns the override with key k, or nil.
func (st *overrideStore) get(k overrideKey) *override {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.byKey[k]
}

// deleteOverrideKey removes the override stored at key (below the prefix).
func (m *member) deleteOverrideKey(ctx context.Context, key string) error {
	cli, err := m.client()
	if err != nil {
		return err
	}
	_, err = cli.Delete(ctx, m.conn.prefix+key)
	return err
}

package multivalue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// clusterOverride is an override stored in etcd under PREFIX override/, so
// that every replica applies it: the status API's overrides, or an operator's
// etcdctl put. Its JSON is the body of POST /v1/overrides, with an absolute
// expiry instead of a ttl. The member mirrors them; applying them to values is
// the override source's job (the admin API's), which reads overrides() and
// watches for changes.
type clusterOverride struct {
	Name    string `json:"name,omitempty"` // with type and value: one value
	Type    string `json:"type,omitempty"`
	Value   string `json:"value,omitempty"`
	Target  string `json:"target,omitempty"` // or: every value whose check targets this host
	State   string `json:"state"`            // up, down or drain
	Reason  string `json:"reason,omitempty"`
	Expires string `json:"expires,omitempty"` // RFC 3339; empty: no expiry

	key     string    // the etcd key, without the prefix
	expires time.Time // Expires, parsed
}

// etcdOverrideKey is where an override is stored, below PREFIX: override/value/
// NAME/TYPE/VALUE or override/target/HOST, each part path-escaped (a value's
// spaces and slashes), so that setting the same selector twice replaces it.
func etcdOverrideKey(o *clusterOverride) string {
	if o.Target != "" {
		return "override/target/" + url.PathEscape(strings.ToLower(o.Target))
	}
	name := strings.ToLower(o.Name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return "override/value/" + url.PathEscape(name) + "/" + url.PathEscape(strings.ToUpper(o.Type)) + "/" + url.PathEscape(o.Value)
}

// parseOverride reads an override/ value; a malformed one is ignored (an
// operator's typo must not take values out).
func parseOverride(key string, b []byte) (*clusterOverride, bool) {
	var o clusterOverride
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, false
	}
	switch {
	case o.State != "up" && o.State != "down" && o.State != "drain":
		return nil, false
	case o.Target == "" && (o.Name == "" || o.Type == "" || o.Value == ""):
		return nil, false
	case o.Target != "" && o.Name+o.Type+o.Value != "":
		return nil, false
	}
	if o.Expires != "" {
		t, err := time.Parse(time.RFC3339, o.Expires)
		if err != nil {
			return nil, false
		}
		o.expires = t
	}
	o.key = key
	return &o, true
}

// expired reports whether the override no longer applies at now.
func (o *clusterOverride) expired(now time.Time) bool {
	return !o.expires.IsZero() && !now.Before(o.expires)
}

// overrides returns the unexpired overrides etcd holds, as of the mirror:
// while etcd is unreachable, the last ones it held (an operator's drain does
// not end because etcd went away).
func (m *member) overrides() []*clusterOverride {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var out []*clusterOverride
	for _, o := range m.overrideSet {
		if !o.expired(now) {
			out = append(out, o)
		}
	}
	return out
}

// watchOverrides calls fn after the overrides in etcd change (or are listed
// again), from the member's notifier goroutine.
func (m *member) watchOverrides(fn func()) (unwatch func()) { return m.overrideWatchers.add(fn) }

// errNotConnected is what storing an override returns while etcd is
// unreachable.
var errNotConnected = errors.New("cluster: etcd is unreachable")

// storeOverride puts an override for every replica (no lease: it outlives
// the replica that set it).
func (m *member) storeOverride(ctx context.Context, o *clusterOverride) error {
	cli, err := m.client()
	if err != nil {
		return err
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	_, err = cli.Put(ctx, m.conn.prefix+etcdOverrideKey(o), string(b))
	return err
}

// deleteOverride removes the override with o's selector.
func (m *member) deleteOverride(ctx context.Context, o *clusterOverride) error {
	cli, err := m.client()
	if err != nil {
		return err
	}
	_, err = cli.Delete(ctx, m.conn.prefix+etcdOverrideKey(o))
	return err
}

// client is the connected client, or errNotConnected.
func (m *member) client() (*clientv3.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.up || m.liveClient == nil {
		return nil, fmt.Errorf("%w: %s", errNotConnected, m.conn.endpoints)
	}
	return m.liveClient, nil
}

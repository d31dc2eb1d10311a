package multivalue

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"reflect"
	"strings"
)

// clusterKey is the part of a check's key that replicas vote on: what one
// probe does and finds (protocol, target as written, path, host, status,
// match, TLS settings, invert, timeout and any setting added to
// checkSettings later), without how often it probes or how many results it
// takes to turn, which replicas may set apart (a slower replica's vote still
// counts). The CA file is reduced to the hash of its contents: replicas may
// keep it at different paths.
func clusterKey(k checkKey) checkKey {
	k.interval, k.fastInterval, k.failureThreshold, k.successThreshold = 0, 0, 0, 0
	if i := strings.LastIndex(k.caFile, " sha256:"); i >= 0 {
		k.caFile = k.caFile[i+1:]
	}
	return k
}

// clusterID names a check in etcd keys: PROTOCOL_HOST:PORT_HASH, readable
// with etcdctl, and the same on every replica that runs the same probe. The
// hash covers every field of clusterKey by name, skipping zero values, so a
// setting added to checkSettings changes the id only of checks that use it.
func clusterID(s *checkSpec) string {
	h := sha256.New()
	hashFields(h, "", reflect.ValueOf(clusterKey(s.key())))
	return fmt.Sprintf("%s_%s_%x", s.protocol, s.target(), h.Sum(nil)[:8])
}

// hashFields writes name=value; for every non-zero field of a struct,
// embedded structs flattened, in declaration order.
func hashFields(h hash.Hash, prefix string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Anonymous && fv.Kind() == reflect.Struct {
			hashFields(h, prefix, fv)
			continue
		}
		if fv.IsZero() {
			continue
		}
		// fmt prints an unexported field's value by its kind: strings
		// quoted (%q), numbers in decimal, booleans as true.
		fmt.Fprintf(h, "%s%s=%q;", prefix, f.Name, fmt.Sprint(fv))
	}
}

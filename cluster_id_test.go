package multivalue

import (
	"reflect"
	"strings"
	"testing"
)

// clusterTiming are the settings a replica may set apart from the others and
// still vote on the same check: how often it probes and how many results it
// takes to turn. Everything else a probe does is in the cluster's check id.
var clusterTiming = map[string]bool{"interval": true, "fastInterval": true, "failureThreshold": true, "successThreshold": true}

// TestClusterIDCoversProbeSettings: every setting of checkSettings, changed
// alone, changes the check id replicas vote under, but the timing ones; so
// does the target. A setting added to checkSettings is covered without
// touching clusterID; this test then only needs it perturbable.
func TestClusterIDCoversProbeSettings(t *testing.T) {
	baseFor := settingTemplate
	base := func() *checkTemplate { return baseFor("") }
	id := func(tp *checkTemplate, host string) string { return clusterID(tp.spec(host, 0, 0)) }
	want := id(base(), "127.0.0.1")
	if !strings.HasPrefix(want, "https_127.0.0.1:443_") {
		t.Errorf("id %q: want it to start with the protocol and the target, for etcdctl users", want)
	}
	if strings.ContainsAny(want, "/ ") {
		t.Errorf("id %q holds a slash or a space: it is one segment of an etcd key", want)
	}
	writtenAs := map[string]func(*checkTemplate){
		"hostHeader": func(tp *checkTemplate) { tp.host = "www.example.org" },
		"status":     func(tp *checkTemplate) { tp.status = []statusRange{{200, 200}} },
		"headers":    func(tp *checkTemplate) { tp.header = []httpHeader{{"X-Check", "1"}} },
	}
	settings := reflect.TypeFor[checkSettings]()
	for i := range settings.NumField() {
		name := settings.Field(i).Name
		tp := baseFor(name)
		want := id(baseFor(name), "127.0.0.1")
		if set, ok := writtenAs[name]; ok {
			set(tp)
		} else {
			perturb(t, reflect.ValueOf(&tp.checkSettings).Elem().Field(i))
		}
		if same := id(tp, "127.0.0.1") == want; same != clusterTiming[name] {
			t.Errorf("changing %s: cluster id unchanged %v, want %v", name, same, clusterTiming[name])
		}
	}
	for name := range clusterTiming {
		if _, ok := settings.FieldByName(name); !ok {
			t.Errorf("clusterTiming lists %s, which checkSettings does not have", name)
		}
	}
	if id(base(), "127.0.0.2") == want || id(base(), "localhost") == want {
		t.Error("another target host must be another check id")
	}

	// The CA file counts by its contents: replicas keep it where they like.
	a, b := base(), base()
	a.tlsVerify, b.tlsVerify = true, true
	a.caFile, b.caFile = "/etc/a/ca.pem sha256:00ff", "/srv/b/ca.pem sha256:00ff"
	if id(a, "127.0.0.1") != id(b, "127.0.0.1") {
		t.Error("the same CA at two paths must be the same check id")
	}
	b.caFile = "/srv/b/ca.pem sha256:00fe"
	if id(a, "127.0.0.1") == id(b, "127.0.0.1") {
		t.Error("another CA must be another check id")
	}
}

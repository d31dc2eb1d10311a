package main

import (
	"slices"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// TestPluginOrder: multivalue sits right before hosts, so it answers what it
// holds and hands the rest to hosts, file and forward.
func TestPluginOrder(t *testing.T) {
	d := dnsserver.Directives
	i := slices.Index(d, "multivalue")
	if i < 0 || i+1 >= len(d) || d[i+1] != "hosts" {
		t.Fatalf("multivalue at %d, followed by %v; want right before hosts", i, d[i+1:min(i+2, len(d))])
	}
	for _, after := range []string{"file", "forward"} {
		if j := slices.Index(d, after); j < i {
			t.Errorf("%s (at %d) must come after multivalue (at %d)", after, j, i)
		}
	}
	for _, before := range []string{"prometheus", "cache", "dnssec", "log", "errors"} {
		if j := slices.Index(d, before); j < 0 || j > i {
			t.Errorf("%s (at %d) must come before multivalue (at %d)", before, j, i)
		}
	}
}

// TestStockPlugins: the build has every plugin SPEC.md lists, each both
// compiled in (registered with caddy) and placed in the order.
func TestStockPlugins(t *testing.T) {
	registered := caddy.ListPlugins()["others"] // "dns.NAME" for plugins of the dns server type
	for _, p := range []string{"acl", "any", "bind", "bufsize", "cache", "cancel", "chaos", "debug", "dnssec",
		"errors", "file", "forward", "header", "health", "hosts", "loadbalance", "local", "log", "metadata",
		"minimal", "nsid", "pprof", "prometheus", "ready", "reload", "rewrite", "root", "template", "timeouts",
		"transfer", "view", "whoami", "multivalue"} {
		if !slices.Contains(registered, "dns."+p) {
			t.Errorf("plugin %s is not compiled in", p)
		}
		if !slices.Contains(dnsserver.Directives, p) {
			t.Errorf("plugin %s is not in the directive order", p)
		}
	}
}

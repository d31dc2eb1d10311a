// Package directives holds the plugin order of the CoreDNS that cmd/coredns
// builds, shared with the tests that start CoreDNS in-process.
package directives

// Order is CoreDNS's own plugin order (plugin.cfg) restricted to the plugins
// cmd/coredns compiles in, with multivalue inserted right before hosts: it
// answers what it holds and hands the rest to hosts, file or forward. view
// comes last, as in plugin.cfg: it only marks its server block as filtered.
var Order = []string{
	"root",
	"metadata",
	"cancel",
	"timeouts",
	"reload",
	"nsid",
	"bufsize",
	"bind",
	"debug",
	"ready",
	"health",
	"pprof",
	"prometheus",
	"errors",
	"log",
	"local",
	"any",
	"chaos",
	"loadbalance",
	"rewrite",
	"acl",
	"cache",
	"header",
	"dnssec",
	"minimal",
	"template",
	"transfer",
	"multivalue",
	"hosts",
	"file",
	"forward",
	"whoami",
	"view",
}

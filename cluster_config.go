package multivalue

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	mwtls "github.com/coredns/coredns/plugin/pkg/tls"
)

// Cluster defaults (the spec's).
const (
	defaultClusterPrefix = "/multivalue/"
	defaultClusterLease  = 10 * time.Second
	defaultHealthyAbove  = 18 // percent, as Route 53
	defaultMinVoters     = 2
)

// clusterConn is what a cluster member connects with and publishes under: two
// configs with equal clusterConn share one member (one client, one lease), so
// a reload that keeps them keeps the lease. It is comparable.
type clusterConn struct {
	endpoints string // comma-separated, normalised URLs
	replica   string
	prefix    string // ends with "/"
	lease     time.Duration
	tlsArgs   string // the tls line's arguments, as written; "" without tls
	username  string
	password  string
}

// clusterRule is how a replica turns the votes into a verdict.
type clusterRule struct {
	healthyAbove int // percent, 0 to 99
	minVoters    int // 1 to 255
}

// clusterConfig is a `cluster etcd ...` line of a multivalue block.
type clusterConfig struct {
	conn clusterConn
	rule clusterRule
	tls  *tls.Config // loaded from tlsArgs; nil without tls

	file string // where it was given, for the error when blocks disagree
	line int
}

// same reports whether two blocks name the same cluster with the same
// settings.
func (c *clusterConfig) same(o *clusterConfig) bool { return c.conn == o.conn && c.rule == o.rule }

// endpointList is conn.endpoints as the etcd client wants them.
func (c *clusterConn) endpointList() []string { return strings.Split(c.endpoints, ",") }

// parseCluster reads `cluster etcd ENDPOINT... [{ ... }]`, its arguments
// having been read.
func parseCluster(p *parser, args []string) (*clusterConfig, error) {
	if args[0] != "etcd" {
		return nil, p.errf("cluster: unknown store %q, want etcd", args[0])
	}
	cc := &clusterConfig{
		conn: clusterConn{prefix: defaultClusterPrefix, lease: defaultClusterLease},
		rule: clusterRule{healthyAbove: defaultHealthyAbove, minVoters: defaultMinVoters},
		file: p.d.File(),
		line: p.at,
	}
	var tlsLine int
	if p.openBlock() {
		lines, err := p.block(options{
			prefix: "cluster: ",
			opts: map[string]option{
				"replica": {args: oneArg, set: func(args []string) error {
					if err := validReplica(args[0]); err != nil {
						return p.errf("cluster: replica %q %v", args[0], err)
					}
					cc.conn.replica = args[0]
					return nil
				}},
				"prefix": {args: oneArg, set: func(args []string) error {
					pre := args[0]
					if pre == "" || strings.ContainsFunc(pre, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
						return p.errf("cluster: prefix %q must be non-empty, without spaces or control characters", pre)
					}
					if !strings.HasSuffix(pre, "/") {
						pre += "/"
					}
					cc.conn.prefix = pre
					return nil
				}},
				"lease": {args: oneArg, set: func(args []string) error {
					d, err := time.ParseDuration(args[0])
					if err != nil || d < time.Second || d > time.Hour || d%time.Second != 0 {
						return p.errf("cluster: lease %q must be whole seconds from 1s to 1h (etcd leases count seconds)", args[0])
					}
					cc.conn.lease = d
					return nil
				}},
				"healthy_above": {args: oneArg, set: func(args []string) error {
					n, err := atoiDigits(strings.TrimSuffix(args[0], "%"))
					if err != nil || n > 99 {
						return p.errf("cluster: healthy_above %q must be a whole percentage from 0 to 99", args[0])
					}
					cc.rule.healthyAbove = n
					return nil
				}},
				"min_voters": {args: oneArg, set: func(args []string) error {
					n, err := atoiDigits(args[0])
					if err != nil || n < 1 || n > 255 {
						return p.errf("cluster: min_voters %q must be a whole number from 1 to 255", args[0])
					}
					cc.rule.minVoters = n
					return nil
				}},
				"tls": {args: arity{0, 3}, set: func(args []string) error {
					// As CoreDNS's etcd plugin: none (system roots), CACERT,
					// CERT KEY, or CERT KEY CACERT.
					c, err := mwtls.NewTLSConfigFromArgs(args...)
					if err != nil {
						return p.errf("cluster: tls: %v", err)
					}
					cc.tls, cc.conn.tlsArgs = c, "tls "+strings.Join(args, " ")
					return nil
				}},
				"credentials": {args: arity{2, 2}, argErr: "cluster: credentials needs a USER and a PASSWORD",
					set: func(args []string) error {
						if args[0] == "" {
							return p.errf("cluster: credentials: USER must not be empty")
						}
						cc.conn.username, cc.conn.password = args[0], args[1]
						return nil
					}},
			},
			other: func(opt string, _ []string) error { return p.errf("cluster: unknown option %q", opt) },
		})
		if err != nil {
			return nil, err
		}
		tlsLine = lines["tls"]
	}
	if cc.conn.replica == "" {
		h, err := os.Hostname()
		if err != nil || validReplica(h) != nil {
			return nil, p.errAt(cc.line, "cluster: no replica given and the host name %q cannot be one: set replica ID", h)
		}
		cc.conn.replica = h
	}
	var eps []string
	for _, a := range args[1:] {
		ep, err := normalizeEndpoint(a, cc.tls != nil)
		if err != nil {
			return nil, p.errAt(cc.line, "cluster: endpoint %q %v", a, err)
		}
		if cc.tls != nil && strings.HasPrefix(ep, "http://") {
			return nil, p.errAt(tlsLine, "cluster: tls with endpoint %s: use https://", ep)
		}
		eps = append(eps, ep)
	}
	if len(eps) == 0 {
		return nil, p.errAt(cc.line, "cluster etcd needs at least one ENDPOINT (like http://127.0.0.1:2379)")
	}
	cc.conn.endpoints = strings.Join(eps, ",")
	return cc, nil
}

// validReplica: a replica ID is one etcd key segment: printable, no slash.
func validReplica(id string) error {
	switch {
	case id == "" || len(id) > 128:
		return fmt.Errorf("must be 1 to 128 characters")
	case strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' || r == '"' || r == '\\' }):
		return fmt.Errorf("must not contain spaces, slashes, quotes or control characters")
	}
	return nil
}

// normalizeEndpoint turns HOST:PORT into a URL (https when tls is set) and
// checks a URL's scheme and host.
func normalizeEndpoint(s string, secure bool) (string, error) {
	if !strings.Contains(s, "://") {
		if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
			return "", fmt.Errorf("is neither a URL (http://HOST:PORT) nor HOST:PORT")
		}
		scheme := "http://"
		if secure {
			scheme = "https://"
		}
		s = scheme + s
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("must be http:// or https://")
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return "", fmt.Errorf("must be just a scheme, a host and a port")
	}
	return u.Scheme + "://" + u.Host, nil
}

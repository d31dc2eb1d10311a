package multivalue

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

func parseClusterBlock(t *testing.T, lines string) (*clusterConfig, error) {
	t.Helper()
	c := caddy.NewTestController("dns", "multivalue example.org {\n"+lines+"\n    records www A 127.0.0.1\n}")
	cfg, err := parse(c)
	if err != nil {
		return nil, err
	}
	return cfg.cluster, nil
}

func TestParseCluster(t *testing.T) {
	host, _ := os.Hostname()
	for _, tc := range []struct {
		input string
		want  clusterConfig
	}{
		{`cluster etcd http://127.0.0.1:2379`, clusterConfig{
			conn: clusterConn{endpoints: "http://127.0.0.1:2379", replica: host, prefix: "/multivalue/", lease: 10 * time.Second},
			rule: clusterRule{healthyAbove: 18, minVoters: 2},
		}},
		{`cluster etcd 127.0.0.1:2379 http://127.0.0.2:2379/ {
        replica dns-1
        prefix /mv
        lease 3s
        healthy_above 50%
        min_voters 3
        credentials coredns s3cret
    }`, clusterConfig{
			conn: clusterConn{endpoints: "http://127.0.0.1:2379,http://127.0.0.2:2379", replica: "dns-1", prefix: "/mv/", lease: 3 * time.Second,
				username: "coredns", password: "s3cret"},
			rule: clusterRule{healthyAbove: 50, minVoters: 3},
		}},
	} {
		got, err := parseClusterBlock(t, "    "+tc.input)
		if err != nil {
			t.Errorf("%s: %v", tc.input, err)
			continue
		}
		if got.conn != tc.want.conn || got.rule != tc.want.rule {
			t.Errorf("%s:\ngot  %+v %+v\nwant %+v %+v", tc.input, got.conn, got.rule, tc.want.conn, tc.want.rule)
		}
	}
	// tls without arguments: the system roots, https.
	got, err := parseClusterBlock(t, "    cluster etcd 127.0.0.1:2379 {\n        replica r1\n        tls\n    }")
	if err != nil {
		t.Fatal(err)
	}
	if got.tls == nil || got.conn.endpoints != "https://127.0.0.1:2379" {
		t.Errorf("tls: config %v, endpoints %s; want a TLS config and https", got.tls, got.conn.endpoints)
	}
}

func TestParseClusterErrors(t *testing.T) {
	for _, tc := range []struct {
		lines string
		line  int
		err   string
	}{
		{"cluster", 2, "cluster needs a store and its endpoints"},
		{"cluster consul http://127.0.0.1:8500", 2, `unknown store "consul", want etcd`},
		{"cluster etcd", 2, "at least one ENDPOINT"},
		{"cluster etcd ftp://127.0.0.1:2379", 2, "must be http:// or https://"},
		{"cluster etcd 127.0.0.1", 2, "neither a URL"},
		{"cluster etcd http://127.0.0.1:2379/v3/kv", 2, "just a scheme, a host and a port"},
		{"cluster etcd http://127.0.0.1:2379 {\n replica\n}", 3, "wrong number of arguments for replica"},
		{"cluster etcd http://127.0.0.1:2379 {\n replica a/b\n}", 3, `replica "a/b" must not contain`},
		{"cluster etcd http://127.0.0.1:2379 {\n lease 500ms\n}", 3, "lease \"500ms\" must be whole seconds"},
		{"cluster etcd http://127.0.0.1:2379 {\n lease 1500ms\n}", 3, "must be whole seconds"},
		{"cluster etcd http://127.0.0.1:2379 {\n lease soon\n}", 3, "must be whole seconds"},
		{"cluster etcd http://127.0.0.1:2379 {\n healthy_above 100\n}", 3, "from 0 to 99"},
		{"cluster etcd http://127.0.0.1:2379 {\n healthy_above -1\n}", 3, "from 0 to 99"},
		{"cluster etcd http://127.0.0.1:2379 {\n min_voters 0\n}", 3, "from 1 to 255"},
		{"cluster etcd http://127.0.0.1:2379 {\n\n min_voters 256\n}", 4, "from 1 to 255"},
		{"cluster etcd http://127.0.0.1:2379 {\n credentials alice\n}", 3, "credentials needs a USER and a PASSWORD"},
		{"cluster etcd http://127.0.0.1:2379 {\n tls /nonexistent/cert.pem /nonexistent/key.pem /nonexistent/ca.pem\n}", 3, "cluster: tls:"},
		{"cluster etcd http://127.0.0.1:2379 {\n tls\n}", 3, "use https://"},
		{"cluster etcd http://127.0.0.1:2379 {\n replica a\n replica b\n}", 4, "replica given twice (first on line 3)"},
		{"cluster etcd http://127.0.0.1:2379 {\n ttl 5\n}", 3, `cluster: unknown option "ttl"`},
		{"cluster etcd http://127.0.0.1:2379\n cluster etcd http://127.0.0.1:2379", 3, "cluster given twice"},
	} {
		_, err := parseClusterBlock(t, tc.lines)
		if err == nil {
			t.Errorf("%q: no error", tc.lines)
			continue
		}
		prefix := fmt.Sprintf("Testfile:%d - Error during parsing: ", tc.line)
		if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q:\nerror %q\nwant  %q...%q", tc.lines, err, prefix, tc.err)
		}
	}
}

// TestClusterSameInEveryBlock: two server blocks of one Corefile naming
// different clusters are refused, on the second's line; the same cluster,
// or a block without one, is fine.
func TestClusterSameInEveryBlock(t *testing.T) {
	block := func(zone, cluster string) string {
		return fmt.Sprintf("%s:0 {\n    bind 127.0.0.1\n    multivalue {\n        %s\n        records www A 127.0.0.1\n    }\n}\n", zone, cluster)
	}
	const a = "cluster etcd http://127.0.0.1:1 { replica r1 }"
	for _, tc := range []struct {
		name, corefile, err string
	}{
		{"same", block("a.example.", a) + block("b.example.", a), ""},
		{"one without", block("a.example.", a) + block("b.example.", ""), ""},
		{"other endpoint", block("a.example.", a) + block("b.example.", "cluster etcd http://127.0.0.1:2 { replica r1 }"),
			"Corefile:11 - Error during parsing: cluster differs from the one on Corefile:4"},
		{"other rule", block("a.example.", a) + block("b.example.", "cluster etcd http://127.0.0.1:1 { replica r1 \n healthy_above 50 }"),
			"cluster differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := setupOnly(tc.corefile)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// setupOnly runs the setup of every plugin of a Corefile, as CoreDNS does
// before it starts anything, and returns the first error. Nothing starts.
func setupOnly(corefile string) error {
	return caddy.ValidateAndExecuteDirectives(caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"}, nil, true)
}

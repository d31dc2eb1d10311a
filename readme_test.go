package multivalue

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/miekg/dns"
)

// corefilesFromReadme returns the body of every ~~~ corefile block.
func corefilesFromReadme(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur strings.Builder
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		switch {
		case line == "~~~ corefile" || line == "``` corefile":
			in = true
		case in && (line == "~~~" || line == "```"):
			blocks = append(blocks, cur.String())
			cur.Reset()
			in = false
		case in:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// TestReadmeCorefiles starts CoreDNS with every Corefile of the README, so the
// documentation cannot drift from the parser. Their 192.0.2.x and 2001:db8::
// targets are never probed: the test binary's dial guard refuses them.
func TestReadmeCorefiles(t *testing.T) {
	readme, err := filepath.Abs("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := corefilesFromReadme(t, readme)
	if len(blocks) < 2 {
		t.Fatalf("found %d corefile blocks in the README, want the examples", len(blocks))
	}
	// The examples' zone file, in a directory of their own.
	t.Chdir(t.TempDir())
	zone := "$ORIGIN example.org.\n@ 3600 IN SOA ns.example.org. hostmaster.example.org. 1 7200 3600 1209600 300\n"
	if err := os.WriteFile("db.example.org", []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	writeDNSSECKey(t, ".", "Kexample.org.+013+45330") // the dnssec example's key
	// The examples' admin token; their admin addresses move to a free
	// loopback port, their files into the directory.
	if err := os.WriteFile("admin.token", []byte("example-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	adminAddr := regexp.MustCompile(`admin \S*:8053`)
	filePaths := strings.NewReplacer("token_file /etc/coredns/", "token_file ", "state_file /var/lib/coredns/", "state_file ")
	defer func(p string) { dnsserver.Port = p }(dnsserver.Port)
	for i, body := range blocks {
		dnsserver.Port = freeTCPPort(t)
		body = filePaths.Replace(adminAddr.ReplaceAllString(body, "admin 127.0.0.1:"+freeTCPPort(t)))
		inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(onLoopback(body)), Filepath: "Corefile", ServerTypeName: "dns"})
		if err != nil {
			t.Errorf("README corefile %d does not start: %v\n%s", i+1, err, body)
			continue
		}
		// Stopping a server before its goroutines serve races in caddy (the
		// stop finds nothing to close); wait until both listeners answer.
		waitServing(t, net.JoinHostPort("127.0.0.1", dnsserver.Port))
		if errs := inst.ShutdownCallbacks(); len(errs) > 0 {
			t.Errorf("README corefile %d: shutdown: %v", i+1, errs)
		}
		if err := inst.Stop(); err != nil {
			t.Errorf("README corefile %d: stop: %v", i+1, err)
		}
		inst.Wait()
	}
}

// TestReadmeSections: the README has CoreDNS's plugin README sections and
// documents every metric.
func TestReadmeSections(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, h := range []string{"## Quick start", "## Name", "## Description", "## Syntax", "## Examples", "## Metrics", "## Ready", "## Operating", "## See Also"} {
		if !strings.Contains(readme, "\n"+h+"\n") {
			t.Errorf("README lacks section %q", h)
		}
	}
	for _, m := range []string{"healthy", "checks_total", "check_duration_seconds", "transitions_total", "responses_total", "overrides", "last_transition_timestamp_seconds"} {
		if !strings.Contains(readme, "coredns_multivalue_"+m+"{") {
			t.Errorf("README's Metrics section does not document coredns_multivalue_%s", m)
		}
	}
}

// waitServing waits until a DNS server answers on addr over UDP and TCP.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 200 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion("example.org.", dns.TypeSOA)
		if !eventually(3*time.Second, func() bool { _, _, err := c.Exchange(m, addr); return err == nil }) {
			t.Fatalf("no answer over %s from %s", network, addr)
		}
	}
}

// onLoopback adds `bind 127.0.0.1` to every server block of a Corefile, so a
// test listens on loopback only.
func onLoopback(corefile string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(corefile, "\n") {
		b.WriteString(line)
		if len(line) > 0 && line[0] != ' ' && line[0] != '\t' && strings.HasSuffix(strings.TrimSpace(line), "{") {
			b.WriteString("    bind 127.0.0.1\n")
		}
	}
	return b.String()
}

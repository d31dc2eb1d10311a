package multivalue

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const alertRulesFile = "examples/prometheus/multivalue.rules.yml"

// alertExprs returns the alerts of a rules file by name, with their
// expressions: `expr:` on one line or as a block scalar. A scanner, not a
// YAML parser: enough for the file it tests, and it fails rather than skip.
func alertExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	var alert string
	var block []string
	blockIndent := -1
	s := bufio.NewScanner(f)
	flush := func() {
		if block != nil {
			out[alert] = strings.Join(block, "\n")
			block, blockIndent = nil, -1
		}
	}
	for s.Scan() {
		line := s.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if blockIndent >= 0 {
			if trimmed == "" || indent > blockIndent {
				block = append(block, trimmed)
				continue
			}
			flush()
		}
		switch {
		case strings.HasPrefix(trimmed, "- alert:"):
			alert = strings.TrimSpace(strings.TrimPrefix(trimmed, "- alert:"))
		case strings.HasPrefix(trimmed, "expr:"):
			e := strings.TrimSpace(strings.TrimPrefix(trimmed, "expr:"))
			if e == "|" || e == ">" || e == "|-" || e == ">-" {
				block, blockIndent = []string{}, indent
				continue
			}
			out[alert] = e
		}
	}
	flush()
	return out
}

// TestAlertRules: the rules file has the four alerts, every metric and label
// they use is one the plugin exports (or a label Prometheus adds), and,
// where promtool is installed, the rules pass promtool's check and their unit
// tests (.ci/run installs it).
func TestAlertRules(t *testing.T) {
	exprs := alertExprs(t, alertRulesFile)
	for _, name := range []string{"MultivalueSetNoHealthyValue", "MultivalueValueFlapping", "MultivalueZoneChecksFailing", "MultivalueOverrideLongLived"} {
		if exprs[name] == "" {
			t.Errorf("no alert %s in %s", name, alertRulesFile)
		}
	}
	known := describeCollectors(t)
	targetLabels := map[string]bool{"job": true, "instance": true}
	for name, expr := range exprs {
		metrics, labelNames := promqlNames(expr)
		if len(metrics) == 0 {
			t.Errorf("%s: no metric in %q", name, expr)
		}
		allowed := map[string]bool{}
		for _, m := range metrics {
			ls, ok := known[m]
			if !ok {
				t.Errorf("%s: %s is not a metric of the plugin", name, m)
			}
			for l := range ls {
				allowed[l] = true
			}
		}
		for _, l := range labelNames {
			if !allowed[l] && !targetLabels[l] {
				t.Errorf("%s: label %q is not a label of %v", name, l, metrics)
			}
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus): rule unit tests not run")
	}
	for _, args := range [][]string{{"check", "rules", "multivalue.rules.yml"}, {"test", "rules", "multivalue.rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "examples/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

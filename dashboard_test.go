package multivalue

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const dashboardFile = "examples/grafana/multivalue.json"

// grafanaDashboard is the part of Grafana's dashboard model the tests read.
type grafanaDashboard struct {
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	SchemaVersion int            `json:"schemaVersion"`
	Inputs        []grafanaInput `json:"__inputs"`
	Panels        []struct {
		ID         int                `json:"id"`
		Type       string             `json:"type"`
		Title      string             `json:"title"`
		Datasource *grafanaDatasource `json:"datasource"`
		GridPos    *struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			Expr       string             `json:"expr"`
			RefID      string             `json:"refId"`
			Datasource *grafanaDatasource `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"` // a string or {"query": "..."}
		} `json:"list"`
	} `json:"templating"`
}

type grafanaInput struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) *grafanaDashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// TestDashboardImportable checks what Grafana's import needs: a title and
// uid, a Prometheus data source input every panel and query uses, panels
// with a place on the grid and queries, and every variable a query refers
// to defined.
func TestDashboardImportable(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" || len(d.UID) > 40 {
		t.Errorf("title %q, uid %q: want both, uid at most 40 characters", d.Title, d.UID)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a Grafana 10+ dashboard (>= 36)", d.SchemaVersion)
	}
	if !slices.Contains(d.Inputs, grafanaInput{Name: "DS_PROMETHEUS", Type: "datasource", PluginID: "prometheus"}) {
		t.Errorf("no DS_PROMETHEUS prometheus datasource in __inputs: %+v", d.Inputs)
	}

	vars := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, want := range []string{"DS_PROMETHEUS", "server", "zone", "name"} {
		if !vars[want] {
			t.Errorf("no template variable %q", want)
		}
	}
	wantDS := grafanaDatasource{Type: "prometheus", UID: "${DS_PROMETHEUS}"}
	varRef := regexp.MustCompile(`\$\{?(\w+)`)
	checkVars := func(where, expr string) {
		for _, m := range varRef.FindAllStringSubmatch(expr, -1) {
			if !vars[m[1]] {
				t.Errorf("%s: undefined variable $%s in %q", where, m[1], expr)
			}
		}
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if p.Title == "" || p.Type == "" || p.ID == 0 || ids[p.ID] {
			t.Errorf("panel %d %q of type %q: want a unique id, a title and a type", p.ID, p.Title, p.Type)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit Grafana's 24 columns", p.Title, p.GridPos)
		}
		if p.Datasource == nil || *p.Datasource != wantDS {
			t.Errorf("panel %q: datasource %+v, want %+v", p.Title, p.Datasource, wantDS)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] {
				t.Errorf("panel %q: query %+v needs an expr and a unique refId", p.Title, q)
			}
			refs[q.RefID] = true
			if q.Datasource == nil || *q.Datasource != wantDS {
				t.Errorf("panel %q: query datasource %+v, want %+v", p.Title, q.Datasource, wantDS)
			}
			checkVars("panel "+p.Title, q.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q := variableQuery(t, v.Query); v.Type == "query" {
			checkVars("variable "+v.Name, q)
		}
	}
}

// TestDashboardMetrics checks every metric and label the dashboard queries
// against the collectors of metrics.go, so that renaming a metric or a label
// fails here and not silently on someone's screen; and that each collector is
// on the dashboard.
func TestDashboardMetrics(t *testing.T) {
	known := describeCollectors(t)
	d := loadDashboard(t)

	used := map[string]bool{}
	check := func(where, expr string, metrics, labelNames []string) {
		if len(metrics) == 0 {
			t.Errorf("%s: no metric found in %q", where, expr)
		}
		allowed := map[string]bool{}
		for _, m := range metrics {
			ls, ok := known[m]
			if !ok {
				t.Errorf("%s: metric %s is not exported by the plugin (query %q)", where, m, expr)
				continue
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")] = true
			for l := range ls {
				allowed[l] = true
			}
		}
		for _, l := range labelNames {
			if !allowed[l] {
				t.Errorf("%s: label %q is not a label of %v (query %q)", where, l, metrics, expr)
			}
		}
	}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			metrics, labelNames := promqlNames(q.Expr)
			check("panel "+p.Title, q.Expr, metrics, labelNames)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\s*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := variableQuery(t, v.Query)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, q)
			continue
		}
		metrics, labelNames := promqlNames(m[1])
		check("variable "+v.Name, q, metrics, append(labelNames, m[2]))
	}
	for name := range known {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !used[base] {
			t.Errorf("no panel shows %s", base)
		}
	}
}

// describeCollectors returns the series names the plugin exports, with their
// labels: a histogram's as _bucket (with le), _sum and _count.
func describeCollectors(t *testing.T) map[string]map[string]bool {
	t.Helper()
	desc := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	known := map[string]map[string]bool{}
	collectors := []prometheus.Collector{defaultEngine.metrics.healthy, defaultEngine.metrics.checksTotal, defaultEngine.metrics.checkDuration, defaultEngine.metrics.transitions, defaultEngine.metrics.responses,
		defaultEngine.metrics.overrides, defaultEngine.metrics.lastChange}
	collectors = append(collectors, defaultEngine.metrics.clusterCollectors()...)
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			m := desc.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name and labels of %s", d)
			}
			labels := map[string]bool{}
			for _, l := range strings.Split(m[2], ",") {
				if l != "" {
					labels[l] = true
				}
			}
			if _, hist := c.(*prometheus.HistogramVec); hist {
				withLE := map[string]bool{"le": true}
				for l := range labels {
					withLE[l] = true
				}
				known[m[1]+"_bucket"] = withLE
				known[m[1]+"_sum"] = labels
				known[m[1]+"_count"] = labels
				continue
			}
			known[m[1]] = labels
		}
	}
	if len(known) < 5 {
		t.Fatalf("described only %v", known)
	}
	return known
}

func variableQuery(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("variable query %s: %v", raw, err)
	}
	return obj.Query
}

// promqlNames returns the metric names and the label names (in matchers and
// in by/without/on/ignoring lists) of a PromQL expression. It is a scanner,
// not a parser: enough for the dashboard's queries, and it fails the test
// (an unknown "metric") rather than skip what it does not understand.
func promqlNames(expr string) (metrics, labelNames []string) {
	matcher := regexp.MustCompile(`([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)`)
	keywords := map[string]bool{"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true}
	// Aggregations may come before their parentheses: sum by (x) (...).
	for _, a := range []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"} {
		keywords[a] = true
	}
	lists := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	isIdent := func(b byte, first bool) bool {
		return b == '_' || b == ':' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (!first && b >= '0' && b <= '9')
	}
	// until returns the index of the first closing byte after i, skipping
	// quoted strings.
	until := func(i int, closing byte) int {
		for ; i < len(expr) && expr[i] != closing; i++ {
			if q := expr[i]; q == '"' || q == '\'' || q == '`' {
				for i++; i < len(expr) && expr[i] != q; i++ {
					if expr[i] == '\\' {
						i++
					}
				}
			}
		}
		return i
	}
	stripStrings := regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	for i := 0; i < len(expr); {
		b := expr[i]
		switch {
		case b == '"' || b == '\'' || b == '`':
			i = until(i+1, b) + 1
		case b == '{':
			end := until(i+1, '}')
			for _, m := range matcher.FindAllStringSubmatch(stripStrings.ReplaceAllString(expr[i+1:min(end, len(expr))], `""`), -1) {
				labelNames = append(labelNames, m[1])
			}
			i = end + 1
		case b == '[':
			i = until(i+1, ']') + 1
		case b == '$': // a Grafana variable
			for i++; i < len(expr) && (expr[i] == '{' || expr[i] == '}' || isIdent(expr[i], false)); i++ {
			}
		case b >= '0' && b <= '9' || b == '.':
			for i++; i < len(expr) && (isIdent(expr[i], false) || expr[i] == '.'); i++ {
			}
		case isIdent(b, true):
			start := i
			for i++; i < len(expr) && isIdent(expr[i], false); i++ {
			}
			word := expr[start:i]
			next := strings.TrimLeft(expr[i:], " \t\n")
			switch {
			case lists[word]:
				if strings.HasPrefix(next, "(") {
					open := len(expr) - len(next)
					end := until(open+1, ')')
					for _, l := range strings.Split(expr[open+1:min(end, len(expr))], ",") {
						if l = strings.TrimSpace(l); l != "" {
							labelNames = append(labelNames, l)
						}
					}
					i = end + 1
				}
			case keywords[word], strings.HasPrefix(next, "("): // a function or aggregation
			default:
				metrics = append(metrics, word)
			}
		default:
			i++
		}
	}
	return metrics, labelNames
}

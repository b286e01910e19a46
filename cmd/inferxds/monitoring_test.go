package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v4"
)

var monitoringDir = filepath.Join("..", "..", "deploy", "monitoring")

// alertExpressions are the expressions of every rule in alerts.yaml, by
// alert name.
func alertExpressions(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(monitoringDir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	return out
}

// dashboardExpressions are the queries of every panel, by panel title.
func dashboardExpressions(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(monitoringDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			out["panel "+p.Title] += target.Expr + "\n"
		}
	}
	return out
}

var metricName = regexp.MustCompile(`inferxds_[a-z0-9_]+`)

// TestMonitoringNamesServedMetrics: every inferxds metric an alert rule
// queries is exposed by a fresh serve before any proxy connects, so no
// alert waits on a series that never exists; every metric a dashboard
// panel queries is exposed once a proxy has its view (pushes are counted
// per view).
func TestMonitoringNamesServedMetrics(t *testing.T) {
	s := startServe(t)
	alerts := alertExpressions(t)
	checkQueries(t, s.scrape(t), alerts)
	if _, err := s.dump(t, "az-1", false); err != nil {
		t.Fatal(err)
	}
	checkQueries(t, s.scrape(t), dashboardExpressions(t))
}

func checkQueries(t *testing.T, served map[string]*dto.MetricFamily, queries map[string]string) {
	t.Helper()
	if len(queries) < 10 {
		t.Fatalf("read only %d queries", len(queries))
	}
	for where, expr := range queries {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s queries no inferxds metric: %s", where, expr)
		}
		for _, name := range names {
			if !isServed(served, name) {
				t.Errorf("%s queries %s, which serve does not expose", where, name)
			}
		}
	}
}

// isServed accepts a histogram's _bucket, _sum and _count series by the
// histogram's name.
func isServed(families map[string]*dto.MetricFamily, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, ok := families[base]; ok {
				return true
			}
		}
	}
	return false
}

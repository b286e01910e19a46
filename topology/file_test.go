package topology_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferxds/inferxds/internal/filewatch"
	"github.com/inferxds/inferxds/topology"
)

const goodFleet = `zones:
  - {name: az-1, role: active}
  - {name: az-2, role: standby}
nodes:
  - name: n1
    zone: az-1
    gpus:
      - {index: 0, memoryTotalMiB: 81920}
      - {index: 1, memoryTotalMiB: 81920}
instances:
  - {name: b, model: m, node: n1, gpus: [1], address: 127.0.0.1, port: 18001}
  - {name: a, model: m, zone: az-2, address: model.example, port: 18002, tier: warm, role: standby}
`

func TestParseFleetAppliesDefaultsAndSorts(t *testing.T) {
	f, err := topology.ParseFleet("fleet.yaml", []byte(goodFleet))
	if err != nil {
		t.Fatal(err)
	}
	if f.Instances[0].Name != "a" || f.Instances[1].Name != "b" {
		t.Fatalf("instances not sorted by name: %+v", f.Instances)
	}
	b := f.Instances[1]
	if b.Zone != "az-1" || b.Tier != topology.TierHot || b.Role != topology.RolePrimary || b.Health != topology.HealthServing || !b.Serving() {
		t.Errorf("defaults not applied to b: %+v", b)
	}
}

func TestParseFleetReportsFileLineAndField(t *testing.T) {
	// base is goodFleet with its instances list replaced; instances start at line 10.
	base := goodFleet[:strings.Index(goodFleet, "instances:")] + "instances:\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key", base + "  - name: x\n    colour: red\n",
			[]string{`fleet.yaml:12: instances[0].colour: unknown key "colour"`}},
		{"telemetry age duration", strings.Replace(goodFleet, "zone: az-1\n", "zone: az-1\n    telemetryAge: soon\n", 1),
			[]string{`fleet.yaml:7: nodes[0].telemetryAge: cannot unmarshal`}},
		{"zone role", strings.Replace(goodFleet, "role: standby}", "role: passive}", 1),
			[]string{`fleet.yaml:3: zones[1].role: must be active or standby (got "passive")`}},
		{"duplicate zone", strings.Replace(goodFleet, "az-2, role: standby", "az-1, role: standby", 1),
			[]string{`fleet.yaml:3: zones[1].name: duplicate zone name "az-1" (first at fleet.yaml:2)`}},
		{"node in unknown zone", strings.Replace(goodFleet, "zone: az-1", "zone: az-9", 1),
			[]string{`fleet.yaml:6: nodes[0].zone: zone "az-9" is not defined under zones`}},
		{"duplicate GPU index", strings.Replace(goodFleet, "index: 1,", "index: 0,", 1),
			[]string{`fleet.yaml:9: nodes[0].gpus[1].index: duplicate GPU index "0" (first at fleet.yaml:8)`}},
		{"unknown node", base + "  - {name: x, model: m, node: n9, address: 127.0.0.1, port: 1}\n",
			[]string{`fleet.yaml:11: instances[0].node: node "n9" is not defined under nodes`}},
		{"no node and no zone", base + "  - {name: x, model: m, address: 127.0.0.1, port: 1}\n",
			[]string{`fleet.yaml:11: instances[0].zone: is required`}},
		{"zone disagrees with node", base + "  - {name: x, model: m, node: n1, zone: az-2, address: 127.0.0.1, port: 1}\n",
			[]string{`fleet.yaml:11: instances[0].zone: zone "az-2" differs from node n1's zone "az-1"`}},
		{"missing GPU", base + "  - name: x\n    model: m\n    node: n1\n    gpus: [0, 7]\n    address: 127.0.0.1\n    port: 1\n",
			[]string{`fleet.yaml:14: instances[0].gpus[1]: node n1 has no GPU 7`}},
		{"enums", base + "  - name: x\n    model: m\n    zone: az-1\n    address: 127.0.0.1\n    port: 1\n    tier: tepid\n    role: boss\n    health: fine\n",
			[]string{`fleet.yaml:16: instances[0].tier: must be hot, warm or cold (got "tepid")`,
				`fleet.yaml:17: instances[0].role: must be primary or standby (got "boss")`,
				`fleet.yaml:18: instances[0].health: must be one of serving, unhealthy, draining, loading, unknown (got "fine")`}},
		{"port and address", base + "  - name: x\n    model: m\n    zone: az-1\n    address: not an address\n    port: 70000\n",
			[]string{`fleet.yaml:14: instances[0].address: must be an IP address or a hostname (got "not an address")`,
				`fleet.yaml:15: instances[0].port: must be between 1 and 65535 (got 70000)`}},
		{"missing port", base + "  - {name: x, model: m, zone: az-1, address: 127.0.0.1}\n",
			[]string{`fleet.yaml:11: instances[0].port: must be between 1 and 65535 (got 0)`}},
		{"warm without address", base + "  - {name: x, model: m, zone: az-1, tier: warm, role: standby}\n",
			[]string{`fleet.yaml:11: instances[0].address: must be an IP address or a hostname (got "")`}},
		{"cold with address but no port", base + "  - {name: x, model: m, zone: az-1, address: 127.0.0.1, tier: cold, role: standby}\n",
			[]string{`fleet.yaml:11: instances[0].port: must be between 1 and 65535 (got 0)`}},
		{"same address twice", base + "  - {name: x, model: m, zone: az-1, address: 127.0.0.1, port: 9}\n  - {name: y, model: n, zone: az-1, address: 127.0.0.1, port: 9}\n",
			[]string{`fleet.yaml:12: instances[1].port: duplicate address "127.0.0.1:9" (first at fleet.yaml:11)`}},
		{"weight", base + "  - {name: x, model: m, zone: az-1, address: 127.0.0.1, port: 9, weight: 129}\n",
			[]string{`fleet.yaml:11: instances[0].weight: must be at most 128 (got 129)`}},
		{"bad model name", base + "  - {name: x, model: My_Model, zone: az-1, address: 127.0.0.1, port: 9}\n",
			[]string{`fleet.yaml:11: instances[0].model: model name "My_Model" is not a valid name`}},
		{"duplicate instance", base + "  - {name: x, model: m, zone: az-1, address: 127.0.0.1, port: 9}\n  - {name: x, model: m, zone: az-1, address: 127.0.0.1, port: 10}\n",
			[]string{`fleet.yaml:12: instances[1].name: duplicate instance name "x" (first at fleet.yaml:11)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := topology.ParseFleet("fleet.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseFleet succeeded (%+v); want errors %q", f, tt.want)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestParseFleetAcceptsColdInstanceWithoutAddress(t *testing.T) {
	f, err := topology.ParseFleet("fleet.yaml", []byte(goodFleet+"  - {name: c, model: m, zone: az-2, tier: cold, role: standby}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := f.Instances[2]; c.Name != "c" || c.Address != "" || c.Port != 0 || c.Serving() {
		t.Errorf("instances[2] = %+v; want cold instance c, with no address, not serving", c)
	}
}

func TestValidateBuiltFleetNamesFieldsWithoutFile(t *testing.T) {
	f := &topology.Fleet{
		Zones:     []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
		Instances: []topology.Instance{{Name: "x", Model: "m", Zone: "az-1", Address: "127.0.0.1", Port: 1, Weight: 500}},
	}
	f.ApplyDefaults()
	err := f.Validate()
	if err == nil || err.Error() != "instances[0].weight: must be at most 128 (got 500)" {
		t.Errorf("Validate() = %v", err)
	}
}

func TestWatchFileFollowsEdits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write(goodFleet)

	type loaded struct {
		fleet *topology.Fleet
		err   error
	}
	ctx, cancel := context.WithCancel(context.Background())
	loads := make(chan loaded, 16)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		if err := topology.WatchFile(ctx, path, filewatch.Options{Debounce: 10 * time.Millisecond}, func(f *topology.Fleet, err error) { loads <- loaded{f, err} }); err != nil {
			t.Errorf("WatchFile: %v", err)
		}
	}()
	next := func(what string, ok func(loaded) bool) loaded {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case l := <-loads:
				if ok(l) {
					return l
				}
			case <-timeout:
				t.Fatalf("no load with %s within 5s", what)
			}
		}
	}
	port := func(p uint32) func(loaded) bool {
		return func(l loaded) bool { return l.err == nil && l.fleet.Instances[1].Port == p }
	}

	next("the initial fleet", port(18001))
	write(strings.Replace(goodFleet, "18001", "18005", 1))
	next("the edited port", port(18005))
	write(strings.Replace(goodFleet, "18001", "0", 1))
	broken := next("an error", func(l loaded) bool { return l.err != nil })
	if want := path + ":11: instances[0].port"; !strings.Contains(broken.err.Error(), want) {
		t.Errorf("error %v does not contain %q", broken.err, want)
	}
	write(goodFleet)
	next("the fixed fleet", port(18001))
}

// TestFleetParserAgreesWithParseFleet feeds a FleetParser every line prefix
// of the example fleet (a file caught half-written), then edits of it, and
// checks each result, fleet or error, is what a whole parse gives.
func TestFleetParserAgreesWithParseFleet(t *testing.T) {
	data, err := os.ReadFile("../deploy/examples/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	full := string(data)
	inputs := linePrefixes(full)
	for _, edit := range [][2]string{
		{"port: 18101", "port: 18999"},                                // one item changed
		{"    role: active\n", "    role: active\n    colour: red\n"}, // unknown key, lines move
		{"gpus: [0], address", "gpus: [0, address"},                   // syntax error inside an item
		{"instances:\n", "instances: []\nzones: []\n"},                // a key twice
		{"zones:\n", "zones: &z\n"},                                   // an anchor
		{"  - name: az-3\n", "- name: az-3\n"},                        // an item at the wrong indent
	} {
		inputs = append(inputs, strings.Replace(full, edit[0], edit[1], 1))
	}
	var p topology.FleetParser
	for _, in := range inputs {
		want, wantErr := topology.ParseFleet("fleet.yaml", []byte(in))
		got, gotErr := p.Parse("fleet.yaml", []byte(in))
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) || !want.Equal(got) {
			t.Fatalf("input:\n%s\nwhole parse: %v\n%+v\nFleetParser: %v\n%+v", in, wantErr, want, gotErr, got)
		}
	}
}

// linePrefixes are the texts a reader may see while a file is written line
// by line.
func linePrefixes(text string) []string {
	var out []string
	for i := range len(text) {
		if text[i] == '\n' {
			out = append(out, text[:i+1])
		}
	}
	return out
}

package topology_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/topology"
)

// fleetFile writes a fleet file of models × perModel instances over three
// zones, eight GPUs a node, one instance a GPU: the scale of the "one-line
// edit of a 10,000-instance fleet file" target.
func fleetFile(models, perModel int) []byte {
	var b strings.Builder
	b.WriteString("zones:\n  - {name: az-1, role: active}\n  - {name: az-2, role: active}\n  - {name: az-3, role: standby}\n")
	nodes := (models*perModel + 7) / 8
	b.WriteString("nodes:\n")
	for n := range nodes {
		fmt.Fprintf(&b, "  - name: node-%d\n    zone: az-%d\n    gpus:\n", n, n%3+1)
		for g := range 8 {
			fmt.Fprintf(&b, "      - {index: %d, model: NVIDIA A100-SXM4-80GB, memoryTotalMiB: 81920}\n", g)
		}
	}
	b.WriteString("instances:\n")
	for m := range models {
		for i := range perModel {
			k := m*perModel + i
			fmt.Fprintf(&b, "  - {name: model-%d-%d, model: model-%d, node: node-%d, gpus: [%d], address: 10.%d.%d.%d, port: 8000}\n",
				m, i, m, k/8, k%8, k>>16, (k>>8)&255, k&255)
		}
	}
	return []byte(b.String())
}

// BenchmarkLoadFleet10k parses and validates a 10,000-instance fleet file
// (500 models × 20), alternating between it and a one-line edit of it, the
// way a watched file is read.
func BenchmarkLoadFleet10k(b *testing.B) { benchmarkEdits(b, topology.ParseFleet) }

// BenchmarkLoadFleet10kEdit is the same through a FleetParser, as the fleet
// file watcher reads it: only the edited instance is parsed again.
func BenchmarkLoadFleet10kEdit(b *testing.B) {
	var p topology.FleetParser
	benchmarkEdits(b, p.Parse)
}

func benchmarkEdits(b *testing.B, parse func(string, []byte) (*topology.Fleet, error)) {
	data := fleetFile(500, 20)
	edited := []byte(strings.Replace(string(data), "model-7-3, node", "model-7-3, weight: 5, node", 1))
	if _, err := parse("fleet.yaml", data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := data
		if i%2 == 0 {
			in = edited
		}
		if _, err := parse("fleet.yaml", in); err != nil {
			b.Fatal(err)
		}
	}
}

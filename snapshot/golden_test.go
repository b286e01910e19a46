package snapshot

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

var update = flag.Bool("update", false, "rewrite testdata/out from testdata/in and delete orphan outputs")

// goldenInput is one testdata/in case: the group asking and its inputs.
type goldenInput struct {
	Group  string          `yaml:"group"`
	Fleet  topology.Fleet  `yaml:"fleet"`
	Policy drpolicy.Policy `yaml:"policy"`
}

func loadGoldenInput(t testing.TB, path string) goldenInput {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var in goldenInput
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	in.Fleet.ApplyDefaults()
	in.Policy.ApplyDefaults()
	return in
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	made := map[string]bool{}
	ran := map[string]bool{}
	for _, path := range inputs {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			ran[name] = true
			in := loadGoldenInput(t, path)
			for file, content := range goldenOutputs(t, in) {
				made[file] = true
				compareGolden(t, filepath.Join("testdata/out", file), content)
			}
		})
	}
	checkOrphans(t, inputs, ran, made)
}

// goldenOutputs renders a case as its output files: one per resource type,
// or the error alone.
func goldenOutputs(t *testing.T, in goldenInput) map[string][]byte {
	name := filepath.Base(t.Name())
	r, err := Translate(&in.Fleet, &in.Policy, in.Group)
	if err != nil {
		return map[string][]byte{name + ".error.txt": []byte(err.Error() + "\n")}
	}
	return map[string][]byte{
		name + ".listeners.yaml": resourcesYAML(t, r.Listeners),
		name + ".routes.yaml":    resourcesYAML(t, r.Routes),
		name + ".clusters.yaml":  resourcesYAML(t, r.Clusters),
		name + ".endpoints.yaml": resourcesYAML(t, r.Endpoints),
	}
}

// resourcesYAML writes resources as a YAML list with Envoy's field names.
// protojson varies its whitespace on purpose; re-encoding as YAML makes the
// bytes stable.
func resourcesYAML[M proto.Message](t *testing.T, resources []M) []byte {
	t.Helper()
	parts := make([][]byte, len(resources))
	for i, m := range resources {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		parts[i] = b
	}
	json := append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
	out, err := k8syaml.JSONToYAML(json)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./snapshot -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what translation gives now (run go test ./snapshot -update and review the diff):\n%s", path, got)
	}
}

// checkOrphans deletes (with -update) or reports output files that no case
// makes: their input is gone, or their case ran and made other files.
func checkOrphans(t *testing.T, inputs []string, ran, made map[string]bool) {
	outputs, err := os.ReadDir("testdata/out")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range outputs {
		name, _, _ := strings.Cut(f.Name(), ".")
		hasInput := slices.Contains(inputs, filepath.Join("testdata/in", name+".yaml"))
		if made[f.Name()] || (hasInput && !ran[name]) {
			continue
		}
		path := filepath.Join("testdata/out", f.Name())
		if !*update {
			t.Errorf("%s: no input makes it (run go test ./snapshot -update)", path)
			continue
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

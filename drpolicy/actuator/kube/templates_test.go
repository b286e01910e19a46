package kube

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTemplatesPreferTheModelsOwnFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, DefaultTemplate), "spec:\n  containers:\n  - name: server\n    image: default:1\n")
	writeFile(t, filepath.Join(dir, "llama.yaml"), "spec:\n  containers:\n  - name: server\n    image: llama:1\n")
	for model, image := range map[string]string{"llama": "llama:1", "mistral": "default:1"} {
		tmpl, err := Templates{Dir: dir}.For(model)
		if err != nil {
			t.Fatal(err)
		}
		if got := *tmpl.Spec.Containers[0].Image; got != image {
			t.Errorf("%s: image %s, want %s", model, got, image)
		}
	}
}

func TestTemplateProblemsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ text, want string }{
		"typo.yaml":   {"spec:\n  containers:\n  - name: s\n    imagee: x\n", `typo.yaml: not a Pod template (metadata, spec): json: unknown field "imagee"`},
		"empty.yaml":  {"metadata:\n  labels: {a: b}\n", "empty.yaml: spec.containers: a Pod template needs at least one container"},
		"syntax.yaml": {"spec:\n  containers: [\n", "syntax.yaml: yaml: line 2:"},
		"twice.yaml":  {"spec: {}\nspec: {}\n", `line 2: key "spec" already set`},
	}
	for name, c := range cases {
		file := filepath.Join(dir, name)
		writeFile(t, file, c.text)
		_, err := Templates{Dir: dir}.For(strings.TrimSuffix(name, ".yaml"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, c.want)
		}
	}
}

func TestAModelWithoutTemplateSaysWhatToAdd(t *testing.T) {
	_, err := Templates{Dir: t.TempDir()}.For("llama")
	if err == nil || !strings.Contains(err.Error(), "add llama.yaml or default.yaml") {
		t.Fatalf("error %v, want it to say which files to add", err)
	}
	if _, err := (Templates{Dir: t.TempDir()}).For("../etc/passwd"); err == nil {
		t.Fatal("a model name with a path was taken as a file name")
	}
}

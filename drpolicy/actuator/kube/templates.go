package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/inferxds/inferxds/internal/fielderr"
)

// Templates are the Pod templates created instances start from, kept next
// to the policy: in Dir, <model>.yaml for a model, else default.yaml. Each
// file is a PodTemplateSpec (metadata and spec, as in a Deployment's
// template). The policy loader skips subdirectories, so Dir is usually
// <policy>/templates; in a cluster it is mounted from the policy's
// ConfigMap. Files are read at each create, so an edited template applies
// to the next instance created.
type Templates struct {
	Dir string
}

// DefaultTemplate is the file used for a model without its own.
const DefaultTemplate = "default.yaml"

// For returns the model's template.
func (t Templates) For(model string) (*corev1ac.PodTemplateSpecApplyConfiguration, error) {
	if t.Dir == "" {
		return nil, errors.New("no Pod template directory configured: created instances need one")
	}
	if model == "" || strings.ContainsAny(model, `/\`) || strings.HasPrefix(model, ".") {
		return nil, fmt.Errorf("model name %q cannot name a template file", model)
	}
	for _, name := range []string{model + ".yaml", DefaultTemplate} {
		file := filepath.Join(t.Dir, name)
		data, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return ParseTemplate(file, data)
	}
	return nil, fmt.Errorf("no Pod template for model %s: add %s.yaml or %s to %s", model, model, DefaultTemplate, t.Dir)
}

// ParseTemplate reads one template file: YAML with no unknown field and
// at least one container.
func ParseTemplate(file string, data []byte) (*corev1ac.PodTemplateSpecApplyConfiguration, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, &fielderr.FieldError{File: file, Msg: err.Error()}
	}
	var spec corev1.PodTemplateSpec
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, &fielderr.FieldError{File: file, Msg: "not a Pod template (metadata, spec): " + err.Error()}
	}
	if len(spec.Spec.Containers) == 0 {
		return nil, &fielderr.FieldError{File: file, Field: "spec.containers", Msg: "a Pod template needs at least one container"}
	}
	// The apply configuration is decoded from the same JSON so that it
	// holds only the fields the file sets: a typed object would also set
	// every zero value, and the apply would claim those fields.
	var ac corev1ac.PodTemplateSpecApplyConfiguration
	if err := json.Unmarshal(js, &ac); err != nil {
		return nil, &fielderr.FieldError{File: file, Msg: err.Error()}
	}
	return &ac, nil
}

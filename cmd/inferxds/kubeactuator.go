package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	kubeact "github.com/inferxds/inferxds/drpolicy/actuator/kube"
	"github.com/inferxds/inferxds/topology/kube"
)

// actuatorKube is --actuator kube: Deployments and Pods, by server-side apply.
const actuatorKube = "kube"

// kubeActuatorConfig are the settings of --actuator kube.
type kubeActuatorConfig struct {
	ActuatorNamespace string `mapstructure:"actuatorNamespace"`
	PodTemplates      string `mapstructure:"podTemplates"`
}

var kubeActuatorSettings = []setting{
	{"actuator-namespace", "actuatorNamespace"},
	{"pod-templates", "podTemplates"},
}

func addKubeActuatorFlags(f *pflag.FlagSet) {
	f.String("actuator-namespace", "", "where --actuator kube finds and creates instances' Deployments and Pods (default: the first --kube-namespaces)")
	f.String("pod-templates", "", "directory of the Pod templates --actuator kube creates instances from, <model>.yaml else "+kubeact.DefaultTemplate+" (default: templates/ in --policy-dir)")
}

// newKubeActuator is --actuator kube's actuator, on the API server of
// --kubeconfig (else in-cluster), writing the source's label keys.
func (c config) newKubeActuator(logger *slog.Logger) (*kubeact.Actuator, error) {
	ns := c.ActuatorNamespace
	if ns == "" {
		ns, _, _ = strings.Cut(c.KubeNamespaces, ",")
	}
	if ns = strings.TrimSpace(ns); ns == "" {
		return nil, errors.New("--actuator kube: give --actuator-namespace (or --kube-namespaces)")
	}
	templates := c.PodTemplates
	if templates == "" {
		templates = filepath.Join(c.PolicyDir, "templates")
	}
	rest, err := kube.RESTConfig(c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--actuator kube: %w", err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, err
	}
	labels := kube.Labels{Model: c.KubeModelLabel, Tier: c.KubeTierLabel, Role: c.KubeRoleLabel}
	return kubeact.New(kubeact.Config{Client: client, Namespace: ns, Templates: kubeact.Templates{Dir: templates}, Labels: labels, Logger: logger})
}

package kube

import (
	"strings"
	"testing"

	"github.com/inferxds/inferxds/topology"
)

func TestLabelsRead(t *testing.T) {
	hotPrimary := Identity{Model: "llama", Tier: topology.TierHot, Role: topology.RolePrimary}
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		want    Identity
		ok      bool
		wantErr string
	}{
		{name: "no model label", labels: map[string]string{"app": "model-router"}},
		{name: "own keys", ok: true,
			labels: map[string]string{DefaultModelLabel: "llama", DefaultTierLabel: "warm", DefaultRoleLabel: "standby"},
			want:   Identity{Model: "llama", Tier: topology.TierWarm, Role: topology.RoleStandby}},
		{name: "model only: hot primary", ok: true, labels: map[string]string{DefaultModelLabel: "llama"}, want: hotPrimary},
		{name: "seed failover controller's model label", ok: true,
			labels: map[string]string{"app": "inference-engine", "model": "llama"}, want: hotPrimary},
		{name: "seed standby manager's app and standby-type", ok: true,
			labels: map[string]string{"app": "llama", "standby-type": "cold"},
			want:   Identity{Model: "llama", Tier: topology.TierCold, Role: topology.RoleStandby}},
		{name: "seed promoting is a loading hot standby", ok: true,
			labels: map[string]string{"app": "llama", "standby-type": "promoting"},
			want:   Identity{Model: "llama", Tier: topology.TierHot, Role: topology.RoleStandby, Loading: true}},
		{name: "seed failed", ok: true,
			labels: map[string]string{"model": "llama", "status": "failed"},
			want:   Identity{Model: "llama", Tier: topology.TierHot, Role: topology.RolePrimary, Failed: true}},
		{name: "own keys win over the seed's", ok: true,
			labels: map[string]string{DefaultModelLabel: "llama", "model": "other", "standby-type": "cold", DefaultTierLabel: "hot", DefaultRoleLabel: "primary"},
			want:   hotPrimary},
		{name: "bad tier", ok: true, labels: map[string]string{DefaultModelLabel: "llama", DefaultTierLabel: "lukewarm"},
			wantErr: `label inferxds.io/tier: must be hot, warm or cold (got "lukewarm")`},
		{name: "bad seed standby-type", ok: true, labels: map[string]string{"app": "llama", "standby-type": "tepid"},
			wantErr: `label standby-type: must be hot, warm, cold or promoting (got "tepid")`},
		{name: "bad role", ok: true, labels: map[string]string{DefaultModelLabel: "llama", DefaultRoleLabel: "leader"},
			wantErr: `label inferxds.io/role: must be primary or standby (got "leader")`},
		{name: "bad model name", ok: true, labels: map[string]string{DefaultModelLabel: "Llama"},
			wantErr: `label inferxds.io/model: model name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := DefaultLabels().Read(tc.labels)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Read = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestLabelsForReadsBack(t *testing.T) {
	l := Labels{Model: "example.com/model", Tier: "example.com/tier", Role: "example.com/role"}
	got, ok, err := l.Read(l.For("mistral", topology.TierWarm, topology.RoleStandby))
	want := Identity{Model: "mistral", Tier: topology.TierWarm, Role: topology.RoleStandby}
	if !ok || err != nil || got != want {
		t.Fatalf("Read(For(...)) = %+v, %v, %v; want %+v", got, ok, err, want)
	}
}

func TestLabelsValidate(t *testing.T) {
	if err := DefaultLabels().Validate(); err != nil {
		t.Fatalf("default labels: %v", err)
	}
	if got := (Labels{Model: "example.com/model"}).withDefaults(); got != (Labels{Model: "example.com/model", Tier: DefaultTierLabel, Role: DefaultRoleLabel, Instance: DefaultInstanceLabel}) {
		t.Errorf("withDefaults kept %+v", got)
	}
	err := Labels{Model: "bad key!", Tier: "t", Role: "t", Instance: "i"}.Validate()
	for _, want := range []string{`model label key "bad key!"`, `role label key "t" is also the tier label key`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
}

func TestInstanceNameRoundTrip(t *testing.T) {
	name := InstanceName("inference", "llama.v2-0")
	if ns, pod, ok := PodOf(name); !ok || ns != "inference" || pod != "llama.v2-0" {
		t.Fatalf("PodOf(%q) = %q, %q, %v", name, ns, pod, ok)
	}
	if err := topology.ValidateName(name); err != nil {
		t.Fatalf("instance name %q: %v", name, err)
	}
	if _, _, ok := PodOf("no-namespace"); ok {
		t.Fatal("PodOf accepted a name without a namespace")
	}
}

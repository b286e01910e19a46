// Package dr owns the disaster-recovery engine's pure core: the DR state
// (what the engine has decided — instances found failed, standbys promoted
// or added, zone roles after a zone failover, incidents in flight), the
// view of the fleet that state gives (Effective), the planner that turns
// fleet + policy + state into ordered actions, and the Actuator interface
// those actions are carried out through.
//
// Nothing here owns a goroutine, a clock or I/O: callers pass the time in.
// The user's files are never rewritten; the state is published on the hub
// and translation reads the fleet through it.
package dr

import (
	"cmp"
	"slices"
	"time"

	"github.com/inferxds/inferxds/topology"
)

// State is what the DR engine has decided, on top of what the sources say.
// Slices are sorted by name (incidents by ID) so equal states compare equal.
type State struct {
	// Instances are the instances the engine changed or added.
	Instances []InstanceState `json:"instances,omitempty"`
	// Zones are zone roles that differ from the fleet's after a zone
	// failover; empty while every zone has its configured role.
	Zones []topology.Zone `json:"zones,omitempty"`
	// Incidents are failures being recovered from and the most recent
	// recovered ones.
	Incidents []Incident `json:"incidents,omitempty"`
}

// InstanceState is what the engine says about one instance. Empty fields
// leave the source's value in place.
type InstanceState struct {
	Name  string        `json:"name"`
	Model string        `json:"model"`
	Tier  topology.Tier `json:"tier,omitempty"`
	Role  topology.Role `json:"role,omitempty"`
	// Health is unhealthy once the engine found the instance failed, and
	// loading while a promotion is under way.
	Health topology.Health `json:"health,omitempty"`
	// Added is the whole instance when the engine created it (a backfilled
	// standby or an emergency instance) and no source lists it.
	Added *topology.Instance `json:"added,omitempty"`
	// Node and GPUs are where a woken or created instance was placed; empty
	// leaves the source's.
	Node string `json:"node,omitempty"`
	GPUs []int  `json:"gpus,omitempty"`
	// Checkpoint is the model checkpoint the instance last reported.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// Checkpoint identifies the model weights an instance serves; a standby's
// RPO lag is the primary's checkpoint time minus its own.
type Checkpoint struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// FailureType is what went wrong, as the seed's recovery table names it.
type FailureType string

// Failure types.
const (
	FailureProcessCrash    FailureType = "process-crash"
	FailureNodeDown        FailureType = "node-down"
	FailureGPU             FailureType = "gpu-failure"
	FailureAZOutage        FailureType = "az-outage"
	FailureModelCorruption FailureType = "model-corruption"
	// FailureProbe is a failed health probe whose cause is not known.
	FailureProbe FailureType = "probe-failure"
)

// Incident is one failure and its recovery. A zero time is a stage that
// has not happened (or cannot be measured).
type Incident struct {
	ID       string      `json:"id"`
	Model    string      `json:"model"`
	Instance string      `json:"instance,omitempty"`
	Zone     string      `json:"zone,omitempty"`
	Failure  FailureType `json:"failure"`
	// Replacement is the instance promoted or created in its place.
	Replacement string `json:"replacement,omitempty"`

	FaultAt            time.Time `json:"faultAt,omitzero"`
	DetectedAt         time.Time `json:"detectedAt,omitzero"`
	DrainedAt          time.Time `json:"drainedAt,omitzero"`
	FirstAnswerAt      time.Time `json:"firstAnswerAt,omitzero"`
	PromotionStartedAt time.Time `json:"promotionStartedAt,omitzero"`
	PromotedReadyAt    time.Time `json:"promotedReadyAt,omitzero"`
	RestoredAt         time.Time `json:"restoredAt,omitzero"`
	// Note says why a stage could not happen (no standby, no capacity).
	Note string `json:"note,omitempty"`
}

// Open reports whether the incident is still being recovered from.
func (i Incident) Open() bool { return i.RestoredAt.IsZero() }

// Instance returns the engine's record of the named instance.
func (s *State) Instance(name string) (InstanceState, bool) {
	i, ok := slices.BinarySearchFunc(s.Instances, name, func(x InstanceState, n string) int { return cmp.Compare(x.Name, n) })
	if !ok {
		return InstanceState{}, false
	}
	return s.Instances[i], true
}

// Sort orders every slice so equal states are identical.
func (s *State) Sort() {
	slices.SortFunc(s.Instances, func(a, b InstanceState) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Zones, func(a, b topology.Zone) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Incidents, func(a, b Incident) int { return cmp.Compare(a.ID, b.ID) })
}

// CheckpointLag is how far an instance's reported checkpoint is behind the
// freshest one reported for its model: the data a promotion of it would
// lose.
type CheckpointLag struct {
	Model    string
	Instance string
	Lag      time.Duration
}

// CheckpointLags returns the lag of every instance that reported a
// checkpoint, in name order.
func (s *State) CheckpointLags() []CheckpointLag {
	freshest := map[string]time.Time{}
	for _, st := range s.Instances {
		if st.Checkpoint != nil && st.Checkpoint.Time.After(freshest[st.Model]) {
			freshest[st.Model] = st.Checkpoint.Time
		}
	}
	var lags []CheckpointLag
	for _, st := range s.Instances {
		if st.Checkpoint != nil {
			lags = append(lags, CheckpointLag{Model: st.Model, Instance: st.Name, Lag: freshest[st.Model].Sub(st.Checkpoint.Time)})
		}
	}
	return lags
}

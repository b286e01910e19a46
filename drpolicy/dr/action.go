package dr

import (
	"context"
	"time"

	"github.com/inferxds/inferxds/topology"
)

// ActionKind is one step of a recovery.
type ActionKind string

// Action kinds. Drain, Promote and FailoverZone change only the DR state
// (translation takes the instance out of EDS, moves it up the priority
// order, or moves a zone's role); the rest change what runs and go to the
// Actuator.
const (
	// ActionDrain takes a failed instance out of every proxy's endpoints.
	ActionDrain ActionKind = "drain"
	// ActionPromote makes a hot standby a primary.
	ActionPromote ActionKind = "promote"
	// ActionFailoverZone makes the standby zone active in place of a failed
	// active zone.
	ActionFailoverZone ActionKind = "failover-zone"
	// ActionWake moves a warm instance to hot: weights from host memory to
	// the GPUs of its placement (vLLM's POST /wake_up).
	ActionWake ActionKind = "wake"
	// ActionLoad moves a cold instance to warm: start it and load the
	// weights into host memory, asleep (vLLM's sleep mode, level 1).
	ActionLoad ActionKind = "load"
	// ActionCreate starts a new instance at Tier: a backfilled standby, or
	// an emergency instance when a model has no standby left.
	ActionCreate ActionKind = "create"
	// ActionStop stops an instance: one of a reclaimable tenant's, to free
	// GPUs for a more critical model's recovery.
	ActionStop ActionKind = "stop"
)

// StateOnly reports whether the action changes only the DR state and never
// reaches the Actuator.
func (k ActionKind) StateOnly() bool {
	return k == ActionDrain || k == ActionPromote || k == ActionFailoverZone
}

// Action is one step the planner asks for.
type Action struct {
	Kind  ActionKind `json:"kind"`
	Model string     `json:"model,omitempty"`
	// Instance is the instance acted on; for ActionCreate, the new
	// instance's name.
	Instance string `json:"instance,omitempty"`
	// Zone is the zone failed over (ActionFailoverZone) or the zone of the
	// placement.
	Zone string `json:"zone,omitempty"`
	// Tier is the tier the instance reaches when the action is done.
	Tier topology.Tier `json:"tier,omitempty"`
	// Node and GPUs are where a wake or create places the model (from
	// gpupool); empty for actions that hold no GPU.
	Node string `json:"node,omitempty"`
	GPUs []int  `json:"gpus,omitempty"`
	// Emergency marks an instance created because no standby was left.
	Emergency bool `json:"emergency,omitempty"`
	// Incident is the incident the action serves, if any.
	Incident string `json:"incident,omitempty"`
	// Reason says why, for logs and status.
	Reason string `json:"reason"`
}

// Key identifies an action for "no action repeated while one is in flight":
// the same kind on the same instance.
func (a Action) Key() string { return string(a.Kind) + "/" + a.Instance }

// CreatedRole is the role of the instance an ActionCreate starts: an
// emergency instance serves as a primary, a backfilled one waits as a
// standby.
func (a Action) CreatedRole() topology.Role {
	if a.Emergency {
		return topology.RolePrimary
	}
	return topology.RoleStandby
}

// Actuator carries out the actions that change what runs: local model
// server processes, or Kubernetes workloads.
type Actuator interface {
	// Do carries out a (not StateOnly) action and returns when it is done:
	// the instance as it now is, ready at a.Tier (stopped, for ActionStop).
	// Doing an action again after it succeeded changes nothing.
	Do(ctx context.Context, a Action) (topology.Instance, error)
}

// FailureReporter is an Actuator that learns of failures itself, such as
// a process it started exiting.
type FailureReporter interface {
	Failures() <-chan Failure
}

// Failure is an instance found failed by a probe, the actuator, telemetry
// or a proxy.
type Failure struct {
	Instance string      `json:"instance"`
	Type     FailureType `json:"type"`
	// At is when the failure was detected; FaultAt when it happened, where
	// known (an injected fault).
	At      time.Time `json:"at"`
	FaultAt time.Time `json:"faultAt,omitzero"`
	Detail  string    `json:"detail,omitempty"`
}

// Package inputcheck owns the checks that need more than one input: a new
// fleet or policy against the one in service (a change that removes too
// much at once is held back), and the fleet against the policy (models one
// has and the other lacks). It is pure: no I/O, no clocks.
package inputcheck

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// Annotation, as a comment line of its own in a fleet or policy file
// ("# inferxds: allow-mass-removal"), says that a large removal in that
// change is intended.
const Annotation = "inferxds: allow-mass-removal"

// DefaultMaxRemovalShare is the largest share of models or instances one
// change may remove without the annotation.
const DefaultMaxRemovalShare = 0.5

// Annotated reports whether data has the Annotation as a comment line.
func Annotated(data []byte) bool {
	for line := range bytes.Lines(data) {
		text, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("#"))
		if ok && string(bytes.TrimSpace(text)) == Annotation {
			return true
		}
	}
	return false
}

// Refused is a change held back because it removes too much at once.
type Refused struct {
	What     string // "models", "instances", "policy files"
	Removed  []string
	Before   int
	MaxShare float64
}

func (r *Refused) Error() string {
	if r.What == "policy files" {
		return fmt.Sprintf("change refused: policy file %s is gone (a policy without it would drop what it defines); keeping the last good policy. Restart serve, or run it with --allow-mass-removal, to remove a policy file", r.Removed[0])
	}
	return fmt.Sprintf("change refused: it removes %d of %d %s (%s), more than %.0f%% at once; keeping the last good state. If that is intended, add the comment line %q to the file, or run serve with --allow-mass-removal",
		len(r.Removed), r.Before, r.What, sample(r.Removed), 100*r.MaxShare, "# "+Annotation)
}

// Reason is the metric label for why the change was refused.
func (r *Refused) Reason() string {
	switch r.What {
	case "policy files":
		return "file_removed"
	case "models":
		return "models_removed"
	}
	return "instances_removed"
}

func sample(names []string) string {
	if len(names) > 3 {
		return fmt.Sprintf("%s, … and %d more", joinNames(names[:3]), len(names)-3)
	}
	return joinNames(names)
}

func joinNames(names []string) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	return b.String()
}

// FleetChange refuses a new fleet that removes more than maxShare of the
// models or of the instances of the fleet in service.
func FleetChange(before, after *topology.Fleet, maxShare float64) error {
	if err := removal("models", fleetModels(before), fleetModels(after), maxShare); err != nil {
		return err
	}
	return removal("instances", instanceNames(before), instanceNames(after), maxShare)
}

// PolicyChange refuses a new policy that removes more than maxShare of the
// models of the policy in service.
func PolicyChange(before, after *drpolicy.Policy, maxShare float64) error {
	return removal("models", policyModels(before), policyModels(after), maxShare)
}

// FilesGone refuses a policy directory from which a file in service has
// disappeared.
func FilesGone(before, after []string) error {
	for _, f := range before {
		if !slices.Contains(after, f) {
			return &Refused{What: "policy files", Removed: []string{f}, Before: len(before)}
		}
	}
	return nil
}

func removal(what string, before, after []string, maxShare float64) error {
	var removed []string
	for _, name := range before {
		if _, found := slices.BinarySearch(after, name); !found {
			removed = append(removed, name)
		}
	}
	if len(before) == 0 || float64(len(removed)) <= maxShare*float64(len(before)) {
		return nil
	}
	return &Refused{What: what, Removed: removed, Before: len(before), MaxShare: maxShare}
}

// fleetModels are the sorted, distinct models a fleet runs; none for nil.
func fleetModels(f *topology.Fleet) []string {
	if f == nil {
		return nil
	}
	return slices.Compact(sortedNames(f.Instances, func(in topology.Instance) string { return in.Model }))
}

func instanceNames(f *topology.Fleet) []string {
	if f == nil {
		return nil
	}
	return sortedNames(f.Instances, func(in topology.Instance) string { return in.Name })
}

func policyModels(p *drpolicy.Policy) []string {
	if p == nil {
		return nil
	}
	return sortedNames(p.Models, func(m drpolicy.Model) string { return m.Name })
}

func sortedNames[T any](items []T, name func(T) string) []string {
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = name(it)
	}
	slices.Sort(names)
	return names
}

// Mismatches lists, sorted, what the fleet and the policy disagree on: fleet
// instances of models the policy does not define (they get no route),
// policy models with no instance in the fleet (their routes have no
// endpoints), and zones the policy's az_failover names that the fleet lacks.
func Mismatches(f *topology.Fleet, p *drpolicy.Policy) []string {
	var out []string
	defined := policyModels(p)
	for _, in := range f.Instances {
		if _, ok := slices.BinarySearch(defined, in.Model); !ok {
			out = append(out, fmt.Sprintf("fleet instance %s runs model %q, which the policy does not define: it gets no route", in.Name, in.Model))
		}
	}
	running := fleetModels(f)
	for _, m := range defined {
		if _, ok := slices.BinarySearch(running, m); !ok {
			out = append(out, fmt.Sprintf("policy model %q has no instance in the fleet: its route has no endpoints", m))
		}
	}
	if p.AZFailover != nil {
		for _, z := range append(slices.Clone(p.AZFailover.ActiveZones), p.AZFailover.StandbyZone) {
			if _, ok := f.Zone(z); z != "" && !ok {
				out = append(out, fmt.Sprintf("az_failover names zone %q, which the fleet does not define", z))
			}
		}
	}
	slices.Sort(out)
	return out
}

package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// Launch starts a process for each hot instance (serving) and warm one
// (asleep) of the fleet on its address and port, and waits until every one
// reports that status. The fleet is taken as already at its tiers: its
// processes start without ColdLoadTime, which only loads and creates
// spend. Cold instances get no process; the actuator keeps them for a
// later load. Instances that did come up keep running when another fails:
// Close stops them.
func (a *Actuator) Launch(ctx context.Context, fleet *topology.Fleet) error {
	recs, err := a.register(fleet.Instances)
	if err != nil {
		return err
	}
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		in, _ := a.snapshot(rec)
		if in.Tier == topology.TierCold {
			continue
		}
		wg.Go(func() {
			rec.op.Lock()
			defer rec.op.Unlock()
			_, errs[i] = a.bringUp(ctx, rec, start{host: in.Address, port: in.Port, tier: in.Tier})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// register records the fleet's instances; none may be known already.
func (a *Actuator) register(instances []topology.Instance) ([]*record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	for _, in := range instances {
		if _, dup := a.instances[in.Name]; dup {
			return nil, fmt.Errorf("local actuator: launch: instance %s is already running or recorded", in.Name)
		}
	}
	recs := make([]*record, len(instances))
	for i, in := range instances {
		recs[i] = &record{in: in}
		a.instances[in.Name] = recs[i]
	}
	return recs, nil
}

// Do carries out a wake, load, create or stop and returns the instance as
// it now is. Actions on one instance happen one at a time; doing one again
// after it succeeded changes nothing.
func (a *Actuator) Do(ctx context.Context, act dr.Action) (topology.Instance, error) {
	switch act.Kind {
	case dr.ActionWake, dr.ActionLoad, dr.ActionCreate, dr.ActionStop:
	default:
		return topology.Instance{}, fmt.Errorf("local actuator: %s %s: not an action that changes what runs", act.Kind, act.Instance)
	}
	rec, err := a.lookup(act)
	if err != nil {
		return topology.Instance{}, err
	}
	rec.op.Lock()
	defer rec.op.Unlock()
	switch act.Kind {
	case dr.ActionWake:
		return a.wake(ctx, rec, act)
	case dr.ActionLoad:
		return a.load(ctx, rec)
	case dr.ActionCreate:
		return a.create(ctx, rec, act)
	default:
		return a.stop(rec, act)
	}
}

// wake asks a warm (asleep) process for POST /wake_up and waits until it
// serves; it then runs where the action placed it.
func (a *Actuator) wake(ctx context.Context, rec *record, act dr.Action) (topology.Instance, error) {
	in, p := a.snapshot(rec)
	if !p.running() {
		return topology.Instance{}, fmt.Errorf("local actuator: wake %s: no running process (tier %s)", in.Name, in.Tier)
	}
	if in.Tier != topology.TierHot {
		ctx, cancel := context.WithTimeout(ctx, startTimeout+a.cfg.WarmLoadTime)
		defer cancel()
		if err := post(ctx, hostPort(in), "/wake_up"); err != nil {
			return topology.Instance{}, fmt.Errorf("local actuator: wake %s: %w", in.Name, err)
		}
		if err := a.awaitHealth(ctx, p, hostPort(in), statusServing); err != nil {
			return topology.Instance{}, fmt.Errorf("local actuator: wake %s: %w", in.Name, err)
		}
		a.log.Info("model server woken", "instance", in.Name, "address", hostPort(in))
	}
	return a.update(rec, func(in *topology.Instance) {
		in.Tier, in.Health = topology.TierHot, topology.HealthServing
		in.Node = cmp.Or(act.Node, in.Node)
		if len(act.GPUs) > 0 {
			in.GPUs = act.GPUs
		}
	}), nil
}

// load starts a cold instance's process asleep on its address and port.
func (a *Actuator) load(ctx context.Context, rec *record) (topology.Instance, error) {
	in, p := a.snapshot(rec)
	if p.running() {
		return in, nil
	}
	return a.bringUp(ctx, rec, start{host: cmp.Or(in.Address, loopback), port: in.Port, tier: topology.TierWarm, load: a.cfg.ColdLoadTime})
}

// create starts a new instance at the action's tier on a free loopback
// port; a cold one gets no process, only a port a later load listens on.
func (a *Actuator) create(ctx context.Context, rec *record, act dr.Action) (topology.Instance, error) {
	in, p := a.snapshot(rec)
	switch {
	case in.Tier == act.Tier && (act.Tier == topology.TierCold || p.running()):
		return in, nil
	case in.Tier != "":
		return topology.Instance{}, fmt.Errorf("local actuator: create %s at tier %s: it exists at tier %s", act.Instance, act.Tier, in.Tier)
	case act.Tier == topology.TierCold:
		port, err := freePort()
		if err != nil {
			return topology.Instance{}, fmt.Errorf("local actuator: create %s: %w", act.Instance, err)
		}
		return a.update(rec, func(in *topology.Instance) {
			in.Port, in.Tier, in.Health = port, topology.TierCold, topology.HealthUnknown
		}), nil
	default:
		return a.bringUp(ctx, rec, start{host: loopback, tier: act.Tier, load: a.cfg.ColdLoadTime})
	}
}

// stop terminates the instance's process; it keeps its address for a
// later load.
func (a *Actuator) stop(rec *record, act dr.Action) (topology.Instance, error) {
	if _, p := a.snapshot(rec); p.running() {
		a.stopProc(p)
		a.log.Info("model server stopped", "instance", act.Instance)
	}
	return a.update(rec, func(in *topology.Instance) {
		in.Tier, in.Health = cmp.Or(act.Tier, topology.TierCold), topology.HealthUnknown
	}), nil
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort() (uint32, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// Package local owns the model-server processes the DR engine runs on this
// machine: it starts a fleet's hot instances serving and its warm ones
// asleep (vLLM's sleep mode), carries out the engine's actions on them
// (wake, load, create, stop), reports every process that exits without
// being asked to, and kills processes and injects faults for drills.
// Every child runs in its own process group and gets SIGKILL when this
// process dies, so nothing it starts outlives it.
package local

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// Config says how to run model servers.
type Config struct {
	// Command is the argv prefix that runs modelsim, e.g. {"/path/to/modelsim"}
	// or {os.Executable(), "modelsim"}; each instance's flags follow it.
	Command []string
	// Dir holds each instance's log (NAME.log) and ready file (NAME.ready).
	Dir string
	// ColdLoadTime is how long an instance a load or create starts loads
	// its weights; WarmLoadTime how long a wake-up takes. Zero passes no
	// flag.
	ColdLoadTime, WarmLoadTime time.Duration
	// Checkpoints, when set, names the checkpoint a model's instances
	// serve; an empty id passes none.
	Checkpoints func(model string) (id string, at time.Time)
	// Logger gets process starts, stops and exits; nil discards them.
	Logger *slog.Logger
}

// Process is one running model server.
type Process struct {
	Name  string
	Model string
	PID   int
	// Address is the HTTP host:port the process listens on.
	Address string
	Tier    topology.Tier
}

// Actuator runs model servers as child processes. It implements
// dr.Actuator and dr.FailureReporter.
type Actuator struct {
	cfg      Config
	log      *slog.Logger
	failures chan dr.Failure
	reapers  sync.WaitGroup

	mu        sync.Mutex
	instances map[string]*record
	closed    bool
}

// record is what the actuator knows of one instance.
type record struct {
	// op makes actions on the instance happen one at a time.
	op sync.Mutex
	// Guarded by Actuator.mu.
	in   topology.Instance
	proc *proc
}

var (
	_ dr.Actuator        = (*Actuator)(nil)
	_ dr.FailureReporter = (*Actuator)(nil)
)

// failureBuffer is how many failures wait for a reader before more are
// dropped (and logged): a reaper never blocks.
const failureBuffer = 256

var errClosed = errors.New("local actuator: closed")

// New checks cfg and creates cfg.Dir.
func New(cfg Config) (*Actuator, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("local actuator: Command is empty: it must run modelsim")
	}
	if cfg.Dir == "" {
		return nil, errors.New("local actuator: Dir is empty: it holds the processes' logs and ready files")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("local actuator: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Actuator{cfg: cfg, log: log, failures: make(chan dr.Failure, failureBuffer), instances: map[string]*record{}}, nil
}

// Failures reports each process that exits without Do(stop) or Close
// asking it to (a Kill included). The channel is never closed.
func (a *Actuator) Failures() <-chan dr.Failure { return a.failures }

// Instances lists the running processes by name.
func (a *Actuator) Instances() []Process {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Process
	for _, rec := range a.instances {
		if rec.proc.running() {
			out = append(out, Process{
				Name: rec.in.Name, Model: rec.in.Model, PID: rec.proc.cmd.Process.Pid,
				Address: hostPort(rec.in), Tier: rec.in.Tier,
			})
		}
	}
	slices.SortFunc(out, func(x, y Process) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// Close stops every process (SIGTERM, SIGKILL after a grace) and waits
// until each has exited. Do fails after Close.
func (a *Actuator) Close() error {
	a.mu.Lock()
	a.closed = true
	var procs []*proc
	for _, rec := range a.instances {
		if rec.proc.running() {
			rec.proc.stopping = true
			procs = append(procs, rec.proc)
		}
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.terminate() })
	}
	wg.Wait()
	a.reapers.Wait()
	return nil
}

// lookup returns the named instance's record, or a new one for an
// instance an ActionCreate names.
func (a *Actuator) lookup(act dr.Action) (*record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	if rec, ok := a.instances[act.Instance]; ok {
		return rec, nil
	}
	if act.Kind != dr.ActionCreate {
		return nil, fmt.Errorf("local actuator: %s %s: no such instance (neither launched nor created here)", act.Kind, act.Instance)
	}
	rec := &record{in: topology.Instance{
		Name: act.Instance, Model: act.Model, Zone: act.Zone, Node: act.Node, GPUs: act.GPUs,
		Role: act.CreatedRole(), Address: loopback,
	}}
	a.instances[act.Instance] = rec
	return rec, nil
}

// snapshot returns the record's instance and process.
func (a *Actuator) snapshot(rec *record) (topology.Instance, *proc) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return rec.in, rec.proc
}

// update changes the record's instance and returns it.
func (a *Actuator) update(rec *record, change func(in *topology.Instance)) topology.Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	change(&rec.in)
	return rec.in
}

func (a *Actuator) report(f dr.Failure) {
	select {
	case a.failures <- f:
	default:
		a.log.Error("failure channel full: failure dropped", "instance", f.Instance, "type", f.Type, "detail", f.Detail)
	}
}

const loopback = "127.0.0.1"

func hostPort(in topology.Instance) string {
	return net.JoinHostPort(in.Address, strconv.FormatUint(uint64(in.Port), 10))
}

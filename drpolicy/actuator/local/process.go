package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

const (
	// startTimeout bounds a start beyond the load time it asks for: binding
	// the listeners and answering the first probe.
	startTimeout = 30 * time.Second
	// stopGrace is how long a process has to drain after SIGTERM.
	stopGrace = 10 * time.Second
	// pollInterval paces the ready-file and health polls while starting.
	pollInterval = 10 * time.Millisecond
	// logTailLines is how much of a process's log an error quotes.
	logTailLines = 10
)

// Health statuses of modelsim's GET /healthz that a start waits for.
const (
	statusServing  = "serving"
	statusSleeping = "sleeping"
)

// proc is one child process and what became of it.
type proc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	// Set by the reaper before exited is closed.
	exitErr error
	exitAt  time.Time
	// Guarded by Actuator.mu.
	up       bool      // reached the status it was started for
	stopping bool      // Do(stop) or Close asked it to exit
	killedAt time.Time // when Kill sent SIGKILL
}

// running reports whether p is a process that has not exited; a nil p is
// not running.
func (p *proc) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to p's process group, while p has not exited.
func (p *proc) signal(sig syscall.Signal) {
	if p.running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// terminate sends SIGTERM, SIGKILL after stopGrace, and waits until p
// has exited. SIGCONT lets a process frozen by a drill (SIGSTOP, a node
// gone silent) drain too.
func (p *proc) terminate() {
	p.signal(syscall.SIGTERM)
	p.signal(syscall.SIGCONT)
	select {
	case <-p.exited:
		return
	case <-time.After(stopGrace):
	}
	p.signal(syscall.SIGKILL)
	<-p.exited
}

// startError says why a process did not come up, quoting its log.
func (p *proc) startError(name string, err error) error {
	return fmt.Errorf("local actuator: %s: %w; last lines of %s:\n%s", name, err, p.log, tailLines(p.log, logTailLines))
}

// start is how bringUp starts a process.
type start struct {
	host string
	port uint32 // 0: any free one
	tier topology.Tier
	// load is how long it loads its weights before it serves or sleeps.
	load time.Duration
}

// bringUp starts the record's process as s says (warm: asleep) and waits
// until it reports the status the tier asks for. The record then has the
// bound address.
func (a *Actuator) bringUp(ctx context.Context, rec *record, s start) (topology.Instance, error) {
	in, _ := a.snapshot(rec)
	p, err := a.spawn(rec, in.Name, a.args(in, s))
	if err != nil {
		return topology.Instance{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout+s.load)
	defer cancel()
	addr, err := a.awaitStatus(ctx, in.Name, p, tierStatus(s.tier))
	if err != nil {
		a.stopProc(p)
		return topology.Instance{}, err
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		a.stopProc(p)
		return topology.Instance{}, fmt.Errorf("local actuator: %s: ready file: %w", in.Name, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !p.exitAt.IsZero() { // the reaper saw it exit before it was up: no failure is reported
		return topology.Instance{}, p.startError(in.Name, errors.New("exited as it came up"))
	}
	p.up = true
	rec.in.Address, rec.in.Port, rec.in.Tier, rec.in.Health = host, port, s.tier, tierHealth(s.tier)
	a.log.Info("model server up", "instance", in.Name, "model", in.Model, "tier", s.tier, "address", addr, "pid", p.cmd.Process.Pid)
	return rec.in, nil
}

func tierStatus(t topology.Tier) string {
	if t == topology.TierWarm {
		return statusSleeping
	}
	return statusServing
}

func tierHealth(t topology.Tier) topology.Health {
	if t == topology.TierHot {
		return topology.HealthServing
	}
	return topology.HealthUnknown
}

// args are modelsim's flags for one instance.
func (a *Actuator) args(in topology.Instance, s start) []string {
	args := []string{"--id", in.Name, "--model", in.Model,
		"--http-address", net.JoinHostPort(s.host, strconv.FormatUint(uint64(s.port), 10)),
		"--grpc-address", net.JoinHostPort(loopback, "0"), "--ready-file", a.readyPath(in.Name)}
	if s.tier == topology.TierWarm {
		args = append(args, "--start-asleep")
	}
	if s.load > 0 {
		args = append(args, "--cold-load-time", s.load.String())
	}
	if a.cfg.WarmLoadTime > 0 {
		args = append(args, "--warm-load-time", a.cfg.WarmLoadTime.String())
	}
	if a.cfg.Checkpoints != nil {
		if id, at := a.cfg.Checkpoints(in.Model); id != "" {
			args = append(args, "--checkpoint", id, "--checkpoint-time", at.UTC().Format(time.RFC3339))
		}
	}
	return args
}

func (a *Actuator) readyPath(name string) string { return filepath.Join(a.cfg.Dir, name+".ready") }
func (a *Actuator) logPath(name string) string   { return filepath.Join(a.cfg.Dir, name+".log") }

// spawn starts the record's process with args, its output appended to
// its log, and a reaper that reports its exit. It fails once Close began.
func (a *Actuator) spawn(rec *record, name string, args []string) (*proc, error) {
	if err := os.Remove(a.readyPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local actuator: %s: stale ready file: %w", name, err)
	}
	logFile, err := os.OpenFile(a.logPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("local actuator: %s: %w", name, err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(a.cfg.Command[0], append(a.cfg.Command[1:len(a.cfg.Command):len(a.cfg.Command)], args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("local actuator: start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, log: a.logPath(name), exited: make(chan struct{})}
	rec.proc = p
	a.reapers.Add(1)
	go a.reap(name, p)
	return p, nil
}

// reap waits for p to exit and reports the exit as a failure unless it
// was asked for or p never came up (its start reports that). Whoever
// receives the failure sees the process gone.
func (a *Actuator) reap(name string, p *proc) {
	defer a.reapers.Done()
	err := p.cmd.Wait()
	a.mu.Lock()
	p.exitErr, p.exitAt = err, time.Now()
	crashed := p.up && !p.stopping
	f := dr.Failure{Instance: name, Type: dr.FailureProcessCrash, At: p.exitAt, FaultAt: p.killedAt,
		Detail: fmt.Sprintf("pid %d exited: %v (log %s)", p.cmd.Process.Pid, exitDetail(err), p.log)}
	a.mu.Unlock()
	close(p.exited)
	if crashed {
		a.log.Warn("model server exited", "instance", name, "detail", f.Detail)
		a.report(f)
	}
}

func exitDetail(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// stopProc marks p as asked to stop and terminates it.
func (a *Actuator) stopProc(p *proc) {
	a.mu.Lock()
	p.stopping = true
	a.mu.Unlock()
	p.terminate()
}

// awaitStatus waits for p's ready file, then polls its /healthz until it
// reports want, and returns the HTTP address it bound.
func (a *Actuator) awaitStatus(ctx context.Context, name string, p *proc, want string) (string, error) {
	var addr string
	err := poll(ctx, p, func() (bool, error) {
		r, err := sim.ReadReadyFile(a.readyPath(name))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		addr = r.HTTPAddress
		return err == nil, err
	})
	if err != nil {
		return "", p.startError(name, fmt.Errorf("waiting for its ready file: %w", err))
	}
	if err := a.awaitHealth(ctx, p, addr, want); err != nil {
		return "", p.startError(name, err)
	}
	return addr, nil
}

// poll calls done every pollInterval until it reports true or an error,
// p exits or ctx ends.
func poll(ctx context.Context, p *proc, done func() (bool, error)) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if ok, err := done(); ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("exited: %s", exitDetail(p.exitErr))
		case <-tick.C:
		}
	}
}

// tailLines returns the last n lines of the file at path.
func tailLines(path string, n int) string {
	const maxTail = 8 << 10
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxTail {
		_, _ = f.Seek(-maxTail, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-n):], []byte("\n")))
}

func splitHostPort(addr string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	return host, uint32(n), nil
}

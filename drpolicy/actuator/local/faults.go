package local

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/inferxds/inferxds/drpolicy/engine"
	"github.com/inferxds/inferxds/topology"
)

// probeTimeout bounds one health probe or admin request while starting.
const probeTimeout = 2 * time.Second

// client talks to the model servers; every request carries its own
// deadline.
var client = &http.Client{}

// Faults Inject knows, and the modelsim admin endpoint each one posts to.
var faultPaths = map[string]string{
	"corrupt": "/admin/corrupt",
	"fail":    "/admin/fail",
	"recover": "/admin/recover",
}

// Kill sends SIGKILL to the instance's process, as a crash drill does.
// The exit is reported on Failures with the kill time as its FaultAt.
func (a *Actuator) Kill(instance string) error {
	_, p, ok := a.running(instance)
	if !ok {
		return fmt.Errorf("local actuator: kill %s: no running process", instance)
	}
	a.mu.Lock()
	p.killedAt = time.Now()
	a.mu.Unlock()
	a.log.Info("killing model server", "instance", instance, "pid", p.cmd.Process.Pid)
	p.signal(syscall.SIGKILL)
	return nil
}

// Inject asks the instance's process for an HTTP fault: "corrupt" (it
// answers, wrongly), "fail" (every request fails) or "recover" (clears
// every fault).
func (a *Actuator) Inject(instance, fault string) error {
	path, ok := faultPaths[fault]
	if !ok {
		return fmt.Errorf("local actuator: inject %q into %s: unknown fault (want corrupt, fail or recover)", fault, instance)
	}
	in, _, ok := a.running(instance)
	if !ok {
		return fmt.Errorf("local actuator: inject %s into %s: no running process", fault, instance)
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if err := post(ctx, hostPort(in), path); err != nil {
		return fmt.Errorf("local actuator: inject %s into %s: %w", fault, instance, err)
	}
	a.log.Info("fault injected", "instance", instance, "fault", fault)
	return nil
}

// running returns the named instance and its process while one runs.
func (a *Actuator) running(name string) (topology.Instance, *proc, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rec, ok := a.instances[name]
	if !ok || !rec.proc.running() {
		return topology.Instance{}, nil, false
	}
	return rec.in, rec.proc, true
}

// post sends an empty POST to path on the server at addr and wants 2xx.
func post(ctx context.Context, addr, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return nil
}

// awaitHealth polls GET /healthz on addr until it reports want.
func (a *Actuator) awaitHealth(ctx context.Context, p *proc, addr, want string) error {
	last := "no answer"
	err := poll(ctx, p, func() (bool, error) {
		probeCtx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		h, err := engine.ProbeHealth(probeCtx, client, addr)
		switch {
		case h.Status != "":
			last = fmt.Sprintf("status %q", h.Status)
		case err != nil:
			last = err.Error()
		}
		return h.Status == want, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for /healthz on %s to report %q (last: %s): %w", addr, want, last, err)
	}
	return nil
}

package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/drpolicy/engine"
	"github.com/inferxds/inferxds/topology"
)

// hangGuard turns a hang into a failure; every wait ends on an event well
// before it.
const hangGuard = 60 * time.Second

var checkpointAt = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// newActuator returns an actuator running modelsim, configured by opts,
// that is closed, and checked to leave no process, when the test ends.
func newActuator(t *testing.T, opts ...func(*Config)) *Actuator {
	t.Helper()
	cfg := Config{
		Command:      []string{modelsimBin},
		Dir:          t.TempDir(),
		ColdLoadTime: 50 * time.Millisecond,
		WarmLoadTime: 50 * time.Millisecond,
		Checkpoints:  func(model string) (string, time.Time) { return model + "-ckpt-7", checkpointAt },
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLeavesNoProcess(t, a) })
	return a
}

// closeLeavesNoProcess closes a and checks every process it ran is gone.
func closeLeavesNoProcess(t *testing.T, a *Actuator) {
	t.Helper()
	pids := pidsOf(a.Instances())
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still exists after Close", pid)
		}
	}
	if left := a.Instances(); len(left) > 0 {
		t.Errorf("Instances after Close = %v, want none", left)
	}
}

func pidsOf(ps []Process) []int {
	var pids []int
	for _, p := range ps {
		pids = append(pids, p.PID)
	}
	return pids
}

// alive reports whether pid is a process that has not exited (a zombie
// has).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), hangGuard)
	t.Cleanup(cancel)
	return c
}

func freeTestPort(t *testing.T) uint32 {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// testFleet is one model with a hot primary, a warm and a cold standby.
func testFleet(t *testing.T) *topology.Fleet {
	instance := func(name string, tier topology.Tier, role topology.Role) topology.Instance {
		return topology.Instance{Name: name, Model: "llm", Zone: "az-1", Node: "node-1", Address: loopback, Port: freeTestPort(t),
			Tier: tier, Role: role, Health: topology.HealthServing}
	}
	return &topology.Fleet{
		Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}},
		Instances: []topology.Instance{
			instance("llm-cold", topology.TierCold, topology.RoleStandby),
			instance("llm-hot", topology.TierHot, topology.RolePrimary),
			instance("llm-warm", topology.TierWarm, topology.RoleStandby),
		},
	}
}

func launch(t *testing.T, a *Actuator) *topology.Fleet {
	t.Helper()
	fleet := testFleet(t)
	if err := a.Launch(ctx(t), fleet); err != nil {
		t.Fatalf("Launch: %v", err)
	}
	return fleet
}

// health is the instance's own answer to GET /healthz.
func health(t *testing.T, in topology.Instance) engine.Health {
	t.Helper()
	h, err := engine.ProbeHealth(ctx(t), http.DefaultClient, hostPort(in))
	if h.Status == "" {
		t.Fatalf("GET /healthz on %s (%s): %v", in.Name, hostPort(in), err)
	}
	return h
}

func do(t *testing.T, a *Actuator, act dr.Action) topology.Instance {
	t.Helper()
	got, err := a.Do(ctx(t), act)
	if err != nil {
		t.Fatalf("Do(%s %s): %v", act.Kind, act.Instance, err)
	}
	return got
}

// doTwice does act twice and checks the second time changes nothing.
func doTwice(t *testing.T, a *Actuator, act dr.Action) topology.Instance {
	t.Helper()
	first := do(t, a, act)
	before := a.Instances()
	if again := do(t, a, act); !cmp.Equal(first, again) {
		t.Errorf("Do(%s %s) again returned another instance (-first +again):\n%s", act.Kind, act.Instance, cmp.Diff(first, again))
	}
	if after := a.Instances(); !cmp.Equal(before, after) {
		t.Errorf("Do(%s %s) again changed the processes (-before +after):\n%s", act.Kind, act.Instance, cmp.Diff(before, after))
	}
	return first
}

func running(a *Actuator) map[string]topology.Tier {
	out := map[string]topology.Tier{}
	for _, p := range a.Instances() {
		out[p.Name] = p.Tier
	}
	return out
}

func noFailure(t *testing.T, a *Actuator) {
	t.Helper()
	select {
	case f := <-a.Failures():
		t.Errorf("unexpected failure reported: %+v", f)
	default:
	}
}

func TestLaunchRunsHotServingAndWarmAsleep(t *testing.T) {
	a := newActuator(t)
	fleet := launch(t, a)
	want := map[string]topology.Tier{"llm-hot": topology.TierHot, "llm-warm": topology.TierWarm}
	if got := running(a); !cmp.Equal(got, want) {
		t.Fatalf("running processes (-want +got):\n%s", cmp.Diff(want, got))
	}
	hot, warm := health(t, fleet.Instances[1]), health(t, fleet.Instances[2])
	if hot.Status != "serving" || warm.Status != "sleeping" || !warm.Sleeping {
		t.Errorf("hot reports %+v, warm %+v; want serving and sleeping", hot, warm)
	}
	wantCkpt := &dr.Checkpoint{ID: "llm-ckpt-7", Time: checkpointAt}
	if diff := cmp.Diff(wantCkpt, hot.Checkpoint); diff != "" {
		t.Errorf("hot instance's checkpoint (-want +got):\n%s", diff)
	}
	for _, p := range a.Instances() {
		if want := hostPort(fleet.Instances[slices.IndexFunc(fleet.Instances, func(in topology.Instance) bool { return in.Name == p.Name })]); p.Address != want {
			t.Errorf("%s listens on %s, want the fleet's %s", p.Name, p.Address, want)
		}
	}
	if err := a.Launch(ctx(t), fleet); err == nil || !strings.Contains(err.Error(), "llm-cold") {
		t.Errorf("Launch of the same fleet again: err = %v, want one naming an instance already recorded", err)
	}
	noFailure(t, a)
}

// cmdline is the running process's argv.
func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

// flag returns the value following name in argv, or "" when it is absent.
func flag(argv []string, name string) string {
	i := slices.Index(argv, name)
	if i < 0 || i+1 == len(argv) {
		return ""
	}
	return argv[i+1]
}

func TestEachProcessStartsWithTheFlagsOfItsTierAndLoad(t *testing.T) {
	a := newActuator(t)
	launch(t, a)
	do(t, a, dr.Action{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-hot-1", Zone: "az-1", Tier: topology.TierHot})
	type flags struct{ ID, Asleep, ColdLoad, WarmLoad, Checkpoint, CheckpointTime string }
	want := map[string]flags{
		// The launched fleet is already at its tiers: no load time.
		"llm-hot":   {"llm-hot", "", "", "50ms", "llm-ckpt-7", "2026-11-30T12:00:00Z"},
		"llm-warm":  {"llm-warm", "asleep", "", "50ms", "llm-ckpt-7", "2026-11-30T12:00:00Z"},
		"llm-hot-1": {"llm-hot-1", "", "50ms", "50ms", "llm-ckpt-7", "2026-11-30T12:00:00Z"},
	}
	got := map[string]flags{}
	for _, p := range a.Instances() {
		argv := cmdline(t, p.PID)
		asleep := ""
		if slices.Contains(argv, "--start-asleep") {
			asleep = "asleep"
		}
		got[p.Name] = flags{flag(argv, "--id"), asleep, flag(argv, "--cold-load-time"), flag(argv, "--warm-load-time"),
			flag(argv, "--checkpoint"), flag(argv, "--checkpoint-time")}
		if st, err := os.Stat(a.logPath(p.Name)); err != nil || st.Size() == 0 {
			t.Errorf("%s's log %s: %v, want its output there", p.Name, a.logPath(p.Name), err)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("process flags (-want +got):\n%s", diff)
	}
}

func TestWakeServesTheWarmStandbyWhereItWasPlaced(t *testing.T) {
	a := newActuator(t)
	fleet := launch(t, a)
	got := doTwice(t, a, dr.Action{Kind: dr.ActionWake, Model: "llm", Instance: "llm-warm", Tier: topology.TierHot, Node: "node-2", GPUs: []int{3}})
	want := fleet.Instances[2]
	want.Tier, want.Health, want.Node, want.GPUs = topology.TierHot, topology.HealthServing, "node-2", []int{3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("woken instance (-want +got):\n%s", diff)
	}
	if h := health(t, got); h.Status != "serving" || h.Sleeping {
		t.Errorf("woken instance reports %+v, want serving", h)
	}
	noFailure(t, a)
}

func TestLoadStartsTheColdStandbyAsleepOnItsPort(t *testing.T) {
	a := newActuator(t)
	fleet := launch(t, a)
	got := doTwice(t, a, dr.Action{Kind: dr.ActionLoad, Model: "llm", Instance: "llm-cold", Tier: topology.TierWarm})
	if got.Tier != topology.TierWarm || got.Port != fleet.Instances[0].Port {
		t.Errorf("loaded instance: tier %s port %d, want warm on the fleet's port %d", got.Tier, got.Port, fleet.Instances[0].Port)
	}
	if h := health(t, got); h.Status != "sleeping" {
		t.Errorf("loaded instance reports %+v, want sleeping", h)
	}
	if tier := running(a)["llm-cold"]; tier != topology.TierWarm {
		t.Errorf("llm-cold process tier %q, want warm", tier)
	}
	noFailure(t, a)
}

func TestCreateStartsAnInstanceAtTheActionsTier(t *testing.T) {
	a := newActuator(t)
	cases := []struct {
		act        dr.Action
		role       topology.Role
		status     string // what the process reports; empty: no process
		wantHealth topology.Health
	}{
		{dr.Action{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-hot-1", Zone: "az-2", Tier: topology.TierHot, Node: "node-4", GPUs: []int{0, 1}},
			topology.RoleStandby, "serving", topology.HealthServing},
		{dr.Action{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-emergency-1", Zone: "az-1", Tier: topology.TierHot, Emergency: true},
			topology.RolePrimary, "serving", topology.HealthServing},
		{dr.Action{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-warm-1", Zone: "az-1", Tier: topology.TierWarm},
			topology.RoleStandby, "sleeping", topology.HealthUnknown},
		{dr.Action{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-cold-1", Zone: "az-3", Tier: topology.TierCold},
			topology.RoleStandby, "", topology.HealthUnknown},
	}
	for _, c := range cases {
		got := doTwice(t, a, c.act)
		want := topology.Instance{Name: c.act.Instance, Model: "llm", Zone: c.act.Zone, Node: c.act.Node, GPUs: c.act.GPUs,
			Address: loopback, Port: got.Port, Tier: c.act.Tier, Role: c.role, Health: c.wantHealth}
		if diff := cmp.Diff(want, got); diff != "" || got.Port == 0 {
			t.Errorf("created %s (-want +got):\n%s", c.act.Instance, diff)
		}
		tier, runs := running(a)[c.act.Instance]
		switch {
		case c.status == "" && runs:
			t.Errorf("%s has a process, want none for a cold instance", c.act.Instance)
		case c.status != "" && tier != c.act.Tier:
			t.Errorf("%s process tier %q, want %s", c.act.Instance, tier, c.act.Tier)
		case c.status != "":
			if h := health(t, got); h.Status != c.status {
				t.Errorf("%s reports %+v, want %s", c.act.Instance, h, c.status)
			}
		}
	}
	loaded := do(t, a, dr.Action{Kind: dr.ActionLoad, Model: "llm", Instance: "llm-cold-1", Tier: topology.TierWarm})
	if h := health(t, loaded); h.Status != "sleeping" {
		t.Errorf("created cold instance, loaded, reports %+v; want sleeping", h)
	}
	noFailure(t, a)
}

func TestStopEndsTheProcessWithoutAFailure(t *testing.T) {
	a := newActuator(t)
	launch(t, a)
	pid := a.Instances()[0].PID
	got := doTwice(t, a, dr.Action{Kind: dr.ActionStop, Model: "llm", Instance: "llm-hot", Tier: topology.TierCold})
	if got.Tier != topology.TierCold {
		t.Errorf("stopped instance tier %s, want cold", got.Tier)
	}
	if alive(pid) {
		t.Errorf("llm-hot pid %d exists after stop", pid)
	}
	if _, runs := running(a)["llm-hot"]; runs {
		t.Error("llm-hot still listed as running after stop")
	}
	noFailure(t, a)
}

func TestStopDrainsAFrozenProcess(t *testing.T) {
	a := newActuator(t)
	launch(t, a)
	hot := a.Instances()[0]
	if err := syscall.Kill(hot.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	do(t, a, dr.Action{Kind: dr.ActionStop, Model: "llm", Instance: hot.Name, Tier: topology.TierCold})
	if log, err := os.ReadFile(a.logPath(hot.Name)); err != nil || !strings.Contains(string(log), "shutting down") {
		t.Errorf("log of %s after stopping it frozen (%v):\n%s\nwant a graceful shutdown", hot.Name, err, log)
	}
	noFailure(t, a)
}

// nextFailure waits for the next failure the actuator reports.
func nextFailure(t *testing.T, a *Actuator) dr.Failure {
	t.Helper()
	select {
	case f := <-a.Failures():
		return f
	case <-time.After(hangGuard):
		t.Fatal("no failure reported")
		return dr.Failure{}
	}
}

func TestKillIsReportedAsAProcessCrash(t *testing.T) {
	a := newActuator(t)
	launch(t, a)
	before := time.Now()
	if err := a.Kill("llm-hot"); err != nil {
		t.Fatal(err)
	}
	f := nextFailure(t, a)
	if f.Instance != "llm-hot" || f.Type != dr.FailureProcessCrash || f.FaultAt.Before(before) || f.At.Before(f.FaultAt) ||
		!strings.Contains(f.Detail, "killed") {
		t.Errorf("failure after Kill = %+v; want llm-hot's crash, fault at the kill, detected after it", f)
	}
	if _, runs := running(a)["llm-hot"]; runs {
		t.Error("killed llm-hot still listed as running")
	}
	if err := a.Kill("llm-hot"); err == nil {
		t.Error("Kill of an instance with no process: no error")
	}
	noFailure(t, a)
}

func TestAnExitNobodyAskedForIsReported(t *testing.T) {
	a := newActuator(t)
	launch(t, a)
	warm := a.Instances()[1]
	if err := syscall.Kill(warm.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	f := nextFailure(t, a)
	if f.Instance != "llm-warm" || f.Type != dr.FailureProcessCrash || !f.FaultAt.IsZero() {
		t.Errorf("failure after an outside SIGTERM = %+v; want llm-warm's crash with no known fault time", f)
	}
	if _, err := a.Do(ctx(t), dr.Action{Kind: dr.ActionWake, Instance: "llm-warm", Tier: topology.TierHot}); err == nil {
		t.Error("wake of an exited instance: no error")
	}
}

func TestCloseStopsEveryProcess(t *testing.T) {
	a := newActuator(t)
	launch(t, a)
	do(t, a, dr.Action{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-hot-1", Zone: "az-1", Tier: topology.TierHot})
	pids := pidsOf(a.Instances())
	if len(pids) != 3 {
		t.Fatalf("running %v, want 3 processes", a.Instances())
	}
	closeLeavesNoProcess(t, a)
	noFailure(t, a)
	if _, err := a.Do(ctx(t), dr.Action{Kind: dr.ActionLoad, Instance: "llm-cold", Tier: topology.TierWarm}); !errors.Is(err, errClosed) {
		t.Errorf("Do after Close: err = %v, want %v", err, errClosed)
	}
}

func TestAProcessThatCannotStartIsAnErrorQuotingItsLog(t *testing.T) {
	a := newActuator(t, func(c *Config) { c.Command = append(c.Command, "--no-such-flag") })
	_, err := a.Do(ctx(t), dr.Action{Kind: dr.ActionCreate, Model: "llm", Instance: "llm-hot-1", Zone: "az-1", Tier: topology.TierHot})
	if err == nil || !strings.Contains(err.Error(), "no-such-flag") || !strings.Contains(err.Error(), a.logPath("llm-hot-1")) {
		t.Errorf("create with a bad command: err = %v; want one naming the log and quoting its last lines", err)
	}
	if ps := a.Instances(); len(ps) > 0 {
		t.Errorf("running %v after a failed start, want none", ps)
	}
	noFailure(t, a)
}

func TestInjectedFaultsReachTheProcess(t *testing.T) {
	a := newActuator(t)
	fleet := launch(t, a)
	hot := hostPort(fleet.Instances[1])
	for _, step := range []struct {
		fault       string
		wantCorrupt bool
		wantErr     bool
		wantStatus  string
	}{
		{"corrupt", true, true, "serving"},
		{"recover", false, false, "serving"},
		{"fail", false, true, "failing"},
		{"recover", false, false, "serving"},
	} {
		if err := a.Inject("llm-hot", step.fault); err != nil {
			t.Fatalf("Inject %s: %v", step.fault, err)
		}
		corrupt, err := engine.ProbeDeep(ctx(t), http.DefaultClient, hot, "llm")
		if corrupt != step.wantCorrupt || (err != nil) != step.wantErr {
			t.Errorf("after %s: deep probe corrupt=%v err=%v; want corrupt=%v and an error: %v", step.fault, corrupt, err, step.wantCorrupt, step.wantErr)
		}
		if h := health(t, fleet.Instances[1]); h.Status != step.wantStatus {
			t.Errorf("after %s: /healthz status %q, want %q", step.fault, h.Status, step.wantStatus)
		}
	}
	if err := a.Inject("llm-hot", "melt"); err == nil || !strings.Contains(err.Error(), "melt") {
		t.Errorf("Inject of an unknown fault: err = %v, want one naming it", err)
	}
	if err := a.Inject("llm-cold", "fail"); err == nil {
		t.Error("Inject into an instance with no process: no error")
	}
}

func TestDoRefusesWhatItCannotCarryOut(t *testing.T) {
	a := newActuator(t)
	launch(t, a)
	for _, act := range []dr.Action{
		{Kind: dr.ActionPromote, Instance: "llm-hot"},
		{Kind: dr.ActionWake, Instance: "llm-nowhere", Tier: topology.TierHot},
		{Kind: dr.ActionWake, Instance: "llm-cold", Tier: topology.TierHot},
	} {
		if _, err := a.Do(ctx(t), act); err == nil || !strings.Contains(err.Error(), act.Instance) {
			t.Errorf("Do(%s %s): err = %v, want one naming the instance", act.Kind, act.Instance, err)
		}
	}
}

func TestChildrenDieWithTheirParent(t *testing.T) {
	parent := exec.Command(os.Args[0])
	parent.Env = append(os.Environ(), parentDirEnv+"="+t.TempDir(), modelsimEnv+"="+modelsimBin)
	var stderr bytes.Buffer
	parent.Stderr = &stderr
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, convErr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || convErr != nil || !alive(pid) {
		t.Fatalf("parent printed %q (%v), want the pid of a running child; its stderr:\n%s", line, err, stderr.String())
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	deadline := time.Now().Add(hangGuard)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still runs %v after its parent was killed", pid, hangGuard)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

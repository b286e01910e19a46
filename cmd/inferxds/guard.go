package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/internal/inputcheck"
	"github.com/inferxds/inferxds/topology"
)

func addGuardFlags(f *pflag.FlagSet) {
	f.Float64("max-removal-share", inputcheck.DefaultMaxRemovalShare, "largest share (0-1) of the models or instances in service that one fleet or policy change may remove; larger changes are refused unless the file has the comment line \"# "+inputcheck.Annotation+"\"")
	f.Bool("allow-mass-removal", false, "apply changes that remove more than --max-removal-share, or a policy file, at once")
}

// inputGuard stands between the sources and the controller: it keeps the
// fleet and policy in service, refuses a change that removes too much of
// them at once (or a policy file), and logs where the two disagree.
type inputGuard struct {
	maxShare float64
	allow    bool
	logger   *slog.Logger
	refused  *prometheus.CounterVec

	mu          sync.Mutex
	fleet       *topology.Fleet
	policy      *drpolicy.Policy
	policyFiles []string
	warned      string
}

func newInputGuard(cfg config, logger *slog.Logger, registry prometheus.Registerer) (*inputGuard, error) {
	if !(cfg.MaxRemovalShare >= 0 && cfg.MaxRemovalShare <= 1) {
		return nil, errors.New("--max-removal-share must be between 0 and 1")
	}
	g := &inputGuard{
		maxShare: cfg.MaxRemovalShare,
		allow:    cfg.AllowMassRemoval,
		logger:   logger,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferxds_source_change_refused_total",
			Help: "Source changes held back because they remove too much at once, by source and reason.",
		}, []string{"source", "reason"}),
	}
	return g, registry.Register(g.refused)
}

// admitFleet says whether a new source fleet may go into service; path is
// its file ("" for the embedded example).
func (g *inputGuard) admitFleet(f *topology.Fleet, path string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refuse(sourceFleet, inputcheck.FleetChange(g.fleet, f, g.maxShare), annotated(path)); err != nil {
		return err
	}
	g.fleet = f
	g.warn()
	return nil
}

// admitPolicy says whether a new policy may go into service; dir is its
// directory ("" for the embedded example).
func (g *inputGuard) admitPolicy(p *drpolicy.Policy, dir string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var files []string
	if dir != "" {
		var err error
		if files, err = drpolicy.Files(dir); err != nil {
			return err
		}
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f)
	}
	change := errors.Join(inputcheck.FilesGone(g.policyFiles, files), inputcheck.PolicyChange(g.policy, p, g.maxShare))
	if err := g.refuse(sourcePolicy, change, annotated(paths...)); err != nil {
		return err
	}
	g.policy, g.policyFiles = p, files
	g.warn()
	return nil
}

// refuse returns the change's refusal, counted, unless an override says the
// change is intended. A removed policy file is never annotated.
func (g *inputGuard) refuse(source string, change error, annotated bool) error {
	var refused *inputcheck.Refused
	if !errors.As(change, &refused) || g.allow || (annotated && refused.What != "policy files") {
		return nil
	}
	g.refused.WithLabelValues(source, refused.Reason()).Inc()
	return change
}

// warn logs what the fleet and policy in service disagree on, when it
// changes.
func (g *inputGuard) warn() {
	if g.fleet == nil || g.policy == nil {
		return
	}
	warnings := mismatchWarnings(g.fleet, g.policy)
	if warnings == g.warned {
		return
	}
	g.warned = warnings
	for line := range strings.Lines(warnings) {
		g.logger.Warn(strings.TrimSuffix(strings.TrimPrefix(line, "warning: "), "\n"))
	}
}

// annotated reports whether any of the files carries the override comment.
func annotated(paths ...string) bool {
	for _, p := range paths {
		if data, err := os.ReadFile(p); p != "" && err == nil && inputcheck.Annotated(data) {
			return true
		}
	}
	return false
}

package drpolicy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/inferxds/inferxds/internal/fielderr"
	"github.com/inferxds/inferxds/internal/filewatch"
	"github.com/inferxds/inferxds/internal/yamlpos"
)

// Load reads the policy directory: every *.yaml and *.yml file directly in
// dir, in name order. Hidden files and subdirectories are skipped; symlinks
// are followed, so a mounted Kubernetes ConfigMap loads as is. Models and
// tenants may come from any file; az_failover from at most one. The merged
// policy gets its defaults and is validated; the error lists every problem,
// each naming file, line and field.
func Load(dir string) (*Policy, error) { return load(os.DirFS(dir), ".", dir) }

// LoadFS is Load on a file system, such as an embedded example directory.
func LoadFS(fsys fs.FS, dir string) (*Policy, error) { return load(fsys, dir, dir) }

// Parse reads a policy from one file's contents; filename is for messages.
func Parse(filename string, data []byte) (*Policy, error) {
	var m merger
	m.add(filename, data)
	return m.result()
}

// Watch loads dir, calls fn with the result, then does so again each time a
// policy file in dir changes and settles (see filewatch.Watch; opts.Relevant
// is set here), until ctx ends. fn gets either a policy or the error;
// callers keep their last good policy on error. Watch returns nil when ctx
// ends, or the error that prevented watching.
func Watch(ctx context.Context, dir string, opts filewatch.Options, fn func(*Policy, error)) error {
	opts.Relevant = isPolicyEvent
	return filewatch.Watch(ctx, dir, opts, func() { fn(Load(dir)) })
}

func load(fsys fs.FS, dir, shownDir string) (*Policy, error) {
	names, err := policyFiles(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %w", shownDir, err)
	}
	m := merger{fsys: fsys, dir: dir, shownDir: shownDir}
	for _, name := range names {
		shown := filepath.Join(shownDir, name)
		data, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			m.errs = append(m.errs, fmt.Errorf("%s: %w", shown, err))
			continue
		}
		m.add(shown, data)
	}
	return m.result()
}

// Files lists, by name, the policy files Load reads in dir.
func Files(dir string) ([]string, error) { return policyFiles(os.DirFS(dir), ".") }

func policyFiles(fsys fs.FS, dir string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if pathErr := (*fs.PathError)(nil); errors.As(err, &pathErr) {
		return nil, pathErr.Err // the path is fsys-relative; the caller names the directory
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !isPolicyFile(e.Name()) {
			continue
		}
		if info, err := fs.Stat(fsys, path.Join(dir, e.Name())); err == nil && info.Mode().IsRegular() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, errors.New("no *.yaml or *.yml policy files")
	}
	return names, nil
}

func isPolicyFile(name string) bool {
	ext := filepath.Ext(name)
	return !strings.HasPrefix(name, ".") && (ext == ".yaml" || ext == ".yml")
}

// isPolicyEvent accepts changes to policy files, to JSON files (a JWKS the
// policy names) and Kubernetes' "..data" swap.
func isPolicyEvent(name string) bool {
	base := filepath.Base(name)
	return isPolicyFile(base) || filepath.Ext(base) == ".json" || strings.HasPrefix(base, "..")
}

// merger builds one policy from several files, remembering where each model,
// tenant and az_failover came from so that errors can name file and line.
type merger struct {
	policy  Policy
	sources sources
	errs    []error
	// fsys and dir hold the files policy files name (a JWKS); shownDir is
	// dir as messages show it. Parse has none.
	fsys          fs.FS
	dir, shownDir string
}

func (m *merger) add(file string, data []byte) {
	var part Policy
	doc, err := yamlpos.Decode(file, data, &part)
	m.errs = append(m.errs, err)
	for i := range part.Models {
		m.policy.Models = append(m.policy.Models, part.Models[i])
		m.sources.models = append(m.sources.models, origin{doc, i})
	}
	for i := range part.Tenants {
		m.policy.Tenants = append(m.policy.Tenants, part.Tenants[i])
		m.sources.tenants = append(m.sources.tenants, origin{doc, i})
	}
	if part.TenantAuth != nil {
		m.addTenantAuth(doc, part.TenantAuth)
	}
	m.errs = append(m.errs, explicitZeros(doc, &part))
	if part.AZFailover == nil {
		return
	}
	if first := m.sources.azFailover; first != nil {
		pr := fielderr.NewProblems(doc)
		pr.Add("az_failover", "az_failover is already defined at %s; define it once", first.Locate("az_failover"))
		m.errs = append(m.errs, pr.Err())
		return
	}
	m.policy.AZFailover = part.AZFailover
	m.sources.azFailover = doc
}

// explicitZeros refuses a zero written out where leaving the key out gives
// the default: "failoverThreshold: 0" must not quietly mean 3.
func explicitZeros(doc *yamlpos.Document, part *Policy) error {
	pr := fielderr.NewProblems(doc)
	if a := part.AZFailover; a != nil {
		if a.FailoverThreshold == 0 && doc.Has("az_failover.failoverThreshold") {
			pr.Add("az_failover.failoverThreshold", "must be at least 1 (got 0); leave the key out for the default %d", DefaultFailoverThreshold)
		}
		if a.HealthCheckInterval == 0 && doc.Has("az_failover.healthCheckInterval") {
			pr.Add("az_failover.healthCheckInterval", "must be positive (got 0s); leave the key out for the default %v", DefaultHealthCheckInterval)
		}
	}
	for i, m := range part.Models {
		field := fmt.Sprintf("models[%d].deepProbe.maxTokens", i)
		if m.DeepProbe != nil && m.DeepProbe.MaxTokens == 0 && doc.Has(field) {
			pr.Add(field, "must be at least 1 (got 0); leave the key out for the default %d", DefaultDeepProbeMaxTokens)
		}
	}
	return pr.Err()
}

// addTenantAuth takes the file's tenantAuth, defined once, and reads the
// JWKS file it names.
func (m *merger) addTenantAuth(doc *yamlpos.Document, a *TenantAuth) {
	pr := fielderr.NewProblems(doc)
	defer func() { m.errs = append(m.errs, pr.Err()) }()
	if first := m.sources.tenantAuth; first != nil {
		pr.Add("tenantAuth", "tenantAuth is already defined at %s; define it once", first.Locate("tenantAuth"))
		return
	}
	m.policy.TenantAuth, m.sources.tenantAuth = a, doc
	j := a.JWT
	if j == nil || j.JWKSFile == "" {
		return
	}
	switch {
	case j.JWKS != "":
		pr.Add("tenantAuth.jwt.jwks", "set either jwks or jwksFile, not both")
	case m.fsys == nil:
		pr.Add("tenantAuth.jwt.jwksFile", "names a file in the policy directory; load the directory, not one file")
	case !fs.ValidPath(j.JWKSFile) || strings.Contains(j.JWKSFile, "/"):
		pr.Add("tenantAuth.jwt.jwksFile", "must name a file directly in the policy directory (got %q)", j.JWKSFile)
	case filepath.Ext(j.JWKSFile) != ".json":
		// Only .json files of the directory are watched besides the policy.
		pr.Add("tenantAuth.jwt.jwksFile", "must be a .json file, so that edits of it are seen (got %q)", j.JWKSFile)
	default:
		data, err := fs.ReadFile(m.fsys, path.Join(m.dir, j.JWKSFile))
		if err != nil {
			pr.Add("tenantAuth.jwt.jwksFile", "reading %s: %v", filepath.Join(m.shownDir, j.JWKSFile), errors.Unwrap(err))
			return
		}
		if err := checkJWKS(string(data)); err != nil {
			pr.Add("tenantAuth.jwt.jwksFile", "%s: %v", filepath.Join(m.shownDir, j.JWKSFile), err)
			return
		}
		j.JWKS = string(data)
	}
}

func (m *merger) result() (*Policy, error) {
	m.policy.ApplyDefaults()
	m.errs = append(m.errs, m.policy.check(&m.sources))
	if err := errors.Join(m.errs...); err != nil {
		return nil, err
	}
	return &m.policy, nil
}

// origin is where a list item of the merged policy was written: its file and
// its index in that file's list.
type origin struct {
	doc   *yamlpos.Document
	index int
}

type sources struct {
	models, tenants        []origin
	azFailover, tenantAuth *yamlpos.Document
}

// Locate maps a field of the merged policy ("models[4].rto") to the file
// that set it and the path within that file ("models[1].rto").
func (s *sources) Locate(field string) fielderr.Place {
	if strings.HasPrefix(field, "az_failover") && s.azFailover != nil {
		return s.azFailover.Locate(field)
	}
	if strings.HasPrefix(field, "tenantAuth") && s.tenantAuth != nil {
		return s.tenantAuth.Locate(field)
	}
	section, rest, _ := strings.Cut(field, "[")
	index, tail, _ := strings.Cut(rest, "]")
	list := map[string][]origin{"models": s.models, "tenants": s.tenants}[section]
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i >= len(list) {
		return fielderr.Place{Field: field}
	}
	o := list[i]
	return o.doc.Locate(fmt.Sprintf("%s[%d]%s", section, o.index, tail))
}

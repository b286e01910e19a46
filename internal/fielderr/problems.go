package fielderr

import "fmt"

// Place is where a field is: a file and line when it came from a file.
type Place struct {
	File  string
	Line  int
	Field string
}

// String prints "file:line" for a field from a file, else the field path.
func (p Place) String() string {
	switch {
	case p.File == "":
		return p.Field
	case p.Line == 0:
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Locator places a field path of a value, in its source file if it has one.
type Locator interface {
	Locate(field string) Place
}

// NoFile locates fields of values built in code: the path only.
type NoFile struct{}

// Locate returns the field path alone.
func (NoFile) Locate(field string) Place { return Place{Field: field} }

// Problems collects validation errors so that all of them are reported.
type Problems struct {
	loc  Locator
	errs []error
}

// NewProblems starts an empty collection placing fields with loc.
func NewProblems(loc Locator) *Problems { return &Problems{loc: loc} }

// Add records that the field is wrong.
func (p *Problems) Add(field, format string, args ...any) {
	at := p.loc.Locate(field)
	p.errs = append(p.errs, &FieldError{File: at.File, Line: at.Line, Field: at.Field, Msg: fmt.Sprintf(format, args...)})
}

// Where says where a field is, for messages that point at a second place.
func (p *Problems) Where(field string) string { return p.loc.Locate(field).String() }

// Err joins everything recorded, sorted by file and line; nil when
// nothing was.
func (p *Problems) Err() error { return Join(p.errs...) }

// Unique reports each repeated non-empty value at its later place, naming
// the first; pathFormat turns a list index into a field path.
func (p *Problems) Unique(what, pathFormat string, values []string) {
	first := make(map[string]int, len(values))
	for i, v := range values {
		if v == "" {
			continue
		}
		if j, seen := first[v]; seen {
			p.Add(fmt.Sprintf(pathFormat, i), "duplicate %s %q (first at %s)", what, v, p.Where(fmt.Sprintf(pathFormat, j)))
			continue
		}
		first[v] = i
	}
}

// Names reports names that valid rejects and names that repeat, and returns
// the set of good ones; pathFormat turns a list index into a field path.
func (p *Problems) Names(what, pathFormat string, names []string, valid func(string) error) map[string]bool {
	good := make(map[string]bool, len(names))
	checked := make([]string, len(names))
	for i, name := range names {
		if err := valid(name); err != nil {
			p.Add(fmt.Sprintf(pathFormat, i), "%s name %v", what, err)
			continue
		}
		good[name], checked[i] = true, name
	}
	p.Unique(what+" name", pathFormat, checked)
	return good
}

// Package fielderr owns the shape of configuration problems: a FieldError
// names file, line and field ("fleet.yaml:12: instances[0].port: ..."), and
// Problems collects them so that every problem is reported, sorted by file
// and line. It knows nothing about YAML or about what the fields mean.
package fielderr

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem in a configuration: where it is and what is wrong.
// File and Line are empty for values that did not come from a file.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error prints "file:line: field: msg", leaving out what is unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Join joins errs like errors.Join, first flattening joined errors and
// sorting field errors by file and line (stable, so problems on one line
// keep their order). Other errors come first, in their order.
func Join(errs ...error) error {
	flat := flatten(nil, errs)
	slices.SortStableFunc(flat, compare)
	return errors.Join(flat...)
}

func flatten(into, errs []error) []error {
	for _, err := range errs {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			into = flatten(into, joined.Unwrap())
		} else if err != nil {
			into = append(into, err)
		}
	}
	return into
}

func compare(a, b error) int {
	fa, aok := a.(*FieldError)
	fb, bok := b.(*FieldError)
	switch {
	case !aok || !bok:
		return cmp.Compare(rank(aok), rank(bok))
	case fa.File != fb.File:
		return cmp.Compare(fa.File, fb.File)
	}
	return cmp.Compare(fa.Line, fb.Line)
}

func rank(isField bool) int {
	if isField {
		return 1
	}
	return 0
}

// Package yamlfile decodes configuration files strictly and reports problems
// as file:line: field: message. It owns the mapping from a field path such as
// "models[1].hotStandby" to the line of the YAML source that set it; it knows
// nothing about what the configuration means.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
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

// Document is a decoded file's YAML tree, kept to find the line of a field.
type Document struct {
	File string
	root *yaml.Node // nil for an empty file
}

// Decode reads one YAML document into v, rejecting keys v has no field for.
// It returns every problem found (errors.Join of *FieldError), not only the
// first; v holds whatever could be decoded. An empty file decodes to nothing.
func Decode(file string, data []byte, v any) (*Document, error) {
	doc := &Document{File: file}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return doc, doc.syntaxError(err)
	}
	if root.Kind == 0 {
		return doc, nil
	}
	doc.root = &root
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return doc, doc.decodeError(err)
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return doc, &FieldError{File: file, Line: extra.Line, Msg: "only one YAML document per file is allowed"}
	}
	return doc, nil
}

var (
	lineMessage  = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

func (d *Document) syntaxError(err error) error {
	line, msg := splitLine(err.Error())
	return &FieldError{File: d.File, Line: line, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// decodeError turns yaml.v3's "line N: ..." messages into FieldErrors that
// also name the field.
func (d *Document) decodeError(err error) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return d.syntaxError(err)
	}
	errs := make([]error, 0, len(typeErr.Errors))
	for _, text := range typeErr.Errors {
		line, msg := splitLine(text)
		key := ""
		if m := unknownField.FindStringSubmatch(msg); m != nil {
			key, msg = m[1], "unknown key "+strconv.Quote(m[1])
		}
		errs = append(errs, &FieldError{File: d.File, Line: line, Field: d.pathAt(line, key), Msg: msg})
	}
	return errors.Join(errs...)
}

func splitLine(text string) (int, string) {
	m := lineMessage.FindStringSubmatch(text)
	if m == nil {
		return 0, text
	}
	line, _ := strconv.Atoi(m[1])
	return line, m[2]
}

// Locate places a field path of this document's value: its line, or the line
// of the nearest ancestor the file does contain (for defaulted fields).
func (d *Document) Locate(field string) Place {
	return Place{File: d.File, Line: d.line(field), Field: field}
}

func (d *Document) line(field string) int {
	if d.root == nil {
		return 0
	}
	n := d.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, step := range splitPath(field) {
		next, at := child(n, step)
		if next == nil {
			break
		}
		n, line = next, at
	}
	return line
}

// child returns the node a path step leads to and the line to report for it:
// a mapping entry's key line, a list item's own line.
func child(n *yaml.Node, step string) (*yaml.Node, int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == step {
				return n.Content[i+1], n.Content[i].Line
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(step); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i], n.Content[i].Line
		}
	}
	return nil, 0
}

// splitPath splits "models[1].hotStandby" into "models", "1", "hotStandby".
func splitPath(field string) []string {
	return strings.FieldsFunc(field, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
}

// pathAt finds the deepest field set on a line; with key, the deepest mapping
// key of that name. It is how messages that carry only a line get a field.
// Items of a one-line [a, b] list are not told apart: the list is reported.
func (d *Document) pathAt(line int, key string) string {
	if d.root == nil || len(d.root.Content) == 0 {
		return ""
	}
	found := ""
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, p := n.Content[i], joinKey(path, n.Content[i].Value)
				if k.Line == line && (key == "" || k.Value == key) {
					found = p
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if item.Line == line && key == "" && n.Style&yaml.FlowStyle == 0 {
					found = p
				}
				walk(item, p)
			}
		}
	}
	walk(d.root.Content[0], "")
	return found
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Package yamlpos decodes configuration files strictly and reports problems
// as file:line: field: message. It parses with go.yaml.in/yaml/v4, which
// gives every node and every syntax error its position, and maps the node
// tree onto Go structs itself, so that each problem carries the field path
// ("models[1].hotStandby") and line of the node it is about. It knows
// nothing about what the configuration means.
package yamlpos

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v4"

	"github.com/inferxds/inferxds/internal/fielderr"
)

// Document is a decoded file's YAML tree, kept to find the line of a field.
type Document struct {
	File string
	root *yaml.Node // the document's content; nil for an empty file
	data []byte     // the file, when it is parsed only to locate a field
	once sync.Once
}

// Decode reads one YAML document into v, a pointer to a struct, rejecting
// keys v has no field for. It returns every problem found (errors.Join of
// *fielderr.FieldError, sorted by line), not only the first; v holds
// whatever could be decoded. An empty file decodes to nothing.
func Decode(file string, data []byte, v any) (*Document, error) {
	doc := &Document{File: file}
	root, err := parse(file, data)
	if err != nil || root == nil {
		return doc, err
	}
	doc.root = root
	return doc, doc.decode(v)
}

// parse returns the content node of the only document in data, nil for an
// empty file.
func parse(file string, data []byte) (*yaml.Node, error) {
	loader, err := yaml.NewLoader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := loader.Load(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, syntaxError(file, err)
	}
	var extra yaml.Node
	switch err := loader.Load(&extra); {
	case err == nil:
		return nil, &fielderr.FieldError{File: file, Line: extra.Line, Msg: "only one YAML document per file is allowed"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// syntaxError places a parser error at the position the parser reports.
func syntaxError(file string, err error) error {
	var many *yaml.LoadErrors
	if errors.As(err, &many) {
		errs := make([]error, len(many.Errors))
		for i, e := range many.Errors {
			errs[i] = loadError(file, e)
		}
		return fielderr.Join(errs...)
	}
	var one *yaml.LoadError
	if errors.As(err, &one) {
		return loadError(file, one)
	}
	return &fielderr.FieldError{File: file, Msg: err.Error()}
}

func loadError(file string, e *yaml.LoadError) error {
	msg := e.Message
	if e.ContextMsg != "" {
		msg = e.ContextMsg + " at line " + strconv.Itoa(e.ContextMark.Line) + ": " + msg
	}
	return &fielderr.FieldError{File: file, Line: e.Mark.Line, Msg: msg}
}

// Locate places a field path of this document's value: its line, or the line
// of the nearest ancestor the file does contain (for defaulted fields).
func (d *Document) Locate(field string) fielderr.Place {
	return fielderr.Place{File: d.File, Line: d.line(field), Field: field}
}

// Has reports whether the file sets the field (to anything, null too).
func (d *Document) Has(field string) bool {
	_, found := d.find(field)
	return found
}

func (d *Document) line(field string) int {
	line, _ := d.find(field)
	return line
}

// find returns the field's line, or its nearest ancestor's, and whether the
// field itself is in the file.
func (d *Document) find(field string) (int, bool) {
	n := d.tree()
	if n == nil {
		return 0, false
	}
	line := n.Line
	for _, step := range splitPath(field) {
		next, key := child(n, step)
		if next == nil {
			return line, false
		}
		line = next.Line // a list item at its own line
		if key != nil {  // a mapping entry at its key's line
			line = key.Line
		}
		n = next
	}
	return line, true
}

// tree returns the document's content, parsing the file the first time
// for a Document that Cache decoded.
func (d *Document) tree() *yaml.Node {
	d.once.Do(func() {
		if d.data != nil {
			d.root, _ = parse(d.File, d.data)
			d.data = nil
		}
	})
	return d.root
}

// child returns the node a path step leads to and, in a mapping, its key.
func child(n *yaml.Node, step string) (next, key *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == step {
				return n.Content[i+1], n.Content[i]
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(step); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i], nil
		}
	}
	return nil, nil
}

// splitPath splits "models[1].hotStandby" into "models", "1", "hotStandby".
func splitPath(field string) []string {
	return strings.FieldsFunc(field, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
}

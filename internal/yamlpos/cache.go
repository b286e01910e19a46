package yamlpos

import (
	"bytes"
	"strings"
	"sync"

	"go.yaml.in/yaml/v4"
)

// Cache decodes a file that is read again and again (a watched fleet
// file) by parsing only the parts that changed since the last read: each
// item of a top-level block list, and each other top-level entry, is parsed
// on its own and kept by its text. A file whose layout it does not follow
// (a top-level list, document markers, anchors, tabs) is parsed whole, so
// the result is always what Decode gives.
type Cache struct {
	mu    sync.Mutex
	parts map[string]*yaml.Node
}

// Decode is Decode, reusing the parse of every part whose text is unchanged.
func (c *Cache) Decode(file string, data []byte, v any) (*Document, error) {
	c.mu.Lock()
	doc, ok := c.assemble(file, data)
	c.mu.Unlock()
	if !ok {
		return Decode(file, data, v)
	}
	return doc, doc.decode(v)
}

// entry is a top-level key and the lines of its value.
type entry struct {
	key   string
	line  int // 1-based line of the key
	text  string
	items []chunk // the value's block-list items; nil when parsed whole
}

type chunk struct {
	line int
	text string
}

// assemble builds the document's tree from cached or freshly parsed parts;
// false when the file must be parsed whole.
func (c *Cache) assemble(file string, data []byte) (*Document, bool) {
	entries, ok := split(data)
	if !ok || len(entries) == 0 {
		return nil, false
	}
	used := make(map[string]*yaml.Node, len(c.parts))
	doc := &Document{File: file, shift: make(map[*yaml.Node]int)}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: entries[0].line, Column: 1}
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if seen[e.key] {
			return nil, false
		}
		seen[e.key] = true
		key, value, ok := c.entryNodes(e, used, doc.shift)
		if !ok {
			return nil, false
		}
		root.Content = append(root.Content, key, value)
	}
	c.parts = used
	doc.root = root
	return doc, true
}

func (c *Cache) entryNodes(e entry, used map[string]*yaml.Node, shift map[*yaml.Node]int) (key, value *yaml.Node, ok bool) {
	key = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.key, Line: e.line, Column: 1}
	if e.items == nil {
		whole, ok := c.part(e.text, used, yaml.MappingNode)
		if !ok || len(whole.Content) != 2 || whole.Content[0].Value != e.key {
			return nil, nil, false
		}
		value = whole.Content[1]
		shift[value] = e.line - 1
		return key, value, true
	}
	value = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: e.items[0].line}
	for _, it := range e.items {
		list, ok := c.part(it.text, used, yaml.SequenceNode)
		if !ok || len(list.Content) != 1 {
			return nil, nil, false
		}
		item := list.Content[0]
		shift[item] = it.line - 1
		value.Content = append(value.Content, item)
	}
	return key, value, true
}

// part parses text on its own, or takes it from the cache.
func (c *Cache) part(text string, used map[string]*yaml.Node, kind yaml.Kind) (*yaml.Node, bool) {
	n, ok := c.parts[text]
	if !ok {
		var err error
		if n, err = parse("", []byte(text)); err != nil || n == nil || hasAnchors(n) {
			return nil, false
		}
	}
	used[text] = n
	return n, n.Kind == kind
}

func hasAnchors(n *yaml.Node) bool {
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return true
	}
	for _, child := range n.Content {
		if hasAnchors(child) {
			return true
		}
	}
	return false
}

// split cuts data into top-level entries, and the value of an entry that is
// a block list into its items; false when the layout is not that simple.
func split(data []byte) ([]entry, bool) {
	if bytes.ContainsAny(data, "\t\r") {
		return nil, false
	}
	lines := strings.SplitAfter(string(data), "\n")
	var entries []entry
	for i := 0; i < len(lines); {
		if isBlank(lines[i]) {
			i++
			continue
		}
		end := i + 1
		for end < len(lines) && (isBlank(lines[end]) || lines[end][0] == ' ') {
			end++
		}
		e, ok := entryAt(lines, i, end)
		if !ok {
			return nil, false
		}
		entries = append(entries, e)
		i = end
	}
	return entries, true
}

// entryAt reads the top-level entry on lines[start:end].
func entryAt(lines []string, start, end int) (entry, bool) {
	head := lines[start]
	key, rest, found := strings.Cut(strings.TrimRight(head, "\n"), ":")
	if !found || !isPlainKey(key) {
		return entry{}, false
	}
	e := entry{key: key, line: start + 1, text: strings.Join(lines[start:end], "")}
	if !isBlank(rest) {
		return e, true // a value on the key's line: parse the entry whole
	}
	first := start + 1
	for first < end && isBlank(lines[first]) {
		first++
	}
	if first == end {
		return e, true
	}
	indent := len(lines[first]) - len(strings.TrimLeft(lines[first], " "))
	if !isItemStart(lines[first], indent) {
		return e, true // a mapping: parse the entry whole
	}
	for i := first; i < end; i++ {
		line := lines[i]
		switch {
		case isItemStart(line, indent):
			e.items = append(e.items, chunk{line: i + 1, text: line})
		case !isBlank(line) && len(line)-len(strings.TrimLeft(line, " ")) <= indent:
			return entry{}, false
		default:
			e.items[len(e.items)-1].text += line
		}
	}
	return e, true
}

// isBlank is true for an empty or comment-only line (comments need a space
// before the '#' unless they start the line, as in YAML).
func isBlank(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || t[0] == '#'
}

func isPlainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func isItemStart(line string, indent int) bool {
	if len(line) <= indent || strings.TrimLeft(line[:indent], " ") != "" || line[indent] != '-' {
		return false
	}
	next := line[indent+1:]
	return next == "" || next[0] == ' ' || next[0] == '\n'
}

package yamlpos

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"
)

// Cache decodes a file that is read again and again (a watched fleet
// file) by decoding only the parts that changed since the last read: the
// value of each item of a top-level block list is kept by a hash of the
// item's text, and only items not seen before are parsed, a batch at a
// time; other top-level entries, which are small, are decoded each time.
// Positions are found only when asked for (Document.Locate), by parsing
// the whole file then. A file whose layout it does not follow (a top-level
// list, document markers, anchors, tabs, characters YAML does not allow
// anywhere, comments included), a target it cannot copy (see cacheable),
// and any decoding problem send the file to Decode, so the result and
// every error are always what Decode gives.
type Cache struct {
	mu    sync.Mutex
	items map[itemKey]reflect.Value // never modified once stored
}

type itemKey struct {
	typ  reflect.Type
	text [sha256.Size]byte
}

// Decode is Decode, reusing the value of every list item whose text is
// unchanged.
func (c *Cache) Decode(file string, data []byte, v any) (*Document, error) {
	target := reflect.ValueOf(v).Elem()
	c.mu.Lock()
	value, ok := c.assemble(data, target)
	c.mu.Unlock()
	if !ok {
		return Decode(file, data, v)
	}
	target.Set(value)
	return &Document{File: file, data: data}, nil
}

// entry is a top-level key and the lines of its value.
type entry struct {
	key   string
	text  string
	items []string // the value's block-list items; nil when parsed whole
}

// assemble decodes data into a copy of v from cached or freshly decoded
// parts; false when the file must go to Decode.
func (c *Cache) assemble(data []byte, v reflect.Value) (reflect.Value, bool) {
	if v.Kind() != reflect.Struct || !cacheable(v.Type(), map[reflect.Type]bool{}) {
		return reflect.Value{}, false
	}
	if !printable(data) {
		return reflect.Value{}, false
	}
	entries, ok := split(data)
	if !ok || len(entries) == 0 {
		return reflect.Value{}, false
	}
	out := clone(v)
	fields := fieldsOf(v.Type())
	used := make(map[itemKey]reflect.Value, len(c.items))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		index, known := fields[e.key]
		if !known || seen[e.key] || !c.decodeEntry(e, out.Field(index), used) {
			return reflect.Value{}, false
		}
		seen[e.key] = true
	}
	c.items = used
	return out, true
}

// decodeEntry decodes an entry's value into field.
func (c *Cache) decodeEntry(e entry, field reflect.Value, used map[itemKey]reflect.Value) bool {
	if e.items == nil || field.Kind() != reflect.Slice {
		whole, ok := parsePart(e.text, yaml.MappingNode)
		return ok && len(whole.Content) == 2 && whole.Content[0].Value == e.key && decodes(whole.Content[1], field)
	}
	list := reflect.MakeSlice(field.Type(), len(e.items), len(e.items))
	keys := make([]itemKey, len(e.items))
	var missing []int
	for i, text := range e.items {
		keys[i] = itemKey{typ: list.Type().Elem(), text: sha256.Sum256([]byte(text))}
		if _, ok := c.items[keys[i]]; !ok {
			missing = append(missing, i)
		}
	}
	for batch := range slices.Chunk(missing, batchSize) {
		if !c.decodeItems(e.items, keys, batch) {
			return false
		}
	}
	for i, key := range keys {
		used[key] = c.items[key]
		list.Index(i).Set(c.items[key])
		unshare(list.Index(i))
	}
	field.Set(list)
	return true
}

// batchSize is how many new list items are parsed together: enough to
// make a first read about as fast as one parse of the whole file, few
// enough that their nodes take little memory.
const batchSize = 256

// decodeItems parses the items at the indexes in batch together, as one
// list, and adds their values to the cache under their keys.
func (c *Cache) decodeItems(items []string, keys []itemKey, batch []int) bool {
	var text strings.Builder
	for _, i := range batch {
		text.WriteString(items[i])
	}
	list, ok := parsePart(text.String(), yaml.SequenceNode)
	if !ok || len(list.Content) != len(batch) {
		return false
	}
	if c.items == nil {
		c.items = make(map[itemKey]reflect.Value)
	}
	for j, i := range batch {
		v := reflect.New(keys[i].typ).Elem()
		if !decodes(list.Content[j], v) {
			return false
		}
		c.items[keys[i]] = v
	}
	return true
}

// parsePart parses a part of a file on its own into a node of the kind.
func parsePart(text string, kind yaml.Kind) (*yaml.Node, bool) {
	n, err := parse("", []byte(text))
	return n, err == nil && n != nil && n.Kind == kind && !hasAnchors(n)
}

// decodes decodes n into v, reporting whether it did so without a problem.
func decodes(n *yaml.Node, v reflect.Value) bool {
	dec := &decoder{doc: &Document{}}
	dec.value(n, v)
	return len(dec.errs) == 0
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

// cacheable is true for a type that the decoder fills by itself (no
// Unmarshaler) and that clone copies fully (no map, interface or unexported
// field). seen holds the types being checked, for recursive types.
func cacheable(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return false
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		return cacheable(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); !f.IsExported() || !cacheable(f.Type, seen) {
				return false
			}
		}
		return true
	case reflect.String:
		return true
	}
	return t.Kind() >= reflect.Bool && t.Kind() <= reflect.Complex128
}

// clone copies v, sharing no slice or pointer with it.
func clone(v reflect.Value) reflect.Value {
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	unshare(c)
	return c
}

// unshare replaces every slice and pointer in v, which is settable, with a
// copy.
func unshare(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			v.Set(clone(v.Elem()).Addr())
		}
	case reflect.Slice:
		if !v.IsNil() {
			s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(s, v)
			for i := range s.Len() {
				unshare(s.Index(i))
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			unshare(v.Field(i))
		}
	}
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
	e := entry{key: key, text: strings.Join(lines[start:end], "")}
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
			e.items = append(e.items, line)
		case !isBlank(line) && len(line)-len(strings.TrimLeft(line, " ")) <= indent:
			return entry{}, false
		default:
			e.items[len(e.items)-1] += line
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

// printable reports whether data holds only characters YAML allows in a
// stream (YAML 1.2 c-printable, which Decode enforces even in comments the
// cache would skip): tab, line breaks, and printable Unicode.
func printable(data []byte) bool {
	return bytes.IndexFunc(data, func(r rune) bool {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return false
		case r < 0x20 || r == 0x7f:
			return true
		case r >= 0x80 && r <= 0x9f && r != 0x85:
			return true
		default:
			return r == utf8.RuneError || r == 0xfffe || r == 0xffff
		}
	}) < 0
}

package yamlpos

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/inferxds/inferxds/internal/fielderr"
)

// Unmarshaler is what a type implements to decode itself from its node. A
// returned error is reported at the node's line and field.
type Unmarshaler interface {
	UnmarshalYAML(n *yaml.Node) error
}

var (
	unmarshalerType     = reflect.TypeFor[Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// decoder maps a node tree onto a Go value. It keeps the field path of the
// node being decoded as a stack of steps, rendered only for an error.
type decoder struct {
	doc   *Document
	steps []step
	errs  []error
}

type step struct {
	key   string
	index int // used when key is ""
}

func (d *Document) decode(v any) error {
	dec := &decoder{doc: d}
	dec.value(d.root, reflect.ValueOf(v).Elem())
	return fielderr.Join(dec.errs...)
}

func (dec *decoder) fail(n *yaml.Node, format string, args ...any) {
	dec.errs = append(dec.errs, &fielderr.FieldError{
		File: dec.doc.File, Line: n.Line, Field: dec.path(), Msg: fmt.Sprintf(format, args...),
	})
}

func (dec *decoder) path() string {
	var b strings.Builder
	for _, s := range dec.steps {
		if s.key == "" {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

func (dec *decoder) value(n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		return // like an absent key: the zero value, or what a default sets
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(Unmarshaler).UnmarshalYAML(n); err != nil {
			dec.fail(n, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		dec.value(n, v.Elem())
	case reflect.Struct:
		dec.structure(n, v)
	case reflect.Slice:
		dec.list(n, v)
	default:
		dec.scalar(n, v)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (dec *decoder) structure(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		dec.fail(n, "want a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	var onStack [32]*yaml.Node
	seen := onStack[:] // the key that set each field
	if v.NumField() > len(onStack) {
		seen = make([]*yaml.Node, v.NumField())
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		dec.steps = append(dec.steps, step{key: key.Value})
		index, known := fields[key.Value]
		switch {
		case !known:
			dec.fail(key, "unknown key %q", key.Value)
		case seen[index] != nil:
			dec.fail(key, "key %q is already set at line %d", key.Value, seen[index].Line)
		default:
			seen[index] = key
			dec.value(val, v.Field(index))
		}
		dec.steps = dec.steps[:len(dec.steps)-1]
	}
}

func (dec *decoder) list(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		dec.fail(n, "want a list, got %s", describe(n))
		return
	}
	v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
	for i, item := range n.Content {
		dec.steps = append(dec.steps, step{index: i})
		dec.value(item, v.Index(i))
		dec.steps = dec.steps[:len(dec.steps)-1]
	}
}

func (dec *decoder) scalar(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		dec.fail(n, "want a %s, got %s", kindWord(v.Type()), describe(n))
		return
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			dec.fail(n, "%v", err)
		}
		return
	}
	if !setScalar(n, v) {
		dec.fail(n, "cannot unmarshal %s `%s` into %s", n.ShortTag(), n.Value, v.Type())
	}
}

// setScalar sets v from a scalar node as yaml.v3 would; false when the
// node's type does not fit v.
func setScalar(n *yaml.Node, v reflect.Value) bool {
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
		return true
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if tag != "!!bool" || err != nil {
			return false
		}
		v.SetBool(b)
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return setInt(n, tag, v)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(n.Value, 0, 64)
		if tag != "!!int" || err != nil || v.OverflowUint(u) {
			return false
		}
		v.SetUint(u)
		return true
	case reflect.Float32, reflect.Float64:
		f, err := parseFloat(n.Value)
		if (tag != "!!float" && tag != "!!int") || err != nil || v.OverflowFloat(f) {
			return false
		}
		v.SetFloat(f)
		return true
	}
	return false
}

func setInt(n *yaml.Node, tag string, v reflect.Value) bool {
	i, err := strconv.ParseInt(n.Value, 0, 64)
	if v.Type() == durationType && tag == "!!str" {
		var d time.Duration
		d, err = time.ParseDuration(n.Value)
		i, tag = int64(d), "!!int"
	}
	if tag != "!!int" || err != nil || v.OverflowInt(i) {
		return false
	}
	v.SetInt(i)
	return true
}

func parseFloat(s string) (float64, error) {
	switch strings.ToLower(strings.TrimPrefix(s, "+")) {
	case ".inf":
		return math.Inf(1), nil
	case "-.inf":
		return math.Inf(-1), nil
	case ".nan":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%s `%s`", n.ShortTag(), n.Value)
	}
	return "an alias"
}

func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	}
	return "number"
}

var fieldCache sync.Map // reflect.Type → map[string]int

// fieldsOf maps a struct's YAML keys to field indexes: the yaml tag's name,
// else the lowercased field name; "-" and unexported fields are skipped.
func fieldsOf(t reflect.Type) map[string]int {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]int)
	}
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		fields[name] = i
	}
	fieldCache.Store(t, fields)
	return fields
}

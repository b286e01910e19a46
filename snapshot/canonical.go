package snapshot

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
)

// appendCanonical appends an unambiguous encoding of v to buf: equal values
// encode to equal bytes and different values to different bytes. It walks
// every field by reflection, so a field added to the policy later is part of
// the Translator's cache key without anyone remembering to add it.
func appendCanonical(buf []byte, v reflect.Value) []byte {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			buf = appendCanonical(buf, v.Field(i))
		}
	case reflect.Pointer:
		if v.IsNil() {
			return append(buf, 0)
		}
		buf = appendCanonical(append(buf, 1), v.Elem())
	case reflect.Slice, reflect.Array:
		buf = binary.AppendUvarint(buf, uint64(v.Len()))
		for i := range v.Len() {
			buf = appendCanonical(buf, v.Index(i))
		}
	case reflect.String:
		buf = binary.AppendUvarint(buf, uint64(v.Len()))
		buf = append(buf, v.String()...)
	case reflect.Bool:
		if v.Bool() {
			return append(buf, 1)
		}
		return append(buf, 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		buf = binary.AppendVarint(buf, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		buf = binary.AppendUvarint(buf, v.Uint())
	case reflect.Float32, reflect.Float64:
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v.Float()))
	default:
		// Maps and interfaces do not occur in the policy today. fmt prints
		// map keys sorted; a pointer inside prints as its address, which at
		// worst costs a cache miss, never a wrong hit.
		s := fmt.Sprintf("%#v", v.Interface())
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

// Package names owns the one rule for what may name a zone, node, instance,
// model, tenant or queue: such names become Envoy cluster names, header
// values, URL path segments and metric labels.
package names

import (
	"errors"
	"fmt"
)

// Validate says why name cannot be used: names are kept to at most 253
// lowercase letters, digits, '-' and '.', starting and ending with a letter
// or digit.
func Validate(name string) error {
	if name == "" {
		return errors.New("is required")
	}
	if !valid(name) {
		return fmt.Errorf("%q is not a valid name: want at most 253 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit", name)
	}
	return nil
}

// valid matches ^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$ without a regular
// expression: names are checked for every instance of a large fleet.
func valid(name string) bool {
	if len(name) > 253 || !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return false
	}
	for i := range len(name) {
		if c := name[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

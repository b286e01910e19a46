// Package names owns the one rule for what may name a zone, node, instance,
// model, tenant or queue: such names become Envoy cluster names, header
// values, URL path segments and metric labels.
package names

import (
	"errors"
	"fmt"
	"regexp"
)

var pattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

// Validate says why name cannot be used: names are kept to at most 253
// lowercase letters, digits, '-' and '.', starting and ending with a letter
// or digit.
func Validate(name string) error {
	if name == "" {
		return errors.New("is required")
	}
	if !pattern.MatchString(name) {
		return fmt.Errorf("%q is not a valid name: want at most 253 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit", name)
	}
	return nil
}

package topology

import (
	"fmt"
	"regexp"
)

var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

// ValidateName says why a name cannot name a zone, node, instance, model or
// tenant. Such names become Envoy cluster names, header values and URL path
// segments, so they are kept to lowercase letters, digits, '-' and '.',
// starting and ending with a letter or digit.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("is required")
	}
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%q is not a valid name: want at most 253 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit", name)
	}
	return nil
}

package topology

import "github.com/inferxds/inferxds/internal/names"

// ValidateName says why a name cannot name a zone, node, instance, model or
// tenant (see internal/names).
func ValidateName(name string) error { return names.Validate(name) }

package drpolicy

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v4"
)

// UnmarshalYAML reads a Go duration string, or a bare zero; decoding places
// its errors at the node's line and field.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as \"10s\", got a %s", kindName(n.Kind))
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("bad duration %q: want a number with a unit, such as \"10s\" or \"1m30s\"", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalText writes the duration as a Go duration string (JSON, viper).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	default:
		return "document"
	}
}

package names_test

import (
	"strings"
	"testing"

	"github.com/inferxds/inferxds/internal/names"
)

func TestValidate(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "llama-2-7b": true, "az-1": true, "m.v2": true, strings.Repeat("a", 253): true,
		"": false, "-a": false, "a-": false, ".a": false, "A": false, "a_b": false, "a b": false, "é": false,
		strings.Repeat("a", 254): false,
	} {
		if err := names.Validate(name); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

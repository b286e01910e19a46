package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/topology"
)

// TestChangeAttrsNameWhatChangedAndCountLongLists: a small change is named
// in full; a first load of many models names the first few and counts the
// rest, so one log line stays readable at 2,000 models.
func TestChangeAttrsNameWhatChangedAndCountLongLists(t *testing.T) {
	policyOf := func(n int) *drpolicy.Policy {
		p := &drpolicy.Policy{}
		for i := range n {
			p.Models = append(p.Models, drpolicy.Model{Name: fmt.Sprintf("model-%02d", i)})
		}
		return p
	}
	fleet := &topology.Fleet{}

	attrs := changeAttrs(fleet, fleet, policyOf(2), policyOf(3))
	if want := []any{"modelsAdded", []string{"model-02"}}; fmt.Sprint(attrs) != fmt.Sprint(want) {
		t.Errorf("one model added: attrs %v, want %v", attrs, want)
	}

	attrs = changeAttrs(fleet, fleet, nil, policyOf(25))
	if len(attrs) != 2 || attrs[0] != "modelsAdded" {
		t.Fatalf("25 models added: attrs %v", attrs)
	}
	names := attrs[1].([]string)
	if len(names) != maxLoggedNames+1 || !slices.Contains(names, "model-00") || names[len(names)-1] != "and 15 more" {
		t.Errorf("25 models added: logged %v, want the first %d and \"and 15 more\"", names, maxLoggedNames)
	}
}

package yamlpos_test

import (
	"strings"
	"testing"

	"github.com/inferxds/inferxds/internal/yamlpos"
)

type config struct {
	Items []struct {
		Name  string `yaml:"name"`
		Count int    `yaml:"count"`
	} `yaml:"items"`
}

const twoItems = "items:\n  - name: a\n    count: 1\n  - name: b\n"

func TestLocateFindsFieldOrNearestAncestor(t *testing.T) {
	var c config
	doc, err := yamlpos.Decode("c.yaml", []byte(twoItems), &c)
	if err != nil {
		t.Fatal(err)
	}
	for field, line := range map[string]int{
		"items":          1,
		"items[0].count": 3,
		"items[1]":       4,
		"items[1].count": 4, // not in the file: the item's line
		"items[7].name":  1, // no such item: the list's line
	} {
		if got := doc.Locate(field); got.Line != line || got.File != "c.yaml" || got.Field != field {
			t.Errorf("Locate(%q) = %+v, want line %d", field, got, line)
		}
	}
}

func TestDecodeEmptyFileAndWrongShape(t *testing.T) {
	var c config
	if _, err := yamlpos.Decode("c.yaml", []byte("# nothing yet\n"), &c); err != nil || c.Items != nil {
		t.Errorf("empty file: %v, %+v", err, c)
	}
	_, err := yamlpos.Decode("c.yaml", []byte("- just\n- a list\n"), &c)
	if err == nil || !strings.HasPrefix(err.Error(), "c.yaml:1: ") {
		t.Errorf("list document: %v", err)
	}
}

package yamlfile_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/inferxds/inferxds/drpolicy/yamlfile"
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
	doc, err := yamlfile.Decode("c.yaml", []byte(twoItems), &c)
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

func TestFieldErrorLeavesOutWhatIsUnknown(t *testing.T) {
	for want, e := range map[string]yamlfile.FieldError{
		"c.yaml:3: items[0].count: too big": {File: "c.yaml", Line: 3, Field: "items[0].count", Msg: "too big"},
		"items[0].count: too big":           {Field: "items[0].count", Msg: "too big"},
		"c.yaml: empty":                     {File: "c.yaml", Msg: "empty"},
	} {
		if got := e.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
}

func TestDecodeEmptyFileAndWrongShape(t *testing.T) {
	var c config
	if _, err := yamlfile.Decode("c.yaml", []byte("# nothing yet\n"), &c); err != nil || c.Items != nil {
		t.Errorf("empty file: %v, %+v", err, c)
	}
	_, err := yamlfile.Decode("c.yaml", []byte("- just\n- a list\n"), &c)
	if err == nil || !strings.HasPrefix(err.Error(), "c.yaml:1: ") {
		t.Errorf("list document: %v", err)
	}
}

func TestProblemsNamesAndUnique(t *testing.T) {
	pr := yamlfile.NewProblems(yamlfile.NoFile{})
	valid := func(s string) error {
		if s == "" {
			return errors.New("is required")
		}
		return nil
	}
	good := pr.Names("item", "items[%d].name", []string{"a", "", "a", "b"}, valid)
	if len(good) != 2 || !good["a"] || !good["b"] {
		t.Errorf("good names = %v", good)
	}
	want := "items[1].name: item name is required\nitems[2].name: duplicate item name \"a\" (first at items[0].name)"
	if err := pr.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v\nwant %s", err, want)
	}
}

package fielderr_test

import (
	"errors"
	"testing"

	"github.com/inferxds/inferxds/internal/fielderr"
)

func TestFieldErrorLeavesOutWhatIsUnknown(t *testing.T) {
	for want, e := range map[string]fielderr.FieldError{
		"c.yaml:3: items[0].count: too big": {File: "c.yaml", Line: 3, Field: "items[0].count", Msg: "too big"},
		"items[0].count: too big":           {Field: "items[0].count", Msg: "too big"},
		"c.yaml: empty":                     {File: "c.yaml", Msg: "empty"},
	} {
		if got := e.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
}

func TestProblemsNamesAndUnique(t *testing.T) {
	pr := fielderr.NewProblems(fielderr.NoFile{})
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

func TestJoinSortsByFileAndLine(t *testing.T) {
	err := fielderr.Join(
		&fielderr.FieldError{File: "b.yaml", Line: 2, Msg: "b2"},
		errors.Join(&fielderr.FieldError{File: "a.yaml", Line: 9, Msg: "a9"}, &fielderr.FieldError{File: "b.yaml", Line: 1, Msg: "b1"}),
		nil,
		&fielderr.FieldError{File: "a.yaml", Line: 3, Msg: "a3"},
	)
	want := "a.yaml:3: a3\na.yaml:9: a9\nb.yaml:1: b1\nb.yaml:2: b2"
	if err == nil || err.Error() != want {
		t.Errorf("Join = %v\nwant %s", err, want)
	}
}

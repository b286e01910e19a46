package yamlpos_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

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

type kinds struct {
	S     string        `yaml:"s"`
	I     int           `yaml:"i"`
	U     uint32        `yaml:"u"`
	F     float64       `yaml:"f"`
	B     bool          `yaml:"b"`
	D     time.Duration `yaml:"d"`
	List  []int         `yaml:"list"`
	Inner *struct {
		N int `yaml:"n"`
	} `yaml:"inner"`
}

func TestDecodeScalarsAndTheirErrors(t *testing.T) {
	var k kinds
	_, err := yamlpos.Decode("k.yaml", []byte("s: 12\ni: 0x10\nu: 7\nf: 2\nb: true\nd: 1m30s\nlist: [1, 2]\ninner: {n: 3}\n"), &k)
	if err != nil || k.S != "12" || k.I != 16 || k.U != 7 || k.F != 2 || !k.B || k.D != 90*time.Second || len(k.List) != 2 || k.Inner == nil || k.Inner.N != 3 {
		t.Fatalf("decoded %+v, err %v", k, err)
	}
	_, err = yamlpos.Decode("k.yaml", []byte("i: 1.5\nu: -1\nb: maybe\nd: soon\nlist: 3\ninner:\n  n: x\n  m: 1\n  n: 2\ns: [a]\n"), &kinds{})
	want := strings.Join([]string{
		"k.yaml:1: i: cannot unmarshal !!float `1.5` into int",
		"k.yaml:2: u: cannot unmarshal !!int `-1` into uint32",
		"k.yaml:3: b: cannot unmarshal !!str `maybe` into bool",
		"k.yaml:4: d: cannot unmarshal !!str `soon` into time.Duration",
		"k.yaml:5: list: want a list, got !!int `3`",
		"k.yaml:7: inner.n: cannot unmarshal !!str `x` into int",
		`k.yaml:8: inner.m: unknown key "m"`,
		`k.yaml:9: inner.n: key "n" is already set at line 7`,
		"k.yaml:10: s: want a string, got a list",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func TestSyntaxErrorNamesTheLineThatBreaks(t *testing.T) {
	_, err := yamlpos.Decode("k.yaml", []byte("s: a\ni: 1\n  u: 2\n"), &kinds{})
	if err == nil || !strings.HasPrefix(err.Error(), "k.yaml:3: ") {
		t.Errorf("error = %v, want it at k.yaml:3", err)
	}
}

type fleet struct {
	Items []struct {
		Name string `yaml:"name"`
		GPUs []int  `yaml:"gpus"`
	} `yaml:"items"`
}

// TestCacheResultsShareNothing changes what one Decode through a Cache
// returned and checks that the next result, built from the same cached
// item, is unaffected; and that fields and problems are placed in the file.
func TestCacheResultsShareNothing(t *testing.T) {
	var cache yamlpos.Cache
	data := []byte("items:\n  - {name: a, gpus: [0, 1]}\n  - name: b\n")
	var first, second fleet
	if _, err := cache.Decode("f.yaml", data, &first); err != nil {
		t.Fatal(err)
	}
	first.Items[0].GPUs[0], first.Items[0].Name = 7, "changed"
	doc, err := cache.Decode("f.yaml", data, &second)
	if err != nil {
		t.Fatal(err)
	}
	if it := second.Items[0]; it.Name != "a" || it.GPUs[0] != 0 {
		t.Errorf("second decode = %+v, want the file's item", it)
	}
	if got := doc.Locate("items[1].name").Line; got != 3 {
		t.Errorf("items[1].name is at line %d, want 3", got)
	}
	_, err = cache.Decode("f.yaml", append(data, "  - {name: c, gpus: x}\n"...), &fleet{})
	if want := "f.yaml:4: items[2].gpus: want a list, got !!str `x`"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// TestCacheAgreesWithDecodeOnLongLists decodes lists longer than one batch
// of new items, first read and after edits, and compares every result and
// error with Decode's.
func TestCacheAgreesWithDecodeOnLongLists(t *testing.T) {
	var b strings.Builder
	b.WriteString("items:\n")
	for i := range 600 {
		fmt.Fprintf(&b, "  - name: n%d\n    gpus: [%d]\n", i, i%8)
	}
	file := b.String()
	var cache yamlpos.Cache
	for _, in := range []string{
		file,
		strings.Replace(file, "gpus: [512]", "gpus: [9]\n    colour: red", 1),
		strings.Replace(file, "name: n7\n", "name: n7\n  - name: added\n", 1),
		file + "  - name: last\n",
	} {
		var want, got fleet
		_, wantErr := yamlpos.Decode("f.yaml", []byte(in), &want)
		_, gotErr := cache.Decode("f.yaml", []byte(in), &got)
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) || !reflect.DeepEqual(want, got) {
			t.Fatalf("Decode: %v\nCache.Decode: %v\nsame value: %t", wantErr, gotErr, reflect.DeepEqual(want, got))
		}
	}
}

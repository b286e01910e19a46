package topology_test

import (
	"reflect"
	"testing"

	"github.com/inferxds/inferxds/topology"
)

// TestEqualSeesEveryField changes each field of each IR type in turn, so a
// field added to the IR but forgotten in Equal fails here.
func TestEqualSeesEveryField(t *testing.T) {
	fresh := func() *topology.Fleet {
		f, err := topology.ParseFleet("fleet.yaml", []byte(goodFleet))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	var visit func(path string, get func(*topology.Fleet) reflect.Value)
	visit = func(path string, get func(*topology.Fleet) reflect.Value) {
		if v := get(fresh()); v.Kind() == reflect.Struct {
			for i := range v.NumField() {
				visit(path+"."+v.Type().Field(i).Name, func(f *topology.Fleet) reflect.Value { return get(f).Field(i) })
			}
			return
		}
		a, b := fresh(), fresh()
		if !a.Equal(b) {
			t.Fatal("two parses of one file are not Equal")
		}
		change(t, path, get(b))
		if a.Equal(b) || b.Equal(a) {
			t.Errorf("%s differs but the fleets compare Equal", path)
		}
	}
	visit("Zones[0]", func(f *topology.Fleet) reflect.Value { return reflect.ValueOf(&f.Zones[0]).Elem() })
	visit("Nodes[0]", func(f *topology.Fleet) reflect.Value { return reflect.ValueOf(&f.Nodes[0]).Elem() })
	visit("Nodes[0].GPUs[0]", func(f *topology.Fleet) reflect.Value { return reflect.ValueOf(&f.Nodes[0].GPUs[0]).Elem() })
	visit("Instances[1]", func(f *topology.Fleet) reflect.Value { return reflect.ValueOf(&f.Instances[1]).Elem() })
	visit("Fleet", func(f *topology.Fleet) reflect.Value { return reflect.ValueOf(f).Elem() })
}

func change(t *testing.T, path string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint32:
		v.SetUint(v.Uint() + 1)
	case reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	default:
		t.Fatalf("%s: no way to change a %s; extend change()", path, v.Kind())
	}
}

func TestEqualTreatsNilAndEmptyAlike(t *testing.T) {
	a := &topology.Fleet{Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}}}
	b := &topology.Fleet{Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}}, Nodes: []topology.Node{}, Instances: []topology.Instance{}}
	if !a.Equal(b) {
		t.Error("nil and empty slices compare unequal")
	}
	var none *topology.Fleet
	if none.Equal(a) || a.Equal(none) || !none.Equal(nil) {
		t.Error("nil fleet handling wrong")
	}
}

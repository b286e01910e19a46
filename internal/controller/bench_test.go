package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/inferxds/inferxds/drpolicy"
	"github.com/inferxds/inferxds/internal/hub"
	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
	"github.com/inferxds/inferxds/xds"
)

// connectedServer is a real xds.Server whose nodes are stood in for: the
// Envoy view of each zone is connected.
type connectedServer struct {
	*xds.Server
	views []snapshot.View
}

func (s connectedServer) ConnectedViews() []snapshot.View { return s.views }

// BenchmarkFleetUpdateToSnapshots is the whole path of one endpoint
// change: the hub's fleet changes, the controller reads it, translates
// every connected view (500 models × 20 endpoints, Envoy in each of 3
// zones), validates and hands the snapshots to the server's cache. Target
// ≤ 3 ms.
func BenchmarkFleetUpdateToSnapshots(b *testing.B) {
	fleet, pol := benchInput(500, 20)
	h := hub.New(nil)
	srv := connectedServer{Server: xds.NewServer(xds.ServerConfig{})}
	for _, z := range fleet.Zones {
		srv.views = append(srv.views, snapshot.View{Zone: z.Name, Client: snapshot.ClientEnvoy})
	}
	c := New(srv, Config{
		Fleet: h.Fleet, Policy: h.Policy, Translator: snapshot.NewTranslator(),
		Holdoff: time.Nanosecond, MaxDelay: time.Nanosecond,
	})
	c.views = map[snapshot.View]*viewState{}
	for _, v := range srv.views {
		c.views[v] = &viewState{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	h.Policy.Publish(pol)
	h.Fleet.Publish(fleet)
	waitGeneration(b, c, 1)

	variants := [2]*topology.Fleet{withEndpointHealth(fleet, topology.HealthUnhealthy), fleet}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		h.Fleet.Publish(variants[i%2])
		waitGeneration(b, c, uint64(i+2))
	}
	b.StopTimer()
	if s := c.Status(); len(s.Failing) > 0 {
		b.Fatal(s.Failing)
	}
}

func waitGeneration(b *testing.B, c *Controller, n uint64) {
	for {
		updated := c.Updated()
		if c.Status().Generation >= n {
			return
		}
		<-updated
	}
}

// withEndpointHealth is a copy of f with its middle instance's health set.
func withEndpointHealth(f *topology.Fleet, health topology.Health) *topology.Fleet {
	out := *f
	out.Instances = append([]topology.Instance(nil), f.Instances...)
	out.Instances[len(out.Instances)/2].Health = health
	return &out
}

// benchInput is models × endpoints serving instances dealt over two active
// zones and a standby one.
func benchInput(models, endpoints int) (*topology.Fleet, *drpolicy.Policy) {
	zones := []string{"az-1", "az-2", "az-3"}
	fleet := &topology.Fleet{Zones: []topology.Zone{
		{Name: "az-1", Role: topology.ZoneActive}, {Name: "az-2", Role: topology.ZoneActive}, {Name: "az-3", Role: topology.ZoneStandby},
	}}
	pol := &drpolicy.Policy{AZFailover: &drpolicy.AZFailover{Strategy: "active-passive", ActiveZones: zones[:2], StandbyZone: "az-3"}}
	for m := range models {
		model := fmt.Sprintf("model-%04d", m)
		pol.Models = append(pol.Models, drpolicy.Model{Name: model})
		for e := range endpoints {
			fleet.Instances = append(fleet.Instances, topology.Instance{
				Name: fmt.Sprintf("%s-%02d", model, e), Model: model, Zone: zones[e%3],
				Address: fmt.Sprintf("10.%d.%d.%d", m/250, m%250, e), Port: 8000,
			})
		}
	}
	fleet.ApplyDefaults()
	pol.ApplyDefaults()
	return fleet, pol
}

package gpupool

import (
	"fmt"
	"testing"

	"github.com/inferxds/inferxds/topology"
)

// BenchmarkScheduleRelease places and releases one 2-GPU request on a
// fleet of 500 nodes with eight 80 GB GPUs each, a quarter of them busy.
func BenchmarkScheduleRelease(b *testing.B) {
	f := &topology.Fleet{Zones: []topology.Zone{{Name: "zone-a", Role: topology.ZoneActive}}}
	for n := range 500 {
		node := topology.Node{Name: fmt.Sprintf("node-%03d", n), Zone: "zone-a"}
		for i := range 8 {
			node.GPUs = append(node.GPUs, gpu(i, 80000, int64((n*8+i)%4)*20000))
		}
		f.Nodes = append(f.Nodes, node)
	}
	p, err := NewPool(f, testQueues(), DefaultOvercommit)
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Model: "qwen-72b", Tenant: "chat", MemoryMiB: 40000, GPUs: 2}
	b.ReportAllocs()
	for b.Loop() {
		pl, err := p.Schedule(req)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Release(pl); err != nil {
			b.Fatal(err)
		}
	}
}

package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/inferxds/inferxds/drpolicy/dr"
	"github.com/inferxds/inferxds/topology"
)

// telemetryFailures are the failures the telemetry fleet shows, by
// instance: every instance of a node found down (node-down), and every
// instance telemetry took out of service with a failed GPU under it
// (gpu-failure: a critical XID, an uncorrectable ECC error, a GPU lost).
func telemetryFailures(f *topology.Fleet, at time.Time) map[string]dr.Failure {
	out := map[string]dr.Failure{}
	for _, in := range f.Instances {
		node, ok := f.Node(in.Node)
		switch {
		case !ok:
		case node.Health == topology.HealthUnhealthy:
			out[in.Name] = dr.Failure{Instance: in.Name, Type: dr.FailureNodeDown, At: at, Detail: "node " + node.Name + " is down"}
		case in.Health == topology.HealthUnhealthy:
			if g, failed := failedGPU(node, in.GPUs); failed {
				out[in.Name] = dr.Failure{Instance: in.Name, Type: dr.FailureGPU, At: at, Detail: gpuDetail(node.Name, g)}
			}
		}
	}
	return out
}

func failedGPU(n topology.Node, indexes []int) (topology.GPU, bool) {
	i := slices.IndexFunc(n.GPUs, func(g topology.GPU) bool {
		return g.Health == topology.HealthUnhealthy && slices.Contains(indexes, g.Index)
	})
	if i < 0 {
		return topology.GPU{}, false
	}
	return n.GPUs[i], true
}

func gpuDetail(node string, g topology.GPU) string {
	if g.LastXID != 0 {
		return fmt.Sprintf("GPU %s/%d failed (XID %d)", node, g.Index, g.LastXID)
	}
	return fmt.Sprintf("GPU %s/%d failed", node, g.Index)
}

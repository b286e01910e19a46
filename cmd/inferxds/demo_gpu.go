//go:build cgo

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/inferxds/inferxds/cmd/gpu-agent/agent"
	"github.com/inferxds/inferxds/cmd/gpu-agent/agent/nvmlmock"
	"github.com/inferxds/inferxds/topology"
)

// gpuNodes are simulated GPU hosts: for each node of the fleet, the real
// gpu-agent code reading go-nvml's mock DGX A100, serving its metrics on
// 127.0.0.1 as the node's telemetry endpoint.
type gpuNodes struct {
	machines map[string]*nvmlmock.Machine
	agents   []*agent.Agent
	cancel   context.CancelFunc
	served   chan error
}

// xidPoll is how long the agents wait for an XID event at a time.
const xidPoll = 50 * time.Millisecond

// startGPUNodes starts an agent per node of fleet and points each node's
// TelemetryURL at it.
func startGPUNodes(fleet *topology.Fleet, logger *slog.Logger) (*gpuNodes, error) {
	ctx, cancel := context.WithCancel(context.Background())
	g := &gpuNodes{machines: map[string]*nvmlmock.Machine{}, cancel: cancel, served: make(chan error, len(fleet.Nodes))}
	for i := range fleet.Nodes {
		node := &fleet.Nodes[i]
		machine := nvmlmock.NewDGXA100()
		a, err := agent.Start(ctx, agent.Config{NVML: machine.NVML(), Hostname: node.Name, XIDPollTimeout: xidPoll, Logger: logger})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("gpu agent of %s: %w", node.Name, err), g.close())
		}
		g.agents = append(g.agents, a)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Join(err, g.close())
		}
		go func() { g.served <- a.Serve(ctx, lis) }()
		g.machines[node.Name] = machine
		node.TelemetryURL = "http://" + lis.Addr().String() + "/metrics"
	}
	return g, nil
}

// injectXID raises an XID error on a node's GPU, as the driver would.
func (g *gpuNodes) injectXID(node string, gpu int, xid uint64) error {
	m, ok := g.machines[node]
	if !ok {
		return fmt.Errorf("no simulated GPU node %s", node)
	}
	return m.InjectXID(gpu, xid)
}

// close stops every agent.
func (g *gpuNodes) close() error {
	g.cancel()
	var errs []error
	for range len(g.machines) {
		errs = append(errs, <-g.served)
	}
	for _, a := range g.agents {
		errs = append(errs, a.Close())
	}
	return errors.Join(errs...)
}

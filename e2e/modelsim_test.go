package e2e

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
	"github.com/inferxds/inferxds/topology"
)

// modelSim is a running model-server simulator.
type modelSim struct {
	id, model string
	proc      *process
	ready     sim.Ready
}

// startModelSim starts a simulator for model named id on ephemeral ports.
func startModelSim(t *testing.T, id, model string, extra ...string) *modelSim {
	t.Helper()
	ready := filepath.Join(t.TempDir(), id+".ready.json")
	args := append([]string{
		"--id", id, "--model", model,
		"--http-address", "127.0.0.1:0", "--grpc-address", "127.0.0.1:0",
		"--ready-file", ready,
	}, extra...)
	s := &modelSim{id: id, model: model}
	s.proc = startProcess(t, "modelsim "+id, binaries.modelsim, args...)
	s.proc.readReadyFile(t, ready, &s.ready)
	return s
}

// grpcInstance is the fleet entry for this simulator's gRPC port: a serving
// hot primary in zone az-1 unless the caller changes it.
func (s *modelSim) grpcInstance(t *testing.T) topology.Instance {
	return s.instance(t, s.ready.GRPCAddress)
}

// httpInstance is grpcInstance for the HTTP port (Envoy's upstream).
func (s *modelSim) httpInstance(t *testing.T) topology.Instance {
	return s.instance(t, s.ready.HTTPAddress)
}

func (s *modelSim) instance(t *testing.T, address string) topology.Instance {
	t.Helper()
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		t.Fatalf("modelsim %s address %q: %v", s.id, address, err)
	}
	port, err := strconv.ParseUint(portText, 10, 32)
	if err != nil {
		t.Fatalf("modelsim %s port %q: %v", s.id, portText, err)
	}
	return topology.Instance{
		Name:    s.id,
		Model:   s.model,
		Zone:    "az-1",
		Address: host,
		Port:    uint32(port),
		Tier:    topology.TierHot,
		Role:    topology.RolePrimary,
		Health:  topology.HealthServing,
	}
}

// simsByID indexes simulators by the instance id they answer with.
func simsByID(sims ...*modelSim) map[string]*modelSim {
	byID := make(map[string]*modelSim, len(sims))
	for _, s := range sims {
		byID[s.id] = s
	}
	return byID
}

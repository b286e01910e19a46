//go:build !cgo

package main

import (
	"errors"
	"log/slog"

	"github.com/inferxds/inferxds/topology"
)

// gpuNodes needs go-nvml, whose mock is built with cgo; without cgo there
// are no simulated GPU nodes and the gpu-failure drill cannot run.
type gpuNodes struct{}

var errNoGPUSim = errors.New("simulated GPU nodes need a build with cgo (go-nvml)")

func startGPUNodes(*topology.Fleet, *slog.Logger) (*gpuNodes, error) { return nil, errNoGPUSim }

func (*gpuNodes) injectXID(string, int, uint64) error { return errNoGPUSim }

func (*gpuNodes) close() error { return nil }

package agent

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// gpu is one GPU as NVML listed it at Start; its fields become labels.
type gpu struct {
	index int
	uuid  string
	name  string
}

// discover lists the GPUs NVML sees. A GPU whose identity cannot be read is
// left out and named in skipped; err is set only when NVML cannot count them.
func discover(lib nvml.Interface) (gpus []gpu, skipped, err error) {
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nil, fmt.Errorf("nvml device count: %v", ret)
	}
	var errs []error
	for i := range count {
		g, err := identify(lib, i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		gpus = append(gpus, g)
	}
	return gpus, errors.Join(errs...), nil
}

func identify(lib nvml.Interface, index int) (gpu, error) {
	dev, ret := lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS {
		return gpu{}, fmt.Errorf("GPU %d: handle: %v", index, ret)
	}
	uuid, ret := dev.GetUUID()
	if ret != nvml.SUCCESS {
		return gpu{}, fmt.Errorf("GPU %d: uuid: %v", index, ret)
	}
	name, ret := dev.GetName()
	if ret != nvml.SUCCESS {
		return gpu{}, fmt.Errorf("GPU %d (%s): name: %v", index, uuid, ret)
	}
	return gpu{index: index, uuid: uuid, name: name}, nil
}

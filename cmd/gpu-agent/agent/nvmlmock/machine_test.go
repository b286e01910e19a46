package nvmlmock

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

func TestRemovedGPULeavesTheCountAndStopsAnswering(t *testing.T) {
	m := NewDGXA100()
	lib := m.NVML()
	held, ret := lib.DeviceGetHandleByIndex(4)
	if ret != nvml.SUCCESS {
		t.Fatal(ret)
	}
	m.RemoveGPU(4)
	if n, ret := lib.DeviceGetCount(); ret != nvml.SUCCESS || n != m.NumGPUs()-1 {
		t.Errorf("device count = %d, %v; want %d", n, ret, m.NumGPUs()-1)
	}
	if _, ret := lib.DeviceGetHandleByUUID(m.UUID(4)); ret != nvml.ERROR_GPU_IS_LOST {
		t.Errorf("handle of the removed GPU: %v, want ERROR_GPU_IS_LOST", ret)
	}
	if _, ret := held.GetMemoryInfo(); ret != nvml.ERROR_GPU_IS_LOST {
		t.Errorf("query on a handle held before removal: %v, want ERROR_GPU_IS_LOST", ret)
	}
	if _, ret := lib.DeviceGetHandleByUUID(m.UUID(5)); ret != nvml.SUCCESS {
		t.Errorf("handle of GPU 5: %v, want SUCCESS", ret)
	}
}

func TestInjectedXIDReachesOnlyRegisteredSets(t *testing.T) {
	m := NewDGXA100()
	if err := m.InjectXID(0, 79); err == nil {
		t.Fatal("InjectXID succeeded with no event set registered")
	}
	set, _ := m.NVML().EventSetCreate()
	dev, _ := m.NVML().DeviceGetHandleByIndex(0)
	if ret := dev.RegisterEvents(nvml.EventTypeXidCriticalError, set); ret != nvml.SUCCESS {
		t.Fatal(ret)
	}
	if err := m.InjectXID(0, 79); err != nil {
		t.Fatal(err)
	}
	event, ret := set.Wait(1000)
	if ret != nvml.SUCCESS || event.EventData != 79 || event.Device != dev {
		t.Errorf("Wait = %+v, %v; want XID 79 from GPU 0", event, ret)
	}
	if _, ret := set.Wait(1); ret != nvml.ERROR_TIMEOUT {
		t.Errorf("second Wait = %v, want ERROR_TIMEOUT: one XID was raised", ret)
	}
}

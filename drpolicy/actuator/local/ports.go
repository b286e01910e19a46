package local

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
)

// ephemeralRangeFile is where Linux keeps the range it takes the local
// ports of outgoing connections (and of listeners on port 0) from.
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// FreePorts returns n loopback TCP ports nothing listens on now, for model
// servers to bind later. They are picked below the kernel's ephemeral
// range: a port is free again between being picked and being bound, and
// one from the ephemeral range could meanwhile become the local end of
// any outgoing connection, failing the server's bind.
func FreePorts(n int) ([]uint32, error) {
	low, high := pickRange()
	var ports []uint32
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	start := rand.IntN(high - low)
	for i := 0; i < high-low && len(ports) < n; i++ {
		port := low + (start+i)%(high-low)
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, uint32(port))
	}
	if len(ports) < n {
		return nil, fmt.Errorf("only %d of %d ports free on %s between %d and %d", len(ports), n, loopback, low, high)
	}
	return ports, nil
}

// pickRange is where FreePorts looks: from 20000 up to the start of the
// ephemeral range, or up to 30000 where that range cannot be read.
func pickRange() (low, high int) {
	low, high = 20000, 30000
	data, err := os.ReadFile(ephemeralRangeFile)
	if err != nil {
		return low, high
	}
	var ephemeralLow, ephemeralHigh int
	if _, err := fmt.Sscan(string(data), &ephemeralLow, &ephemeralHigh); err == nil && ephemeralLow > low+1000 {
		high = ephemeralLow
	}
	return low, high
}

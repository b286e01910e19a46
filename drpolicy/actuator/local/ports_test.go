package local

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortsAreDistinctBindableAndBelowTheEphemeralRange(t *testing.T) {
	ports, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	_, high := pickRange()
	seen := map[uint32]bool{}
	for _, p := range ports {
		if seen[p] || int(p) >= high {
			t.Fatalf("ports %v: %d repeated or not below %d, where outgoing connections take theirs", ports, p, high)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(int(p))))
		if err != nil {
			t.Fatalf("port %d handed out but not free: %v", p, err)
		}
		l.Close()
	}
}

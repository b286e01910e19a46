package xds

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkMemoryPerProxy reports the server's heap per connected proxy
// (500 models × 20 endpoints in one view, every proxy subscribed to every
// load assignment and ACKing), state-of-the-world and Delta. Target ≤ 200
// KiB. The heap of the server and the clients' streams in this process are
// both counted, so the figure is an upper bound.
func BenchmarkMemoryPerProxy(b *testing.B) {
	const proxies = 200
	for _, mode := range []string{"sotw", "delta"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				srv, addr := startServer(b, ServerConfig{MaxConcurrentStreams: 1 << 20})
				if _, err := srv.SetView(grpcView("az-1"), mustTranslate(b, largeFleet(500, 20), "az-1")); err != nil {
					b.Fatal(err)
				}
				client := dial(b, addr)
				before := heapInUse()
				for i := range proxies {
					ack := openAcker(b, client, mode, fmt.Sprintf("proxy-%d", i))
					if _, err := ack(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(heapInUse()-before)/proxies/1024, "KiB/proxy")
			}
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

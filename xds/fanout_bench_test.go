package xds

import (
	"fmt"
	"slices"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/inferxds/inferxds/snapshot"
	"github.com/inferxds/inferxds/topology"
)

// BenchmarkFanout measures, for K connected clients of one zone, the time
// from SetGroup with one endpoint changed to each client having received
// the update and sent its ACK (500 models × 20 endpoints).
func BenchmarkFanout(b *testing.B) {
	for _, mode := range []string{"sotw", "delta"} {
		for _, clients := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/clients=%d", mode, clients), func(b *testing.B) { benchFanout(b, mode, clients) })
		}
	}
}

// acker receives one response, ACKs it and returns its size.
type acker func() (int, error)

type ackSample struct {
	at    time.Time
	bytes int
}

func benchFanout(b *testing.B, mode string, clients int) {
	changed := largeFleet(500, 20)
	changed.Instances[0].Weight = 2
	variants := [2]*snapshot.Resources{mustTranslate(b, largeFleet(500, 20), "az-1"), mustTranslate(b, changed, "az-1")}
	srv, addr := startServer(b, ServerConfig{MaxConcurrentStreams: 1 << 20})
	if _, err := srv.SetView(grpcView("az-1"), variants[0]); err != nil {
		b.Fatal(err)
	}
	client := dial(b, addr)

	samples := make(chan ackSample, clients)
	for i := range clients {
		ack := openAcker(b, client, mode, fmt.Sprintf("proxy-%d", i))
		go func() {
			for {
				n, err := ack()
				if err != nil {
					return
				}
				samples <- ackSample{time.Now(), n}
			}
		}()
	}
	collect(samples, clients) // the initial state

	var latencies []time.Duration
	var bytes int
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := srv.SetView(grpcView("az-1"), variants[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
		for _, s := range collect(samples, clients) {
			latencies = append(latencies, s.at.Sub(start))
			bytes += s.bytes
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)*50/100].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(bytes)/float64(len(latencies))/1024, "KB/msg")
}

func collect(samples <-chan ackSample, n int) []ackSample {
	out := make([]ackSample, n)
	for i := range out {
		out[i] = <-samples
	}
	return out
}

func openAcker(b *testing.B, client discoveryv3.AggregatedDiscoveryServiceClient, mode, id string) acker {
	node := zoneNode(id, "az-1")
	if mode == "delta" {
		stream, err := client.DeltaAggregatedResources(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.EndpointType}); err != nil {
			b.Fatal(err)
		}
		return func() (int, error) {
			r, err := stream.Recv()
			if err != nil {
				return 0, err
			}
			return proto.Size(r), stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.TypeUrl, ResponseNonce: r.Nonce})
		}
	}
	stream, err := client.StreamAggregatedResources(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.EndpointType}); err != nil {
		b.Fatal(err)
	}
	return func() (int, error) {
		r, err := stream.Recv()
		if err != nil {
			return 0, err
		}
		return proto.Size(r), stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: r.TypeUrl, VersionInfo: r.VersionInfo, ResponseNonce: r.Nonce})
	}
}

// largeFleet has models × endpoints serving instances in az-1.
func largeFleet(models, endpoints int) *topology.Fleet {
	f := &topology.Fleet{Zones: []topology.Zone{{Name: "az-1", Role: topology.ZoneActive}}}
	for m := range models {
		for e := range endpoints {
			f.Instances = append(f.Instances, servingInstance(
				fmt.Sprintf("m%03d-%02d", m, e), fmt.Sprintf("m%03d", m), "az-1", fmt.Sprintf("10.%d.%d.%d", m/250, m%250, e+1)))
		}
	}
	return f
}

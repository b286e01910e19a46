// Package kube is the Kubernetes fleet source: it maps Pods, Deployments,
// EndpointSlices and Nodes into the fleet IR (topology.Fleet) and watches
// them with client-go shared informers.
//
// It owns the mapping (FleetFrom, pure and table-tested), the label and
// annotation keys that tie a Pod to a model, tier and role (Labels, shared
// with the Kubernetes actuator), and the Source that publishes a new fleet
// when the API changes. It writes nothing to the API server: promotions and
// new instances are the actuator's business.
//
// What comes from where:
//
//   - instances: Pods that run a model, placed, with an IP, and not yet
//     Failed or Succeeded; named by their inferxds.io/instance label (the
//     best serving Pod of those that share one) or "<pod>.<namespace>".
//   - cold standbys: Deployments labelled with a model (the same keys),
//     scaled to 0 replicas and with no running Pod their selector matches;
//     tier cold, role standby, no address. Named as the Kubernetes actuator
//     finds a Deployment: its inferxds.io/instance label, else its name (so
//     that load scales it; give its Pod template the same instance label to
//     keep the name once the Pod runs). Zone: the Pod template's
//     nodeSelector on topology.kubernetes.io/zone, else its required node
//     affinity to one zone or one node, else the Deployment's
//     inferxds.io/zone annotation. A Deployment that runs a Pod is that
//     Pod's instance.
//   - model, tier and role: the Pod's labels (Labels); the seed's app,
//     model and standby-type labels are understood too.
//   - address: the Pod's IP; port: the inferxds.io/port annotation, else
//     the EndpointSlice port (named PortName when there are several), else
//     the Pod's container port of that name or its only one; metrics: the
//     inferxds.io/metrics-port annotation's port, at /metrics.
//   - health: the EndpointSlice endpoint's conditions (terminating →
//     draining, ready → serving, not ready → unhealthy); a Pod no slice
//     lists is judged by its own Ready condition (not yet ready → loading).
//   - zone: the Node's topology.kubernetes.io/zone label; zone role: the
//     inferxds.io/zone-role label of the zone's Nodes, else Options
//     StandbyZones, else active.
//   - GPUs: the Node's nvidia.com/gpu capacity (and the GPU feature
//     discovery product and memory labels); an instance's GPUs are the
//     Pod's nvidia.com/gpu request, on the indexes the inferxds.io/gpus
//     annotation names or, since Kubernetes does not say which devices a
//     Pod got, the lowest ones free on its node.
package kube

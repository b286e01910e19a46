// Package kube is the DR engine's Kubernetes actuator: it carries out the
// planner's wake, load, create and stop actions on Deployments and Pods,
// writing by server-side apply with the field manager "inferxds".
//
// An instance is the workload named after it: a Deployment of at most one
// replica, or (an emergency instance) a bare Pod. Every Pod the actuator
// makes carries the instance label (inferxds.io/instance), so the Pods of
// its Deployments are found by it. An instance the Kubernetes source
// lists ("<pod>.<namespace>") is found through its Pod, and its
// Deployment through the Pod's ReplicaSet.
//
//   - load (cold → warm): the instance's Deployment scaled from 0 to 1 and
//     labelled warm; the Pod starts asleep (vLLM sleep mode) and the action
//     is done once it runs.
//   - wake (warm → hot): POST /wake_up to the Pod, then the Pod and its
//     Deployment labelled hot. The Pod is not restarted: a woken instance
//     stays on the node and GPUs it slept on.
//   - create: a Deployment (standbys; 0 replicas for a cold one), or a Pod
//     for an emergency instance, from the model's Pod template kept next to
//     the policy (see Templates), with node affinity to the placement's node
//     (else its zone) and nvidia.com/gpu requested for its GPUs.
//   - stop: the Deployment scaled to 0 and labelled cold, or the Pod deleted.
//
// Replaying an action that succeeded changes nothing: applies carry the
// same fields (an unchanged apply is no write), a Pod already hot is not
// woken again, and a Pod already gone is not deleted again.
//
// The actuator owns no goroutine; it never decides what to do, only does
// what the planner asked.
package kube

// Package deploycheck tests the Kubernetes manifests under deploy/: every
// kustomization renders (kustomize's krusty, as `kubectl kustomize`), the
// files generated from other sources are current, and every rendered object
// of a built-in kind passes server-side dry-run on a real API server
// (e2e/kubeenv), without warnings; and serve's ServiceAccount, with base's
// RBAC applied, may do what the control plane needs and nothing more; and
// each settings ConfigMap starts a real `inferxds serve --source kube` as
// that ServiceAccount (its Pod paths pointed at test files).
//
// It is apart from package e2e because kustomize links Go's plugin
// package, which makes the test binary bind its C symbols at start, and
// the GPU agent's NVML bindings there leave some to be found only when the
// driver is loaded.
//
// It holds no production code; everything lives in _test.go files.
package deploycheck

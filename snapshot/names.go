package snapshot

// Resource names. This file is the only place they are formatted; the xds
// server, bootstrap templates and tests refer to these.
const (
	// SocketListenerName is the Envoy listener carrying HTTP and gRPC traffic.
	SocketListenerName = "ingress_http"
	// APIListenerName is the listener gRPC proxyless clients ask for; they
	// dial "xds:///" + APIListenerName.
	APIListenerName = "inference"
	// RouteConfigName is the one route configuration both listeners use.
	RouteConfigName = "inference"
	// VirtualHostName is the virtual host holding every model's routes.
	VirtualHostName = "inference"
	// OpenAIModelsRouteName answers GET /v1/models; OpenAIUnknownModelRouteName
	// answers OpenAI requests for a model the policy does not serve.
	OpenAIModelsRouteName       = "openai/models"
	OpenAIUnknownModelRouteName = "openai/unknown-model"
)

// ClusterName is the EDS cluster, and its ClusterLoadAssignment, of a model.
func ClusterName(model string) string { return model }

// headerRouteName, pathRouteName and openAIRouteName name a model's routes,
// so stats and config dumps say which match a request took.
func headerRouteName(model string) string { return model + "/header" }
func pathRouteName(model string) string   { return model + "/path" }
func openAIRouteName(model string) string { return model + "/openai" }
